// rehearse's EMSMDB client codec and FastTransfer hasher against fake-exchange's store, without a network: the
// requests the migration client builds are answered by the server's EMSMDB, the answers read back by the client's
// readers, and every message copied by FastTransfer hashes to the manifest's SHA-256. Then the readers' refusals
// of answers that are cut short, out of order or unparseable.
#include <gtest/gtest.h>

#include "common/le_bytes.hpp"
#include "fake_exchange/emsmdb.hpp"
#include "fake_exchange/manifest.hpp"
#include "rehearse/clients/emsmdb_codec.hpp"
#include "rehearse/clients/fx_item_hasher.hpp"

namespace exbridge::rehearse {
namespace emsmdb_client_test {

using emsmdb::rop_reader;
using emsmdb::rop_request;
constexpr std::uint32_t none = 0xFFFFFFFF;

struct session {
  fake_exchange::exchange_config server;
  fake_exchange::emsmdb_server store{&server};
  const fake_exchange::user& owner = server.org.users.front();
  emsmdb::context_handle handle{};

  std::string call(std::uint16_t opnum, const std::string& stub) {
    auto r = store.call(opnum, stub, owner);
    if (auto* fault = std::get_if<fake_exchange::rpc_fault>(&r)) throw std::runtime_error("fault " + std::to_string(fault->status));
    return std::get<std::string>(r);
  }
  emsmdb::rpc_ext2_reply rops(rop_request& request, const std::vector<std::uint32_t>& handles) {
    std::string why;
    auto reply = emsmdb::read_rpc_ext2(call(emsmdb::op_rpc_ext2, emsmdb::rpc_ext2_request(handle, request.finish(handles))), &why);
    if (!reply) throw std::runtime_error(why);
    return *reply;
  }
};

TEST(EmsmdbClient, ConnectLogonWalkAndCopyEveryMessageAsTheManifestSays) {
  session s;
  s.server.mailboxes.inbox_items = 40;  // and 10 Sent Items, 4 Deleted Items
  s.server.mailboxes.large_every = 10;
  s.server.mailboxes.large_size = 200'000;
  const std::string dn = s.server.org.legacy_dn(s.owner);
  const auto connected = emsmdb::read_connect_ex(s.call(emsmdb::op_connect_ex, emsmdb::connect_ex_request(dn)));
  ASSERT_TRUE(connected);
  EXPECT_EQ(connected->ec, 0u);
  EXPECT_EQ(connected->display_name, s.owner.display_name);
  EXPECT_EQ(emsmdb::version_text(connected->server_version), "8.3.83.6");
  s.handle = connected->handle;

  rop_request logon;
  logon.logon(0, dn);
  const auto logged = s.rops(logon, {none});
  rop_reader lr(logged.rops);
  std::uint32_t ec = 1;
  const auto folders = lr.logon(ec);
  ASSERT_TRUE(folders) << lr.error();
  EXPECT_EQ(ec, 0u);
  EXPECT_TRUE(lr.at_end());
  const std::uint32_t logon_handle = logged.handles.at(0);

  const std::vector<std::uint32_t> columns{mapi::tag::folder_id, mapi::tag::display_name, mapi::tag::content_count};
  rop_request walk;
  walk.open_folder(0, 1, folders->folders[3]).hierarchy_table(1, 2, true).set_columns(2, columns).query_rows(2, 1000);
  rop_reader wr(s.rops(walk, {logon_handle, none, none}).rops);
  ASSERT_TRUE(wr.open_folder(ec) && ec == 0 && wr.table(ec) && ec == 0 && wr.set_columns(ec) && ec == 0) << wr.error();
  const auto rows = wr.query_rows(columns, ec);
  ASSERT_TRUE(rows) << wr.error();
  EXPECT_TRUE(rows->at_end);
  std::map<std::string, std::pair<std::uint64_t, std::uint64_t>> by_name;  // name -> (folder ID, count)
  for (const auto& row : rows->rows) {
    by_name[std::get<std::string>(*row[1])] = {std::get<std::uint64_t>(*row[0]), std::get<std::uint64_t>(*row[2])};
  }

  const auto manifest = fake_exchange::make_manifest(s.server.org, s.server.mailboxes);
  const auto& user_folders = manifest.at("users").as_array().at(0).at("folders").as_array();
  std::size_t copied = 0, pieces = 0;
  for (const auto& f : user_folders) {
    const std::string name(f.at("name").as_string());
    ASSERT_EQ(by_name.count(name), 1u) << name;
    const auto [fid, count] = by_name[name];
    const auto& items = f.at("items").as_array();
    ASSERT_EQ(count, items.size()) << name;
    const std::vector<std::uint32_t> contents{mapi::tag::mid};
    rop_request list;
    list.open_folder(0, 1, fid).contents_table(1, 2).set_columns(2, contents).query_rows(2, 1000);
    rop_reader cr(s.rops(list, {logon_handle, none, none}).rops);
    ASSERT_TRUE(cr.open_folder(ec) && cr.table(ec) && cr.set_columns(ec)) << cr.error();
    const auto mids = cr.query_rows(contents, ec);
    ASSERT_TRUE(mids && mids->rows.size() == items.size()) << cr.error();
    for (std::size_t i = 0; i < items.size(); ++i) {
      fx_item_hasher hasher;
      std::vector<std::uint32_t> handles{logon_handle, none, none};
      rop_request copy;
      copy.open_message(0, 1, fid, std::get<std::uint64_t>(*mids->rows[i][0])).copy_to(1, 2).get_buffer(2, 4000);
      for (bool first = true;; first = false) {
        const auto reply = s.rops(copy, handles);
        rop_reader r(reply.rops);
        std::optional<emsmdb::buffer_reply> piece;
        if (!first || (r.open_message(ec) && ec == 0 && r.copy_to(ec) && ec == 0)) piece = r.get_buffer(ec);
        ASSERT_TRUE(piece && ec == 0) << r.error() << " " << emsmdb::ec_name(ec);
        if (first) handles = reply.handles;
        ++pieces;
        ASSERT_TRUE(hasher.feed(piece->data)) << hasher.error();
        if (piece->status == emsmdb::transfer_status::done) break;
        copy = rop_request();
        copy.get_buffer(2, 4000);
      }
      rop_request release;
      release.release(2).release(1);
      EXPECT_TRUE(s.rops(release, handles).rops.empty());
      ASSERT_TRUE(hasher.finish()) << hasher.error();
      EXPECT_EQ(hasher.sha256_hex(), items[i].at("sha256").as_string()) << name << " " << i;
      EXPECT_EQ(hasher.size(), items[i].at("size").to_number<std::uint64_t>());
      ++copied;
    }
  }
  EXPECT_EQ(copied, 54u);
  EXPECT_GT(pieces, 200u);  // the large items came in many 4,000-byte pieces, the body split anywhere
}

TEST(EmsmdbClient, ReadersRefuseWhatIsCutShortOrOutOfOrder) {
  std::uint32_t ec = 0;
  // A RopOpenFolder answer where RopLogon's was expected: the reader names both and stops.
  const std::string open_folder_ok("\x02\x01\x00\x00\x00\x00\x00\x00", 8);
  rop_reader wrong(open_folder_ok);
  EXPECT_FALSE(wrong.logon(ec));
  EXPECT_NE(wrong.error().find("expected the response to RopLogon, got RopId 0x02"), std::string::npos) << wrong.error();
  EXPECT_FALSE(wrong.open_folder(ec));  // nothing after a failure
  // A successful RopLogon cut after its first folder IDs.
  std::string logon("\xFE\x00\x00\x00\x00\x00\x01", 7);
  logon += std::string(16, '\x01');
  rop_reader cut(logon);
  EXPECT_FALSE(cut.logon(ec));
  EXPECT_NE(cut.error().find("cut short"), std::string::npos);
  // A failed ROP is its head only, and its ReturnValue comes back.
  rop_reader failed(std::string("\x02\x01\x0F\x01\x04\x80", 6));
  EXPECT_TRUE(failed.open_folder(ec));
  EXPECT_EQ(ec, 0x8004010Fu);
  EXPECT_EQ(emsmdb::ec_name(ec), "ecNotFound (0x8004010F)");
  // GetBuffer whose TransferBuffer runs past the answer.
  std::string buffer("\x4E\x02\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x10\x00", 15);
  rop_reader overlong(buffer + "short");
  EXPECT_FALSE(overlong.get_buffer(ec));
  // EcDoRpcExt2 replies that do not parse say why.
  std::string why;
  EXPECT_FALSE(emsmdb::read_rpc_ext2(std::string(10, '\0'), &why));
  EXPECT_NE(why.find("cut short"), std::string::npos);
  le_writer stub;
  stub.zeros(24), stub.u32(100), stub.u32(0), stub.u32(100);
  EXPECT_FALSE(emsmdb::read_rpc_ext2(stub.text(), &why));
  EXPECT_NE(why.find("longer than its reply"), std::string::npos) << why;
  EXPECT_FALSE(emsmdb::read_connect_ex("short"));
}

TEST(EmsmdbClient, HasherRefusesAStreamThatIsNotAWholeLabMessage) {
  fx_item_hasher empty;
  EXPECT_FALSE(empty.finish());
  EXPECT_NE(empty.error().find("no PidTagBody"), std::string::npos) << empty.error();
  fx_item_hasher garbage;
  garbage.feed(std::string("\x03\x00\x01\x40\xFF", 5));  // a marker, then a tag cut short
  EXPECT_FALSE(garbage.finish());
}

}  // namespace emsmdb_client_test
}  // namespace exbridge::rehearse
