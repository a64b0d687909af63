// `rehearse preflight` against a live endpoint: through exbridge every check passes; straight to the
// TLS 1.0-only Exchange 2007 the TLS check fails with the reason; the password never appears in the output.
#include <gtest/gtest.h>

#include <cstdlib>

#include "tests/support/bridge_lab.hpp"

namespace exbridge::test {
namespace {

class Preflight : public ::testing::Test {
 protected:
  command_result preflight(unsigned short port, const std::string& password, const std::string& hold = "0s") {
    ::setenv("REHEARSE_PASSWORD", password.c_str(), 1);
    auto r = run_command(program_path("rehearse"),
                         {"preflight", "https://mail.contoso.example", "--connect", "127.0.0.1:" + std::to_string(port),
                          "--trust", "ca:" + test_pki().ca_cert.string(), "--email", user().email, "--rpc-hold", hold});
    ::unsetenv("REHEARSE_PASSWORD");
    return r;
  }
  const fake_exchange::user& user() const { return lab_.exchange_options().exchange.org.users.front(); }
  static fake_exchange::server_options exchange() {
    fake_exchange::server_options fx;
    fx.rpc_ping_interval = std::chrono::milliseconds(500);  // so that a short hold sees pings
    return fx;
  }
  bridge_lab lab_{exchange()};
};

TEST_F(Preflight, EveryCheckPassesThroughExbridgeAndThePasswordIsNeverPrinted) {
  const auto r = preflight(lab_.bridge().local_endpoint().port(), user().password);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("PASS  TLS as Exchange Online"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("PASS  Certificate"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("PASS  TLS 1.0 refused on the public side"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("PASS  Autodiscover and EWS"), std::string::npos) << r.output;
  // Outlook Anywhere as the migration uses it: the mailbox server and legacy DN from Autodiscover, a virtual
  // connection, EMSMDB with NTLM, one read-only call.
  EXPECT_NE(r.output.find("PASS  Outlook Anywhere (RPC over HTTP, EMSMDB)"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("virtual connection to EX2007.contoso.example:6001"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("EcDoConnectEx answered ecNone for \"" + user().display_name + "\" (Exchange 8.3.83.6)"),
            std::string::npos)
      << r.output;
  EXPECT_EQ(r.output.find(user().password), std::string::npos) << r.output;
}

TEST_F(Preflight, RpcHoldKeepsTheVirtualConnectionOpenAndCountsTheServersPings) {
  const auto r = preflight(lab_.bridge().local_endpoint().port(), user().password, "3s");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  const auto at = r.output.find("; held 3000 ms: ");
  ASSERT_NE(at, std::string::npos) << r.output;
  EXPECT_GE(std::stoi(r.output.substr(at + 16)), 4) << r.output;  // a ping every 500 ms
}

TEST_F(Preflight, AWrongPasswordFailsTheAuthenticatedCheckOnly) {
  const std::string wrong = "Not-The-Password-4711";
  const auto r = preflight(lab_.bridge().local_endpoint().port(), wrong);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("PASS  TLS as Exchange Online"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("FAIL  Autodiscover and EWS\n      auth-refused"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find(wrong), std::string::npos) << r.output;
}

TEST_F(Preflight, StraightToExchange2007TheTlsCheckFailsWithTheReason) {
  const auto r = preflight(lab_.exchange_port(), user().password);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("FAIL  TLS as Exchange Online"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("TLS protocol version refused"), std::string::npos) << r.output;
}

TEST(PreflightCommandLine, MistakesAreOneLineWithExitCode2) {
  const auto no_url = run_command(program_path("rehearse"), {"preflight", "--email", "a@b"});
  EXPECT_EQ(no_url.exit_code, 2) << no_url.output;
  const auto plain_http = run_command(program_path("rehearse"), {"preflight", "http://x", "--email", "a@b"});
  EXPECT_EQ(plain_http.exit_code, 2) << plain_http.output;
  EXPECT_NE(plain_http.output.find("https://"), std::string::npos) << plain_http.output;
}

}  // namespace
}  // namespace exbridge::test
