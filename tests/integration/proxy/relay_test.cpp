// Relaying over real TLS on loopback: exbridge (in process) between a TLS 1.2/1.3 client and a TLS 1.0
// upstream (tests/support/bridge_fixture.hpp): forwarded headers, keep-alive, streaming both ways, and what
// the client hears when the upstream fails.
#include <gtest/gtest.h>

#include <cstdlib>
#include <iostream>

#include "tests/support/bridge_fixture.hpp"

namespace exbridge::proxy {
namespace {

using test::BridgeTest;
using test::client;
using test::rss_kib;

/// The bridge between a test client and a scripted upstream.
class RelayTest : public BridgeTest {};

TEST_F(RelayTest, RelaysWithForwardingHeadersAndNoVia) {
  start_bridge(options_for_upstream());
  const auto r = io_.run([&]() -> net::awaitable<client::reply> {
    client c(io_.context());
    if (auto ec = co_await c.connect(port())) co_return client::reply{ec};
    // (A named vector: GCC 12 mis-compiles string-literal braced lists inside co_await expressions.)
    std::vector<std::pair<std::string, std::string>> headers{{"X-Custom-Case", "kept"}};
    co_return co_await c.request("/", 0, false, headers);
  }());
  ASSERT_FALSE(r.ec) << r.ec.message();
  EXPECT_EQ(r.status, 200u);
  EXPECT_NE(r.body.find("X-Forwarded-For: 127.0.0.1\n"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("X-Forwarded-Proto: https\n"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("X-Forwarded-Port: " + std::to_string(port()) + "\n"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("X-Custom-Case: kept\n"), std::string::npos) << r.body;
  EXPECT_EQ(r.body.find("Via:"), std::string::npos) << r.body;
}

TEST_F(RelayTest, ConfiguredResponseHeadersReachTheClient) {
  bridge_options o = options_for_upstream();
  o.response_headers = {{"X-Frame-Options", "SAMEORIGIN"}, {"X-Content-Type-Options", "nosniff"}};
  start_bridge(o);
  const std::string reply = raw_once("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(reply.rfind("HTTP/1.1 200 ", 0), 0u) << reply;
  EXPECT_NE(reply.find("X-Frame-Options: SAMEORIGIN\r\n"), std::string::npos) << reply;
  EXPECT_NE(reply.find("X-Content-Type-Options: nosniff\r\n"), std::string::npos) << reply;
}

TEST_F(RelayTest, KeepAliveReusesTheSameUpstreamConnection) {
  start_bridge(options_for_upstream());
  const auto statuses = io_.run([&]() -> net::awaitable<std::vector<unsigned>> {
    client c(io_.context());
    std::vector<unsigned> out;
    if (co_await c.connect(port())) co_return out;
    for (int i = 0; i < 5; ++i) out.push_back((co_await c.request("/")).status);
    co_return out;
  }());
  EXPECT_EQ(statuses, (std::vector<unsigned>{200, 200, 200, 200, 200}));
  EXPECT_EQ(upstream_.connections(), 1);
  EXPECT_EQ(stat(counter::upstream_cx_total), 1);
  EXPECT_EQ(stat(counter::upstream_rq_total), 5);
}

TEST_F(RelayTest, SeparateClientsNeverShareAnUpstreamConnection) {
  start_bridge(options_for_upstream());
  io_.run([&]() -> net::awaitable<int> {
    client a(io_.context()), b(io_.context());
    co_await a.connect(port());
    co_await b.connect(port());
    std::vector<std::pair<std::string, std::string>> ntlm{
        {"Authorization", "NTLM TlRMTVNTUAABAAAAB4IIogAAAAAAAAAAAAAAAAAAAAAGAbEdAAAADw=="}};
    co_await a.request("/", 0, false, ntlm);
    co_await b.request("/");
    co_await a.request("/");
    co_return 0;
  }());
  EXPECT_EQ(upstream_.connections(), 2);
  EXPECT_EQ(stat(counter::upstream_rq_pinned), 2);  // the NTLM client's two requests
}

// Size knob: EXBRIDGE_STREAM_BYTES (default 64 MiB; the slow ctest entry runs 1 GiB, and 4 GiB is
// EXBRIDGE_STREAM_BYTES=4294967296). Client, bridge and upstream share this process, so flat RSS here means
// none of the three buffers a body.
TEST_F(RelayTest, StreamsLargeBodiesBothWaysByteExact) {
  start_bridge(options_for_upstream());
  const char* knob = std::getenv("EXBRIDGE_STREAM_BYTES");
  const std::uint64_t size = knob != nullptr ? std::stoull(knob) : 64ull << 20;
  const long rss_before = rss_kib();
  const auto [down, chunked_down, up, chunked_up] = io_.run(
      [&]() -> net::awaitable<std::tuple<client::reply, client::reply, client::reply, client::reply>> {
        client c(io_.context());
        co_await c.connect(port());
        const std::string big = "/big/" + std::to_string(size);
        const std::string big_chunked = big + "?chunked";
        auto a = co_await c.request(big);
        auto b = co_await c.request(big_chunked);
        std::vector<std::pair<std::string, std::string>> none;
        auto u = co_await c.request("/upload", size, false, none, "RPC_IN_DATA");  // Outlook Anywhere's IN channel
        auto v = co_await c.request("/upload", size, true);
        co_return std::make_tuple(a, b, u, v);
      }(),
      std::chrono::seconds(120 + size / (5 << 20)));
  const long growth_kib = rss_kib() - rss_before;
  EXPECT_EQ(down.body_bytes, size);
  EXPECT_TRUE(down.pattern_ok);
  EXPECT_EQ(chunked_down.body_bytes, size);
  EXPECT_TRUE(chunked_down.pattern_ok);
  EXPECT_EQ(up.body, "bytes=" + std::to_string(size) + " ok");
  EXPECT_EQ(chunked_up.body, "bytes=" + std::to_string(size) + " ok");
  if (test::rss_is_meaningful) {
    EXPECT_LT(growth_kib, 64 * 1024) << "RSS grew by " << growth_kib << " KiB while streaming";
  }
  std::cout << "streamed " << size << " bytes x 4 (response: Content-Length and chunked; request: RPC_IN_DATA with "
               "Content-Length, and chunked) byte-exact; RSS growth "
            << growth_kib << " KiB\n";
}

TEST_F(RelayTest, UnreachableUpstreamGives503WithTheReason) {
  bridge_options o = options_for_upstream();
  {
    tcp::acceptor closed(io_.context(), tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
    o.upstream.address.port = closed.local_endpoint().port();
  }  // nothing listens there now
  start_bridge(o);
  const auto r = request_once("/");
  EXPECT_EQ(r.status, 503u);
  EXPECT_NE(r.body.find("upstream-connect-refused"), std::string::npos) << r.body;
  EXPECT_FALSE(r.keep_alive);
  EXPECT_EQ(stat(counter::upstream_cx_connect_fail), 1);
}

TEST_F(RelayTest, UpstreamTlsVersionMismatchGives502Classified) {
  bridge_options o = options_for_upstream();
  o.upstream.min_tls = "1.2";  // as if someone forgot that Exchange 2007 speaks only TLS 1.0
  start_bridge(o);
  const auto r = request_once("/");
  EXPECT_EQ(r.status, 502u);
  EXPECT_NE(r.body.find("upstream-tls-handshake-failed"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("TLS protocol version refused"), std::string::npos) << r.body;
  EXPECT_EQ(stat(counter::upstream_tls_handshake_fail), 1);
}

TEST_F(RelayTest, UntrustedUpstreamCertificateGives502Classified) {
  bridge_options o = options_for_upstream();
  o.upstream.verify = tls_verify::system;  // the lab CA is not in the system store
  start_bridge(o);
  const auto r = request_once("/");
  EXPECT_EQ(r.status, 502u);
  EXPECT_NE(r.body.find("not trusted"), std::string::npos) << r.body;
}

TEST_F(RelayTest, ResponseHeaderTimeoutGives504AndCountsTheTimeout) {
  bridge_options o = options_for_upstream();
  o.timeouts.response_headers = std::chrono::milliseconds(200);
  start_bridge(o);
  const auto r = request_once("/stall");
  EXPECT_EQ(r.status, 504u);
  EXPECT_NE(r.body.find("response-headers-timeout"), std::string::npos) << r.body;
  EXPECT_EQ(stat(counter::timeouts_total), 1);
}

TEST_F(RelayTest, UpstreamClosingWithoutAnswerGives502) {
  start_bridge(options_for_upstream());
  const auto r = request_once("/close");
  EXPECT_EQ(r.status, 502u);
  EXPECT_NE(r.body.find("upstream-closed-before-response"), std::string::npos) << r.body;
}

TEST_F(RelayTest, MalformedRequestGets400AndClose) {
  start_bridge(options_for_upstream());
  const auto reply = raw_once("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n");
  EXPECT_EQ(reply.rfind("HTTP/1.1 400 ", 0), 0u) << reply;
  EXPECT_NE(reply.find("Connection: close"), std::string::npos) << reply;
  EXPECT_EQ(upstream_.connections(), 0);  // nothing reached the upstream
}

TEST_F(RelayTest, SlowRequestHeadersGet408) {
  bridge_options o = options_for_upstream();
  o.timeouts.request_headers = std::chrono::milliseconds(200);
  start_bridge(o);
  const auto reply = raw_once("GET / HTTP/1.1\r\nHost: x\r\n");  // never finishes its headers
  EXPECT_EQ(reply.rfind("HTTP/1.1 408 ", 0), 0u) << reply;
}

}  // namespace
}  // namespace exbridge::proxy
