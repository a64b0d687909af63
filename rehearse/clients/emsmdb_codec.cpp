// EMSMDB request stubs, ROP requests and their responses, from [MS-OXCRPC] 3.1.4 and [MS-OXCROPS] 2.2.
#include "rehearse/clients/emsmdb_codec.hpp"

#include <cstdio>

#include "common/ndr.hpp"
#include "common/rop_buffer.hpp"

namespace exbridge::rehearse::emsmdb {
namespace {

constexpr std::uint32_t aux_out_limit = 0x1008;  // pcbAuxOut's [range(0x000, 0x1008)]

// RopIds ([MS-OXCROPS] 2.2.1).
constexpr std::uint8_t rop_release = 0x01, rop_open_folder = 0x02, rop_open_message = 0x03,
                       rop_get_hierarchy_table = 0x04, rop_get_contents_table = 0x05, rop_set_columns = 0x12,
                       rop_query_rows = 0x15, rop_copy_to = 0x4D, rop_get_buffer = 0x4E, rop_logon = 0xFE;

}  // namespace

std::string connect_ex_request(std::string_view user_dn) {
  // szUserDN, ulFlags, ulConMod, cbLimit, ulCpid, ulLcidString, ulLcidSort, ulIcxrLink, usFCanConvertCodePages,
  // rgwClientVersion[3] (12.0.6023: Outlook 2007's form, high bit of the second word set), pulTimeStamp,
  // rgbAuxIn (empty), cbAuxIn, pcbAuxOut.
  le_writer w;
  ndr::write_string(w, user_dn);
  w.align(4);
  w.u32(0), w.u32(0), w.u32(0), w.u32(1252), w.u32(0x409), w.u32(0x409), w.u32(0xFFFFFFFF);
  w.u16(1);
  w.u16(0x000C), w.u16(0x9787), w.u16(0);
  w.align(4);
  w.u32(0);             // pulTimeStamp
  w.u32(0);             // rgbAuxIn's max_count
  w.u32(0);             // cbAuxIn
  w.u32(aux_out_limit);  // pcbAuxOut
  return std::move(w.text());
}

std::optional<connect_ex_reply> read_connect_ex(std::string_view stub) {
  // pcxh, pcmsPollsMax, pcRetry, pcmsRetryDelay, picxr, szDNPrefix (unique string), szDisplayName (unique
  // string), rgwServerVersion[3], rgwBestVersion[3], pulTimeStamp, rgbAuxOut, pcbAuxOut, the return value.
  le_reader r(as_bytes(stub));
  connect_ex_reply out;
  if (!r.has(20 + 12 + 2)) return std::nullopt;
  r.bytes(out.handle.data(), out.handle.size());
  r.skip(12 + 2);
  for (int i = 0; i < 2; ++i) {
    if (!ndr::align(r, 4) || !r.has(4)) return std::nullopt;
    if (r.u32() == 0) continue;  // a NULL unique pointer
    auto s = ndr::read_string(r);
    if (!s) return std::nullopt;
    if (i == 1) out.display_name = std::move(*s);
  }
  if (!ndr::align(r, 2) || !r.has(12)) return std::nullopt;
  for (auto& v : out.server_version) v = r.u16();
  r.skip(6);  // rgwBestVersion
  if (stub.size() < 4) return std::nullopt;
  out.ec = load_le32(stub, stub.size() - 4);
  return out;
}

std::string version_text(const std::array<std::uint16_t, 3>& w) {
  if ((w[1] & 0x8000) == 0) {  // the old format: major, minor, build
    return std::to_string(w[0]) + "." + std::to_string(w[1]) + "." + std::to_string(w[2]);
  }
  return std::to_string(w[0] >> 8) + "." + std::to_string(w[0] & 0xFF) + "." + std::to_string(w[1] & 0x7FFF) + "." +
         std::to_string(w[2]);
}

std::string rpc_ext2_request(const context_handle& handle, std::string_view rop_buffer, std::uint32_t out_limit) {
  // pcxh, pulFlags (NoCompression | NoXorMagic: the server may answer plainly), rgbIn, cbIn, pcbOut, rgbAuxIn
  // (empty), cbAuxIn, pcbAuxOut.
  const std::string in = rop::write_extended(rop_buffer);
  le_writer w;
  w.bytes(handle.data(), handle.size());
  w.u32(0x3);
  w.u32(static_cast<std::uint32_t>(in.size()));
  w.bytes(in);
  w.align(4);
  w.u32(static_cast<std::uint32_t>(in.size()));
  w.u32(out_limit);
  w.u32(0), w.u32(0);
  w.u32(aux_out_limit);
  return std::move(w.text());
}

std::optional<rpc_ext2_reply> read_rpc_ext2(std::string_view stub, std::string* why) {
  const auto say = [&](std::string text) -> std::optional<rpc_ext2_reply> {
    if (why != nullptr) *why = std::move(text);
    return std::nullopt;
  };
  // pcxh, pulFlags, rgbOut (max_count, offset, actual_count, bytes), pcbOut, rgbAuxOut, pcbAuxOut, pulTransTime,
  // the return value.
  le_reader r(as_bytes(stub));
  if (!r.has(20 + 4 + 12)) return say("EcDoRpcExt2's reply is cut short");
  r.skip(24);
  r.skip(8);
  const std::uint32_t n = r.u32();
  if (!r.has(n)) return say("EcDoRpcExt2's rgbOut is longer than its reply");
  const std::string out_bytes = r.text(n);
  if (stub.size() < 4) return say("EcDoRpcExt2's reply is cut short");
  rpc_ext2_reply reply;
  reply.ec = load_le32(stub, stub.size() - 4);
  if (reply.ec != 0 || n == 0) return reply;
  auto payloads = rop::read_extended(out_bytes);
  if (auto* e = std::get_if<rop::error>(&payloads)) return say("EcDoRpcExt2's rgbOut: " + e->what);
  const auto& list = std::get<std::vector<std::string>>(payloads);
  if (list.size() != 1) return say("EcDoRpcExt2 answered one ROP buffer with " + std::to_string(list.size()));
  const std::string& payload = list.front();
  if (payload.size() < 2) return say("the ROP response buffer has no RopSize");
  const std::uint16_t rop_size = load_le16(payload, 0);
  if (rop_size < 2 || rop_size > payload.size() || (payload.size() - rop_size) % 4 != 0) {
    return say("the ROP response buffer's RopSize (" + std::to_string(rop_size) + ") does not fit its " +
               std::to_string(payload.size()) + " bytes");
  }
  reply.rops = payload.substr(2, rop_size - 2);
  for (std::size_t at = rop_size; at < payload.size(); at += 4) reply.handles.push_back(load_le32(payload, at));
  return reply;
}

std::string disconnect_request(const context_handle& handle) { return std::string(handle.begin(), handle.end()); }

rop_request& rop_request::logon(std::uint8_t out, std::string_view essdn) {
  // LogonId, OutputHandleIndex, LogonFlags (Private), OpenFlags (USE_PER_MDB_REPLID_MAPPING), StoreState,
  // EssdnSize (with the NUL), Essdn.
  rops_.u8(rop_logon), rops_.u8(0), rops_.u8(out), rops_.u8(0x01), rops_.u32(0x01000000), rops_.u32(0);
  rops_.u16(static_cast<std::uint16_t>(essdn.size() + 1)), rops_.bytes(essdn), rops_.u8(0);
  return *this;
}

rop_request& rop_request::open_folder(std::uint8_t in, std::uint8_t out, std::uint64_t folder_id) {
  rops_.u8(rop_open_folder), rops_.u8(0), rops_.u8(in), rops_.u8(out), rops_.u64(folder_id), rops_.u8(0);
  return *this;
}

rop_request& rop_request::hierarchy_table(std::uint8_t in, std::uint8_t out, bool deep) {
  rops_.u8(rop_get_hierarchy_table), rops_.u8(0), rops_.u8(in), rops_.u8(out), rops_.u8(deep ? 0x04 : 0x00);
  return *this;
}

rop_request& rop_request::contents_table(std::uint8_t in, std::uint8_t out) {
  rops_.u8(rop_get_contents_table), rops_.u8(0), rops_.u8(in), rops_.u8(out), rops_.u8(0);
  return *this;
}

rop_request& rop_request::set_columns(std::uint8_t in, const std::vector<std::uint32_t>& columns) {
  rops_.u8(rop_set_columns), rops_.u8(0), rops_.u8(in), rops_.u8(0);
  rops_.u16(static_cast<std::uint16_t>(columns.size()));
  for (const auto tag : columns) rops_.u32(tag);
  return *this;
}

rop_request& rop_request::query_rows(std::uint8_t in, std::uint16_t rows) {
  // QueryRowsFlags 0 (advance the cursor), ForwardRead 1.
  rops_.u8(rop_query_rows), rops_.u8(0), rops_.u8(in), rops_.u8(0), rops_.u8(1), rops_.u16(rows);
  return *this;
}

rop_request& rop_request::open_message(std::uint8_t in, std::uint8_t out, std::uint64_t folder_id,
                                       std::uint64_t message_id) {
  // CodePageId 0x0FFF: the logon's code page ([MS-OXCROPS] 2.2.6.1.1); OpenModeFlags ReadOnly.
  rops_.u8(rop_open_message), rops_.u8(0), rops_.u8(in), rops_.u8(out), rops_.u16(0x0FFF);
  rops_.u64(folder_id), rops_.u8(0), rops_.u64(message_id);
  return *this;
}

rop_request& rop_request::copy_to(std::uint8_t in, std::uint8_t out) {
  // Level 0, CopyFlags BestBody (0x2000), SendOptions Unicode (0x01), PropertyTagCount 0.
  rops_.u8(rop_copy_to), rops_.u8(0), rops_.u8(in), rops_.u8(out), rops_.u8(0), rops_.u32(0x2000), rops_.u8(0x01);
  rops_.u16(0);
  return *this;
}

rop_request& rop_request::get_buffer(std::uint8_t in, std::uint16_t maximum) {
  rops_.u8(rop_get_buffer), rops_.u8(0), rops_.u8(in), rops_.u16(0xBABE), rops_.u16(maximum);
  return *this;
}

rop_request& rop_request::release(std::uint8_t in) {
  rops_.u8(rop_release), rops_.u8(0), rops_.u8(in);
  return *this;
}

std::string rop_request::finish(const std::vector<std::uint32_t>& handles) {
  le_writer w;
  w.u16(static_cast<std::uint16_t>(2 + rops_.size()));
  w.bytes(rops_.text());
  for (const auto h : handles) w.u32(h);
  return std::move(w.text());
}

std::nullopt_t rop_reader::missing(std::string what) {
  fail(std::move(what));
  return std::nullopt;
}

bool rop_reader::fail(std::string what) {
  if (error_.empty()) error_ = std::move(what) + " (at byte " + std::to_string(r_.position()) + " of the ROP responses)";
  return false;
}

bool rop_reader::head(std::uint8_t id, const char* name, std::uint32_t& ec) {
  if (!ok()) return false;
  if (!r_.has(6)) return fail(std::string("the response to ") + name + " is missing");
  const std::uint8_t got = r_.u8();
  if (got != id) {
    char hex[8];
    std::snprintf(hex, sizeof hex, "0x%02X", got);
    return fail(std::string("expected the response to ") + name + ", got RopId " + hex);
  }
  r_.skip(1);
  ec = r_.u32();
  return true;
}

std::optional<logon_reply> rop_reader::logon(std::uint32_t& ec) {
  if (!head(rop_logon, "RopLogon", ec)) return std::nullopt;
  logon_reply out;
  if (ec != 0) return out;
  // LogonFlags, FolderIds[13], ResponseFlags, MailboxGuid, ReplId, ReplGuid, LogonTime, GwartTime, StoreState.
  if (!r_.has(1 + 13 * 8 + 1 + 16 + 2 + 16 + 8 + 8 + 4)) {
    fail("RopLogon's response is cut short");
    return std::nullopt;
  }
  r_.skip(1);
  for (auto& f : out.folders) f = r_.u64();
  r_.skip(1 + 16 + 2 + 16 + 8 + 8 + 4);
  return out;
}

bool rop_reader::open_folder(std::uint32_t& ec) {
  if (!head(rop_open_folder, "RopOpenFolder", ec)) return false;
  if (ec != 0) return true;
  if (!r_.has(2)) return fail("RopOpenFolder's response is cut short");
  r_.skip(1);  // HasRules
  if (r_.u8() != 0) return fail("RopOpenFolder answered IsGhosted: a public folder replica this client does not follow");
  return true;
}

std::optional<std::uint32_t> rop_reader::table(std::uint32_t& ec) {
  if (!ok() || !r_.has(1)) {
    fail("a table's response is missing");
    return std::nullopt;
  }
  const std::uint8_t id = rops_[r_.position()] == static_cast<char>(rop_get_hierarchy_table) ? rop_get_hierarchy_table
                                                                                              : rop_get_contents_table;
  if (!head(id, id == rop_get_hierarchy_table ? "RopGetHierarchyTable" : "RopGetContentsTable", ec)) return std::nullopt;
  if (ec != 0) return 0u;
  if (!r_.has(4)) {
    fail("a table's response is cut short");
    return std::nullopt;
  }
  return r_.u32();
}

bool rop_reader::set_columns(std::uint32_t& ec) {
  if (!head(rop_set_columns, "RopSetColumns", ec)) return false;
  if (ec != 0) return true;
  if (!r_.has(1)) return fail("RopSetColumns' response is cut short");
  r_.skip(1);  // TableStatus
  return true;
}

std::optional<rows_reply> rop_reader::query_rows(const std::vector<std::uint32_t>& columns, std::uint32_t& ec) {
  if (!head(rop_query_rows, "RopQueryRows", ec)) return std::nullopt;
  rows_reply out;
  if (ec != 0) return out;
  if (!r_.has(3)) {
    fail("RopQueryRows' response is cut short");
    return std::nullopt;
  }
  out.at_end = r_.u8() == 2;  // Origin: BOOKMARK_END
  const std::uint16_t count = r_.u16();
  for (std::uint16_t i = 0; i < count; ++i) {
    auto values = mapi::read_row(r_, columns);
    if (!values) {
      fail("row " + std::to_string(i) + " of RopQueryRows' response does not parse");
      return std::nullopt;
    }
    out.rows.push_back(std::move(*values));
  }
  return out;
}

std::optional<std::uint16_t> rop_reader::open_message(std::uint32_t& ec) {
  if (!head(rop_open_message, "RopOpenMessage", ec)) return std::nullopt;
  if (ec != 0) return 0;
  // HasNamedProperties, SubjectPrefix and NormalizedSubject (TypedStrings), RecipientCount, ColumnCount and the
  // recipient columns, RowCount, then the rows (each: RecipientType, CodePageId, Reserved, RecipientRowSize and
  // the RecipientRow) -- [MS-OXCROPS] 2.2.6.1.2.
  if (!r_.has(1)) return missing("RopOpenMessage's response is cut short");
  r_.skip(1);
  for (int i = 0; i < 2; ++i) {
    if (!r_.has(1)) return missing("RopOpenMessage's subject is cut short");
    const std::uint8_t kind = r_.u8();
    if (kind == 0x00 || kind == 0x01) continue;  // NoType, Empty
    const std::size_t unit = kind == 0x04 ? 2 : 1;  // 0x04 UTF-16LE; 0x02, 0x03 8-bit, NUL-terminated
    for (;;) {
      if (!r_.has(unit)) return missing("RopOpenMessage's subject has no terminating NUL");
      bool nul = true;
      for (std::size_t k = 0; k < unit; ++k) nul = r_.u8() == 0 && nul;
      if (nul) break;
    }
  }
  if (!r_.has(4)) return missing("RopOpenMessage's recipient columns are cut short");
  const std::uint16_t recipients = r_.u16();
  const std::uint16_t columns = r_.u16();
  if (!r_.has(4u * columns + 1)) return missing("RopOpenMessage's recipient columns are cut short");
  r_.skip(4u * columns);
  const std::uint8_t rows = r_.u8();
  for (std::uint8_t i = 0; i < rows; ++i) {
    if (!r_.has(7)) return missing("a recipient row of RopOpenMessage is cut short");
    r_.skip(5);
    const std::uint16_t size = r_.u16();
    if (!r_.has(size)) return missing("a recipient row of RopOpenMessage is cut short");
    r_.skip(size);
  }
  return recipients;
}

bool rop_reader::copy_to(std::uint32_t& ec) { return head(rop_copy_to, "RopFastTransferSourceCopyTo", ec); }

std::optional<buffer_reply> rop_reader::get_buffer(std::uint32_t& ec) {
  if (!head(rop_get_buffer, "RopFastTransferSourceGetBuffer", ec)) return std::nullopt;
  // TransferStatus, InProgressCount, TotalStepCount, Reserved, TransferBufferSize, TransferBuffer; ecServerBusy
  // (0x480) carries BackoffTime instead ([MS-OXCROPS] 2.2.13.5.2).
  if (ec == 0x480) {
    if (!r_.has(4)) return missing("RopFastTransferSourceGetBuffer's BackoffTime is cut short");
    r_.skip(4);
    return buffer_reply{};
  }
  if (!r_.has(9)) return missing("RopFastTransferSourceGetBuffer's response is cut short");
  buffer_reply out;
  out.status = r_.u16();
  r_.skip(5);
  const std::uint16_t size = r_.u16();
  if (!r_.has(size)) return missing("RopFastTransferSourceGetBuffer's TransferBuffer is cut short");
  out.data = r_.text(size);
  return out;
}

std::string ec_name(std::uint32_t ec) {
  const char* name = nullptr;
  switch (ec) {
    case 0x000003EB: name = "ecUnknownUser"; break;
    case 0x000004B6: name = "ecRpcFormat"; break;
    case 0x000004B9: name = "ecNullObject"; break;
    case 0x0000047D: name = "ecBufferTooSmall"; break;
    case 0x00000480: name = "ecServerBusy"; break;
    case 0x80040102: name = "ecNotSupported"; break;
    case 0x8004010F: name = "ecNotFound"; break;
    case 0x80040111: name = "ecLoginFailure"; break;
    case 0x80070005: name = "ecAccessDenied"; break;
    case 0x80070057: name = "ecInvalidParameter"; break;
    case 0x8004011D: name = "ecServerOOM"; break;
    case 0x80040115: name = "ecNetwork"; break;
    default: break;
  }
  char hex[16];
  std::snprintf(hex, sizeof hex, "0x%08X", ec);
  return name == nullptr ? std::string(hex) : std::string(name) + " (" + hex + ")";
}

}  // namespace exbridge::rehearse::emsmdb
