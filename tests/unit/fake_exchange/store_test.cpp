// A migration client's walk through one EMSMDB session's ROPs (fake_exchange/store): logon, the IPM subtree's
// hierarchy table, each mail folder's contents table read in pages, and what the store refuses -- all checked
// against the same synthetic mailbox and folder tree EWS serves.
#include <gtest/gtest.h>

#include "common/le_bytes.hpp"
#include "common/mapi_props.hpp"
#include "fake_exchange/store.hpp"

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
    w.u8(0x02), w.u8(0), w.u8(in), w.u8(out), w.u32(static_cast<std::uint32_t>(fid)), w.u32(static_cast<std::uint32_t>(fid >> 32));
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

}  // namespace store_test
}  // namespace exbridge
