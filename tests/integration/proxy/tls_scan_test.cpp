// sslscan, as an auditor would run it, against both listeners: exbridge's downstream must offer only
// TLS 1.2/1.3 with no weak suite, no compression and no insecure renegotiation; fake-exchange only TLS 1.0.
#include <gtest/gtest.h>

#include <filesystem>
#include <regex>

#include "tests/support/bridge_lab.hpp"

namespace exbridge {
namespace {

std::string scan(unsigned short port) {
  const auto r = test::run_command("/usr/bin/sslscan", {"--no-colour", "127.0.0.1:" + std::to_string(port)});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  return r.output;
}

bool has_line(const std::string& text, const std::string& pattern) {
  return std::regex_search(text, std::regex(pattern, std::regex::multiline));
}

TEST(TlsScan, BridgeOffersOnlyTls12And13WithStrongSuites) {
  if (!std::filesystem::exists("/usr/bin/sslscan")) GTEST_SKIP() << "sslscan is not installed (ci/install-deps.sh installs it)";
  test::bridge_lab lab;
  const std::string out = scan(lab.bridge().local_endpoint().port());
  for (const char* off : {"SSLv2", "SSLv3", "TLSv1\\.0", "TLSv1\\.1"}) {
    EXPECT_TRUE(has_line(out, std::string("^") + off + "\\s+disabled")) << off << "\n" << out;
  }
  EXPECT_TRUE(has_line(out, "^TLSv1\\.2\\s+enabled")) << out;
  EXPECT_TRUE(has_line(out, "^TLSv1\\.3\\s+enabled")) << out;
  EXPECT_FALSE(has_line(out, "^(Accepted|Preferred).*(RC4|DES|NULL|EXP|MD5|anon)")) << out;
  EXPECT_FALSE(has_line(out, "^(Accepted|Preferred)\\s+TLSv1\\.2.*\\s(AES|CAMELLIA|ARIA)[^ ]*-SHA\\s")) << "plain-RSA suite\n"
                                                                                                  << out;
  EXPECT_FALSE(has_line(out, "Compression enabled")) << out;
  EXPECT_FALSE(has_line(out, "Insecure session renegotiation supported")) << out;
}

TEST(TlsScan, FakeExchangeOffersOnlyTls10) {
  if (!std::filesystem::exists("/usr/bin/sslscan")) GTEST_SKIP() << "sslscan is not installed (ci/install-deps.sh installs it)";
  fake_exchange::server_options o;
  const auto& pki = test::test_pki();
  o.identity = {.cert_file = pki.exchange_cert.string(), .key_file = pki.exchange_key.string()};
  test::io_thread io;
  fake_exchange::server exchange(io.context(), o);
  exchange.start();
  const std::string out = scan(exchange.local_endpoint().port());
  io.stop();  // before `exchange` goes: its coroutines refer to it
  EXPECT_TRUE(has_line(out, "^TLSv1\\.0\\s+enabled")) << out;
  for (const char* off : {"SSLv3", "TLSv1\\.1", "TLSv1\\.2", "TLSv1\\.3"}) {
    EXPECT_TRUE(has_line(out, std::string("^") + off + "\\s+disabled")) << off << "\n" << out;
  }
}

}  // namespace
}  // namespace exbridge
