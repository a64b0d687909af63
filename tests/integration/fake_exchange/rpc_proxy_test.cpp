// Outlook Anywhere (RPC over HTTP) on fake-exchange over real TLS 1.0: echo probes, the OUT channel's
// never-ending 200 with keep-alive pings, an IN channel consumed without an answer, rpcproxy's 503 for a
// port outside ValidPorts, IIS authentication (Basic, and NTLM on zero-length requests of one connection).
#include <gtest/gtest.h>

#include "common/ntlm.hpp"
#include "fake_exchange/rpc_proxy.hpp"
#include "tests/support/exchange_lab.hpp"

namespace exbridge {
namespace {

using fake_exchange::rts_echo_pdu;
using fake_exchange::rts_ping_pdu;

std::string rpc_request(const std::string& method, const std::string& port, std::uint64_t length,
                        const std::string& authorization) {
  std::string r = method + " /rpc/rpcproxy.dll?ex2007.contoso.example:" + port +
                  " HTTP/1.1\r\nHost: mail.contoso.example\r\nAccept: application/rpc\r\nUser-Agent: MSRPC\r\n"
                  "Cache-Control: no-cache\r\nPragma: No-cache\r\nConnection: Keep-Alive\r\n";
  if (!authorization.empty()) r += "Authorization: " + authorization + "\r\n";
  return r + "Content-Length: " + std::to_string(length) + "\r\n\r\n";
}

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

/// Opens an OUT channel and reads until `pings` ping PDUs have arrived: (status, declared length, body).
std::tuple<unsigned, std::uint64_t, std::string> read_out_channel(test::exchange_lab& lab, std::size_t pings) {
  return lab.io().run([&]() -> net::awaitable<std::tuple<unsigned, std::uint64_t, std::string>> {
    auto stream = co_await lab.connect();
    beast::flat_buffer buffer;
    // The OUT channel's request carries CONN/A1 (76 bytes); its content is opaque to the stub.
    const std::string request = rpc_request("RPC_OUT_DATA", "6001", 76, test::demo_basic_auth()) +
                                std::string(76, '\x05');
    co_await test::send_text(stream, request);
    http::response_parser<http::buffer_body> parser;
    parser.body_limit(boost::none);
    co_await http::async_read_header(stream, buffer, parser, net::use_awaitable);
    std::string body;
    std::array<char, 256> chunk;
    while (body.size() < pings * 20) {  // each read waits for the next ping: data, not time, drives the test
      parser.get().body().data = chunk.data();
      parser.get().body().size = chunk.size();
      auto [ec, n] = co_await http::async_read(stream, buffer, parser, use_tuple);
      if (ec && ec != http::error::need_buffer) throw boost::system::system_error(ec);
      body.append(chunk.data(), chunk.size() - parser.get().body().size);
    }
    stream.next_layer().close();
    co_return std::make_tuple(parser.get().result_int(), parser.content_length().value_or(0), body);
  }());
}

TEST(RpcProxy, OutChannelDeclaresAGigabyteAndStreamsPings) {
  fake_exchange::server_options options;
  options.rpc_ping_interval = std::chrono::milliseconds(20);
  test::exchange_lab lab(options);
  constexpr std::size_t pings = 3;
  const auto [status, declared, received] = read_out_channel(lab, pings);
  EXPECT_EQ(status, 200u);
  EXPECT_EQ(declared, 1'073'741'824u);
  ASSERT_GE(received.size(), pings * 20);
  for (std::size_t i = 0; i + 20 <= received.size(); i += 20) EXPECT_EQ(received.substr(i, 20), rts_ping_pdu()) << i;
  const auto rec = lab.wait_for_request(1);  // logged when the client closes the channel
  EXPECT_EQ(rec.status, 200u);
  EXPECT_EQ(rec.operation, "RPC_OUT_DATA");
  EXPECT_EQ(rec.bytes_in, 76u);
  EXPECT_GE(lab.server().stats().snapshot().rpc_out_pings, pings);
}

// IIS's connection timeout (120 s) guards a client that stops reading a response; between two pings an
// OUT channel is idle by design (900 s), so the timeout must not run there (it used to cut the channel
// 120 s after the first ping).
TEST(RpcProxy, OutChannelIdleBetweenPingsOutlivesTheConnectionTimeout) {
  fake_exchange::server_options options;
  options.rpc_ping_interval = std::chrono::milliseconds(60);
  options.idle_timeout = std::chrono::milliseconds(40);
  test::exchange_lab lab(options);
  const auto [status, declared, received] = read_out_channel(lab, 4);  // throws if the channel is cut
  EXPECT_EQ(status, 200u);
  EXPECT_GE(received.size(), 4u * 20);
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
    // ...then the 1 GB IN channel on the authenticated connection, without credentials.
    const std::string channel = rpc_request("RPC_IN_DATA", "6001", 1'073'741'824, "");
    co_await test::send_text(stream, channel);
    std::vector<char> chunk(64 * 1024);
    for (std::uint64_t done = 0; done < sent; done += chunk.size()) {
      for (std::size_t i = 0; i < chunk.size(); ++i) chunk[i] = static_cast<char>((done + i) * 7);
      co_await net::async_write(stream, net::buffer(chunk), net::use_awaitable);
    }
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
