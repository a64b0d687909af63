// The virtual connection's state machine without sockets: CONN/A3 and CONN/C2 in order whichever channel comes
// first, flow control both ways (a client that stops acknowledging stalls the OUT channel and, through the
// backlog, the IN channel), acknowledgements of the client's IN traffic, and protocol errors.
#include <gtest/gtest.h>

#include "common/le_bytes.hpp"
#include "fake_exchange/virtual_connection.hpp"
#include "tests/support/rpc_over_http.hpp"

namespace exbridge {
namespace {

using fake_exchange::vc_settings;
using fake_exchange::virtual_connection;

rts::kind kind_of(const std::string& pdu) {
  const auto decoded = rts::decode(pdu);
  const auto* p = std::get_if<rts::pdu>(&decoded);
  return p == nullptr ? rts::kind::unknown : rts::identify(*p);
}

std::vector<std::string> drain(virtual_connection& vc) {
  std::vector<std::string> out;
  while (auto p = vc.next_out()) out.push_back(*p);
  return out;
}

rts::conn_a1_fields a1(const test::vc_cookies& c, std::uint32_t window = 65536) {
  return {c.vc, c.out, window};
}
rts::conn_b1_fields b1(const test::vc_cookies& c) { return {c.vc, c.in, 1'073'741'824, 300'000, c.group}; }

/// An EcDoConnectEx-sized request on context 0: each is answered by a 32-byte fault (no RPC auth yet).
std::string call(std::uint32_t id, std::size_t stub = 200) {
  dcerpc::pdu p;
  p.type = dcerpc::ptype::request;
  p.call_id = id;
  p.content = dcerpc::request_body{static_cast<std::uint32_t>(stub), 0, 10, std::nullopt, std::string(stub, '\0')};
  return dcerpc::encode(p);
}

std::string ack_for_out(const test::vc_cookies& c, std::uint32_t received, std::uint32_t window) {
  return rts::encode(rts::flow_control_ack_with_destination_pdu(rts::forward_destination::out_proxy, {received, window, c.out}));
}

TEST(VirtualConnection, ConnA3ComesAtOnceAndConnC2OnceBothChannelsAreThere) {
  for (const bool out_first : {true, false}) {
    const test::vc_cookies c;
    virtual_connection vc(c.vc, 6001, vc_settings{.connection_timeout_ms = 120'000});
    if (out_first) {
      ASSERT_FALSE(vc.open_out(a1(c)));
      const auto early = drain(vc);
      ASSERT_EQ(early.size(), 1u);
      EXPECT_EQ(early[0], rts::encode(rts::conn_a3(120'000)));
      ASSERT_FALSE(vc.open_in(b1(c)));
      const auto later = drain(vc);
      ASSERT_EQ(later.size(), 1u);
      EXPECT_EQ(later[0], rts::encode(rts::conn_c2(65'536, 120'000)));
    } else {
      ASSERT_FALSE(vc.open_in(b1(c)));
      EXPECT_TRUE(drain(vc).empty());
      ASSERT_FALSE(vc.open_out(a1(c)));
      const auto both = drain(vc);
      ASSERT_EQ(both.size(), 2u);
      EXPECT_EQ(kind_of(both[0]), rts::kind::conn_a3);
      EXPECT_EQ(kind_of(both[1]), rts::kind::conn_c2);
    }
    EXPECT_TRUE(vc.established());
  }
}

TEST(VirtualConnection, ProtocolErrorsAreNamed) {
  const test::vc_cookies c;
  virtual_connection vc(c.vc, 6001, {});
  ASSERT_FALSE(vc.open_in(b1(c)));
  EXPECT_EQ(vc.receive_in(call(1)), "an RPC PDU before CONN/C2 was sent");
  EXPECT_EQ(vc.open_in(b1(c)), "a second CONN/B1 for an open virtual connection (a replacement IN channel opens with IN_R1/A1)");
  EXPECT_EQ(vc.open_out(a1(c, 4096)), "CONN/A1's ReceiveWindowSize 4096 is under 8 KiB");
  EXPECT_EQ(vc.receive_in(rts::encode(rts::conn_a3(1))), "an RTS PDU the inbound proxy does not accept here (CONN/A3)");
  EXPECT_EQ(vc.receive_in(std::string(20, '\x14')), "a malformed RTS PDU on the IN channel: RPC version 20.20, not 5.0");
  // Pings and keep-alive changes are what a healthy client sends.
  EXPECT_FALSE(vc.receive_in(rts::encode(rts::ping_pdu())));
}

TEST(VirtualConnection, AClientThatStopsAcknowledgingStallsTheOutChannel) {
  const test::vc_cookies c;
  virtual_connection vc(c.vc, 6001, vc_settings{.in_receive_window = 1 << 20, .out_backlog_limit = 1000});
  ASSERT_FALSE(vc.open_out(a1(c, 8192)));
  ASSERT_FALSE(vc.open_in(b1(c)));
  drain(vc);
  ASSERT_FALSE(vc.receive_in(test::bind_pdu(1, test::emsmdb_interface())));
  ASSERT_EQ(drain(vc).size(), 1u);  // the bind_ack (60 bytes)
  // 8192 - 60 bytes of window left: 254 faults of 32 bytes fit, the next waits.
  for (std::uint32_t id = 2; id < 2 + 300; ++id) ASSERT_FALSE(vc.receive_in(call(id)));
  EXPECT_EQ(drain(vc).size(), 254u);
  EXPECT_TRUE(vc.waiting_for_window());
  EXPECT_EQ(vc.counters().window_stalls, 1u);
  EXPECT_TRUE(vc.in_paused()) << "46 faults (1472 bytes) wait: past the backlog limit, the IN side stops reading";
  // The client acknowledges everything: the window opens again and the rest goes.
  bool resumed = false;
  vc.on_wake(c.in, [&] { resumed = true; });
  ASSERT_FALSE(vc.receive_in(ack_for_out(c, static_cast<std::uint32_t>(vc.counters().rpc_out_bytes), 8192)));
  EXPECT_EQ(drain(vc).size(), 46u);
  EXPECT_FALSE(vc.in_paused());
  EXPECT_TRUE(resumed);
  EXPECT_EQ(vc.counters().acks_received, 1u);
  // An ack for a channel this connection does not have is dropped (3.2.1.5.1.2).
  const test::vc_cookies stranger(9);
  ASSERT_FALSE(vc.receive_in(ack_for_out(stranger, 0, 1'000'000)));
  EXPECT_EQ(vc.counters().acks_received, 1u);
}

TEST(VirtualConnection, TheClientsInTrafficIsAcknowledgedEachHalfWindow) {
  const test::vc_cookies c;
  virtual_connection vc(c.vc, 6001, vc_settings{.in_receive_window = 8192});
  ASSERT_FALSE(vc.open_out(a1(c, 1 << 20)));
  ASSERT_FALSE(vc.open_in(b1(c)));
  drain(vc);
  ASSERT_FALSE(vc.receive_in(test::bind_pdu(1, test::emsmdb_interface())));  // 72 bytes
  std::uint32_t sent = 72;
  std::vector<rts::flow_control_ack> acks;
  for (std::uint32_t id = 2; id < 40; ++id) {
    const std::string pdu = call(id, 1000);
    sent += static_cast<std::uint32_t>(pdu.size());
    ASSERT_FALSE(vc.receive_in(pdu));
    for (const auto& out : drain(vc)) {
      const auto decoded = rts::decode(out);
      if (const auto* p = std::get_if<rts::pdu>(&decoded)) {
        ASSERT_EQ(rts::identify(*p), rts::kind::flow_control_ack_with_destination);
        EXPECT_EQ(std::get<rts::destination>(p->commands[0]).to, rts::forward_destination::client);
        acks.push_back(std::get<rts::flow_control_ack>(p->commands[1]));
      }
    }
  }
  // 1024-byte calls: an ack after every fourth call (4096 bytes = half of 8192).
  ASSERT_GE(acks.size(), 8u);
  for (const auto& a : acks) {
    EXPECT_EQ(a.available_window, 8192u);
    EXPECT_EQ(a.channel_cookie, c.in);
  }
  EXPECT_LE(sent - acks.back().bytes_received, 4096u);
  EXPECT_EQ(vc.counters().acks_sent, acks.size());
  EXPECT_EQ(vc.counters().rpc_in_bytes, sent);
}

TEST(VirtualConnection, ABindNakFinishesTheConnectionOnceSent) {
  const test::vc_cookies c;
  virtual_connection vc(c.vc, 6001, {});
  ASSERT_FALSE(vc.open_out(a1(c)));
  ASSERT_FALSE(vc.open_in(b1(c)));
  drain(vc);
  ASSERT_FALSE(vc.receive_in(test::bind_pdu(1, test::emsmdb_interface())));
  ASSERT_FALSE(vc.receive_in(test::bind_pdu(2, test::emsmdb_interface())));
  EXPECT_FALSE(vc.finished_sending());
  EXPECT_EQ(drain(vc).size(), 2u);  // bind_ack, bind_nak
  EXPECT_TRUE(vc.finished_sending());
  bool woken = false;
  vc.on_wake(c.out, [&] { woken = true; });
  vc.close("done");
  EXPECT_TRUE(woken);
  EXPECT_EQ(vc.receive_in(rts::encode(rts::ping_pdu())), "done");
}

/// A virtual connection with an EMSMDB association bound and `out_length` bytes per OUT channel.
struct recycling_vc {
  test::vc_cookies c;
  virtual_connection vc;
  explicit recycling_vc(std::uint64_t out_length)
      : vc(c.vc, 6001, vc_settings{.in_receive_window = 8192, .out_channel_length = out_length}) {
    EXPECT_FALSE(vc.open_out(a1(c, 1 << 20)));
    EXPECT_FALSE(vc.open_in(b1(c)));
    EXPECT_FALSE(vc.receive_in(test::bind_pdu(1, test::emsmdb_interface())));
    drain(vc);  // A3, C2, bind_ack
  }
};

TEST(VirtualConnection, AnOutChannelNearItsLengthIsReplacedByTheR2Sequence) {
  recycling_vc r(16 * 1024);
  auto& vc = r.vc;
  const rts::cookie old = r.c.out, successor = test::vc_cookies(7).out;
  // Faults (32 bytes each) until OUT_R2/A2: it comes before the channel's last 2 KiB, and RPC PDUs then wait.
  std::uint64_t on_old = 24 + 44 + 60, faults = 0;  // what the channel carried: A3, C2, the bind_ack
  std::uint32_t id = 2;
  bool asked = false;
  while (!asked) {
    ASSERT_FALSE(vc.receive_in(call(id++)));
    for (const auto& pdu : drain(vc)) {
      on_old += pdu.size();
      if (kind_of(pdu) == rts::kind::out_r2_a2) asked = true;
      else if (kind_of(pdu) == rts::kind::unknown) ++faults;
    }
    ASSERT_LT(id, 1000u);
  }
  EXPECT_LE(on_old, 16u * 1024 - fake_exchange::recycle_reserve + 28);  // A2 itself is 28 bytes
  for (int i = 0; i < 5; ++i) ASSERT_FALSE(vc.receive_in(call(id++)));
  EXPECT_TRUE(drain(vc).empty()) << "RPC PDUs wait for the new OUT channel";
  // The new channel: OUT_R1/A3 naming the old one. It is plugged; OUT_R2/A6 goes on the old channel.
  ASSERT_FALSE(vc.open_out_successor({r.c.vc, old, successor, 65536}));
  EXPECT_FALSE(vc.next_out(successor));
  auto out = drain(vc);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(kind_of(out[0]), rts::kind::out_r2_a6);
  // OUT_R2/A7 on IN: OUT_R2/B3 is the old channel's last PDU, and the successor takes over once it has gone.
  ASSERT_FALSE(vc.receive_in(rts::encode(rts::out_r2_a7(successor))));
  out = drain(vc);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(kind_of(out[0]), rts::kind::out_r2_b3);
  EXPECT_TRUE(vc.retired(old));
  EXPECT_FALSE(vc.next_out(old));
  EXPECT_EQ(vc.out_channel(), successor);
  EXPECT_FALSE(vc.out_header_due(successor)) << "no header before OUT_R2/C1 has come";
  EXPECT_FALSE(vc.next_out(successor));
  ASSERT_FALSE(vc.successor_out_ready(successor));
  EXPECT_TRUE(vc.out_header_due(successor));
  // The waiting faults go on the successor, within the window its A3 gave.
  std::uint64_t after = 0;
  while (auto p = vc.next_out(successor)) after += kind_of(*p) == rts::kind::unknown;
  EXPECT_EQ(faults + after, id - 2u) << "every call answered once";
  EXPECT_EQ(vc.counters().out_recycled, 1u);
}

TEST(VirtualConnection, OutRecyclingRefusesWhatIsOutOfOrder) {
  recycling_vc r(16 * 1024);
  auto& vc = r.vc;
  const rts::cookie successor = test::vc_cookies(7).out;
  EXPECT_EQ(vc.open_out_successor({r.c.vc, r.c.out, successor, 65536}),
            "OUT_R1/A3 when the server had not asked for a new OUT channel (no OUT_R2/A2 was sent)");
  EXPECT_EQ(vc.receive_in(rts::encode(rts::out_r2_a7(successor))), "OUT_R2/A7 before the server sent OUT_R2/A6");
  EXPECT_EQ(vc.successor_out_ready(successor), "OUT_R2/C1 on an OUT channel that is not replacing another");
  // An idle channel's pings use it up too: OUT_R2/A2 comes before the reserve is gone.
  recycling_vc idle(16 * 1024);
  std::uint64_t pings = 0;
  for (;;) {
    ASSERT_TRUE(idle.vc.ping_out(idle.c.out));
    ++pings;
    const auto out = drain(idle.vc);
    if (!out.empty()) {
      EXPECT_EQ(kind_of(out[0]), rts::kind::out_r2_a2);
      break;
    }
    ASSERT_LT(pings, 1000u);
  }
  const rts::cookie stranger = test::vc_cookies(9).out;
  EXPECT_EQ(idle.vc.open_out_successor({idle.c.vc, stranger, successor, 65536}).value().substr(0, 28),
            "OUT_R1/A3 names predecessor ");
  // Without a successor the reserve runs out, and then nothing more goes on the channel.
  while (idle.vc.ping_out(idle.c.out)) ASSERT_LT(++pings, 2000u);
}

TEST(VirtualConnection, AnInChannelIsReplacedWhenTheClientEndsItWithInR1A5) {
  recycling_vc r(1 << 20);
  auto& vc = r.vc;
  const rts::cookie old = r.c.in, successor = test::vc_cookies(7).in;
  for (std::uint32_t id = 2; id < 6; ++id) ASSERT_FALSE(vc.receive_in(call(id, 1000)));
  drain(vc);
  ASSERT_FALSE(vc.open_in_successor({r.c.vc, old, successor, 0}));
  auto out = drain(vc);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(kind_of(out[0]), rts::kind::in_r2_a4);
  EXPECT_EQ(vc.in_channel(), old) << "the successor is plugged until IN_R1/A5";
  EXPECT_EQ(vc.receive_in(successor, call(6)), "a PDU on an IN channel that is not open");
  EXPECT_EQ(vc.open_in_successor({r.c.vc, old, successor, 0}), "IN_R1/A1 while a replacement IN channel is already opening");
  ASSERT_FALSE(vc.receive_in(old, rts::encode(rts::in_r1_a5(successor))));
  EXPECT_TRUE(vc.retired(old));
  EXPECT_EQ(vc.in_channel(), successor);
  EXPECT_EQ(vc.receive_in(old, call(7)), "a PDU on an IN channel after its IN_R1/A5");
  // Flow control on the successor counts from 0 and names it.
  std::vector<rts::flow_control_ack> acks;
  for (std::uint32_t id = 7; id < 12; ++id) {
    ASSERT_FALSE(vc.receive_in(successor, call(id, 1000)));
    for (const auto& pdu : drain(vc)) {
      const auto decoded = rts::decode(pdu);
      if (const auto* p = std::get_if<rts::pdu>(&decoded)) acks.push_back(std::get<rts::flow_control_ack>(p->commands[1]));
    }
  }
  ASSERT_FALSE(acks.empty());
  EXPECT_EQ(acks[0].channel_cookie, successor);
  EXPECT_EQ(acks[0].bytes_received, 4u * 1024);
  EXPECT_EQ(vc.counters().in_recycled, 1u);
  const rts::cookie stranger = test::vc_cookies(9).in;
  EXPECT_EQ(vc.receive_in(successor, rts::encode(rts::in_r1_a5(stranger))),
            "IN_R1/A5 names a successor IN channel that did not open");
}

TEST(VirtualConnection, TheTableJoinsChannelsByCookie) {
  fake_exchange::vc_table table;
  const test::vc_cookies one(1), two(2);
  const auto a = table.find_or_create(one.vc, 6001, {});
  const auto b = table.find_or_create(one.vc, 6001, {});
  const auto other = table.find_or_create(two.vc, 6004, {});
  EXPECT_EQ(a, b);
  EXPECT_NE(a, other);
  EXPECT_EQ(table.size(), 2u);
  table.forget(*a);
  EXPECT_EQ(table.size(), 1u);
  EXPECT_NE(table.find_or_create(one.vc, 6001, {}), a);
}

}  // namespace
}  // namespace exbridge
