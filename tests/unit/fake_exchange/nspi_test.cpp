// NSPI's session calls (fake_exchange/nspi): NspiBind's NDR layout and its refusals, NspiUnbind, and the
// runtime's answers to opnums not served and stubs that do not unmarshal.
#include <gtest/gtest.h>

#include "common/dcerpc.hpp"
#include "common/le_bytes.hpp"
#include "fake_exchange/nspi.hpp"

namespace exbridge {
namespace nspi_test {

using fake_exchange::call_result;
using fake_exchange::nspi_server;
using fake_exchange::rpc_fault;
namespace ec = fake_exchange::nspi_ec;

std::array<std::uint8_t, 16> guid() {
  std::array<std::uint8_t, 16> g{};
  for (std::size_t i = 0; i < g.size(); ++i) g[i] = static_cast<std::uint8_t>(0xa0 + i);
  return g;
}

std::string bind_stub(std::uint32_t code_page, bool want_guid) {
  le_writer w;
  w.u32(0);
  for (int i = 0; i < 9; ++i) w.u32(i == 6 ? code_page : 0x409);
  w.u32(want_guid ? 0x20000 : 0);
  if (want_guid) w.zeros(16);
  return std::move(w.text());
}

std::string stub_of(const call_result& r) {
  if (const auto* f = std::get_if<rpc_fault>(&r)) throw std::runtime_error("fault " + std::to_string(f->status));
  return std::get<std::string>(r);
}

TEST(Nspi, BindReturnsAHandleAndTheServerGuid) {
  nspi_server s(guid());
  const std::string out = stub_of(s.call(0, bind_stub(1252, true)));
  ASSERT_EQ(out.size(), 44u);
  EXPECT_EQ(load_le32(out, 0), 0x20000u);
  EXPECT_EQ(out.substr(4, 16), std::string(reinterpret_cast<const char*>(guid().data()), 16));
  EXPECT_EQ(load_le32(out, 20), 0u);                     // context handle attributes
  EXPECT_NE(out.substr(24, 16), std::string(16, '\0'));  // and a UUID
  EXPECT_EQ(load_le32(out, 40), ec::success);
  EXPECT_EQ(s.sessions(), 1u);
  // Without a GUID pointer the answer carries a NULL one.
  const std::string plain = stub_of(s.call(0, bind_stub(20261, false)));
  ASSERT_EQ(plain.size(), 28u);
  EXPECT_EQ(load_le32(plain, 0), 0u);
  EXPECT_EQ(load_le32(plain, 24), ec::success);
  EXPECT_EQ(s.sessions(), 2u);
}

TEST(Nspi, BindRefusesTheUnicodeCodePage) {
  nspi_server s(guid());
  const std::string out = stub_of(s.call(0, bind_stub(1200, true)));
  ASSERT_EQ(out.size(), 28u);
  EXPECT_EQ(load_le32(out, 0), 0u);                     // NULL server GUID
  EXPECT_EQ(out.substr(4, 20), std::string(20, '\0'));  // NULL handle
  EXPECT_EQ(load_le32(out, 24), ec::invalid_codepage);
  EXPECT_EQ(s.sessions(), 0u);
}

TEST(Nspi, UnbindClosesOnlyItsOwnHandles) {
  nspi_server s(guid());
  const std::string handle = stub_of(s.call(0, bind_stub(1252, false))).substr(4, 20);
  const std::string out = stub_of(s.call(1, handle + std::string(4, '\0')));
  ASSERT_EQ(out.size(), 24u);
  EXPECT_EQ(out.substr(0, 20), std::string(20, '\0'));
  EXPECT_EQ(load_le32(out, 20), ec::unbind_success);
  EXPECT_EQ(s.sessions(), 0u);
  // A handle already closed is the runtime's to refuse.
  EXPECT_EQ(std::get<rpc_fault>(s.call(1, handle + std::string(4, '\0'))).status, dcerpc::status::context_mismatch);
}

TEST(Nspi, ShortStubsAndOpnumsNotServedAreRuntimeFaults) {
  nspi_server s(guid());
  EXPECT_EQ(std::get<rpc_fault>(s.call(0, "short")).status, dcerpc::status::bad_stub_data);
  EXPECT_EQ(std::get<rpc_fault>(s.call(0, bind_stub(1252, true).substr(0, 50))).status, dcerpc::status::bad_stub_data);
  EXPECT_EQ(std::get<rpc_fault>(s.call(1, std::string(23, '\0'))).status, dcerpc::status::bad_stub_data);
  for (const std::uint16_t opnum : {2, 20, 21, 400}) {
    EXPECT_EQ(std::get<rpc_fault>(s.call(opnum, "")).status, dcerpc::status::op_rng_error) << opnum;
  }
}

}  // namespace nspi_test
}  // namespace exbridge
