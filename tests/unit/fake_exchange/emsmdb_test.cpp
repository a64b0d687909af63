// EMSMDB's calls (fake_exchange/emsmdb, store): EcDoConnectEx's NDR layout, the caller's own mailbox only,
// EcDoRpcExt2 carrying RopLogon and RopRelease, EcDoDisconnect, and the runtime's answers to stubs that do not unmarshal and opnums not served.
#include <gtest/gtest.h>

#include "common/dcerpc.hpp"
#include "common/le_bytes.hpp"
#include "common/lz77_direct2.hpp"
#include "common/ndr.hpp"
#include "common/rop_buffer.hpp"
#include "fake_exchange/emsmdb.hpp"
#include "tests/support/hex.hpp"

namespace exbridge {
namespace emsmdb_test {

using fake_exchange::emsmdb_server;
using fake_exchange::exchange_config;
using fake_exchange::rpc_fault;
namespace ec = fake_exchange::mapi_ec;

/// EcDoConnectEx's request stub as Outlook lays it out.
std::string connect_stub(std::string_view user_dn, std::string_view aux = "", std::uint32_t aux_out = 0x1008) {
  le_writer w;
  ndr::write_string(w, user_dn);
  w.align(4);
  w.u32(0), w.u32(0), w.u32(0), w.u32(1252), w.u32(0x409), w.u32(0x409), w.u32(0xFFFFFFFF);
  w.u16(1);                              // usFCanConvertCodePages
  w.u16(0x000c), w.u16(0x1773), w.u16(0x0000);  // rgwClientVersion
  w.align(4);
  w.u32(0);  // pulTimeStamp
  w.u32(static_cast<std::uint32_t>(aux.size()));
  w.bytes(aux);
  w.align(4);
  w.u32(static_cast<std::uint32_t>(aux.size()));
  w.u32(aux_out);
  return std::move(w.text());
}

struct connect_reply {
  std::string handle;
  std::uint32_t polls = 0, retries = 0, retry_delay = 0;
  std::uint16_t index = 0;
  std::optional<std::string> dn_prefix, display_name;
  std::array<std::uint16_t, 3> server_version{}, best_version{};
  std::uint32_t ec = 0;
};

std::optional<std::string> unique_string(le_reader& r) {
  ndr::align(r, 4);
  if (r.u32() == 0) return std::nullopt;
  return ndr::read_string(r);
}

connect_reply parse_connect(const fake_exchange::call_result& result) {
  if (const auto* f = std::get_if<rpc_fault>(&result)) throw std::runtime_error("fault " + std::to_string(f->status));
  const std::string& out = std::get<std::string>(result);
  le_reader r(as_bytes(out));
  connect_reply c;
  c.handle = r.text(20);
  c.polls = r.u32(), c.retries = r.u32(), c.retry_delay = r.u32();
  c.index = r.u16();
  c.dn_prefix = unique_string(r);
  c.display_name = unique_string(r);
  ndr::align(r, 2);
  for (auto& v : c.server_version) v = r.u16();
  for (auto& v : c.best_version) v = r.u16();
  ndr::align(r, 4);
  r.skip(4);  // pulTimeStamp
  EXPECT_EQ(r.u32(), 0u);  // rgbAuxOut: max_count, offset, actual_count
  r.skip(8);
  EXPECT_EQ(r.u32(), 0u);  // pcbAuxOut
  c.ec = r.u32();
  EXPECT_EQ(r.left(), 0u);
  return c;
}

TEST(Emsmdb, ConnectOpensASessionOnTheCallersMailbox) {
  const exchange_config server;
  const auto& alex = server.org.users.front();
  emsmdb_server s(&server);
  const auto c = parse_connect(s.call(10, connect_stub(server.org.legacy_dn(alex)), alex));
  EXPECT_EQ(c.ec, ec::none);
  EXPECT_NE(c.handle.substr(4), std::string(16, '\0'));
  EXPECT_EQ(c.polls, 60000u);
  EXPECT_EQ(c.retries, 6u);
  EXPECT_EQ(c.retry_delay, 10000u);
  EXPECT_EQ(c.index, 1);
  EXPECT_EQ(c.dn_prefix, "/o=Contoso/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)");
  EXPECT_EQ(c.display_name, alex.display_name);
  // 2007 SP3, 8.3.83.6, in the three-WORD form with the high bit on the second word.
  EXPECT_EQ(c.server_version, (std::array<std::uint16_t, 3>{0x0803, 0x8053, 0x0006}));
  EXPECT_EQ(c.best_version, c.server_version);
  EXPECT_EQ(s.sessions(), 1u);
  // The DN is compared case-insensitively, as directory names are; auxiliary input is accepted and ignored.
  std::string upper = server.org.legacy_dn(alex);
  for (auto& ch : upper) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  EXPECT_EQ(parse_connect(s.call(10, connect_stub(upper, std::string(37, 'x')), alex)).index, 2);
}

TEST(Emsmdb, AnotherUsersMailboxOrAnUnknownDnIsRefused) {
  exchange_config server;
  server.org.users.push_back({"megan.bowen@contoso.example", "pw", "Megan Bowen", "megan.bowen"});
  const auto& alex = server.org.users.front();
  emsmdb_server s(&server);
  const auto other = parse_connect(s.call(10, connect_stub(server.org.legacy_dn(server.org.users.back())), alex));
  EXPECT_EQ(other.ec, ec::access_denied);
  EXPECT_EQ(other.handle, std::string(20, '\0'));
  EXPECT_FALSE(other.dn_prefix);
  EXPECT_FALSE(other.display_name);
  const auto nobody = parse_connect(s.call(10, connect_stub("/o=Contoso/cn=Recipients/cn=nobody"), alex));
  EXPECT_EQ(nobody.ec, ec::unknown_user);
  EXPECT_EQ(s.sessions(), 0u);
}

TEST(Emsmdb, DisconnectClosesTheSession) {
  const exchange_config server;
  const auto& alex = server.org.users.front();
  emsmdb_server s(&server);
  const auto c = parse_connect(s.call(10, connect_stub(server.org.legacy_dn(alex)), alex));
  const auto out = std::get<std::string>(s.call(1, c.handle, alex));
  ASSERT_EQ(out.size(), 24u);
  EXPECT_EQ(out.substr(0, 20), std::string(20, '\0'));
  EXPECT_EQ(load_le32(out, 20), ec::none);
  EXPECT_EQ(s.sessions(), 0u);
  EXPECT_EQ(std::get<rpc_fault>(s.call(1, c.handle, alex)).status, dcerpc::status::context_mismatch);
}

TEST(Emsmdb, StubsThatDoNotUnmarshalAndOpnumsNotServed) {
  const exchange_config server;
  const auto& alex = server.org.users.front();
  emsmdb_server s(&server);
  const std::string good = connect_stub(server.org.legacy_dn(alex), "aux");
  for (std::size_t cut : {0ul, 10ul, 40ul, good.size() - 1}) {
    EXPECT_EQ(std::get<rpc_fault>(s.call(10, good.substr(0, cut), alex)).status, dcerpc::status::bad_stub_data) << cut;
  }
  std::string no_nul = good;
  no_nul[12 + server.org.legacy_dn(alex).size()] = 'x';  // the string's NUL
  EXPECT_EQ(std::get<rpc_fault>(s.call(10, no_nul, alex)).status, dcerpc::status::bad_stub_data);
  EXPECT_EQ(std::get<rpc_fault>(s.call(10, connect_stub(server.org.legacy_dn(alex), "", 0x1009), alex)).status,
            0x000006C6u);  // pcbAuxOut out of its [range]: RPC_S_INVALID_BOUND
  for (const std::uint16_t opnum : {0, 2, 4, 14, 200}) {
    EXPECT_EQ(std::get<rpc_fault>(s.call(opnum, "", alex)).status, dcerpc::status::op_rng_error) << opnum;
  }
}

// --- EcDoRpcExt2 ---

/// EcDoRpcExt2's request stub around `rgb_in`.
std::string rpc_ext2_stub(const std::string& handle, const std::string& rgb_in, std::uint32_t out_limit = 0x40000) {
  le_writer w;
  w.bytes(handle);
  w.u32(0x3);  // pulFlags: NoCompression | NoXorMagic
  w.u32(static_cast<std::uint32_t>(rgb_in.size()));
  w.bytes(rgb_in);
  w.align(4);
  w.u32(static_cast<std::uint32_t>(rgb_in.size()));
  w.u32(out_limit);
  w.u32(0), w.u32(0);  // rgbAuxIn (none), cbAuxIn
  w.u32(0x1008);
  return std::move(w.text());
}

/// A RopLogon request for `essdn` into handle slot 0, with a one-slot handle table.
std::string logon_rops(std::string_view essdn, std::uint8_t flags = 0x01) {
  le_writer rops;
  rops.u8(0xFE), rops.u8(0), rops.u8(0), rops.u8(flags), rops.u32(0x01000000), rops.u32(0);
  rops.u16(static_cast<std::uint16_t>(essdn.size() + 1));
  rops.bytes(essdn), rops.u8(0);
  std::string buffer;
  append_le16(buffer, static_cast<std::uint16_t>(2 + rops.size()));
  buffer += rops.text();
  append_le32(buffer, 0xFFFFFFFF);
  return rop::write_extended(buffer);
}

struct ext2_reply {
  std::string rops;  ///< the ROP responses
  std::vector<std::uint32_t> handles;
  std::uint32_t ec = 0;
};

ext2_reply parse_ext2(const fake_exchange::call_result& result) {
  if (const auto* f = std::get_if<rpc_fault>(&result)) throw std::runtime_error("fault " + std::to_string(f->status));
  const std::string& out = std::get<std::string>(result);
  le_reader r(as_bytes(out));
  r.skip(20 + 4);
  const std::uint32_t n = r.u32();
  r.skip(4);
  EXPECT_EQ(r.u32(), n);
  const std::string rgb_out = r.text(n);
  ndr::align(r, 4);
  EXPECT_EQ(r.u32(), n);  // pcbOut
  r.skip(16);             // rgbAuxOut (three counts), pcbAuxOut
  r.skip(4);              // pulTransTime
  ext2_reply reply;
  reply.ec = r.u32();
  EXPECT_EQ(r.left(), 0u);
  if (n == 0) return reply;
  const auto payloads = std::get<std::vector<std::string>>(rop::read_extended(rgb_out));
  const auto buffer = std::get<rop::request_buffer>(rop::read_request_buffer(payloads.at(0)));
  reply.rops = std::string(buffer.rops);
  reply.handles = buffer.handles;
  return reply;
}

struct connected {
  exchange_config server;
  emsmdb_server s{&server};
  std::string handle;
  const fake_exchange::user& alex() const { return server.org.users.front(); }
  /// `colleague`: a second user, added before any session exists (sessions point into the user list).
  explicit connected(bool colleague = false) {
    if (colleague) server.org.users.push_back({"megan.bowen@contoso.example", "pw", "Megan Bowen", "megan.bowen"});
    handle = parse_connect(s.call(10, connect_stub(server.org.legacy_dn(alex())), alex())).handle;
  }
};

TEST(EmsmdbRpcExt2, LogonToTheOwnMailboxReturnsItsSpecialFolders) {
  connected c;
  const auto reply = parse_ext2(c.s.call(11, rpc_ext2_stub(c.handle, logon_rops(c.server.org.legacy_dn(c.alex()))), c.alex()));
  EXPECT_EQ(reply.ec, ec::none);
  le_reader r(as_bytes(reply.rops));
  EXPECT_EQ(r.u8(), 0xFE);  // RopId
  EXPECT_EQ(r.u8(), 0);     // OutputHandleIndex
  EXPECT_EQ(r.u32(), ec::none);
  EXPECT_EQ(r.u8(), 0x01);  // LogonFlags: Private, echoed
  std::vector<std::uint64_t> folders;
  for (int i = 0; i < 13; ++i) folders.push_back(r.u64());
  // ReplicaId 1, then the global counter big-endian: the Inbox (the fifth; seventh in the folder tree) is
  // 0001-000000000007, and the IPM subtree (the fourth) is Top of Information Store.
  EXPECT_EQ(folders[4], fake_exchange::folder_id(*fake_exchange::folder_by_key("inbox")));
  EXPECT_EQ(folders[4], 0x0700000000000001ULL);
  EXPECT_EQ(folders[3], fake_exchange::folder_id(*fake_exchange::folder_by_key("msgfolderroot")));
  EXPECT_EQ(r.u8(), 0x07);  // ResponseFlags: Reserved | OwnerRight | SendAsRight
  r.skip(16);               // MailboxGuid
  EXPECT_EQ(r.u16(), 1);    // ReplId
  r.skip(16 + 8 + 8 + 4);   // ReplGuid, LogonTime, GwartTime, StoreState
  EXPECT_EQ(r.left(), 0u);
  ASSERT_EQ(reply.handles.size(), 1u);
  EXPECT_NE(reply.handles[0], 0xFFFFFFFFu);  // the logon's server handle, in the slot the request named

  // RopRelease frees it and has no response.
  std::string release;
  append_le16(release, 5);
  release += std::string("\x01\x00\x00", 3);
  append_le32(release, reply.handles[0]);
  const auto released = parse_ext2(c.s.call(11, rpc_ext2_stub(c.handle, rop::write_extended(release)), c.alex()));
  EXPECT_EQ(released.ec, ec::none);
  EXPECT_TRUE(released.rops.empty());
}

TEST(EmsmdbRpcExt2, ARequestCompressedAsOutlookSendsItIsServed) {
  // Outlook compresses rgbIn (LZ77 DIRECT2) whatever pulFlags says: RopLogon, then RopReleases of an empty slot.
  connected c;
  const std::string dn = c.server.org.legacy_dn(c.alex());
  le_writer rops;
  rops.u8(0xFE), rops.u8(0), rops.u8(0), rops.u8(0x01), rops.u32(0x01000000), rops.u32(0);
  rops.u16(static_cast<std::uint16_t>(dn.size() + 1)), rops.bytes(dn), rops.u8(0);
  for (int i = 0; i < 40; ++i) rops.u8(0x01), rops.u8(0), rops.u8(1);
  std::string plain;
  append_le16(plain, static_cast<std::uint16_t>(2 + rops.size()));
  plain += rops.text();
  append_le32(plain, 0xFFFFFFFF), append_le32(plain, 0xFFFFFFFF);
  const std::string packed = lz77::compress(plain);
  ASSERT_LT(packed.size(), plain.size());
  std::string rgb_in;
  append_le16(rgb_in, 0), append_le16(rgb_in, rop::ext_flag::compressed | rop::ext_flag::last);
  append_le16(rgb_in, static_cast<std::uint16_t>(packed.size())), append_le16(rgb_in, static_cast<std::uint16_t>(plain.size()));
  rgb_in += packed;
  const auto reply = parse_ext2(c.s.call(11, rpc_ext2_stub(c.handle, rgb_in), c.alex()));
  EXPECT_EQ(reply.ec, ec::none);
  ASSERT_GE(reply.rops.size(), 6u);
  EXPECT_EQ(test::to_hex(reply.rops.substr(0, 6)), "fe0000000000");  // RopLogon answered ecNone
  // One that does not decompress to its SizeActual fails the call with ecRpcFormat.
  rgb_in[6] = static_cast<char>(rgb_in[6] + 1);
  EXPECT_EQ(parse_ext2(c.s.call(11, rpc_ext2_stub(c.handle, rgb_in), c.alex())).ec, ec::rpc_format);
}

TEST(EmsmdbRpcExt2, LogonRefusalsFollowTheStoreRules) {
  connected c(true);
  const auto rop_result = [&](const std::string& rgb_in) {
    const auto reply = parse_ext2(c.s.call(11, rpc_ext2_stub(c.handle, rgb_in), c.alex()));
    EXPECT_EQ(reply.ec, ec::none);
    EXPECT_EQ(reply.rops.size(), 6u);  // RopId, OutputHandleIndex, ReturnValue: a failure stops there
    return load_le32(reply.rops, 2);
  };
  EXPECT_EQ(rop_result(logon_rops("/o=Contoso/cn=Recipients/cn=nobody")), ec::unknown_user);
  EXPECT_EQ(rop_result(logon_rops(c.server.org.legacy_dn(c.server.org.users.back()))), ec::access_denied);
  EXPECT_EQ(rop_result(logon_rops(c.server.org.legacy_dn(c.alex()), 0x00)), ec::login_failure);  // public folders
}

TEST(EmsmdbRpcExt2, BuffersThatDoNotParseAndRopsNotServed) {
  connected c;
  const auto call = [&](const std::string& rgb_in, std::uint32_t out_limit = 0x40000) {
    return parse_ext2(c.s.call(11, rpc_ext2_stub(c.handle, rgb_in, out_limit), c.alex()));
  };
  EXPECT_EQ(call(std::string(8, '\x01')).ec, ec::rpc_format);  // no valid RPC_HEADER_EXT
  EXPECT_EQ(call(rop::write_extended("\x09\x00")).ec, ec::rpc_format);  // RopSize past the buffer
  // A ROP not served yet: ecNotSupported for it, and the buffer ends there.
  std::string unserved;
  append_le16(unserved, 2 + 12);
  unserved += std::string("\x27\x00\x00\x00", 4) + std::string(8, '\x05');  // RopGetReceiveFolder
  append_le32(unserved, 0x10), append_le32(unserved, 0xFFFFFFFF);
  const auto reply = call(rop::write_extended(unserved));
  EXPECT_EQ(reply.ec, ec::none);
  EXPECT_EQ(test::to_hex(reply.rops), "270002010480");  // RopGetReceiveFolder, index 0, 0x80040102
  // pcbOut below what the answer needs: ecBufferTooSmall; out of its range: the runtime's bound fault.
  EXPECT_EQ(call(logon_rops(c.server.org.legacy_dn(c.alex())), 64).ec, ec::buffer_too_small);
  EXPECT_EQ(std::get<rpc_fault>(c.s.call(11, rpc_ext2_stub(c.handle, logon_rops("x"), 0x40001), c.alex())).status,
            dcerpc::status::invalid_bound);
  // A session handle not issued here.
  EXPECT_EQ(std::get<rpc_fault>(c.s.call(11, rpc_ext2_stub(std::string(20, '\x07'), logon_rops("x")), c.alex())).status,
            dcerpc::status::context_mismatch);
}

}  // namespace emsmdb_test
}  // namespace exbridge
