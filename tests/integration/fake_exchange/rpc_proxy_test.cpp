// Outlook Anywhere (RPC over HTTP v2) on fake-exchange over real TLS 1.0: echo probes, a virtual connection
// opened as a client opens it (CONN/A1 and CONN/B1 answered with CONN/A3 and CONN/C2, then pings), a DCE/RPC
// bind and call across it, an IN channel read without an answer, protocol errors closing channels, rpcproxy's
// 503 for a port outside ValidPorts, IIS authentication (Basic, and NTLM on zero-length requests).
#include <gtest/gtest.h>

#include "common/ntlm.hpp"
#include "fake_exchange/rpc_proxy.hpp"
#include "tests/support/exchange_lab.hpp"
#include "tests/support/rpc_over_http.hpp"

namespace exbridge {
namespace {

using fake_exchange::rts_echo_pdu;
using fake_exchange::rts_ping_pdu;

using test::rpc_request;

TEST(RpcProxy, RtsPdusAreTwentyBytesWithTheirFlags) {
  const std::string echo = rts_echo_pdu(), ping = rts_ping_pdu();
  ASSERT_EQ(echo.size(), 20u);
  ASSERT_EQ(ping.size(), 20u);
  EXPECT_EQ(echo[0], 5);   // rpc_vers
  EXPECT_EQ(echo[2], 20);  // PTYPE rts
  EXPECT_EQ(echo[8], 20);  // frag_length
  EXPECT_EQ(echo[16], 0x40);  // RTS_FLAG_ECHO
  EXPECT_EQ(ping[16], 1);  // RTS_FLAG_PING
}

TEST(RpcProxy, EchoRequestsGetTwentyBytesOnAKeepAliveConnection) {
  test::exchange_lab lab;
  const auto [in, out] = lab.io().run([&]() -> net::awaitable<std::pair<http::response<http::string_body>,
                                                                           http::response<http::string_body>>> {
    auto stream = co_await lab.connect();
    beast::flat_buffer buffer;
    // (Requests are built as named locals: GCC 12 mis-handles string temporaries inside co_await.)
    const std::string in_echo = rpc_request("RPC_IN_DATA", "6001", 4, test::demo_basic_auth()) + "ABCD";
    const std::string out_echo = rpc_request("RPC_OUT_DATA", "6004", 0, test::demo_basic_auth());
    co_await test::send_text(stream, in_echo);
    auto first = co_await test::read_response(stream, buffer);
    co_await test::send_text(stream, out_echo);
    auto second = co_await test::read_response(stream, buffer);
    co_return std::make_pair(std::move(first), std::move(second));
  }());
  for (const auto* res : {&in, &out}) {
    EXPECT_EQ(res->result(), http::status::ok);
    EXPECT_EQ(res->reason(), "Success");
    EXPECT_EQ((*res)[http::field::content_type], "application/rpc");
    EXPECT_EQ(res->body(), rts_echo_pdu());
  }
  EXPECT_EQ(lab.wait_for_request(1).operation, "RPC_IN_DATA");
  EXPECT_EQ(lab.wait_for_request(2).user, fake_exchange::demo_email);
}

TEST(RpcProxy, UnauthenticatedRequestsGetIisOffers) {
  test::exchange_lab lab;
  const auto res = lab.io().run([&]() -> net::awaitable<http::response<http::string_body>> {
    auto stream = co_await lab.connect();
    beast::flat_buffer buffer;
    const std::string request = rpc_request("RPC_IN_DATA", "6001", 0, "");
    co_await test::send_text(stream, request);
    co_return co_await test::read_response(stream, buffer);
  }());
  EXPECT_EQ(res.result(), http::status::unauthorized);
  std::vector<std::string> offered;
  const auto [first, last] = res.equal_range(http::field::www_authenticate);
  for (auto it = first; it != last; ++it) offered.emplace_back(it->value());
  EXPECT_EQ(offered, (std::vector<std::string>{"Negotiate", "NTLM", "Basic realm=\"mail.contoso.example\""}));
}

TEST(RpcProxy, PortsOutsideValidPortsGetRpcError503) {
  test::exchange_lab lab;
  for (const std::string port : {"6003", "135", "x"}) {
    const auto res = lab.io().run([&]() -> net::awaitable<http::response<http::string_body>> {
      auto stream = co_await lab.connect();
      beast::flat_buffer buffer;
      const std::string request = rpc_request("RPC_IN_DATA", port, 0, test::demo_basic_auth());
      co_await test::send_text(stream, request);
      co_return co_await test::read_response(stream, buffer);
    }());
    EXPECT_EQ(res.result(), http::status::service_unavailable) << port;
    EXPECT_EQ(res.version(), 10u) << port;
    EXPECT_EQ(res.reason(), "RPC Error: 5") << port;
  }
}

rts::kind kind_of(const std::string& pdu) {
  const auto decoded = rts::decode(pdu);
  const auto* p = std::get_if<rts::pdu>(&decoded);
  return p == nullptr ? rts::kind::unknown : rts::identify(*p);
}

/// Opens a virtual connection (IN first, then OUT, as Windows does) and collects the OUT channel's first
/// `count` PDUs, then closes both channels.
struct opened {
  unsigned status = 0;
  std::uint64_t declared = 0;
  std::vector<std::string> pdus;
};
opened open_virtual_connection(test::exchange_lab& lab, std::size_t count, const std::string& after_c2 = "") {
  return lab.io().run([&]() -> net::awaitable<opened> {
    const test::vc_cookies cookies;
    auto in = co_await lab.connect();
    const std::string in_head = rpc_request("RPC_IN_DATA", "6001", 1'073'741'824, test::demo_basic_auth()) +
                                test::conn_b1(cookies);
    co_await test::send_text(in, in_head);
    auto out = co_await lab.connect();
    const std::string out_head = rpc_request("RPC_OUT_DATA", "6001", 76, test::demo_basic_auth()) + test::conn_a1(cookies);
    co_await test::send_text(out, out_head);
    test::out_reader reader(out);
    opened o;
    o.status = co_await reader.read_header();
    o.declared = reader.declared();
    while (o.pdus.size() < count) {
      o.pdus.push_back(co_await reader.next());
      if (o.pdus.size() == 2 && !after_c2.empty()) co_await test::send_text(in, after_c2);
    }
    in.next_layer().close();
    out.next_layer().close();
    co_return o;
  }());
}

TEST(RpcProxy, AVirtualConnectionOpensWithConnA3ThenConnC2ThenPings) {
  fake_exchange::server_options options;
  options.rpc_ping_interval = std::chrono::milliseconds(20);
  test::exchange_lab lab(options);
  const auto o = open_virtual_connection(lab, 5);
  EXPECT_EQ(o.status, 200u);
  EXPECT_EQ(o.declared, 1'073'741'824u);
  ASSERT_EQ(o.pdus.size(), 5u);
  // Clients read A3 and C2 by position (impacket does): nothing may come before them.
  EXPECT_EQ(kind_of(o.pdus[0]), rts::kind::conn_a3);
  EXPECT_EQ(kind_of(o.pdus[1]), rts::kind::conn_c2);
  for (std::size_t i = 2; i < 5; ++i) EXPECT_EQ(o.pdus[i], rts_ping_pdu()) << i;
  // CONN/C2: Version 1, the inbound proxy's receive window (64 KiB), the connection timeout (the ping interval).
  EXPECT_EQ(o.pdus[1], rts::encode(rts::conn_c2(65536, 20)));
  EXPECT_EQ(o.pdus[0], rts::encode(rts::conn_a3(20)));
  const auto first = lab.wait_for_request(1), second = lab.wait_for_request(2);
  const auto& out = first.operation == "RPC_OUT_DATA" ? first : second;
  EXPECT_EQ(out.status, 200u);
  EXPECT_EQ(out.bytes_in, 76u);
  EXPECT_GE(lab.server().stats().snapshot().rpc_out_pings, 3u);
}

// IIS's connection timeout (120 s) guards a client that stops reading a response; between two pings an
// OUT channel is idle by design (900 s), so the timeout must not run there (it used to cut the channel
// 120 s after the first ping).
TEST(RpcProxy, OutChannelIdleBetweenPingsOutlivesTheConnectionTimeout) {
  fake_exchange::server_options options;
  options.rpc_ping_interval = std::chrono::milliseconds(60);
  options.idle_timeout = std::chrono::milliseconds(40);
  test::exchange_lab lab(options);
  const auto o = open_virtual_connection(lab, 6);  // throws if the channel is cut
  EXPECT_EQ(o.status, 200u);
  EXPECT_EQ(o.pdus.back(), rts_ping_pdu());
}

TEST(RpcProxy, ABindAndACallCrossTheVirtualConnection) {
  test::exchange_lab lab;
  dcerpc::pdu call;
  call.type = dcerpc::ptype::request;
  call.call_id = 2;
  call.content = dcerpc::request_body{4, 0, 10, std::nullopt, std::string(4, '\0')};  // EcDoConnectEx, no RPC auth
  const auto o = open_virtual_connection(lab, 4, test::bind_pdu(1, test::emsmdb_interface()) + dcerpc::encode(call));
  const auto ack = dcerpc::decode(o.pdus[2]);
  ASSERT_TRUE(std::holds_alternative<dcerpc::pdu>(ack)) << std::get<dcerpc::decode_error>(ack).what;
  const auto& bind_ack = std::get<dcerpc::pdu>(ack);
  ASSERT_EQ(bind_ack.type, dcerpc::ptype::bind_ack);
  EXPECT_EQ(bind_ack.call_id, 1u);
  const auto& body = std::get<dcerpc::bind_ack_body>(bind_ack.content);
  EXPECT_EQ(body.secondary_address, "6001");
  EXPECT_EQ(body.max_xmit_frag, 4280u);
  ASSERT_EQ(body.results.size(), 1u);
  EXPECT_EQ(body.results[0].outcome, dcerpc::result::acceptance);
  // EMSMDB is secure-only: a call without RPC authentication is refused before it runs.
  const auto fault = dcerpc::decode(o.pdus[3]);
  ASSERT_TRUE(std::holds_alternative<dcerpc::pdu>(fault));
  const auto& f = std::get<dcerpc::pdu>(fault);
  ASSERT_EQ(f.type, dcerpc::ptype::fault);
  EXPECT_EQ(std::get<dcerpc::fault_body>(f.content).status, dcerpc::status::access_denied);
  EXPECT_NE(f.flags & dcerpc::did_not_execute, 0);
}

TEST(RpcProxy, AChannelThatDoesNotOpenWithItsConnPduIsClosedWithoutAnAnswer) {
  test::exchange_lab lab;
  const auto [out_closed, in_closed] = lab.io().run([&]() -> net::awaitable<std::pair<bool, bool>> {
    auto out = co_await lab.connect();
    const std::string out_head = rpc_request("RPC_OUT_DATA", "6001", 76, test::demo_basic_auth()) + std::string(76, 'x');
    co_await test::send_text(out, out_head);
    std::array<char, 64> sink;
    auto [out_ec, out_n] = co_await out.async_read_some(net::buffer(sink), use_tuple);
    auto in = co_await lab.connect();
    const std::string in_head = rpc_request("RPC_IN_DATA", "6001", 1'073'741'824, test::demo_basic_auth()) +
                                rts::encode(rts::ping_pdu());
    co_await test::send_text(in, in_head);
    auto [in_ec, in_n] = co_await in.async_read_some(net::buffer(sink), use_tuple);
    co_return std::make_pair(out_n == 0 && out_ec, in_n == 0 && in_ec);
  }());
  EXPECT_TRUE(out_closed);
  EXPECT_TRUE(in_closed);
  EXPECT_EQ(lab.wait_for_request(1).error, "protocol error: the OUT channel did not begin with CONN/A1 or OUT_R1/A3");
  EXPECT_EQ(lab.wait_for_request(2).error, "protocol error: the IN channel did not begin with CONN/B1 or IN_R1/A1");
  EXPECT_EQ(lab.wait_for_request(2).status, 0u);
}

TEST(RpcProxy, NtlmOnZeroLengthRequestsThenAnInChannelConsumedWithoutAnswer) {
  test::exchange_lab lab;
  constexpr std::uint64_t sent = 8 * 1024 * 1024;
  const auto [challenge_status, echo_status] = lab.io().run([&]() -> net::awaitable<std::pair<unsigned, unsigned>> {
    auto stream = co_await lab.connect();
    beast::flat_buffer buffer;
    // NTLM as Outlook does it: Type 1 and Type 3 on zero-length requests, all on one connection...
    const std::string type1 = rpc_request("RPC_IN_DATA", "6001", 0, http_token("NTLM", make_negotiate()));
    co_await test::send_text(stream, type1);
    const auto challenge = co_await test::read_response(stream, buffer);
    const auto type2 = decode_http_token(challenge[http::field::www_authenticate]).value_or("");
    const auto type3 = make_authenticate(type2, "alex.wilber", "CONTOSO", std::string(fake_exchange::demo_password),
                                         "WS01", ntlm_random_challenge(), ntlm_filetime_now());
    const std::string with_type3 = rpc_request("RPC_IN_DATA", "6001", 0, http_token("NTLM", type3));
    co_await test::send_text(stream, with_type3);
    const auto echo = co_await test::read_response(stream, buffer);
    // ...then the 1 GB IN channel on the authenticated connection, without credentials: CONN/B1 and the
    // client's pings.
    const std::string channel = rpc_request("RPC_IN_DATA", "6001", 1'073'741'824, "");
    co_await test::send_text(stream, channel);
    const std::string body = test::in_channel_body(test::vc_cookies(), sent);
    co_await net::async_write(stream, net::buffer(body), net::use_awaitable);
    stream.next_layer().close();  // the client ends its IN channel
    co_return std::make_pair(challenge.result_int(), echo.result_int());
  }());
  EXPECT_EQ(challenge_status, 401u);
  EXPECT_EQ(echo_status, 200u);
  const auto rec = lab.wait_for_request(3);
  EXPECT_EQ(rec.operation, "RPC_IN_DATA");
  EXPECT_EQ(rec.user, fake_exchange::demo_email);
  EXPECT_EQ(rec.status, 0u) << "an IN channel is never answered while healthy";
  EXPECT_EQ(rec.bytes_out, 0u);
  EXPECT_EQ(rec.bytes_in, sent);
  EXPECT_EQ(lab.server().stats().snapshot().rpc_in_bytes, sent);
}

}  // namespace
}  // namespace exbridge
