// TLS on both legs over real TLS on loopback: upstream certificate pinning, certificates chosen by SNI,
// session resumption downstream and upstream (also when the server ends each connection).
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

/// The bridge between a TLS test client and a scripted TLS 1.0 upstream.
class TlsTest : public BridgeTest {};

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

TEST_F(TlsTest, UpstreamCertificatePinAcceptsTheRightCertificate) {
  bridge_options o = options_for_upstream();
  o.upstream.verify = tls_verify::pin;
  o.upstream.pin_sha256 = normalize_pin(sha256_of_certificate_file(test::test_pki().exchange_cert.string()), "pin");
  start_bridge(o);
  EXPECT_EQ(request_once("/").status, 200u);
}

TEST_F(TlsTest, UpstreamCertificatePinRefusesAnyOther) {
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

TEST_F(TlsTest, CertificatesAreChosenBySni) {
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

TEST_F(TlsTest, TlsSessionsAreResumed) {
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

// A new client connection needs a new upstream connection (never shared, for NTLM's sake); resuming the
// upstream TLS session spares the old server a full RSA handshake each time.
TEST_F(TlsTest, UpstreamTlsSessionsAreResumedAcrossClientConnections) {
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
TEST_F(TlsTest, UpstreamTlsSessionsStayResumableWhenTheServerEndsEachConnection) {
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
