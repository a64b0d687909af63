// exbridge's timers over real TLS on loopback: every named timeout is triggered (durations in
// milliseconds) and checked by its termination counter.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/pem.h>
#include <sys/socket.h>

#include <fstream>
#include <sstream>

#include "common/errors.hpp"
#include "tests/support/bridge_fixture.hpp"

namespace exbridge::proxy {
namespace {

using namespace std::chrono_literals;
using test::BridgeTest;
using test::client;

/// The bridge between a test client and a scripted upstream, with timeouts of milliseconds.
class TimeoutTest : public BridgeTest {};

TEST_F(TimeoutTest, DownstreamHandshakeTimeoutClosesASilentConnection) {
  bridge_options o = options_for_upstream();
  o.timeouts.downstream_handshake = 100ms;
  start_bridge(o);
  const auto closed = io_.run([&]() -> net::awaitable<error_code> {
    tcp::socket s(io_.context());
    co_await s.async_connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port()), use_tuple);
    char byte;
    auto [ec, n] = co_await s.async_read_some(net::buffer(&byte, 1), use_tuple);  // no ClientHello sent
    co_return ec;
  }());
  EXPECT_TRUE(closed) << "the bridge should have closed the connection";
  EXPECT_TRUE(wait_for_end(termination::downstream_handshake_timeout));
  EXPECT_EQ(stat(counter::downstream_tls_handshake_fail), 1);
}

TEST_F(TimeoutTest, ClientIdleTimeoutClosesAConnectionThatNeverAsks) {
  bridge_options o = options_for_upstream();
  o.timeouts.client_idle = 100ms;
  start_bridge(o);
  EXPECT_EQ(send_and_wait_close(""), "");
  EXPECT_TRUE(wait_for_end(termination::client_idle_timeout));
  EXPECT_EQ(upstream_.connections(), 0);
}

TEST_F(TimeoutTest, KeepAliveIdleTimeoutClosesBetweenRequests) {
  bridge_options o = options_for_upstream();
  o.timeouts.keep_alive_idle = 100ms;
  start_bridge(o);
  const auto [status, rest] = io_.run([&]() -> net::awaitable<std::pair<unsigned, std::string>> {
    client c(io_.context());
    co_await c.connect(port());
    const auto r = co_await c.request("/");
    std::string after = co_await c.read_until_close();
    co_return std::make_pair(r.status, after);
  }());
  EXPECT_EQ(status, 200u);
  EXPECT_EQ(rest, "");
  EXPECT_TRUE(wait_for_end(termination::keep_alive_timeout));
  EXPECT_EQ(ended(termination::normal), 1);
}

TEST_F(TimeoutTest, RequestHeadersTimeoutGives408) {
  bridge_options o = options_for_upstream();
  o.timeouts.request_headers = 100ms;
  start_bridge(o);
  const std::string reply = send_and_wait_close("GET / HTTP/1.1\r\nHost: x\r\n");
  EXPECT_EQ(reply.rfind("HTTP/1.1 408 ", 0), 0u) << reply;
  EXPECT_EQ(ended(termination::request_headers_timeout), 1);
}

TEST_F(TimeoutTest, ClientDataTimeoutWhenTheUploadStalls) {
  bridge_options o = options_for_upstream();
  o.timeouts.client_data = 100ms;
  start_bridge(o);
  send_and_wait_close("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n0123456789");
  EXPECT_EQ(ended(termination::request_body_timeout), 1);
  EXPECT_EQ(ended(termination::response_headers_timeout), 0);
}

TEST_F(TimeoutTest, ClientWriteTimeoutWhenTheClientStopsReading) {
  bridge_options o = options_for_upstream();
  o.timeouts.client_data = 200ms;
  start_bridge(o);
  auto reading = std::make_shared<client>(io_.context());
  io_.run([&]() -> net::awaitable<int> {
    co_await reading->connect(port());
    co_await reading->send("GET /big/1073741824 HTTP/1.1\r\nHost: x\r\n\r\n");  // and never reads it
    co_return 0;
  }());
  EXPECT_TRUE(wait_for_end(termination::client_write_timeout));
  EXPECT_EQ(ended(termination::response_body_timeout), 0);
  io_.stop();
}

TEST_F(TimeoutTest, UpstreamConnectTimeoutGives504) {
  // A listener whose accept queue is full drops further SYNs, so a connect hangs as to a dead host.
  tcp::acceptor full(io_.context(), tcp::endpoint(net::ip::make_address("127.0.0.1"), 0), false);
  full.listen(0);
  std::vector<tcp::socket> fillers;
  for (int i = 0; i < 4; ++i) {  // raw non-blocking connects: asio's synchronous connect would wait
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(full.local_endpoint().port());
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    (void)::connect(fd, reinterpret_cast<const sockaddr*>(&to), sizeof to);
    fillers.emplace_back(io_.context(), tcp::v4(), fd);
  }
  bridge_options o = options_for_upstream();
  o.upstream.address.port = full.local_endpoint().port();
  o.timeouts.upstream_connect = 200ms;
  start_bridge(o);
  const auto r = request_once("/");
  EXPECT_EQ(r.status, 504u) << r.body;
  EXPECT_NE(r.body.find("upstream-connect-timeout"), std::string::npos) << r.body;
  EXPECT_EQ(ended(termination::upstream_connect_timeout), 1);
}

TEST_F(TimeoutTest, UpstreamHandshakeTimeoutGives504) {
  tcp::acceptor silent(io_.context(), tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));  // accepts, says nothing
  bridge_options o = options_for_upstream();
  o.upstream.address.port = silent.local_endpoint().port();
  o.timeouts.upstream_handshake = 150ms;
  start_bridge(o);
  const auto r = request_once("/");
  EXPECT_EQ(r.status, 504u) << r.body;
  EXPECT_NE(r.body.find("upstream-tls-handshake-timeout"), std::string::npos) << r.body;
  EXPECT_EQ(ended(termination::upstream_handshake_timeout), 1);
}

TEST_F(TimeoutTest, ResponseHeadersTimerStartsOnlyOnceTheRequestIsSent) {
  // HAProxy's `timeout server` fires during slow uploads (issues #949, #1681) and blames the server.
  // Here a 400 ms upload under a 100 ms response-headers timeout must succeed.
  bridge_options o = options_for_upstream();
  o.timeouts.response_headers = 100ms;
  start_bridge(o);
  const std::string reply = io_.run([&]() -> net::awaitable<std::string> {
    client c(io_.context());
    co_await c.connect(port());
    std::string head = "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 4000\r\nConnection: close\r\n\r\n";
    co_await c.send(head);
    net::steady_timer pause(io_.context());
    for (int i = 0; i < 4; ++i) {
      std::string piece;
      for (int j = 0; j < 1000; ++j) piece += test::pattern_byte(static_cast<std::uint64_t>(i * 1000 + j));
      co_await c.send(piece);
      pause.expires_after(100ms);
      co_await pause.async_wait(use_tuple);
    }
    co_return co_await c.read_until_close();
  }());
  EXPECT_EQ(reply.rfind("HTTP/1.1 200 ", 0), 0u) << reply;
  EXPECT_NE(reply.find("bytes=4000 ok"), std::string::npos) << reply;
  EXPECT_EQ(ended(termination::response_headers_timeout), 0);
}

TEST_F(TimeoutTest, UpstreamDataTimeoutWhenTheResponseStalls) {
  bridge_options o = options_for_upstream();
  o.timeouts.upstream_data = 100ms;
  start_bridge(o);
  const auto r = request_once("/partial/1000");
  EXPECT_TRUE(r.ec) << "a truncated body must not look complete";
  EXPECT_EQ(r.body_bytes, 500u);
  EXPECT_EQ(ended(termination::response_body_timeout), 1);
}

TEST_F(TimeoutTest, UpstreamWriteTimeoutWhenTheUpstreamStopsReading) {
  bridge_options o = options_for_upstream();
  o.timeouts.upstream_data = 200ms;
  start_bridge(o);
  auto uploader = std::make_shared<client>(io_.context());
  net::co_spawn(io_.context(), [&]() -> net::awaitable<void> {
    co_await uploader->connect(port());
    co_await uploader->request("/noread", 256ull << 20);  // far more than the socket buffers hold
  }, net::detached);
  EXPECT_TRUE(wait_for_end(termination::upstream_write_timeout));
  EXPECT_EQ(ended(termination::request_body_timeout), 0);
  io_.stop();
}

TEST_F(TimeoutTest, RpcChannelsUseTheLongLivedTimerNotTheDataTimer) {
  bridge_options o = options_for_upstream();
  o.timeouts.upstream_data = 50ms;
  o.timeouts.rpc_idle = 300ms;
  start_bridge(o);
  const auto started = std::chrono::steady_clock::now();
  const auto r = request_once("/rpc/rpcproxy.dll/partial/1000");
  const auto lasted = std::chrono::steady_clock::now() - started;
  EXPECT_TRUE(r.ec);
  EXPECT_EQ(r.body_bytes, 500u);
  EXPECT_EQ(ended(termination::rpc_upstream_idle_timeout), 1);
  EXPECT_EQ(ended(termination::response_body_timeout), 0);
  EXPECT_GE(lasted, 300ms);
}

TEST_F(TimeoutTest, MinimumThroughputWatchdogEndsATricklingResponse) {
  bridge_options o = options_for_upstream();
  o.timeouts.min_throughput = 200'000;  // bytes/s; the trickle sends about 1 KiB every 20 ms (50 KB/s)
  o.timeouts.throughput_window = 200ms;
  start_bridge(o);
  const auto r = request_once("/trickle/1000000?every=20");
  EXPECT_TRUE(r.ec);
  EXPECT_LT(r.body_bytes, 1000000u);
  EXPECT_EQ(ended(termination::upstream_too_slow), 1);
  EXPECT_EQ(ended(termination::response_body_timeout), 0);
}

TEST_F(TimeoutTest, TheThroughputWatchdogIsOffByDefault) {
  start_bridge(options_for_upstream());
  const auto r = request_once("/trickle/20000?every=5");
  EXPECT_FALSE(r.ec) << r.ec.message();
  EXPECT_EQ(r.body_bytes, 20000u);
  EXPECT_TRUE(r.pattern_ok);
}

// Full duplex: IIS refuses an oversized body at once (HTTP 413 / 404.13) without reading it. The client
// must get that answer, not a 502 from a relay still pushing the body.

}  // namespace
}  // namespace exbridge::proxy
