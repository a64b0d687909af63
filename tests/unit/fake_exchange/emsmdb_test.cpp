// EMSMDB's session calls (fake_exchange/emsmdb): EcDoConnectEx's NDR layout, the caller's own mailbox only,
// EcDoDisconnect, and the runtime's answers to stubs that do not unmarshal and opnums not served.
#include <gtest/gtest.h>

#include "common/dcerpc.hpp"
#include "common/le_bytes.hpp"
#include "common/ndr.hpp"
#include "fake_exchange/emsmdb.hpp"

namespace exbridge {
namespace {

using fake_exchange::emsmdb_server;
using fake_exchange::exchange_config;
using fake_exchange::rpc_fault;
namespace ec = fake_exchange::emsmdb_ec;

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
  for (const std::uint16_t opnum : {0, 2, 11, 14, 200}) {
    EXPECT_EQ(std::get<rpc_fault>(s.call(opnum, "", alex)).status, dcerpc::status::op_rng_error) << opnum;
  }
}

}  // namespace
}  // namespace exbridge
