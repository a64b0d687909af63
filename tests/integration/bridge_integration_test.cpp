// Integration tests over real TLS on loopback: exbridge (in process) between a TLS 1.2/1.3 client and a
// TLS 1.0 upstream. The upstream here is a small programmable fixture so that the tests can see exactly
// what arrived (forwarded headers, body bytes) and make it misbehave (stall, close).
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <iostream>

#include "common/tls_context.hpp"
#include "proxy/bridge.hpp"
#include "tests/support/test_support.hpp"

namespace exbridge::proxy {
namespace {

using tls_stream = ssl::stream<tcp::socket>;

/// Deterministic body bytes, so that both ends can check every byte without storing the body.
char pattern_byte(std::uint64_t i) { return static_cast<char>((i * 2654435761u) >> 24); }

/// Writes `size` pattern bytes as the body of `msg`, whose header `sr` has already written.
template <bool is_request>
net::awaitable<error_code> write_pattern_body(tls_stream& stream, http::message<is_request, http::buffer_body>& msg,
                                             http::serializer<is_request, http::buffer_body>& sr, std::uint64_t size) {
  std::vector<char> chunk(64 * 1024);
  for (std::uint64_t sent = 0; sent < size || !sr.is_done();) {
    const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(chunk.size(), size - sent));
    for (std::size_t i = 0; i < n; ++i) chunk[i] = pattern_byte(sent + i);
    sent += n;
    msg.body().data = n > 0 ? chunk.data() : nullptr;
    msg.body().size = n;
    msg.body().more = sent < size;
    auto [ec, written] = co_await http::async_write(stream, sr, use_tuple);
    if (ec && ec != http::error::need_buffer) co_return ec;
    if (n == 0 && !sr.is_done()) co_return http::error::partial_message;
  }
  co_return error_code{};
}

/// A TLS 1.0-only HTTP/1.1 upstream (exchange2007 profile) with scripted behaviour per path:
///   /big/N      N pattern bytes (Content-Length); /big/N?chunked the same, chunked
///   /upload     reads the body in chunks, answers "bytes=N ok|corrupt"
///   /stall      reads the request and never answers
///   /close      closes the connection without answering
///   otherwise   200, body = the request's X-Forwarded-* and Via headers
class test_upstream {
 public:
  explicit test_upstream(net::io_context& ioc)
      : tls_(make_tls_context(tls_profile::exchange2007,
                              {.identity = {.cert_file = test::test_pki().exchange_cert.string(),
                                            .key_file = test::test_pki().exchange_key.string()}})),
        acceptor_(ioc, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0)) {
    net::co_spawn(ioc, accept_loop(), net::detached);
  }
  unsigned short port() const { return acceptor_.local_endpoint().port(); }
  int connections() const { return connections_.load(); }

 private:
  net::awaitable<void> accept_loop() {
    for (;;) {
      auto [ec, socket] = co_await acceptor_.async_accept(use_tuple);
      if (ec) co_return;
      ++connections_;
      net::co_spawn(acceptor_.get_executor(), serve(tls_stream(std::move(socket), tls_)), net::detached);
    }
  }

  static net::awaitable<void> serve(tls_stream stream) {
    if (auto [ec] = co_await stream.async_handshake(ssl::stream_base::server, use_tuple); ec) co_return;
    beast::flat_buffer buffer;
    std::vector<char> chunk(64 * 1024);
    for (;;) {
      http::request_parser<http::buffer_body> parser;
      parser.body_limit(boost::none);
      if (auto [ec, n] = co_await http::async_read_header(stream, buffer, parser, use_tuple); ec) co_return;
      const std::string target(parser.get().target());
      std::uint64_t received = 0;
      bool intact = true;
      while (!parser.is_done()) {
        parser.get().body().data = chunk.data();
        parser.get().body().size = chunk.size();
        auto [ec, n] = co_await http::async_read(stream, buffer, parser, use_tuple);
        if (ec && ec != http::error::need_buffer) co_return;
        const std::size_t got = chunk.size() - parser.get().body().size;
        for (std::size_t i = 0; i < got; ++i) intact &= chunk[i] == pattern_byte(received + i);
        received += got;
      }
      if (target == "/stall") {
        co_await stream.async_read_some(net::buffer(chunk), use_tuple);  // until the peer gives up
        co_return;
      }
      if (target == "/close") co_return;
      if (target.rfind("/big/", 0) == 0) {
        const bool chunked = target.find("?chunked") != std::string::npos;
        const std::uint64_t size = std::stoull(target.substr(5));
        http::response<http::buffer_body> res{http::status::ok, 11};
        if (chunked) res.chunked(true);
        else res.content_length(size);
        http::response_serializer<http::buffer_body> sr{res};
        if (auto [ec, n] = co_await http::async_write_header(stream, sr, use_tuple); ec) co_return;
        if (auto ec = co_await write_pattern_body(stream, res, sr, size); ec) co_return;
        continue;
      }
      http::response<http::string_body> res{http::status::ok, 11};
      const auto& req = parser.get();
      if (target == "/upload") {
        res.body() = "bytes=" + std::to_string(received) + (intact ? " ok" : " corrupt");
      } else {
        for (const char* name : {"X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Port", "Via", "X-Custom-Case"}) {
          if (req.find(name) != req.end()) res.body() += std::string(name) + ": " + std::string(req[name]) + "\n";
        }
      }
      res.prepare_payload();
      if (auto [ec, n] = co_await http::async_write(stream, res, use_tuple); ec) co_return;
    }
  }

  ssl::context tls_;
  tcp::acceptor acceptor_;
  std::atomic<int> connections_{0};
};

/// The Exchange Online side: a keep-alive TLS 1.2+ client that checks the bridge's lab certificate.
class client {
 public:
  explicit client(net::io_context& ioc)
      : tls_(make_tls_context(tls_profile::exchange_online_client,
                              {.verify = tls_verify::ca_file, .ca_file = test::test_pki().ca_cert.string()})),
        stream_(ioc, tls_) {}

  net::awaitable<error_code> connect(unsigned short port) {
    auto [ec] = co_await stream_.next_layer().async_connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port),
                                                              use_tuple);
    if (ec) co_return ec;
    prepare_client_tls(stream_.native_handle(), "mail.contoso.example", true);
    auto [hec] = co_await stream_.async_handshake(ssl::stream_base::client, use_tuple);
    co_return hec;
  }

  /// Sends a request (with an optional pattern body of `upload` bytes) and returns the response, whose
  /// body is kept only when small; `pattern_ok` says whether a large body matched the pattern.
  struct reply {
    error_code ec;
    unsigned status = 0;
    std::string body;
    std::uint64_t body_bytes = 0;
    bool pattern_ok = true;
    bool keep_alive = false;
  };
  net::awaitable<reply> request(const std::string& target, std::uint64_t upload = 0, bool chunked_upload = false,
                                std::vector<std::pair<std::string, std::string>> headers = {}) {
    reply r;
    std::vector<char> chunk(64 * 1024);
    http::request<http::buffer_body> req{upload > 0 ? http::verb::post : http::verb::get, target, 11};
    req.set(http::field::host, "mail.contoso.example");
    for (const auto& [k, v] : headers) req.insert(k, v);
    if (chunked_upload) req.chunked(true);
    else if (upload > 0) req.content_length(upload);
    http::request_serializer<http::buffer_body> sr{req};
    std::tie(r.ec, std::ignore) = co_await http::async_write_header(stream_, sr, use_tuple);
    if (!r.ec) r.ec = co_await write_pattern_body(stream_, req, sr, upload);
    if (r.ec) co_return r;

    http::response_parser<http::buffer_body> parser;
    parser.body_limit(boost::none);
    std::tie(r.ec, std::ignore) = co_await http::async_read_header(stream_, buffer_, parser, use_tuple);
    if (r.ec) co_return r;
    while (!parser.is_done()) {
      parser.get().body().data = chunk.data();
      parser.get().body().size = chunk.size();
      auto [ec, n] = co_await http::async_read(stream_, buffer_, parser, use_tuple);
      if (ec && ec != http::error::need_buffer) {
        r.ec = ec;
        co_return r;
      }
      const std::size_t got = chunk.size() - parser.get().body().size;
      for (std::size_t i = 0; i < got; ++i) r.pattern_ok &= chunk[i] == pattern_byte(r.body_bytes + i);
      if (r.body.size() < 4096) r.body.append(chunk.data(), std::min<std::size_t>(got, 4096));
      r.body_bytes += got;
    }
    r.status = parser.get().result_int();
    r.keep_alive = parser.get().keep_alive();
    co_return r;
  }

  /// Sends raw bytes (for malformed requests) and reads whatever comes back until the connection closes.
  net::awaitable<std::string> raw(const std::string& bytes) {
    co_await net::async_write(stream_, net::buffer(bytes), use_tuple);
    std::string out;
    co_await net::async_read(stream_, net::dynamic_buffer(out), use_tuple);  // until the bridge closes
    co_return out;
  }

 private:
  ssl::context tls_;
  tls_stream stream_;
  beast::flat_buffer buffer_;
};

class BridgeTest : public ::testing::Test {
 protected:
  // The loop stops before the bridge and the upstream fixture are destroyed: their coroutines refer to them.
  void TearDown() override { io_.stop(); }

  void start_bridge(bridge_options o) {
    o.listen = {"127.0.0.1", 0};
    o.identity = {.cert_file = test::test_pki().bridge_cert.string(), .key_file = test::test_pki().bridge_key.string()};
    bridge_.emplace(io_.context(), o);
    bridge_->start();
  }
  bridge_options options_for_upstream() {
    bridge_options o;
    o.upstream.address = {"127.0.0.1", upstream_.port()};
    o.upstream.verify = tls_verify::ca_file;
    o.upstream.ca_file = test::test_pki().ca_cert.string();
    o.upstream.sni = "ex2007.contoso.example";
    return o;
  }
  unsigned short port() const { return bridge_->local_endpoint().port(); }

  /// One request on a fresh client connection.
  client::reply request_once(const std::string& target) {
    return io_.run([&]() -> net::awaitable<client::reply> {
      client c(io_.context());
      if (auto ec = co_await c.connect(port())) co_return client::reply{ec};
      co_return co_await c.request(target);
    }());
  }

  /// Raw bytes on a fresh client connection; returns all the bridge sent back until it closed.
  std::string raw_once(const std::string& bytes) {
    return io_.run([&]() -> net::awaitable<std::string> {
      client c(io_.context());
      co_await c.connect(port());
      co_return co_await c.raw(bytes);
    }());
  }
  std::int64_t stat(counter c) const { return bridge_->stats().get(c); }

  test::io_thread io_;
  test_upstream upstream_{io_.context()};
  std::optional<bridge> bridge_;
};

TEST_F(BridgeTest, RelaysWithForwardingHeadersAndNoVia) {
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

TEST_F(BridgeTest, ConfiguredResponseHeadersReachTheClient) {
  bridge_options o = options_for_upstream();
  o.response_headers = {{"X-Frame-Options", "SAMEORIGIN"}, {"X-Content-Type-Options", "nosniff"}};
  start_bridge(o);
  const std::string reply = raw_once("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(reply.rfind("HTTP/1.1 200 ", 0), 0u) << reply;
  EXPECT_NE(reply.find("X-Frame-Options: SAMEORIGIN\r\n"), std::string::npos) << reply;
  EXPECT_NE(reply.find("X-Content-Type-Options: nosniff\r\n"), std::string::npos) << reply;
}

TEST_F(BridgeTest, KeepAliveReusesTheSameUpstreamConnection) {
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

TEST_F(BridgeTest, SeparateClientsNeverShareAnUpstreamConnection) {
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

/// Resident set size of this process, from /proc (kB).
long rss_kib() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

// Size knob: EXBRIDGE_STREAM_BYTES (default 64 MiB; the slow ctest entry runs 1 GiB, and 4 GiB is
// EXBRIDGE_STREAM_BYTES=4294967296). Client, bridge and upstream share this process, so flat RSS here means
// none of the three buffers a body.
TEST_F(BridgeTest, StreamsLargeBodiesBothWaysByteExact) {
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
        auto u = co_await c.request("/upload", size);
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
#if defined(__SANITIZE_ADDRESS__)
  // AddressSanitizer keeps freed memory in quarantine (256 MB by default): RSS says nothing about buffering.
  constexpr bool rss_is_meaningful = false;
#else
  constexpr bool rss_is_meaningful = true;
#endif
  if (rss_is_meaningful) {
    EXPECT_LT(growth_kib, 64 * 1024) << "RSS grew by " << growth_kib << " KiB while streaming";
  }
  std::cout << "streamed " << size << " bytes x 4 (Content-Length and chunked, both directions) byte-exact; RSS growth "
            << growth_kib << " KiB\n";
}

TEST_F(BridgeTest, UnreachableUpstreamGives503WithTheReason) {
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

TEST_F(BridgeTest, UpstreamTlsVersionMismatchGives502Classified) {
  bridge_options o = options_for_upstream();
  o.upstream.min_tls = "1.2";  // as if someone forgot that Exchange 2007 speaks only TLS 1.0
  start_bridge(o);
  const auto r = request_once("/");
  EXPECT_EQ(r.status, 502u);
  EXPECT_NE(r.body.find("upstream-tls-handshake-failed"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("TLS protocol version refused"), std::string::npos) << r.body;
  EXPECT_EQ(stat(counter::upstream_tls_handshake_fail), 1);
}

TEST_F(BridgeTest, UntrustedUpstreamCertificateGives502Classified) {
  bridge_options o = options_for_upstream();
  o.upstream.verify = tls_verify::system;  // the lab CA is not in the system store
  start_bridge(o);
  const auto r = request_once("/");
  EXPECT_EQ(r.status, 502u);
  EXPECT_NE(r.body.find("not trusted"), std::string::npos) << r.body;
}

TEST_F(BridgeTest, ResponseHeaderTimeoutGives504AndCountsTheTimeout) {
  bridge_options o = options_for_upstream();
  o.timeouts.response_headers = std::chrono::milliseconds(200);
  start_bridge(o);
  const auto r = request_once("/stall");
  EXPECT_EQ(r.status, 504u);
  EXPECT_NE(r.body.find("response-headers-timeout"), std::string::npos) << r.body;
  EXPECT_EQ(stat(counter::timeouts_total), 1);
}

TEST_F(BridgeTest, UpstreamClosingWithoutAnswerGives502) {
  start_bridge(options_for_upstream());
  const auto r = request_once("/close");
  EXPECT_EQ(r.status, 502u);
  EXPECT_NE(r.body.find("upstream-closed-before-response"), std::string::npos) << r.body;
}

TEST_F(BridgeTest, MalformedRequestGets400AndClose) {
  start_bridge(options_for_upstream());
  const auto reply = raw_once("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n");
  EXPECT_EQ(reply.rfind("HTTP/1.1 400 ", 0), 0u) << reply;
  EXPECT_NE(reply.find("Connection: close"), std::string::npos) << reply;
  EXPECT_EQ(upstream_.connections(), 0);  // nothing reached the upstream
}

TEST_F(BridgeTest, SlowRequestHeadersGet408) {
  bridge_options o = options_for_upstream();
  o.timeouts.request_headers = std::chrono::milliseconds(200);
  start_bridge(o);
  const auto reply = raw_once("GET / HTTP/1.1\r\nHost: x\r\n");  // never finishes its headers
  EXPECT_EQ(reply.rfind("HTTP/1.1 408 ", 0), 0u) << reply;
}

}  // namespace
}  // namespace exbridge::proxy

namespace exbridge::proxy {
namespace {

// Request smuggling classes (proxy-anchors.md §6.3): each must be refused with 400 and a close, before
// anything reaches the upstream, so no two parsers can disagree about where a request ends.
struct smuggling_case {
  const char* name;
  std::string_view request;
};

class SmugglingTest : public BridgeTest, public ::testing::WithParamInterface<smuggling_case> {};

TEST_P(SmugglingTest, IsRefusedWith400BeforeTheUpstream) {
  start_bridge(options_for_upstream());
  const std::string reply = raw_once(std::string(GetParam().request));
  EXPECT_EQ(reply.rfind("HTTP/1.1 400 ", 0), 0u) << GetParam().name << ": " << reply;
  EXPECT_NE(reply.find("Connection: close"), std::string::npos) << reply;
  EXPECT_EQ(upstream_.connections(), 0) << GetParam().name << " reached the upstream";
}

INSTANTIATE_TEST_SUITE_P(
    Classes, SmugglingTest,
    ::testing::Values(
        smuggling_case{"cl_te", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n"
                                "0\r\n\r\nX"},
        smuggling_case{"te_cl", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"
                                "1\r\nA\r\n0\r\n\r\n"},
        smuggling_case{"duplicate_cl", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd"},
        smuggling_case{"cl_list", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3, 4\r\n\r\nabcd"},
        smuggling_case{"te_obfuscated", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n"},
        smuggling_case{"te_not_last", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n"},
        smuggling_case{"te_http10", "POST / HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
        smuggling_case{"space_before_colon", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length : 3\r\n\r\nabc"},
        smuggling_case{"obs_fold", "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n"},
        smuggling_case{"bare_lf", "GET / HTTP/1.1\nHost: x\n\n"},
        smuggling_case{"negative_cl", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n"},
        smuggling_case{"cl_plus", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +3\r\n\r\nabc"},
        smuggling_case{"nul_in_header", std::string_view("GET / HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n\r\n", 37)},
        smuggling_case{"bad_method_token", "G(T / HTTP/1.1\r\nHost: x\r\n\r\n"},
        smuggling_case{"http_version_junk", "GET / HTTP/1.x\r\nHost: x\r\n\r\n"}),
    [](const auto& test_info) { return std::string(test_info.param.name); });

}  // namespace
}  // namespace exbridge::proxy
