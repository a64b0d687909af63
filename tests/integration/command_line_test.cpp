// The three programs, run as a user would run them, on the mistakes a user makes: each ends with one
// line naming the cause (and the fix) and a non-zero exit status, never a crash or a hang.
#include <gtest/gtest.h>

#include <fstream>

#include "tests/support/test_support.hpp"

namespace exbridge {
namespace {

using test::program_path;
using test::run_command;

void expect_clean_failure(const test::command_result& r, const std::string& fragment) {
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find(fragment), std::string::npos) << r.output;
  // One line: a precise message, not a stack of them.
  EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
}

TEST(CommandLine, ExbridgeUnknownFlag) {
  expect_clean_failure(run_command(program_path("exbridge"), {"--frobnicate"}), "unknown option '--frobnicate'");
}

TEST(CommandLine, ExbridgeMissingCertificate) {
  expect_clean_failure(run_command(program_path("exbridge"),
                                   {"--listen", "127.0.0.1:0", "--cert", "/nonexistent/fullchain.pem", "--key",
                                    "/nonexistent/privkey.pem", "--upstream", "127.0.0.1:1", "--upstream-verify", "none"}),
                       "'/nonexistent/fullchain.pem' does not exist");
}

TEST(CommandLine, ExbridgeKeyThatDoesNotMatchTheCertificate) {
  const auto& pki = test::test_pki();
  expect_clean_failure(run_command(program_path("exbridge"),
                                   {"--listen", "127.0.0.1:0", "--cert", pki.bridge_cert.string(), "--key",
                                    pki.exchange_key.string(), "--upstream", "127.0.0.1:1", "--upstream-verify", "none"}),
                       "does not match certificate");
}

TEST(CommandLine, ExbridgePortInUse) {
  net::io_context ioc;
  tcp::acceptor busy(ioc, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
  const auto& pki = test::test_pki();
  expect_clean_failure(
      run_command(program_path("exbridge"),
                  {"--listen", "127.0.0.1:" + std::to_string(busy.local_endpoint().port()), "--cert",
                   pki.bridge_cert.string(), "--key", pki.bridge_key.string(), "--upstream", "127.0.0.1:1",
                   "--upstream-verify", "none"}),
      "another process listens there");
}

TEST(CommandLine, FakeExchangeUnknownVersion) {
  expect_clean_failure(run_command(program_path("fake-exchange"), {"--version", "SP4"}), "--version 'SP4' is unknown");
}

TEST(CommandLine, FakeExchangeWin2003LegacyNamesTheMissingCiphers) {
  expect_clean_failure(run_command(program_path("fake-exchange"), {"--windows", "win2003-legacy"}), "RC4 and 3DES");
}

TEST(CommandLine, FakeExchangeBadConfigAndFaultFilesNameTheLine) {
  const auto dir = std::filesystem::temp_directory_path();
  const auto config = dir / ("exbridge-fx-" + std::to_string(::getpid()) + ".toml");
  std::ofstream(config) << "[[user]]\nemail = \"dana@contoso.example\"\npassword = 7\n";
  expect_clean_failure(run_command(program_path("fake-exchange"), {"--config", config.string()}),
                       config.string() + ":3:12: 'password' must be a string");
  const auto faults = dir / ("exbridge-fx-faults-" + std::to_string(::getpid()) + ".toml");
  std::ofstream(faults) << "[[fault]]\naction = \"reset\"\nafter = 10\n";
  expect_clean_failure(run_command(program_path("fake-exchange"), {"--faults", faults.string()}),
                       faults.string() + ":3:9: unknown key 'after'");
  expect_clean_failure(run_command(program_path("fake-exchange"), {"--control", "0.0.0.0:0"}), "loopback only");
}

TEST(CommandLine, RehearseUnparsableScenarioNamesFileAndLine) {
  const auto path = std::filesystem::temp_directory_path() / ("exbridge-broken-" + std::to_string(::getpid()) + ".toml");
  std::ofstream(path) << "name = \"broken\"\n[[process]]\nname = \n";
  expect_clean_failure(run_command(program_path("rehearse"), {"run", path.string()}), path.string() + ":3:");
}

TEST(CommandLine, RehearseWithoutAScenarioSaysWhatToRun) {
  expect_clean_failure(run_command(program_path("rehearse"), {}), "rehearse run scenarios/basics/seed-story.toml");
}

TEST(CommandLine, RehearseSkipsAScenarioWhosePeerIsNotInstalledAndSaysWhy) {
  const auto dir = std::filesystem::temp_directory_path() / ("exbridge-skip-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "haproxy.cfg") << "global\ndefaults\n";
  std::ofstream(dir / "skip.toml") << "name = \"needs-haproxy\"\n[[process]]\nname = \"haproxy\"\nkind = \"haproxy\"\n"
                                      "program = \"/nonexistent/haproxy\"\nconfig = \"haproxy.cfg\"\nupstream = \"127.0.0.1:1\"\n"
                                      "[[step]]\nname = \"lint\"\naction = \"lint\"\nprocess = \"haproxy\"\n";
  const auto r = run_command(program_path("rehearse"), {"run", (dir / "skip.toml").string(), "--out", (dir / "out").string()});
  EXPECT_EQ(r.exit_code, 0) << r.output;  // skipped is not failed
  EXPECT_NE(r.output.find("scenario needs-haproxy: SKIPPED (process 'haproxy' needs /nonexistent/haproxy, which is not "
                          "installed"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("1 scenario(s) SKIPPED"), std::string::npos) << r.output;
  std::filesystem::remove_all(dir);
}

TEST(CommandLine, RehearseRefusesTimingOnAClockItDoesNotScale) {
  // exbridge started without --time-scale in a scenario at time scale 100: its timers would run at real time.
  const auto dir = std::filesystem::temp_directory_path() / ("exbridge-scale-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "unscaled.toml")
      << "name = \"unscaled\"\ntime_scale = 100\n[[process]]\nname = \"bridge\"\nprogram = \"exbridge\"\n"
         "args = [\"--listen\", \"127.0.0.1:0\", \"--upstream\", \"127.0.0.1:1\"]\n"
         "[[step]]\nname = \"idle\"\naction = \"outlook-anywhere\"\nconnect = \"${bridge.addr}\"\nemail = \"a@b\"\n"
         "password = \"p\"\n";
  auto r = run_command(program_path("rehearse"), {"run", (dir / "unscaled.toml").string(), "--out", (dir / "out").string()});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("process 'bridge' runs exbridge without --time-scale while the scenario runs at time scale 100"),
            std::string::npos)
      << r.output;
  // A proxy rehearse did not start (kind external) cannot be rehearsed on a compressed clock.
  std::ofstream(dir / "external.toml")
      << "name = \"external\"\ntime_scale = 100\n[[process]]\nname = \"self\"\nprogram = \"fake-exchange\"\n"
         "args = [\"--listen\", \"127.0.0.1:0\", \"--time-scale\", \"${time_scale}\"]\n"
         "[[process]]\nname = \"proxy\"\nkind = \"external\"\naddress = \"${self.addr}\"\n"
         "[[step]]\nname = \"idle\"\naction = \"outlook-anywhere\"\nconnect = \"${proxy.addr}\"\nemail = \"a@b\"\n"
         "password = \"p\"\n";
  r = run_command(program_path("rehearse"), {"run", (dir / "external.toml").string(), "--out", (dir / "out").string()});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("goes through process 'proxy' (kind external), whose timeouts do not run on rehearse's clock"),
            std::string::npos)
      << r.output;
  std::filesystem::remove_all(dir);
}

TEST(CommandLine, HelpListsTheDemoOrganisation) {
  const auto r = run_command(program_path("fake-exchange"), {"--help"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.output.find("alex.wilber@contoso.example"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace exbridge
