// The RTS PDU codec against [MS-RPCH]: the named PDUs' sizes and layouts (2.2.4), every command's encoding
// (2.2.3.5), what a receiver must refuse (2.2.3.6.1), and the flow-control example of section 4.2.
#include "common/rts.hpp"
#include "tests/support/hex.hpp"

#include <gtest/gtest.h>

namespace exbridge::rts {
namespace {

cookie make_cookie(std::uint8_t first) {
  cookie c{};
  for (std::size_t i = 0; i < c.size(); ++i) c[i] = static_cast<std::uint8_t>(first + i);
  return c;
}

using test::from_hex;
using test::to_hex;

TEST(Rts, NamedPdusHaveTheSpecifiedSizes) {
  // 2.1.2.1.2: an OUT channel request declares 76 bytes, the size of CONN/A1; the others follow 2.2.4.
  EXPECT_EQ(encode(conn_a1(make_cookie(1), make_cookie(0x21), 65536)).size(), 76u);
  EXPECT_EQ(encode(conn_a3(120000)).size(), 28u);
  EXPECT_EQ(encode(conn_b1(make_cookie(1), make_cookie(0x41), 1073741824, 300000, make_cookie(0x61))).size(), 104u);
  EXPECT_EQ(encode(conn_c2(65536, 120000)).size(), 44u);
  EXPECT_EQ(encode(ping_pdu()).size(), 20u);
  EXPECT_EQ(encode(echo_pdu()).size(), 20u);
  EXPECT_EQ(encode(flow_control_ack_pdu({1, 2, make_cookie(0)})).size(), 48u);
  EXPECT_EQ(encode(flow_control_ack_with_destination_pdu(forward_destination::out_proxy, {1, 2, make_cookie(0)})).size(), 56u);
}

TEST(Rts, HeaderAndCommandsAreLaidOutAsSpecified) {
  // The common header (2.2.3.6.1), Flags and NumberOfCommands, then Version (type 6, value 1), two Cookie
  // commands (type 3 + 16 bytes) and ReceiveWindowSize (type 0): CONN/A1 of 2.2.4.2.
  const std::string a1 = encode(conn_a1(make_cookie(0x10), make_cookie(0x30), 0x10000));
  EXPECT_EQ(to_hex(a1),
            "05001403" "10000000" "4c00" "0000" "00000000"  // header: v5.0, RTS, FIRST|LAST, LE, 76 bytes
            "0000" "0400"                                    // Flags NONE, 4 commands
            "06000000" "01000000"                            // Version 1
            "03000000" "101112131415161718191a1b1c1d1e1f"    // Cookie (virtual connection)
            "03000000" "303132333435363738393a3b3c3d3e3f"    // Cookie (OUT channel)
            "00000000" "00000100");                          // ReceiveWindowSize 65536
  // The keep-alive ping and the echo answer: no commands (2.2.4.49, 2.2.4.50).
  EXPECT_EQ(to_hex(encode(ping_pdu())), "050014031000000014000000000000000100" "0000");
  EXPECT_EQ(to_hex(encode(echo_pdu())), "050014031000000014000000000000004000" "0000");
}

TEST(Rts, EveryCommandRoundTrips) {
  client_address v4;
  v4.address = {192, 0, 2, 7};
  client_address v6;
  v6.ipv6 = true;
  v6.address = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  const pdu everything{static_cast<std::uint16_t>(other_cmd | recycle_channel),
                       {receive_window_size{65536}, flow_control_ack{100, 200, make_cookie(7)}, connection_timeout{120000},
                        cookie_command{make_cookie(9)}, channel_lifetime{1073741824}, client_keepalive{300000}, version{1},
                        empty{}, padding{12}, negative_ance{}, ance{}, v4, v6, association_group_id{make_cookie(3)},
                        destination{forward_destination::server}, ping_traffic_sent_notify{4096}}};
  const std::string wire = encode(everything);
  // 20 + 8 + 28 + 8 + 20 + 8 + 8 + 8 + 4 + (8 + 12) + 4 + 4 + 24 + 36 + 20 + 8 + 8
  EXPECT_EQ(wire.size(), 236u);
  const auto back = decode(wire);
  ASSERT_TRUE(std::holds_alternative<pdu>(back)) << std::get<decode_error>(back).what;
  const pdu& p = std::get<pdu>(back);
  EXPECT_EQ(p.flags, everything.flags);
  ASSERT_EQ(p.commands.size(), everything.commands.size());
  EXPECT_EQ(encode(p), wire);
  EXPECT_EQ(std::get<flow_control_ack>(p.commands[1]).channel_cookie, make_cookie(7));
  EXPECT_EQ(std::get<client_address>(p.commands[11]).address[0], 192);
  EXPECT_TRUE(std::get<client_address>(p.commands[12]).ipv6);
  EXPECT_EQ(std::get<destination>(p.commands[14]).to, forward_destination::server);
}

TEST(Rts, NamedPdusAreRecognisedAndTheirFieldsRead) {
  const auto decoded = [](const pdu& p) { return std::get<pdu>(decode(encode(p))); };
  EXPECT_EQ(identify(decoded(conn_a1(make_cookie(1), make_cookie(2), 65536))), kind::conn_a1);
  EXPECT_EQ(identify(decoded(conn_a3(120000))), kind::conn_a3);
  EXPECT_EQ(identify(decoded(conn_b1(make_cookie(1), make_cookie(3), 1 << 30, 300000, make_cookie(4)))), kind::conn_b1);
  EXPECT_EQ(identify(decoded(conn_c2(65536, 120000))), kind::conn_c2);
  EXPECT_EQ(identify(decoded(ping_pdu())), kind::ping);
  EXPECT_EQ(identify(decoded(echo_pdu())), kind::echo);
  EXPECT_EQ(identify(decoded({other_cmd, {client_keepalive{60000}}})), kind::keep_alive);
  EXPECT_EQ(identify(decoded(flow_control_ack_pdu({1, 2, make_cookie(5)}))), kind::flow_control_ack);
  EXPECT_EQ(identify(decoded(flow_control_ack_with_destination_pdu(forward_destination::out_proxy, {1, 2, make_cookie(5)}))),
            kind::flow_control_ack_with_destination);
  EXPECT_EQ(identify(decoded({other_cmd, {ping_traffic_sent_notify{20}}})), kind::ping_traffic_sent_notify);
  // The same commands under other flags, or in another order, are another PDU (2.2.4.1).
  EXPECT_EQ(identify(decoded({in_channel, conn_a1(make_cookie(1), make_cookie(2), 65536).commands})), kind::unknown);
  EXPECT_EQ(identify(decoded({none, {cookie_command{}, version{}, cookie_command{}, receive_window_size{}}})), kind::unknown);

  const auto a1 = as_conn_a1(decoded(conn_a1(make_cookie(0x10), make_cookie(0x30), 0x20000)));
  ASSERT_TRUE(a1);
  EXPECT_EQ(a1->virtual_connection, make_cookie(0x10));
  EXPECT_EQ(a1->out_channel, make_cookie(0x30));
  EXPECT_EQ(a1->receive_window, 0x20000u);
  const auto b1 = as_conn_b1(decoded(conn_b1(make_cookie(0x10), make_cookie(0x50), 1073741824, 300000, make_cookie(0x70))));
  ASSERT_TRUE(b1);
  EXPECT_EQ(b1->virtual_connection, make_cookie(0x10));
  EXPECT_EQ(b1->in_channel, make_cookie(0x50));
  EXPECT_EQ(b1->client_keepalive, 300000u);
  EXPECT_EQ(b1->association_group, make_cookie(0x70));
  EXPECT_FALSE(as_conn_b1(decoded(conn_a3(120000))));
  EXPECT_EQ(to_hex(make_cookie(0)), "000102030405060708090a0b0c0d0e0f");
}

TEST(Rts, WhatTheHeaderRulesForbidIsRefused) {
  const std::string ping = encode(ping_pdu());
  const auto refused = [](const std::string& bytes) {
    const auto r = decode(bytes);
    return std::holds_alternative<decode_error>(r) ? std::get<decode_error>(r).what : std::string();
  };
  EXPECT_EQ(refused(ping), "");
  auto bad = ping;
  bad[0] = 4;
  EXPECT_NE(refused(bad).find("version"), std::string::npos);
  bad = ping;
  bad[2] = 0;  // a DCE/RPC request
  EXPECT_NE(refused(bad).find("PTYPE 0"), std::string::npos);
  bad = ping;
  bad[3] = 0x01;  // FIRST_FRAG alone: a fragment
  EXPECT_NE(refused(bad).find("never fragmented"), std::string::npos);
  bad = ping;
  bad[4] = 0x00;  // big-endian
  EXPECT_NE(refused(bad).find("little-endian"), std::string::npos);
  bad = ping;
  bad[10] = 8;  // auth_length
  EXPECT_NE(refused(bad).find("authentication"), std::string::npos);
  bad = ping;
  bad[12] = 1;  // call_id
  EXPECT_NE(refused(bad).find("call_id"), std::string::npos);
  EXPECT_NE(refused(ping.substr(0, 19)).find("shorter"), std::string::npos);
  EXPECT_NE(refused(ping + "x").find("frag_length"), std::string::npos);

  // A command count that promises more than there is, an unknown type, bytes after the last command,
  // oversized padding, an address type that is neither IPv4 nor IPv6, a destination out of range.
  const std::string a3 = encode(conn_a3(120000));
  bad = a3;
  bad[18] = 2;
  EXPECT_NE(refused(bad).find("cut short"), std::string::npos);
  bad = a3;
  bad[20] = 0x0f;
  EXPECT_NE(refused(bad).find("unknown RTS command type 15"), std::string::npos);
  bad = encode({none, {empty{}, empty{}}});
  bad[18] = 1;
  EXPECT_NE(refused(bad).find("4 bytes after"), std::string::npos);
  EXPECT_NE(refused(from_hex("05001403100000001c000000000000000000" "0100" "08000000" "00000100")).find("over 0xFFFF"),
            std::string::npos);
  EXPECT_NE(refused(from_hex("050014031000000020000000000000000000" "0100" "0b000000" "02000000" "00000000")).find("AddressType 2"),
            std::string::npos);
  EXPECT_NE(refused(from_hex("05001403100000001c000000000000000000" "0100" "0d000000" "04000000")).find("Destination 4"),
            std::string::npos);
}

TEST(Rts, PdusAreCutFromAChannelByTheirFragLength) {
  const std::string stream = encode(conn_a3(120000)) + encode(conn_c2(65536, 120000)) + encode(ping_pdu());
  const auto bytes = std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(stream.data()), stream.size());
  EXPECT_FALSE(pdu_length(bytes.first(9)));
  ASSERT_EQ(pdu_length(bytes), 28u);
  EXPECT_EQ(pdu_length(bytes.subspan(28)), 44u);
  EXPECT_EQ(pdu_length(bytes.subspan(72)), 20u);
  EXPECT_EQ(pdu_type(bytes), ptype_rts);
}

TEST(Rts, FlowControlFollowsTheSpecificationsExample) {
  // [MS-RPCH] 4.2: a receive window of 1,000 bytes; the sender's window after each acknowledgment is
  // AvailableWindow_from_ack - (BytesSent - BytesReceived_from_ack).
  EXPECT_EQ(sender_available_window({250, 850, {}}, 750), 350u);
  EXPECT_EQ(sender_available_window({750, 550, {}}, 750), 550u);
  EXPECT_EQ(sender_available_window({750, 1000, {}}, 750), 1000u);
  // Byte counts wrap at 2^32 on both sides alike.
  EXPECT_EQ(sender_available_window({0xFFFFFF00u, 1000, {}}, 0x100), 488u);
}

}  // namespace
}  // namespace exbridge::rts
