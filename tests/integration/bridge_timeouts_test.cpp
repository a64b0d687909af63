// exbridge's timers and connection behaviour over real TLS on loopback: every named timeout is triggered
// (durations in milliseconds) and checked by its termination counter; full-duplex relaying (early
// answers, 100-continue); upstream certificate pinning; certificates chosen by SNI; session resumption.
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

class BridgeTimeoutTest : public BridgeTest {
 protected:
  /// Connects over TLS, sends `bytes` (if any) and reads until the bridge closes the connection.
  std::string send_and_wait_close(const std::string& bytes) {
    return io_.run([&]() -> net::awaitable<std::string> {
      client c(io_.context());
      if (co_await c.connect(port())) co_return std::string("connect failed");
      if (!bytes.empty()) co_await c.send(bytes);
      co_return co_await c.read_until_close();
    }());
  }
};

TEST_F(BridgeTimeoutTest, DownstreamHandshakeTimeoutClosesASilentConnection) {
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

TEST_F(BridgeTimeoutTest, ClientIdleTimeoutClosesAConnectionThatNeverAsks) {
  bridge_options o = options_for_upstream();
  o.timeouts.client_idle = 100ms;
  start_bridge(o);
  EXPECT_EQ(send_and_wait_close(""), "");
  EXPECT_TRUE(wait_for_end(termination::client_idle_timeout));
  EXPECT_EQ(upstream_.connections(), 0);
}

TEST_F(BridgeTimeoutTest, KeepAliveIdleTimeoutClosesBetweenRequests) {
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

TEST_F(BridgeTimeoutTest, RequestHeadersTimeoutGives408) {
  bridge_options o = options_for_upstream();
  o.timeouts.request_headers = 100ms;
  start_bridge(o);
  const std::string reply = send_and_wait_close("GET / HTTP/1.1\r\nHost: x\r\n");
  EXPECT_EQ(reply.rfind("HTTP/1.1 408 ", 0), 0u) << reply;
  EXPECT_EQ(ended(termination::request_headers_timeout), 1);
}

TEST_F(BridgeTimeoutTest, ClientDataTimeoutWhenTheUploadStalls) {
  bridge_options o = options_for_upstream();
  o.timeouts.client_data = 100ms;
  start_bridge(o);
  send_and_wait_close("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n0123456789");
  EXPECT_EQ(ended(termination::request_body_timeout), 1);
  EXPECT_EQ(ended(termination::response_headers_timeout), 0);
}

TEST_F(BridgeTimeoutTest, ClientWriteTimeoutWhenTheClientStopsReading) {
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

TEST_F(BridgeTimeoutTest, UpstreamConnectTimeoutGives504) {
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

TEST_F(BridgeTimeoutTest, UpstreamHandshakeTimeoutGives504) {
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

TEST_F(BridgeTimeoutTest, ResponseHeadersTimerStartsOnlyOnceTheRequestIsSent) {
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

TEST_F(BridgeTimeoutTest, UpstreamDataTimeoutWhenTheResponseStalls) {
  bridge_options o = options_for_upstream();
  o.timeouts.upstream_data = 100ms;
  start_bridge(o);
  const auto r = request_once("/partial/1000");
  EXPECT_TRUE(r.ec) << "a truncated body must not look complete";
  EXPECT_EQ(r.body_bytes, 500u);
  EXPECT_EQ(ended(termination::response_body_timeout), 1);
}

TEST_F(BridgeTimeoutTest, UpstreamWriteTimeoutWhenTheUpstreamStopsReading) {
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

TEST_F(BridgeTimeoutTest, RpcChannelsUseTheLongLivedTimerNotTheDataTimer) {
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

TEST_F(BridgeTimeoutTest, MinimumThroughputWatchdogEndsATricklingResponse) {
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

TEST_F(BridgeTimeoutTest, TheThroughputWatchdogIsOffByDefault) {
  start_bridge(options_for_upstream());
  const auto r = request_once("/trickle/20000?every=5");
  EXPECT_FALSE(r.ec) << r.ec.message();
  EXPECT_EQ(r.body_bytes, 20000u);
  EXPECT_TRUE(r.pattern_ok);
}

// Full duplex: IIS refuses an oversized body at once (HTTP 413 / 404.13) without reading it. The client
// must get that answer, not a 502 from a relay still pushing the body.
TEST_F(BridgeTimeoutTest, AnEarlyAnswerReachesTheClientWhileItsBodyIsStillComing) {
  start_bridge(options_for_upstream());
  const std::string reply =
      send_and_wait_close("POST /reject HTTP/1.1\r\nHost: x\r\nContent-Length: 50000000\r\n\r\n" + std::string(1000, 'a'));
  EXPECT_EQ(reply.rfind("HTTP/1.1 413 ", 0), 0u) << reply;
  EXPECT_EQ(ended(termination::normal), 1);
  EXPECT_EQ(stat(counter::upstream_rq_failed), 0);
}

// A server may answer before it has read the body and still keep the connection (HTTP/1.1 lets it; it
// reads the rest afterwards). The client was told keep-alive, so the bridge must go on relaying the body
// and keep both connections: closing them would fail the client's next request on a connection it was
// promised ("the underlying connection was closed" in .NET). It used to, whenever the answer finished
// before the upload half of the relay noticed its own end -- a race that broke Autodiscover under load.
TEST_F(BridgeTimeoutTest, AKeepAliveAnswerBeforeTheBodyKeepsTheConnection) {
  start_bridge(options_for_upstream());
  const std::string reply = io_.run([&]() -> net::awaitable<std::string> {
    client c(io_.context());
    co_await c.connect(port());
    co_await c.send("POST /early HTTP/1.1\r\nHost: x\r\nContent-Length: 3000\r\n\r\n");
    std::string early;
    while (early.find("\r\n\r\nearly") == std::string::npos) {
      std::string more = co_await c.read_some_text();
      if (more.empty()) co_return "closed after: " + early;
      early += more;
    }
    std::string body;
    for (std::uint64_t i = 0; i < 3000; ++i) body += test::pattern_byte(i);
    co_await c.send(body);
    co_await c.send("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    co_return co_await c.read_until_close();
  }(), 5s);
  EXPECT_EQ(reply.rfind("HTTP/1.1 200 ", 0), 0u) << reply;
  EXPECT_NE(reply.find("bytes=0 ok"), std::string::npos) << reply;
  EXPECT_EQ(ended(termination::normal), 2);
  EXPECT_EQ(stat(counter::upstream_cx_total), 1);  // one upstream connection carried both requests
}

// .NET clients (Exchange Online's among them) send "Expect: 100-continue" and wait for the interim
// answer before sending the body.
TEST_F(BridgeTimeoutTest, ExpectContinueIsRelayedBeforeTheBody) {
  bridge_options o = options_for_upstream();
  start_bridge(o);
  const std::string reply = io_.run([&]() -> net::awaitable<std::string> {
    client c(io_.context());
    co_await c.connect(port());
    std::string head =
        "POST /continue HTTP/1.1\r\nHost: x\r\nContent-Length: 3000\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n";
    co_await c.send(head);
    std::string interim = co_await c.read_some_text();
    if (interim.rfind("HTTP/1.1 100 ", 0) != 0) co_return "no interim response: " + interim;
    std::string body;
    for (std::uint64_t i = 0; i < 3000; ++i) body += test::pattern_byte(i);
    co_await c.send(body);
    co_return co_await c.read_until_close();
  }(), 5s);
  EXPECT_EQ(reply.rfind("HTTP/1.1 200 ", 0), 0u) << reply;
  EXPECT_NE(reply.find("bytes=3000 ok"), std::string::npos) << reply;
}

std::string sha256_of_certificate_file(const std::string& path) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_file(path.c_str(), "r"), BIO_free);
  std::unique_ptr<X509, decltype(&X509_free)> cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr), X509_free);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  X509_digest(cert.get(), EVP_sha256(), digest, &n);
  std::ostringstream out;
  for (unsigned int i = 0; i < n; ++i) out << (i ? ":" : "") << std::hex << std::uppercase << (digest[i] >> 4) << (digest[i] & 15);
  return out.str();
}

TEST_F(BridgeTimeoutTest, UpstreamCertificatePinAcceptsTheRightCertificate) {
  bridge_options o = options_for_upstream();
  o.upstream.verify = tls_verify::pin;
  o.upstream.pin_sha256 = normalize_pin(sha256_of_certificate_file(test::test_pki().exchange_cert.string()), "pin");
  start_bridge(o);
  EXPECT_EQ(request_once("/").status, 200u);
}

TEST_F(BridgeTimeoutTest, UpstreamCertificatePinRefusesAnyOther) {
  bridge_options o = options_for_upstream();
  o.upstream.verify = tls_verify::pin;
  o.upstream.pin_sha256 = normalize_pin(sha256_of_certificate_file(test::test_pki().bridge_cert.string()), "pin");
  start_bridge(o);
  const auto r = request_once("/");
  EXPECT_EQ(r.status, 502u);
  EXPECT_NE(r.body.find("certificate other than the pinned one"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("pin:"), std::string::npos) << r.body;  // the fix names the certificate presented
  EXPECT_EQ(ended(termination::upstream_tls_failed), 1);
}

TEST(Pins, AreAcceptedAsOpensslPrintsThem) {
  const std::string hex = "ab" + std::string(62, '0');
  EXPECT_EQ(normalize_pin("SHA256 Fingerprint=AB:" + std::string(62, '0'), "pin"), hex);
  EXPECT_EQ(normalize_pin("sha256:" + hex, "pin"), hex);
  EXPECT_THROW(normalize_pin("abc", "pin"), config_error);
  EXPECT_THROW(normalize_pin(std::string(63, '0') + "g", "pin"), config_error);
}

TEST_F(BridgeTimeoutTest, CertificatesAreChosenBySni) {
  bridge_options o = options_for_upstream();
  // The second certificate names ex2007.contoso.example only; the client checks the name it asked for.
  o.sni_identities = {{.cert_file = test::test_pki().exchange_cert.string(), .key_file = test::test_pki().exchange_key.string()}};
  start_bridge(o);
  const auto [by_sni, by_default] = io_.run([&]() -> net::awaitable<std::pair<error_code, error_code>> {
    client a(io_.context()), b(io_.context());
    auto ea = co_await a.connect(port(), "ex2007.contoso.example");
    auto eb = co_await b.connect(port(), "mail.contoso.example");
    co_return std::make_pair(ea, eb);
  }());
  EXPECT_FALSE(by_sni) << by_sni.message();
  EXPECT_FALSE(by_default) << by_default.message();
}

TEST_F(BridgeTimeoutTest, TlsSessionsAreResumed) {
  start_bridge(options_for_upstream());
  const auto resumed = io_.run([&]() -> net::awaitable<bool> {
    client first(io_.context());
    co_await first.connect(port());
    co_await first.request("/");  // TLS 1.3 tickets arrive after the handshake
    SSL_SESSION* session = SSL_get1_session(first.native());
    client second(io_.context());
    co_await second.connect(port(), "mail.contoso.example", session);
    SSL_SESSION_free(session);
    co_return second.resumed();
  }());
  EXPECT_TRUE(resumed);
}

}  // namespace
}  // namespace exbridge::proxy

namespace exbridge::proxy {
namespace {

// A new client connection needs a new upstream connection (never shared, for NTLM's sake); resuming the
// upstream TLS session spares the old server a full RSA handshake each time.
TEST_F(BridgeTimeoutTest, UpstreamTlsSessionsAreResumedAcrossClientConnections) {
  start_bridge(options_for_upstream());
  EXPECT_EQ(request_once("/").status, 200u);
  EXPECT_EQ(request_once("/").status, 200u);
  EXPECT_EQ(upstream_.connections(), 2);
  EXPECT_EQ(stat(counter::upstream_tls_resumed), 1);
}

// The server ends each connection ("Connection: close", as IIS does when the client asks). The bridge must
// answer with close_notify before it closes: OpenSSL marks a session closed without it unresumable, and that
// session object is the one offered to every new connection, so each would pay a full handshake (measured in
// the benchmark: 44 % of new connections did). Each connection starts after the previous one has ended.
TEST_F(BridgeTimeoutTest, UpstreamTlsSessionsStayResumableWhenTheServerEndsEachConnection) {
  start_bridge(options_for_upstream());
  for (int i = 1; i <= 4; ++i) {
    const auto r = request_once("/last");
    EXPECT_EQ(r.status, 200u);
    EXPECT_FALSE(r.keep_alive);
    ASSERT_TRUE(wait_for_closed(i)) << "connection " << i << " did not end";
  }
  EXPECT_EQ(upstream_.connections(), 4);
  EXPECT_EQ(stat(counter::upstream_tls_resumed), 3);
}

}  // namespace
}  // namespace exbridge::proxy
