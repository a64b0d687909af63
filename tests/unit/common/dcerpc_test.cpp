// The DCE/RPC PDU codec against C706 and [MS-RPCE]: the byte layout of a bind as clients send it, bind_ack's
// secondary address and alignment, bind_nak's 24 bytes, fault, request with an object UUID, fragmentation,
// authentication trailers, and refusal of what is not a PDU.
#include <gtest/gtest.h>

#include "common/dcerpc.hpp"
#include "tests/support/hex.hpp"

namespace exbridge {
namespace {

using namespace dcerpc;

using test::to_hex;

template <class Body>
Body body_of(const std::variant<pdu, decode_error>& decoded) {
  if (const auto* e = std::get_if<decode_error>(&decoded)) throw std::runtime_error(e->what);
  return std::get<Body>(std::get<pdu>(decoded).content);
}

TEST(DceRpc, UuidsUseTheMixedEndianWireLayout) {
  const uuid u = parse_uuid("a4f1db00-ca47-1067-b31f-00dd010662da");
  EXPECT_EQ(to_hex(std::string_view(reinterpret_cast<const char*>(u.data()), u.size())), "00dbf1a447ca6710b31f00dd010662da");
  EXPECT_EQ(to_string(u), "a4f1db00-ca47-1067-b31f-00dd010662da");
  EXPECT_THROW(parse_uuid("a4f1db00-ca47-1067-b31f-00dd010662d"), std::invalid_argument);
  EXPECT_THROW(parse_uuid("g4f1db00-ca47-1067-b31f-00dd010662da"), std::invalid_argument);
}

TEST(DceRpc, ABindIsLaidOutAsC706Says) {
  pdu p;
  p.type = ptype::bind;
  p.call_id = 1;
  p.content = bind_body{4280, 4280, 0, {{0, {parse_uuid("f5cc5a18-4264-101a-8c59-08002b2f8426"), 56, 0}, {ndr20()}}}};
  const std::string wire = encode(p);
  // 16 header + 12 (frag sizes, group, count) + 4 (context id, 1 syntax) + 20 abstract + 20 transfer = 72.
  ASSERT_EQ(wire.size(), 72u);
  EXPECT_EQ(to_hex(wire.substr(0, 16)), "05000b03" "10000000" "4800" "0000" "01000000");
  EXPECT_EQ(to_hex(wire.substr(16, 12)), "b810b810" "00000000" "01000000");
  EXPECT_EQ(to_hex(wire.substr(28, 4)), "00000100");
  EXPECT_EQ(to_hex(wire.substr(32, 20)), "185accf56442" "1a10" "8c5908002b2f8426" "3800" "0000");  // v56.0
  EXPECT_EQ(to_hex(wire.substr(52, 20)), "045d888aeb1cc9119fe808002b104860" "02000000");      // NDR 2.0
  const auto back = body_of<bind_body>(decode(wire));
  ASSERT_EQ(back.contexts.size(), 1u);
  EXPECT_EQ(back.contexts[0].abstract.major, 56);
  EXPECT_EQ(back.contexts[0].transfer, std::vector<syntax_id>{ndr20()});
}

TEST(DceRpc, BindAckAlignsItsResultsAfterTheSecondaryAddress) {
  pdu p;
  p.type = ptype::bind_ack;
  p.call_id = 1;
  p.content = bind_ack_body{4280, 4280, 0x1e2a1, "6001", {{result::acceptance, 0, ndr20()}}};
  const std::string wire = encode(p);
  // 16 + 8 + 2 + "6001\0" (5) = 31, padded to 32, then 4 + 24.
  ASSERT_EQ(wire.size(), 60u);
  EXPECT_EQ(to_hex(wire.substr(24, 8)), "0500" "3630303100" "00");
  const auto back = body_of<bind_ack_body>(decode(wire));
  EXPECT_EQ(back.secondary_address, "6001");
  EXPECT_EQ(back.assoc_group_id, 0x1e2a1u);
  ASSERT_EQ(back.results.size(), 1u);
  EXPECT_EQ(back.results[0].transfer, ndr20());
  // alter_context_resp sends no address: length 0, two pad bytes.
  p.type = ptype::alter_context_resp;
  std::get<bind_ack_body>(p.content).secondary_address.clear();
  EXPECT_EQ(encode(p).size(), 56u);
}

TEST(DceRpc, BindNakIsTwentyFourBytesWithItsVersions) {
  pdu p;
  p.type = ptype::bind_nak;
  p.call_id = 7;
  p.content = bind_nak_body{nak::authentication_type_not_recognized, {{5, 0}}};
  const std::string wire = encode(p);
  ASSERT_EQ(wire.size(), 24u);
  EXPECT_EQ(to_hex(wire.substr(16)), "0800" "01" "0500" "000000");
  const auto back = body_of<bind_nak_body>(decode(wire));
  EXPECT_EQ(back.reject_reason, nak::authentication_type_not_recognized);
  EXPECT_EQ(back.versions, (std::vector<std::pair<std::uint8_t, std::uint8_t>>{{5, 0}}));
}

TEST(DceRpc, AFaultCarriesItsStatusAndDidNotExecute) {
  const std::string wire = encode_fault(9, 0, status::op_rng_error, true);
  ASSERT_EQ(wire.size(), 32u);
  EXPECT_EQ(to_hex(wire.substr(0, 4)), "05000323");  // FIRST|LAST|DID_NOT_EXECUTE
  EXPECT_EQ(to_hex(wire.substr(24, 8)), "0200011c" "00000000");
  const auto f = body_of<fault_body>(decode(wire));
  EXPECT_EQ(f.status, status::op_rng_error);
}

TEST(DceRpc, ARequestWithAnObjectUuidAndAnAuthTrailerRoundTrips) {
  pdu p;
  p.type = ptype::request;
  p.flags = first_frag | last_frag | object_uuid;
  p.call_id = 3;
  p.content = request_body{5, 1, 11, parse_uuid("11111111-2222-3333-4444-555555555555"), "abcde"};
  p.auth = auth_verifier{10, 6, 0, 79231, std::string(16, 'T')};
  const std::string wire = encode(p);
  // 24 + 16 object + 5 stub + 3 pad + 8 trailer + 16 token.
  ASSERT_EQ(wire.size(), 72u);
  const auto decoded = decode(wire);
  const auto& back = std::get<pdu>(decoded);
  const auto& r = std::get<request_body>(back.content);
  EXPECT_EQ(r.stub, "abcde");
  EXPECT_EQ(r.opnum, 11);
  ASSERT_TRUE(r.object);
  ASSERT_TRUE(back.auth);
  EXPECT_EQ(back.auth->pad_length, 3);
  EXPECT_EQ(back.auth->level, 6);
  EXPECT_EQ(back.auth->context_id, 79231u);
  EXPECT_EQ(back.auth->token, std::string(16, 'T'));
}

TEST(DceRpc, ResponsesAreFragmentedToTheAgreedSize) {
  const std::string stub(10'000, 's');
  const auto fragments = fragment_response(4, 0, stub, 4280);
  ASSERT_EQ(fragments.size(), 3u);  // 4256 + 4256 + 1488 stub bytes
  std::string joined;
  for (std::size_t i = 0; i < fragments.size(); ++i) {
    EXPECT_LE(fragments[i].size(), 4280u);
    const auto decoded = decode(fragments[i]);
    const auto& p = std::get<pdu>(decoded);
    EXPECT_EQ((p.flags & first_frag) != 0, i == 0) << i;
    EXPECT_EQ((p.flags & last_frag) != 0, i == 2) << i;
    const auto& r = std::get<response_body>(p.content);
    EXPECT_EQ(r.alloc_hint, stub.size() - joined.size()) << i;
    joined += r.stub;
  }
  EXPECT_EQ(joined, stub);
  EXPECT_EQ(fragment_response(5, 0, "", 4280).size(), 1u);  // an empty stub is one fragment
}

TEST(DceRpc, WhatIsNotAPduIsRefusedWithTheReason) {
  const std::string good = encode_fault(1, 0, status::unk_if, false);
  const auto refuse = [](std::string bytes) {
    const auto d = decode(bytes);
    return std::holds_alternative<decode_error>(d) ? std::get<decode_error>(d).what : std::string("accepted");
  };
  EXPECT_EQ(refuse(good.substr(0, 10)), "shorter than the 16-byte DCE/RPC header");
  std::string v4 = good;
  v4[0] = 4;
  EXPECT_EQ(refuse(v4), "RPC version 4.0, not 5.0");
  std::string big_endian = good;
  big_endian[4] = 0;
  EXPECT_EQ(refuse(big_endian), "data representation is not little-endian ASCII (10 00 00 00)");
  EXPECT_EQ(refuse(good + "x"), "frag_length 32 differs from the PDU's 33 bytes");
  std::string rts = good;
  rts[2] = 20;
  EXPECT_EQ(refuse(rts), "PTYPE 20 is not a connection-oriented DCE/RPC PDU");
  std::string auth = good;
  auth[10] = 100;  // auth_length past the PDU
  EXPECT_EQ(refuse(auth), "auth_length runs past the PDU");
  pdu p;
  p.type = ptype::bind;
  p.content = bind_body{4280, 4280, 0, {{0, ndr20(), {}}}};
  EXPECT_EQ(refuse(encode(p)), "presentation context 0 offers no transfer syntax");
}

}  // namespace
}  // namespace exbridge
