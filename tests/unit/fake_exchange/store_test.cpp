// A migration client's walk through one EMSMDB session's ROPs (fake_exchange/store): logon, the IPM subtree's
// hierarchy table, each mail folder's contents table read in pages, and what the store refuses -- all checked
// against the same synthetic mailbox and folder tree EWS serves.
#include <gtest/gtest.h>

#include "common/le_bytes.hpp"
#include "common/fx_message_reader.hpp"
#include "common/mapi_props.hpp"
#include "common/sha256.hpp"
#include "common/utf16.hpp"
#include "fake_exchange/store.hpp"
#include "tests/support/hex.hpp"

namespace exbridge {
namespace store_test {

using namespace fake_exchange;
namespace tag = mapi::tag;

/// Builds a ROP request buffer's ROPs.
struct rops {
  le_writer w;
  rops& logon(std::string_view essdn, std::uint8_t out = 0) {
    w.u8(0xFE), w.u8(0), w.u8(out), w.u8(0x01), w.u32(0x01000000), w.u32(0);
    w.u16(static_cast<std::uint16_t>(essdn.size() + 1)), w.bytes(essdn), w.u8(0);
    return *this;
  }
  rops& open_folder(std::uint8_t in, std::uint8_t out, std::uint64_t fid) {
    w.u8(0x02), w.u8(0), w.u8(in), w.u8(out), w.u64(fid);
    w.u8(0);
    return *this;
  }
  rops& table(std::uint8_t rop, std::uint8_t in, std::uint8_t out, std::uint8_t flags) {
    w.u8(rop), w.u8(0), w.u8(in), w.u8(out), w.u8(flags);
    return *this;
  }
  rops& set_columns(std::uint8_t in, const std::vector<std::uint32_t>& columns) {
    w.u8(0x12), w.u8(0), w.u8(in), w.u8(0), w.u16(static_cast<std::uint16_t>(columns.size()));
    for (const auto c : columns) w.u32(c);
    return *this;
  }
  rops& query_rows(std::uint8_t in, std::uint16_t count, std::uint8_t forward = 1) {
    w.u8(0x15), w.u8(0), w.u8(in), w.u8(0), w.u8(forward), w.u16(count);
    return *this;
  }
  rops& open_message(std::uint8_t in, std::uint8_t out, std::uint64_t fid, std::uint64_t mid) {
    w.u8(0x03), w.u8(0), w.u8(in), w.u8(out), w.u16(1252);
    w.u64(fid), w.u8(0), w.u64(mid);
    return *this;
  }
  rops& copy_to(std::uint8_t in, std::uint8_t out, std::uint8_t level = 0, std::uint32_t flags = 0x2000,
                std::uint8_t send = 0x01, const std::vector<std::uint32_t>& excluded = {}) {
    w.u8(0x4D), w.u8(0), w.u8(in), w.u8(out), w.u8(level), w.u32(flags), w.u8(send);
    w.u16(static_cast<std::uint16_t>(excluded.size()));
    for (const auto t : excluded) w.u32(t);
    return *this;
  }
  rops& get_buffer(std::uint8_t in, std::uint16_t size, std::uint16_t maximum = 0) {
    w.u8(0x4E), w.u8(0), w.u8(in), w.u16(size);
    if (size == 0xBABE) w.u16(maximum);
    return *this;
  }
  rops& release(std::uint8_t in) {
    w.u8(0x01), w.u8(0), w.u8(in);
    return *this;
  }
};

struct session {
  exchange_config server;
  std::unique_ptr<store_session> store;
  std::vector<std::uint32_t> handles = std::vector<std::uint32_t>(4, 0xFFFFFFFF);
  session() {
    server.mailboxes.inbox_items = 45;
    server.mailboxes.large_every = 20;  // two large items, each streamed in many GetBuffer pieces
    server.mailboxes.large_size = 300'000;
    store = std::make_unique<store_session>(server, server.org.users.front());
  }
  /// Runs `r` with the session's handle table; returns the ROP responses and keeps the new handles.
  std::string run(rops& r) {
    auto result = store->execute({r.w.text(), handles});
    if (auto* ec = std::get_if<std::uint32_t>(&result)) throw std::runtime_error("EcDoRpcExt2 failed: " + std::to_string(*ec));
    const auto buffer = std::get<rop::request_buffer>(rop::read_request_buffer(std::get<std::string>(result)));
    handles = buffer.handles;
    return std::string(buffer.rops);
  }
  std::string logon() {
    rops r;
    r.logon(server.org.legacy_dn(server.org.users.front()));
    return run(r);
  }
};

/// Reads QueryRows' response: Origin, the rows.
std::vector<std::vector<std::optional<mapi::value>>> rows_of(le_reader& r, const std::vector<std::uint32_t>& columns,
                                                             std::uint8_t* origin = nullptr) {
  EXPECT_EQ(r.u8(), 0x15);
  r.u8();
  EXPECT_EQ(r.u32(), mapi_ec::none);
  const std::uint8_t o = r.u8();
  if (origin != nullptr) *origin = o;
  const std::uint16_t n = r.u16();
  std::vector<std::vector<std::optional<mapi::value>>> rows;
  for (std::uint16_t i = 0; i < n; ++i) rows.push_back(mapi::read_row(r, columns).value());
  return rows;
}

TEST(Store, TheHierarchyUnderTheIpmSubtreeIsEwssFolderTree) {
  session s;
  s.logon();
  const std::vector<std::uint32_t> columns{tag::folder_id, tag::display_name, tag::content_count,
                                           tag::content_unread_count, tag::subfolders, tag::container_class};
  rops r;
  r.open_folder(0, 1, folder_id(*folder_by_key("msgfolderroot"))).table(0x04, 1, 2, 0x04).set_columns(2, columns)
      .query_rows(2, 100);
  const std::string out = s.run(r);
  le_reader in(as_bytes(out));
  EXPECT_EQ(in.u8(), 0x02);
  EXPECT_EQ(in.u8(), 1);
  EXPECT_EQ(in.u32(), mapi_ec::none);
  in.skip(2);  // HasRules, IsGhosted
  EXPECT_EQ(in.u8(), 0x04);
  EXPECT_EQ(in.u8(), 2);
  EXPECT_EQ(in.u32(), mapi_ec::none);
  const auto below = folders_below(*folder_by_key("msgfolderroot"), true);
  EXPECT_EQ(in.u32(), below.size());  // RowCount
  EXPECT_EQ(in.u8(), 0x12);
  EXPECT_EQ(in.u8(), 2);
  EXPECT_EQ(in.u32(), mapi_ec::none);
  EXPECT_EQ(in.u8(), 0);
  std::uint8_t origin = 0;
  const auto rows = rows_of(in, columns, &origin);
  EXPECT_EQ(origin, 2);  // BOOKMARK_END
  ASSERT_EQ(rows.size(), below.size());
  const mailbox box(s.server.org.users.front(), s.server.mailboxes);
  for (std::size_t i = 0; i < rows.size(); ++i) {
    EXPECT_EQ(rows[i][0], mapi::value{folder_id(*below[i])});
    EXPECT_EQ(rows[i][1], mapi::value{std::string(below[i]->display_name)});
    EXPECT_EQ(rows[i][2], mapi::value{std::uint64_t{box.count(below[i]->key)}}) << below[i]->key;
    EXPECT_EQ(rows[i][5].has_value(), !below[i]->folder_class.empty());
  }
  EXPECT_EQ(in.left(), 0u);
}

TEST(Store, EveryInboxMessageIsListedOncePageByPage) {
  session s;
  s.logon();
  const std::vector<std::uint32_t> columns{tag::mid, tag::subject, tag::message_size, tag::message_flags};
  rops open;
  open.open_folder(0, 1, folder_id(*folder_by_key("inbox"))).table(0x05, 1, 2, 0).set_columns(2, columns);
  const std::string opened = s.run(open);
  EXPECT_EQ(load_le32(opened, 8 + 6), 45u);  // the contents table's RowCount
  const mailbox box(s.server.org.users.front(), s.server.mailboxes);
  std::vector<std::uint64_t> mids;
  std::uint8_t origin = 1;
  while (origin != 2) {
    rops page;
    page.query_rows(2, 10);
    const std::string out = s.run(page);
    le_reader in(as_bytes(out));
    for (const auto& row : rows_of(in, columns, &origin)) {
      const auto index = static_cast<unsigned>(mids.size());
      const auto item = box.item("inbox", index);
      mids.push_back(std::get<std::uint64_t>(*row[0]));
      EXPECT_EQ(mids.back(), message_id(*folder_by_key("inbox"), index));
      EXPECT_EQ(row[1], mapi::value{item.subject});
      EXPECT_EQ(row[2], mapi::value{item.size});
      EXPECT_EQ(std::get<std::uint64_t>(*row[3]) & 0x01, item.is_read ? 1u : 0u);
    }
  }
  EXPECT_EQ(mids.size(), 45u);
  // The associated (FAI) table of the same folder is empty.
  rops fai;
  fai.table(0x05, 1, 3, 0x02);
  EXPECT_EQ(load_le32(s.run(fai), 6), 0u);
}

TEST(Store, AFoldersPropertiesAsOneRow) {
  session s;
  s.logon();
  rops r;
  r.open_folder(0, 1, folder_id(*folder_by_key("inbox")));
  r.w.u8(0x07), r.w.u8(0), r.w.u8(1), r.w.u16(0), r.w.u16(1), r.w.u16(3);  // RopGetPropertiesSpecific, 3 tags
  r.w.u32(tag::display_name), r.w.u32(tag::content_count), r.w.u32(tag::message_size);
  const std::string out = s.run(r);
  le_reader in(as_bytes(out));
  in.skip(8);  // RopOpenFolder's response
  EXPECT_EQ(in.u8(), 0x07);
  EXPECT_EQ(in.u8(), 1);
  EXPECT_EQ(in.u32(), mapi_ec::none);
  const auto row = mapi::read_row(in, {tag::display_name, tag::content_count, tag::message_size});
  ASSERT_TRUE(row);
  EXPECT_EQ((*row)[0], mapi::value{std::string("Inbox")});
  EXPECT_EQ((*row)[1], mapi::value{std::uint64_t{45}});
  EXPECT_FALSE((*row)[2]);  // a folder has no message size: a flagged row says ecNotFound
  EXPECT_EQ(in.left(), 0u);
}

TEST(Store, WhatTheStoreRefuses) {
  session s;
  s.logon();
  const auto ec_of = [&](rops& r) { return load_le32(s.run(r), 2); };
  rops unknown_folder;
  unknown_folder.open_folder(0, 1, store_id(0x123456));
  EXPECT_EQ(ec_of(unknown_folder), mapi_ec::not_found);
  rops no_columns;
  no_columns.open_folder(0, 1, folder_id(*folder_by_key("inbox"))).table(0x05, 1, 2, 0).query_rows(2, 5);
  const std::string out = s.run(no_columns);
  EXPECT_EQ(load_le32(out, 8 + 10 + 2), mapi_ec::null_object);  // QueryRows before SetColumns
  rops backwards;
  backwards.set_columns(2, {tag::mid}).query_rows(2, 5, 0);
  EXPECT_EQ(load_le32(s.run(backwards), 7 + 2), mapi_ec::not_supported);
  rops not_a_table;
  not_a_table.set_columns(1, {tag::mid});  // slot 1 holds a folder
  EXPECT_EQ(ec_of(not_a_table), mapi_ec::null_object);
  // A ROP not served: ecNotSupported, and the buffer ends there (the RopRelease after it is not run).
  rops unserved;
  unserved.w.u8(0x27), unserved.w.u8(0), unserved.w.u8(0), unserved.w.bytes(std::string("IPM", 4));  // RopGetReceiveFolder
  unserved.release(1);
  const std::string refused = s.run(unserved);
  EXPECT_EQ(refused.size(), 6u);
  EXPECT_EQ(load_le32(refused, 2), mapi_ec::not_supported);
  const auto objects = s.store->objects();
  rops release;
  release.release(1).release(2);
  EXPECT_TRUE(s.run(release).empty());
  EXPECT_EQ(s.store->objects(), objects - 2);
  // A request cut short, or a handle index past the table, fails the whole call with ecRpcFormat.
  auto cut = s.store->execute({std::string("\x02\x00\x00\x01", 4), s.handles});
  EXPECT_EQ(std::get<std::uint32_t>(cut), mapi_ec::rpc_format);
  auto past = s.store->execute({std::string("\x01\x00\x09", 3), s.handles});
  EXPECT_EQ(std::get<std::uint32_t>(past), mapi_ec::rpc_format);
}

/// A message copied with RopOpenMessage, RopFastTransferSourceCopyTo and RopFastTransferSourceGetBuffer until
/// Done, the stream read by fx::message_reader with the body (UTF-16LE) narrowed to the MIME's ASCII.
struct copied {
  std::unique_ptr<fx::message_reader> reader;
  std::string body;
  std::uint64_t body_wire = 0;
  std::size_t pieces = 0;
  std::string error;
};
copied copy_message(session& s, const folder_info& f, unsigned index, std::uint16_t buffer_size, std::uint16_t maximum = 0,
                    std::uint8_t level = 0, std::uint32_t flags = 0x2000, std::uint8_t send = 0x01,
                    const std::vector<std::uint32_t>& excluded = {}) {
  copied c;
  const bool wide = send != 0;
  c.reader = std::make_unique<fx::message_reader>(1 << 20, [&c, wide](std::string_view b) {
    for (const char ch : b) {
      if (!wide || c.body_wire++ % 2 == 0) c.body += ch;  // a piece may end between a character's two bytes
      else if (ch != 0) c.error = "a body character outside ASCII";
    }
  });
  rops open;
  open.open_folder(0, 1, folder_id(f)).open_message(1, 2, folder_id(f), message_id(f, index))
      .copy_to(2, 3, level, flags, send, excluded);
  const std::string opened = s.run(open);
  if (load_le32(opened, 8 + 2) != mapi_ec::none) return c.error = "RopOpenMessage failed", std::move(c);
  const std::size_t copy_at = opened.size() - 6;
  if (opened[copy_at] != 0x4D || load_le32(opened, copy_at + 2) != mapi_ec::none) {
    return c.error = "RopFastTransferSourceCopyTo failed", std::move(c);
  }
  for (std::uint16_t status = 1; status != 3;) {
    rops more;
    more.get_buffer(3, buffer_size, maximum);
    const std::string out = s.run(more);
    le_reader in(as_bytes(out));
    if (in.u8() != 0x4E || in.u8() != 3 || in.u32() != mapi_ec::none) return c.error = "GetBuffer failed", std::move(c);
    status = in.u16();
    in.skip(2 + 2 + 1);
    const std::uint16_t n = in.u16();
    if (n != in.left() || (status != 1 && status != 3)) return c.error = "a malformed GetBuffer response", std::move(c);
    if (n > (buffer_size == 0xBABE ? maximum : buffer_size)) return c.error = "a piece larger than asked", std::move(c);
    ++c.pieces;
    if (!c.reader->feed(out.substr(out.size() - n))) return c.error = c.reader->error(), std::move(c);
  }
  if (!c.reader->complete()) c.error = "the stream ended inside an object";
  rops release;
  release.release(3).release(2).release(1);
  s.run(release);
  if (c.body.size() >= 1 && c.body.back() == '\0') c.body.pop_back();  // PidTagBody's NUL
  return c;
}

TEST(Store, OpenMessageAnswersWithTheSubjectAndTheRecipient) {
  session s;
  s.logon();
  const folder_info& inbox = *folder_by_key("inbox");
  rops r;
  r.open_folder(0, 1, folder_id(inbox)).open_message(1, 2, folder_id(inbox), message_id(inbox, 4));
  const std::string out = s.run(r);
  const mailbox box(s.server.org.users.front(), s.server.mailboxes);
  const auto item = box.item("inbox", 4);
  const auto& owner = s.server.org.users.front();
  le_reader in(as_bytes(out));
  in.skip(8);
  EXPECT_EQ(in.u8(), 0x03);
  EXPECT_EQ(in.u8(), 2);
  EXPECT_EQ(in.u32(), mapi_ec::none);
  EXPECT_EQ(in.u8(), 0);     // HasNamedProperties
  EXPECT_EQ(in.u8(), 0x01);  // SubjectPrefix: empty
  EXPECT_EQ(in.u8(), 0x04);  // NormalizedSubject: UTF-16LE
  EXPECT_EQ(in.text(2 * item.subject.size() + 2), utf16le(item.subject) + std::string(2, '\0'));
  EXPECT_EQ(in.u16(), 1);  // RecipientCount
  EXPECT_EQ(in.u16(), 1);  // ColumnCount
  EXPECT_EQ(in.u32(), 0x39FE001Fu);
  EXPECT_EQ(in.u8(), 1);   // RowCount: every recipient, so no RopReadRecipients is needed
  EXPECT_EQ(in.u8(), 1);   // RecipientType: To
  in.skip(2);
  EXPECT_EQ(in.u16(), 0);  // Reserved
  const std::uint16_t size = in.u16();
  EXPECT_EQ(size, in.left());
  EXPECT_EQ(in.u16(), 0x025B);  // U | S | D | E | SMTP
  EXPECT_EQ(in.text(2 * owner.email.size() + 2), utf16le(owner.email) + std::string(2, '\0'));
  EXPECT_EQ(in.text(2 * owner.display_name.size() + 2), utf16le(owner.display_name) + std::string(2, '\0'));
  EXPECT_EQ(in.u16(), 1);  // RecipientColumnCount
  EXPECT_EQ(mapi::read_row(in, {0x39FE001F}).value()[0], mapi::value{owner.email});
  EXPECT_EQ(in.left(), 0u);
  // A message ID the folder does not hold, or another folder's, is ecNotFound.
  for (const std::uint64_t mid : {message_id(inbox, 45), message_id(*folder_by_key("sentitems"), 0), std::uint64_t{7}}) {
    rops missing;
    missing.open_message(1, 2, folder_id(inbox), mid);
    EXPECT_EQ(load_le32(s.run(missing), 2), mapi_ec::not_found) << mid;
  }
}

TEST(Store, EveryMessageCopiedByFastTransferRebuildsTheBytesTheManifestHashes) {
  session s;
  s.logon();
  const mailbox box(s.server.org.users.front(), s.server.mailboxes);
  std::size_t with_attachment = 0, pieces = 0;
  for (const auto key : item_folders) {
    const folder_info& f = *folder_by_key(key);
    for (unsigned i = 0; i < box.count(key); ++i) {
      const auto item = box.item(key, i);
      // Pieces of every kind: the server's choice up to 32 KiB, a small maximum, a fixed size.
      const std::uint16_t size = i % 3 == 0 ? 0xBABE : i % 3 == 1 ? 15480 : 0xBABE;
      const std::uint16_t maximum = i % 3 == 0 ? 0x8000 : 1021;
      const auto c = copy_message(s, f, i, size, maximum);
      ASSERT_EQ(c.error, "") << key << " " << i;
      std::string why;
      const auto frame = fx::lab_frame(c.reader->message(), &why);
      ASSERT_TRUE(frame) << why;
      sha256 h;
      h.update(frame->head), h.update(c.body), h.update(frame->tail);
      EXPECT_EQ(h.hex_digest(), item_sha256(box, item)) << key << " " << i;
      EXPECT_EQ(frame->head.size() + c.body.size() + frame->tail.size(), item.size);
      const auto& props = c.reader->message().properties;
      EXPECT_EQ(props.text(0x0037), item.subject);
      EXPECT_EQ(props.text(0x1035), box.headers(item).message_id);
      EXPECT_EQ(props.u32(0x0E07).value_or(0) & 0x01, item.is_read ? 1u : 0u);
      EXPECT_EQ(c.reader->message().attachments.size(), item.has_attachment ? 1u : 0u);
      with_attachment += item.has_attachment;
      pieces += c.pieces;
    }
  }
  EXPECT_GT(with_attachment, 5u);
  EXPECT_GT(pieces, 100u);  // the large items came in many pieces
  EXPECT_EQ(s.store->objects(), 1u);  // every message and download context released
}

TEST(Store, CopyToOptionsShapeTheStream) {
  session s;
  s.logon();
  const folder_info& inbox = *folder_by_key("inbox");
  const mailbox box(s.server.org.users.front(), s.server.mailboxes);
  const unsigned index = 1;  // has an attachment
  ASSERT_TRUE(box.item("inbox", index).has_attachment);
  // SendOptions 0: 8-bit strings (PtypString8), the body too.
  auto narrow = copy_message(s, inbox, index, 0xBABE, 0x8000, 0, 0x2000, 0x00);
  ASSERT_EQ(narrow.error, "");
  EXPECT_EQ(narrow.reader->message().properties.values.count(0x0037001E), 1u);
  EXPECT_EQ(narrow.reader->message().properties.text(0x0037), box.item("inbox", index).subject);
  EXPECT_EQ(narrow.body.size(), narrow.reader->body_bytes() - 1);
  // Level 1: the message's own properties, no recipients or attachments.
  auto flat = copy_message(s, inbox, index, 0xBABE, 0x8000, 1);
  ASSERT_EQ(flat.error, "");
  EXPECT_TRUE(flat.reader->message().recipients.empty());
  EXPECT_TRUE(flat.reader->message().attachments.empty());
  // Excluded properties stay out; under BestBody the body goes whatever the exclusions say.
  auto some = copy_message(s, inbox, index, 0xBABE, 0x8000, 0, 0x2000, 0x01, {0x0037001F, 0x1000001F, fx::message_attachments});
  ASSERT_EQ(some.error, "");
  EXPECT_FALSE(some.reader->message().properties.text(0x0037));
  EXPECT_GT(some.reader->body_bytes(), 0u);
  EXPECT_TRUE(some.reader->message().attachments.empty());
  EXPECT_EQ(some.reader->message().recipients.size(), 1u);
  auto no_body = copy_message(s, inbox, index, 0xBABE, 0x8000, 0, 0, 0x01, {0x1000001F});
  ASSERT_EQ(no_body.error, "");
  EXPECT_EQ(no_body.reader->body_bytes(), 0u);
}

TEST(Store, WhatFastTransferRefuses) {
  session s;
  s.logon();
  const folder_info& inbox = *folder_by_key("inbox");
  rops open;
  open.open_folder(0, 1, folder_id(inbox)).open_message(1, 2, folder_id(inbox), message_id(inbox, 0));
  s.run(open);
  const auto ec_of = [&](rops& r) { return load_le32(s.run(r), 2); };
  rops move;
  move.copy_to(2, 3, 0, 0x2001);
  EXPECT_EQ(ec_of(move), mapi_ec::invalid_parameter);  // Move: a migration copies
  rops unknown_option;
  unknown_option.copy_to(2, 3, 0, 0x2000, 0x21);
  EXPECT_EQ(ec_of(unknown_option), mapi_ec::invalid_parameter);
  rops folder;
  folder.copy_to(1, 3);
  EXPECT_EQ(ec_of(folder), mapi_ec::not_supported);  // only messages are served as sources
  // GetBuffer on a message: ecNotSupported, with the fields after ReturnValue present and zero.
  rops not_a_context;
  not_a_context.get_buffer(2, 0xBABE, 0x8000);
  const std::string refused = s.run(not_a_context);
  EXPECT_EQ(test::to_hex(refused), "4e0202010480" "0000" "0000" "0000" "00" "0000");
  rops empty_slot;
  empty_slot.get_buffer(3, 0xBABE, 0x8000);
  EXPECT_EQ(ec_of(empty_slot), mapi_ec::null_object);
  // A fixed BufferSize bigger than the room left: RopBufferTooSmall, the size needed, and the requests again.
  rops copy;
  copy.copy_to(2, 3);
  ASSERT_EQ(ec_of(copy), mapi_ec::none);
  rops big;
  big.get_buffer(3, 40000).release(3);
  const std::string too_small = s.run(big);
  ASSERT_EQ(too_small.size(), 3u + 5 + 3);
  EXPECT_EQ(static_cast<std::uint8_t>(too_small[0]), 0xFF);
  EXPECT_EQ(load_le16(too_small, 1), 2 + 4 * 4 + 15 + 40000);
  EXPECT_EQ(too_small.substr(3), big.w.text());
  auto cut = s.store->execute({std::string("\x4E\x00\x03\xBE\xBA", 5), s.handles});  // 0xBABE without its maximum
  EXPECT_EQ(std::get<std::uint32_t>(cut), mapi_ec::rpc_format);
}

}  // namespace store_test
}  // namespace exbridge
