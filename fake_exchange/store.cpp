// The ROPs of one EMSMDB session (see store.hpp). Sections are [MS-OXCROPS]'s unless named otherwise.
#include "fake_exchange/store.hpp"

#include <algorithm>
#include <chrono>
#include <ctime>

#include "common/le_bytes.hpp"
#include "common/utf16.hpp"
#include "fake_exchange/rpc_call.hpp"

namespace exbridge::fake_exchange {
namespace {

constexpr std::uint8_t rop_release = 0x01, rop_open_folder = 0x02, rop_open_message = 0x03, rop_get_hierarchy_table = 0x04,
                       rop_get_contents_table = 0x05, rop_get_properties_specific = 0x07, rop_set_columns = 0x12,
                       rop_query_rows = 0x15, rop_fast_transfer_source_copy_to = 0x4D,
                       rop_fast_transfer_source_get_buffer = 0x4E, rop_buffer_too_small = 0xFF, rop_logon = 0xFE;
/// [MS-OXCFXICS] 2.2.3.1.1.1.1: CopyFlags BestBody; SendOptions Unicode, UseCpid, RecoverMode, ForceUnicode,
/// PartialItem.
constexpr std::uint32_t copy_flag_best_body = 0x00002000;
constexpr std::uint8_t send_unicode = 0x01, send_use_cpid = 0x02, send_force_unicode = 0x08, send_known = 0x1F;
/// [MS-OXCFXICS] 2.2.3.1.1.5.1: BufferSize asking the server to choose, MaximumBufferSize following it.
constexpr std::uint16_t buffer_size_server_chooses = 0xBABE;
/// RopFastTransferSourceGetBuffer's response before its TransferBuffer: RopId, InputHandleIndex, ReturnValue,
/// TransferStatus, InProgressCount, TotalStepCount, Reserved, TransferBufferSize.
constexpr std::size_t get_buffer_overhead = 1 + 1 + 4 + 2 + 2 + 2 + 1 + 2;
constexpr std::uint16_t transfer_error = 0x0000, transfer_partial = 0x0001, transfer_done = 0x0003;
/// Responses stop once they pass this many bytes, so the answer fits one 32 KiB extended buffer.
constexpr std::size_t response_budget = 28 * 1024;
constexpr std::uint8_t logon_private = 0x01;
/// [MS-OXCSTOR] 2.2.1.1.3 ResponseFlags: Reserved (must be set), OwnerRight, SendAsRight.
constexpr std::uint8_t response_flags_owner = 0x01 | 0x02 | 0x04;

/// [MS-OXCSTOR] 2.2.1.1.3 LogonTime: Seconds, Minutes, Hour, DayOfWeek, Day, Month, Year (u16), UTC.
void put_logon_time(le_writer& w) {
  const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm t{};
  gmtime_r(&now, &t);
  w.u8(static_cast<std::uint8_t>(t.tm_sec)), w.u8(static_cast<std::uint8_t>(t.tm_min));
  w.u8(static_cast<std::uint8_t>(t.tm_hour)), w.u8(static_cast<std::uint8_t>(t.tm_wday));
  w.u8(static_cast<std::uint8_t>(t.tm_mday)), w.u8(static_cast<std::uint8_t>(t.tm_mon + 1));
  w.u16(static_cast<std::uint16_t>(t.tm_year + 1900));
}

}  // namespace

std::uint64_t store_id(std::uint64_t global_counter) {
  std::uint64_t id = 0x0001;  // ReplicaId 1: bytes 0-1
  for (int i = 0; i < 6; ++i) id |= ((global_counter >> (8 * (5 - i))) & 0xFF) << (8 * (2 + i));
  return id;
}

std::uint64_t folder_id(const folder_info& f) { return store_id(folder_counter(f)); }

std::uint64_t message_id(const folder_info& f, unsigned index) {
  return store_id(folder_counter(f) << 24 | (static_cast<std::uint64_t>(index) + 1));
}

store_session::object* store_session::find(std::uint32_t handle, std::initializer_list<kind> kinds) {
  const auto it = objects_.find(handle);
  if (it == objects_.end() || std::find(kinds.begin(), kinds.end(), it->second.what) == kinds.end()) return nullptr;
  return &it->second;
}

std::uint32_t store_session::add(object o) {
  const std::uint32_t handle = next_handle_++;
  objects_[handle] = std::move(o);
  return handle;
}

namespace {

/// The private mailbox's folder with ID `fid`; nullptr for any other (the public folders root is in the public
/// store).
const folder_info* mailbox_folder(std::uint64_t fid) {
  for (const auto& f : all_folders()) {
    if (folder_id(f) == fid && f.key != "publicfoldersroot") return &f;
  }
  return nullptr;
}

/// The message `mid` names in folder `f` (store_id's inverse): nullopt for another replica, folder or counter.
std::optional<unsigned> message_index(const folder_info& f, std::uint64_t mid) {
  if ((mid & 0xFFFF) != 0x0001) return std::nullopt;  // ReplicaId 1
  std::uint64_t counter = 0;
  for (int i = 0; i < 6; ++i) counter = counter << 8 | ((mid >> (8 * (2 + i))) & 0xFF);
  if ((counter >> 24) != folder_counter(f) || (counter & 0xFFFFFF) == 0) return std::nullopt;
  return static_cast<unsigned>((counter & 0xFFFFFF) - 1);
}

/// A PropertyTagCount (u16) and that many PropertyTags, as RopSetColumns, RopGetPropertiesSpecific and
/// RopFastTransferSourceCopyTo carry them; nullopt when cut short.
std::optional<std::vector<std::uint32_t>> read_tags(le_reader& r) {
  if (!r.has(2)) return std::nullopt;
  const std::uint16_t count = r.u16();
  if (!r.has(4u * count)) return std::nullopt;
  std::vector<std::uint32_t> tags(count);
  for (auto& t : tags) t = r.u32();
  return tags;
}

}  // namespace

std::variant<std::string, std::uint32_t> store_session::execute(const rop::request_buffer& in, std::size_t room) {
  le_reader r(as_bytes(in.rops));
  std::vector<std::uint32_t> handles = in.handles;
  le_writer out;
  // What the ROPs' responses may take: the room less RopSize and the handle table.
  const std::size_t table = 4 * handles.size();
  const std::size_t rop_room = room > 2 + table ? room - 2 - table : 0;
  while (r.left() > 0 && out.size() < response_budget) {
    if (!r.has(3)) return mapi_ec::rpc_format;
    const std::size_t rop_start = r.position();
    const std::uint8_t rop_id = r.u8();
    r.u8();  // LogonId: one logon per session here
    const std::uint8_t index = r.u8();  // OutputHandleIndex for RopLogon, InputHandleIndex for the others
    if (index >= handles.size()) return mapi_ec::rpc_format;
    bool ok = true;
    switch (rop_id) {
      case rop_release: objects_.erase(handles[index]); break;  // [MS-OXCROPS] 2.2.15.3: no response
      case rop_logon: ok = logon(r, index, handles, out); break;
      case rop_open_folder: ok = open_folder(r, index, handles, out); break;
      case rop_get_hierarchy_table:
      case rop_get_contents_table: ok = get_table(r, rop_id, index, handles, out); break;
      case rop_set_columns: ok = set_columns(r, index, handles, out); break;
      case rop_query_rows: ok = query_rows(r, index, handles, out); break;
      case rop_get_properties_specific: ok = get_properties(r, index, handles, out); break;
      case rop_open_message: ok = open_message(r, index, handles, out); break;
      case rop_fast_transfer_source_copy_to: ok = copy_to(r, index, handles, out); break;
      case rop_fast_transfer_source_get_buffer: {
        std::size_t needed = 0;
        ok = get_buffer(r, index, handles, rop_room, out, needed);
        if (ok && needed != 0) {
          // [MS-OXCROPS] 2.2.15.1: RopBufferTooSmall -- the size this ROP's answer needs and the requests from it on,
          // for the client to send again with more room. Nothing after it runs.
          const std::size_t size_needed = 2 + table + out.size() + needed;
          out.u8(rop_buffer_too_small);
          out.u16(static_cast<std::uint16_t>(std::min<std::size_t>(0xFFFF, size_needed)));
          out.bytes(std::string_view(in.rops).substr(rop_start));
          return rop::write_response_buffer(out.text(), handles);
        }
        break;
      }
      default:
        out.u8(rop_id), out.u8(index), out.u32(mapi_ec::not_supported);
        return rop::write_response_buffer(out.text(), handles);
    }
    if (!ok) return mapi_ec::rpc_format;
  }
  return rop::write_response_buffer(out.text(), handles);
}

bool store_session::logon(le_reader& r, std::uint8_t index, std::vector<std::uint32_t>& handles, le_writer& out) {
  // [MS-OXCROPS] 2.2.3.1.1: LogonFlags, OpenFlags, StoreState, EssdnSize, Essdn (NUL-terminated).
  if (!r.has(1 + 4 + 4 + 2)) return false;
  const std::uint8_t logon_flags = r.u8();
  r.skip(8);
  const std::uint16_t essdn_size = r.u16();
  if (!r.has(essdn_size)) return false;
  std::string essdn = r.text(essdn_size);
  while (!essdn.empty() && essdn.back() == '\0') essdn.pop_back();

  // [MS-OXCSTOR] 3.2.5.1.1 and 3.2.5.1.3: an ESSDN nobody has is ecUnknownUser; another user's mailbox needs
  // rights this lab does not grant, ecAccessDenied; the lab has no public folder database, ecLoginFailure.
  const auto& org = server_->org;
  std::uint32_t ec = mapi_ec::none;
  if (!(logon_flags & logon_private)) {
    ec = mapi_ec::login_failure;
  } else if (const user* named = org.find_legacy_dn(essdn); named != owner_) {
    ec = named == nullptr ? mapi_ec::unknown_user : mapi_ec::access_denied;
  }
  out.u8(rop_logon), out.u8(index), out.u32(ec);
  if (ec != mapi_ec::none) return true;
  handles[index] = add(object{kind::logon});
  // [MS-OXCSTOR] 2.2.1.1.3: the private mailbox's success response; its 13 special folders in this order.
  out.u8(logon_flags);
  for (const std::string_view key : {"root", "deferredaction", "spoolerqueue", "msgfolderroot", "inbox", "outbox",
                                     "sentitems", "deleteditems", "commonviews", "schedule", "searchfolders", "views",
                                     "shortcuts"}) {
    const std::uint64_t fid = folder_id(*folder_by_key(key));
    out.u64(fid);
  }
  out.u8(response_flags_owner);
  const std::string dn = org.legacy_dn(*owner_);
  const auto mailbox_guid = stable_guid("mailbox " + dn), replica_guid = stable_guid("replica " + dn);
  out.bytes(mailbox_guid.data(), mailbox_guid.size());
  out.u16(0x0001);                      // ReplId
  out.bytes(replica_guid.data(), replica_guid.size());  // ReplGuid
  put_logon_time(out);
  out.u32(0), out.u32(0);  // GwartTime: no address book changes to report
  out.u32(0);              // StoreState
  return true;
}

bool store_session::open_folder(le_reader& r, std::uint8_t in, std::vector<std::uint32_t>& handles, le_writer& out) {
  // [MS-OXCROPS] 2.2.4.1.1: OutputHandleIndex, FolderId, OpenModeFlags. The response names the output index.
  if (!r.has(1 + 8 + 1)) return false;
  const std::uint8_t output = r.u8();
  const std::uint64_t fid = r.u64();
  r.skip(1);
  if (output >= handles.size()) return false;
  const folder_info* folder = mailbox_folder(fid);
  std::uint32_t ec = mapi_ec::none;
  if (find(handles[in], {kind::logon, kind::folder}) == nullptr) ec = mapi_ec::null_object;
  else if (folder == nullptr) ec = mapi_ec::not_found;
  out.u8(rop_open_folder), out.u8(output), out.u32(ec);
  if (ec != mapi_ec::none) return true;
  handles[output] = add(object{kind::folder, folder});
  out.u8(0), out.u8(0);  // HasRules, IsGhosted: a mailbox folder, no rules
  return true;
}

bool store_session::get_table(le_reader& r, std::uint8_t rop_id, std::uint8_t in, std::vector<std::uint32_t>& handles,
                              le_writer& out) {
  // [MS-OXCROPS] 2.2.4.13.1 / 2.2.4.14.1: OutputHandleIndex, TableFlags (Depth 0x04 for hierarchies, Associated
  // 0x02 for contents); the response carries the row count.
  if (!r.has(2)) return false;
  const std::uint8_t output = r.u8(), flags = r.u8();
  if (output >= handles.size()) return false;
  const object* folder = find(handles[in], {kind::folder});
  out.u8(rop_id), out.u8(output), out.u32(folder == nullptr ? mapi_ec::null_object : mapi_ec::none);
  if (folder == nullptr) return true;
  object table{rop_id == rop_get_hierarchy_table ? kind::hierarchy_table : kind::contents_table, folder->folder};
  table.deep = (flags & 0x04) != 0;
  table.associated = (flags & 0x02) != 0;
  out.u32(static_cast<std::uint32_t>(row_count(table)));
  handles[output] = add(std::move(table));
  return true;
}

bool store_session::set_columns(le_reader& r, std::uint8_t in, const std::vector<std::uint32_t>& handles, le_writer& out) {
  // [MS-OXCROPS] 2.2.5.1.1: SetColumnsFlags, PropertyTagCount, PropertyTags; answered TableStatus complete.
  if (!r.has(1)) return false;
  r.skip(1);
  auto columns = read_tags(r);
  if (!columns) return false;
  object* table = find(handles[in], {kind::hierarchy_table, kind::contents_table});
  out.u8(rop_set_columns), out.u8(in), out.u32(table == nullptr ? mapi_ec::null_object : mapi_ec::none);
  if (table == nullptr) return true;
  table->columns = std::move(*columns);
  table->columns_set = true;
  out.u8(0);  // TableStatus: TBLSTAT_COMPLETE
  return true;
}

bool store_session::query_rows(le_reader& r, std::uint8_t in, const std::vector<std::uint32_t>& handles, le_writer& out) {
  // [MS-OXCROPS] 2.2.5.4.1: QueryRowsFlags (Advance 0, NoAdvance 1), ForwardRead, RowCount. The response:
  // Origin (where the cursor is afterwards: BOOKMARK_CURRENT 1 or BOOKMARK_END 2), RowCount, the rows.
  if (!r.has(4)) return false;
  const std::uint8_t flags = r.u8(), forward = r.u8();
  const std::uint16_t wanted = r.u16();
  object* table = find(handles[in], {kind::hierarchy_table, kind::contents_table});
  std::uint32_t ec = mapi_ec::none;
  if (table == nullptr || !table->columns_set) ec = mapi_ec::null_object;  // no table, or no columns yet
  else if (forward == 0) ec = mapi_ec::not_supported;                     // backwards reads are not offered
  out.u8(rop_query_rows), out.u8(in), out.u32(ec);
  if (ec != mapi_ec::none) return true;
  le_writer rows;
  std::size_t i = table->cursor;
  const std::size_t total = row_count(*table);
  std::uint16_t sent = 0;
  // As many rows as asked for, as long as the answer stays inside one extended buffer.
  while (i < total && sent < wanted && out.size() + rows.size() < response_budget) {
    mapi::write_row(rows, table->columns, row(*table, i));
    ++i, ++sent;
  }
  if ((flags & 0x01) == 0) table->cursor = i;
  out.u8(i >= total ? 2 : 1);
  out.u16(sent);
  out.bytes(rows.text());
  return true;
}

bool store_session::get_properties(le_reader& r, std::uint8_t in, const std::vector<std::uint32_t>& handles,
                                   le_writer& out) {
  // [MS-OXCROPS] 2.2.8.3.1: PropertySizeLimit, WantUnicode, PropertyTagCount, PropertyTags; the response is one
  // PropertyRow in the order asked. Folders are served; a logon's own properties are not modelled (every column
  // comes back as ecNotFound).
  if (!r.has(4)) return false;
  r.skip(4);  // PropertySizeLimit, WantUnicode: the tags say which string type is wanted
  const auto tags = read_tags(r);
  if (!tags) return false;
  const object* o = find(handles[in], {kind::logon, kind::folder});
  out.u8(rop_get_properties_specific), out.u8(in), out.u32(o == nullptr ? mapi_ec::null_object : mapi_ec::none);
  if (o == nullptr) return true;
  mapi::write_row(out, *tags, o->what == kind::folder ? folder_properties(*o->folder) : std::vector<mapi::property>{});
  return true;
}

bool store_session::open_message(le_reader& r, std::uint8_t in, std::vector<std::uint32_t>& handles, le_writer& out) {
  // [MS-OXCROPS] 2.2.6.1.1: OutputHandleIndex, CodePageId, FolderId, OpenModeFlags, MessageId.
  if (!r.has(1 + 2 + 8 + 1 + 8)) return false;
  const std::uint8_t output = r.u8();
  r.skip(2);
  const std::uint64_t fid = r.u64();
  r.skip(1);  // OpenModeFlags: nothing here can be written, so read-write opens read the same message
  const std::uint64_t mid = r.u64();
  if (output >= handles.size()) return false;
  const folder_info* folder = mailbox_folder(fid);
  // A plain count, not an optional: GCC 12 sees the optional's value as maybe uninitialised below.
  const unsigned none = 0xFFFFFFFF;
  unsigned index = none;
  if (folder != nullptr) {
    const auto found = message_index(*folder, mid);
    if (found && *found < box_.count(folder->key)) index = *found;
  }
  // [MS-OXCMSG] 3.2.5.1: a folder or message that does not exist is ecNotFound.
  std::uint32_t ec = mapi_ec::none;
  if (find(handles[in], {kind::logon, kind::folder}) == nullptr) ec = mapi_ec::null_object;
  else if (index == none) ec = mapi_ec::not_found;
  out.u8(rop_open_message), out.u8(output), out.u32(ec);
  if (ec != mapi_ec::none) return true;
  handles[output] = add(object{kind::message, folder, index});

  // [MS-OXCMSG] 2.2.3.1.2: HasNamedProperties, SubjectPrefix and NormalizedSubject as TypedStrings ([MS-OXCDATA]
  // 2.11.7: 0x01 empty, 0x04 UTF-16LE with its NUL; the lab's subjects have no "RE:"-style prefix), RecipientCount,
  // the recipient columns, RowCount and the rows -- all of them: the message has one recipient, its owner.
  const auto item = box_.item(folder->key, index);
  const item_headers h = box_.headers(item);
  out.u8(0);
  out.u8(0x01);
  out.u8(0x04), out.bytes(utf16le(item.subject)), out.u16(0);
  out.u16(1);  // RecipientCount
  const std::vector<std::uint32_t> columns{0x39FE001F};  // PidTagSmtpAddress
  out.u16(static_cast<std::uint16_t>(columns.size()));
  for (const auto c : columns) out.u32(c);
  out.u8(1);  // RowCount
  // [MS-OXCROPS] 2.2.6.1.2.1 OpenRecipientRow: RecipientType (1, To), CodePageId, Reserved, RecipientRowSize, then
  // [MS-OXCDATA] 2.8.3.2 RecipientRow: RecipientFlags U (0x0200) | S (0x0040, transmittable name = display name) |
  // D (0x0010) | E (0x0008) | Type SMTP (3); EmailAddress; DisplayName; RecipientColumnCount; a PropertyRow.
  le_writer row;
  row.u16(0x0200 | 0x0040 | 0x0010 | 0x0008 | 0x0003);
  row.bytes(utf16le(h.to_email)), row.u16(0);
  row.bytes(utf16le(h.to_name)), row.u16(0);
  row.u16(static_cast<std::uint16_t>(columns.size()));
  mapi::write_row(row, columns, {{columns[0], h.to_email}});
  out.u8(0x01);
  out.u16(1252);
  out.u16(0);
  out.u16(static_cast<std::uint16_t>(row.size()));
  out.bytes(row.text());
  return true;
}

bool store_session::copy_to(le_reader& r, std::uint8_t in, std::vector<std::uint32_t>& handles, le_writer& out) {
  // [MS-OXCFXICS] 2.2.3.1.1.1.1: OutputHandleIndex, Level, CopyFlags, SendOptions, PropertyTagCount, PropertyTags
  // (the properties to leave out). The response is the prefix alone; the output handle is the download context.
  if (!r.has(1 + 1 + 4 + 1)) return false;
  const std::uint8_t output = r.u8(), level = r.u8();
  const std::uint32_t copy_flags = r.u32();
  const std::uint8_t send_options = r.u8();
  auto excluded = read_tags(r);
  if (!excluded || output >= handles.size()) return false;
  copy_options options;
  options.excluded = std::move(*excluded);
  const object* source = find(handles[in], {kind::logon, kind::folder, kind::message});
  // [MS-OXCFXICS] 3.2.5.8.1.1: unknown CopyFlags or SendOptions bits fail, and so does Move (this is a copy of a
  // mailbox being migrated, never a move). Only messages are served as sources: a folder's or an attachment's
  // CopyTo is ecNotSupported here (a migration copies message by message).
  std::uint32_t ec = mapi_ec::none;
  if (objects_.count(handles[in]) == 0) ec = mapi_ec::null_object;
  else if ((copy_flags & ~copy_flag_best_body) != 0 || (send_options & ~send_known) != 0) ec = mapi_ec::invalid_parameter;
  else if (source == nullptr || source->what != kind::message) ec = mapi_ec::not_supported;
  out.u8(rop_fast_transfer_source_copy_to), out.u8(output), out.u32(ec);
  if (ec != mapi_ec::none) return true;
  options.subobjects = level == 0;
  options.best_body = (copy_flags & copy_flag_best_body) != 0;
  options.string_type = (send_options & (send_unicode | send_force_unicode)) != 0 ? mapi::ptype::unicode
                        : (send_options & send_use_cpid) != 0                   ? std::uint16_t{0x8000 | 1200}
                                                                                : mapi::ptype::string8;
  const auto item = box_.item(source->folder->key, source->index);
  object context{kind::download, source->folder, source->index};
  context.stream = std::make_shared<message_stream>(box_, item, options);
  handles[output] = add(std::move(context));
  return true;
}

bool store_session::get_buffer(le_reader& r, std::uint8_t in, const std::vector<std::uint32_t>& handles,
                               std::size_t room, le_writer& out, std::size_t& needed) {
  // [MS-OXCFXICS] 2.2.3.1.1.5.1: BufferSize, and MaximumBufferSize only when BufferSize is 0xBABE.
  if (!r.has(2)) return false;
  const std::uint16_t asked = r.u16();
  std::size_t maximum = asked;
  if (asked == buffer_size_server_chooses) {
    if (!r.has(2)) return false;
    maximum = r.u16();
  }
  // [MS-OXCFXICS] 3.2.5.8.1.5: 0xBABE lets the server fill what is left of the output buffer; a fixed size that
  // does not fit is RopBufferTooSmall. An empty handle slot is ecNullObject, another kind of object ecNotSupported.
  const std::size_t available = room > out.size() + get_buffer_overhead ? room - out.size() - get_buffer_overhead : 0;
  const auto it = objects_.find(handles[in]);
  std::uint32_t ec = mapi_ec::none;
  if (it == objects_.end()) ec = mapi_ec::null_object;
  else if (it->second.what != kind::download) ec = mapi_ec::not_supported;
  else if (asked == buffer_size_server_chooses ? available == 0 : asked > available) {
    needed = get_buffer_overhead + (asked == buffer_size_server_chooses ? std::min<std::size_t>(maximum, 1) : asked);
    return true;
  }
  out.u8(rop_fast_transfer_source_get_buffer), out.u8(in), out.u32(ec);
  if (ec != mapi_ec::none) {
    // The fields after ReturnValue are there on failure too, zero, as Exchange and other servers send them.
    out.u16(transfer_error), out.u16(0), out.u16(0), out.u8(0), out.u16(0);
    return true;
  }
  message_stream& stream = *it->second.stream;
  std::string chunk(std::min<std::size_t>({maximum, available, 0xFFFF}), '\0');
  chunk.resize(stream.read(chunk.data(), chunk.size()));
  const bool done = stream.remaining() == 0;
  // TotalStepCount 1 for one message, InProgressCount 1 once it is all out.
  out.u16(done ? transfer_done : transfer_partial), out.u16(done ? 1 : 0), out.u16(1), out.u8(0);
  out.u16(static_cast<std::uint16_t>(chunk.size()));
  out.bytes(chunk);
  return true;
}

std::vector<mapi::property> store_session::folder_properties(const folder_info& f) const {
  namespace tag = mapi::tag;
  const unsigned total = box_.count(f.key);
  std::vector<mapi::property> props{
      {tag::folder_id, folder_id(f)},
      {tag::display_name, std::string(f.display_name)},
      {tag::content_count, std::uint64_t{total}},
      {tag::content_unread_count, std::uint64_t{std::min(total, unread_items)}},
      {tag::subfolders, std::uint64_t{child_count(f) > 0}},
  };
  // Built in place: GCC 12 warns (falsely) of an uninitialised string when a temporary property is moved in.
  if (const folder_info* parent = folder_by_key(f.parent)) props.emplace_back(tag::parent_folder_id, folder_id(*parent));
  if (!f.folder_class.empty()) props.emplace_back(tag::container_class, std::string(f.folder_class));
  return props;
}

std::size_t store_session::row_count(const object& table) const {
  if (table.what == kind::hierarchy_table) return folders_below(*table.folder, table.deep).size();
  return table.associated ? 0 : box_.count(table.folder->key);
}

std::vector<mapi::property> store_session::row(const object& table, std::size_t i) const {
  using mapi::property;
  namespace tag = mapi::tag;
  if (table.what == kind::hierarchy_table) return folder_properties(*folders_below(*table.folder, table.deep).at(i));
  const auto item = box_.item(table.folder->key, static_cast<unsigned>(i));
  const std::uint64_t flags = (item.is_read ? 0x01 : 0) | (item.has_attachment ? 0x10 : 0);  // MSGFLAG_READ, _HASATTACH
  return {
      {tag::mid, message_id(*table.folder, static_cast<unsigned>(i))},
      {tag::subject, item.subject},
      {tag::message_class, std::string("IPM.Note")},
      {tag::message_size, std::min<std::uint64_t>(item.size, 0x7FFFFFFF)},
      {tag::message_flags, flags},
  };
}

}  // namespace exbridge::fake_exchange
