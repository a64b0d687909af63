// exbridge --config and --check as an administrator runs them: the built binary on files written by the
// test, the lab PKI, and an in-process fake-exchange for --probe-upstream and for serving. Exit status
// 0/1/2 and the FILE:LINE of each finding are the contract. No sleeps: run_command waits for the exit,
// and the started bridge is waited for on its readiness line.
#include <gtest/gtest.h>

#include <pwd.h>
#include <unistd.h>

#include <httplib.h>

#include <boost/json.hpp>

#include <csignal>
#include <fstream>

#include "common/lab_pki.hpp"
#include "common/tls_context.hpp"
#include "rehearse/peers/peer.hpp"
#include "rehearse/runner/process_supervisor.hpp"
#include "tests/support/exchange_lab.hpp"

namespace exbridge {
namespace {

using test::program_path;
using test::run_command;

std::string temp_file(const std::string& suffix) {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  return (std::filesystem::temp_directory_path() /
          ("exbridge-check-" + std::to_string(::getpid()) + "-" + info->name() + suffix))
      .string();
}

/// A config for the lab: listen on a free loopback port, the lab bridge certificate (or `cert`/`key`),
/// fake-exchange on `upstream_port` checked against the lab CA; `extra` is appended.
std::string lab_config(unsigned short upstream_port, const std::string& extra = "", std::string cert = "",
                       std::string key = "") {
  const auto& pki = test::test_pki();
  if (cert.empty()) cert = pki.bridge_cert.string(), key = pki.bridge_key.string();
  return "[listen]\n"
         "address = \"127.0.0.1:0\"\n"
         "[[listen.certificate]]\n"
         "cert = \"" + cert + "\"\n"
         "key = \"" + key + "\"\n"
         "[listen.response_headers]\n"
         "\"X-Frame-Options\" = \"SAMEORIGIN\"\n"
         "[upstream]\n"
         "address = \"127.0.0.1:" + std::to_string(upstream_port) + "\"\n"
         "sni = \"ex2007.contoso.example\"\n"
         "verify = \"ca:" + pki.ca_cert.string() + "\"\n" + extra;
}

/// exbridge's arguments to serve `file`: at least two event-loop threads, whatever the machine's core count,
/// so that its cross-thread paths (SIGHUP reload, admin thread, drain) run as in production
/// (EXBRIDGE_TEST_THREADS raises the number).
std::vector<std::string> serve_args(const std::string& file) {
  return {"--config", file, "--threads", std::to_string(std::max(2u, test::bridge_test_threads()))};
}

std::string write(const std::string& text) {
  const std::string file = temp_file(".toml");
  std::ofstream(file) << text;
  return file;
}

test::command_result check(const std::string& file, bool probe = false) {
  test::raise_fd_limit(8192);  // the fd-limit warning must not depend on the CI shell's ulimit
  std::vector<std::string> args{"--check", "--config", file};
  if (probe) args.push_back("--probe-upstream");
  return run_command(program_path("exbridge"), args);
}

/// A loopback port nothing listens on.
unsigned short closed_port() {
  net::io_context ioc;
  tcp::acceptor a(ioc, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
  return a.local_endpoint().port();
}

bool contains(const std::string& text, const std::string& fragment) { return text.find(fragment) != std::string::npos; }

TEST(ExbridgeCheckCommand, CleanConfigExitsZero) {
  const std::string file = write(lab_config(443));
  const auto r = check(file);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output, "config OK: " + file + "\n");
}

TEST(ExbridgeCheckCommand, TimeoutAtThePingEdgeExitsOneNamingTheLine) {
  // [timeouts] is line 12, client_data line 13.
  const std::string file = write(lab_config(443, "[timeouts]\nclient_data = \"15m\"\n"));
  const auto r = check(file);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_TRUE(contains(r.output, file + ":13: warning: timeout-at-ping-edge: timeouts.client_data = 15 min")) << r.output;
  EXPECT_TRUE(contains(r.output, "config OK with 1 warning: " + file)) << r.output;
}

/// A certificate for the bridge's name that expired yesterday: {cert file, key file}.
std::pair<std::string, std::string> write_expired_certificate() {
  const auto expired = make_certificate(
      {.common_name = "mail.contoso.example", .dns_names = {"mail.contoso.example"}, .valid_to_days = -1}, nullptr);
  const std::string cert = temp_file(".crt"), key = temp_file(".key");
  write_file(cert, expired.cert_pem);
  write_file(key, expired.key_pem, true);
  return {cert, key};
}

TEST(ExbridgeCheckCommand, ExpiredCertificateExitsTwoNamingTheFile) {
  const auto [cert, key] = write_expired_certificate();
  const std::string file = write(lab_config(443, "", cert, key));
  const auto r = check(file);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(contains(r.output, file + ":3: error: certificate: certificate " + cert + " has expired")) << r.output;
  EXPECT_TRUE(contains(r.output, "config has 1 error and 0 warnings: " + file)) << r.output;
}

TEST(ExbridgeCheckCommand, ProbeUpstreamReportsTheTls10SessionOfFakeExchange) {
  test::exchange_lab lab;
  const std::string file = write(lab_config(lab.server().local_endpoint().port()));
  const auto r = check(file, true);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  // e.g. "FILE:9: ok: probe-upstream: upstream 127.0.0.1:PORT (SNI ex2007.contoso.example): TLSv1 AES128-SHA;
  //       certificate subject "CN=...", issuer "CN=...", expires 2027-02-24 10:00 UTC (89 days)"
  EXPECT_TRUE(contains(r.output, file + ":9: ok: probe-upstream: upstream 127.0.0.1:")) << r.output;
  EXPECT_TRUE(contains(r.output, "): TLSv1 ")) << r.output;
  EXPECT_TRUE(contains(r.output, "-SHA; certificate subject \"")) << r.output;
  EXPECT_TRUE(contains(r.output, "issuer \"")) << r.output;
  EXPECT_TRUE(contains(r.output, "config OK: " + file)) << r.output;
}

TEST(ExbridgeCheckCommand, ProbeUpstreamOnAClosedPortExitsTwoWithTheReason) {
  const unsigned short port = closed_port();
  const std::string file = write(lab_config(port));
  const auto r = check(file, true);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(contains(r.output, file + ":9: error: probe-upstream: cannot connect to upstream 127.0.0.1:" +
                                     std::to_string(port) + ": Connection refused; fix: "))
      << r.output;
}

TEST(ExbridgeCheckCommand, ProbeUpstreamNamesAWrongPin) {
  test::exchange_lab lab;
  const auto& pki = test::test_pki();
  std::string text = lab_config(lab.server().local_endpoint().port());
  text.replace(text.find("ca:" + pki.ca_cert.string()), 3 + pki.ca_cert.string().size(), "pin:" + std::string(64, '0'));
  const auto r = check(write(text), true);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(contains(r.output, "error: probe-upstream: upstream 127.0.0.1:")) << r.output;
  EXPECT_TRUE(contains(r.output, ": certificate-pin-mismatch: ")) << r.output;
}

TEST(ExbridgeCheckCommand, QuickModeFlagsAreCheckedToo) {
  test::raise_fd_limit(8192);
  const auto& pki = test::test_pki();
  const auto r = run_command(program_path("exbridge"),
                             {"--check", "--listen", "127.0.0.1:0", "--cert", pki.bridge_cert.string(), "--key",
                              pki.bridge_key.string(), "--upstream", "127.0.0.1:443", "--upstream-verify", "none",
                              "--timeout-rpc-idle", "10m"});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(contains(r.output, "--timeout-rpc-idle: error: timeout-below-ping: --timeout-rpc-idle = 10 min")) << r.output;
  EXPECT_TRUE(contains(r.output, "--upstream-verify: warning: verify-none: ")) << r.output;
  EXPECT_TRUE(contains(r.output, "config has 1 error and 1 warning: command line")) << r.output;
}

TEST(ExbridgeConfigCommand, AStartWithAnExpiredCertificateNamesTheConfigLine) {
  const auto [cert, key] = write_expired_certificate();
  const std::string file = write(lab_config(443, "", cert, key));
  const auto r = run_command(program_path("exbridge"), {"--config", file});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_EQ(r.output.rfind("exbridge: " + file + ":3: certificate " + cert + " has expired", 0), 0u) << r.output;
  EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
}

TEST(ExbridgeConfigCommand, StartsFromAConfigFileAndServes) {
  test::exchange_lab lab;
  const std::string file = write(lab_config(lab.server().local_endpoint().port()));
  rehearse::process_supervisor supervisor(lab.io().context().get_executor());
  const auto started = lab.io().run(supervisor.start("exbridge", program_path("exbridge"), serve_args(file),
                                                     temp_file(".log"), std::chrono::seconds(30)));
  // One request through it: the file's response header proves the file was applied end to end.
  ssl::context client = make_tls_context(tls_profile::exchange_online_client,
                                         {.verify = tls_verify::ca_file, .ca_file = test::test_pki().ca_cert.string()});
  const auto response = lab.io().run([&]() -> net::awaitable<http::response<http::string_body>> {
    test::tls_stream stream(co_await net::this_coro::executor, client);
    const tcp::endpoint ep(net::ip::make_address(started.address.host), started.address.port);
    co_await stream.next_layer().async_connect(ep, net::use_awaitable);
    prepare_client_tls(stream.native_handle(), "mail.contoso.example", true);
    co_await stream.async_handshake(ssl::stream_base::client, net::use_awaitable);
    const std::string request = "GET /EWS/Exchange.asmx HTTP/1.1\r\nHost: mail.contoso.example\r\n\r\n";
    co_await test::send_text(stream, request);
    beast::flat_buffer buffer;
    co_return co_await test::read_response(stream, buffer);
  }());
  EXPECT_EQ(response["X-Frame-Options"], "SAMEORIGIN");
  EXPECT_EQ(lab.wait_for_request(1).target, "/EWS/Exchange.asmx");
  lab.io().run(supervisor.stop_all());
}

/// The admin's /stats.json counter `name`, or -1 when the admin does not answer.
std::int64_t admin_counter(unsigned short port, const std::string& name) {
  httplib::Client admin("127.0.0.1", port);
  admin.set_basic_auth("ops", "admin-secret");
  const auto r = admin.Get("/stats.json");
  if (!r || r->status != 200) return -1;
  return boost::json::parse(r->body).at("counters").at(name).as_int64();
}

TEST(ExbridgeConfigCommand, SighupReloadsTheFileRefusesABrokenOneAndSigtermDrainsAfterDroppingPrivileges) {
  test::exchange_lab lab;
  const auto& pki = test::test_pki();
  // The certificate is read again on SIGHUP, after privileges are dropped: copies everyone may read.
  const std::filesystem::path dir = temp_file("-certs");
  std::filesystem::create_directories(dir);
  std::filesystem::permissions(dir, std::filesystem::perms::all);
  std::filesystem::copy_file(pki.bridge_cert, dir / "cert.pem", std::filesystem::copy_options::overwrite_existing);
  std::filesystem::copy_file(pki.bridge_key, dir / "key.pem", std::filesystem::copy_options::overwrite_existing);
  std::filesystem::copy_file(pki.ca_cert, dir / "ca.pem", std::filesystem::copy_options::overwrite_existing);
  for (const char* f : {"cert.pem", "key.pem", "ca.pem"}) {
    std::filesystem::permissions(dir / f, std::filesystem::perms::owner_all | std::filesystem::perms::group_read |
                                              std::filesystem::perms::others_read);
  }
  const bool root = ::geteuid() == 0;
  // The admin listener's port is named in the config file (its readiness line is not read): a free port below
  // the ephemeral range, which a test beside this one opening thousands of connections cannot take meanwhile.
  const unsigned short admin_port = rehearse::free_loopback_port();
  const auto config = [&](const std::string& frame_options, const std::string& extra) {
    std::string text = lab_config(lab.server().local_endpoint().port(), "", (dir / "cert.pem").string(),
                                  (dir / "key.pem").string());
    text = text.substr(0, text.find("[listen.response_headers]")) + "[listen.response_headers]\n\"X-Frame-Options\" = \"" +
           frame_options + "\"\n" + text.substr(text.find("[upstream]"));
    const std::string ca = pki.ca_cert.string();
    text.replace(text.find(ca), ca.size(), (dir / "ca.pem").string());
    const std::string top = root ? "user = \"nobody\"\n" : "";
    return top + text + "[admin]\naddress = \"127.0.0.1:" + std::to_string(admin_port) +
           "\"\nuser = \"ops\"\npassword = \"admin-secret\"\n" + extra;
  };
  // exbridge is started as systemd's Type=notify starts it: ready when it sends READY=1 on NOTIFY_SOCKET, so
  // its listening port is named in the file too. Reloads are then awaited as systemd awaits them: RELOADING=1,
  // then READY=1 once the new configuration is in use or refused.
  const unsigned short listen_port = rehearse::free_loopback_port();
  const auto listening_on = [&](std::string text) {
    const std::string any_port = "127.0.0.1:0";
    return text.replace(text.find(any_port), any_port.size(), "127.0.0.1:" + std::to_string(listen_port));
  };
  const std::string file = write(listening_on(config("SAMEORIGIN", "")));
  rehearse::process_supervisor supervisor(lab.io().context().get_executor());
  const rehearse::readiness notify{.notify_socket = "@exbridge-test-" + std::to_string(::getpid()) + "-reload",
                                   .address = {"127.0.0.1", listen_port}};
  const auto started = lab.io().run(supervisor.start("exbridge", program_path("exbridge"), serve_args(file),
                                                     temp_file(".log"), std::chrono::seconds(30), notify));
  const auto reloaded = [&] {  // RELOADING=1, then READY=1
    const auto bound = std::chrono::seconds(20);
    return lab.io().run(supervisor.wait_notify("exbridge", "RELOADING=1", bound)).has_value() &&
           lab.io().run(supervisor.wait_notify("exbridge", "READY=1", bound)).has_value();
  };
  if (root) {
    std::ifstream status("/proc/" + std::to_string(supervisor.pid("exbridge")) + "/status");
    std::string line;
    while (std::getline(status, line) && line.rfind("Uid:", 0) != 0) {
    }
    const passwd* nobody = ::getpwnam("nobody");
    ASSERT_NE(nobody, nullptr);
    EXPECT_EQ(line.substr(0, line.find('\t', 5)), "Uid:\t" + std::to_string(nobody->pw_uid)) << line;
  }

  ssl::context client = make_tls_context(tls_profile::exchange_online_client,
                                         {.verify = tls_verify::ca_file, .ca_file = pki.ca_cert.string()});
  test::tls_stream idle(lab.io().context(), client);  // stays open, idle, until the drain closes it
  const auto frame_options = [&](bool keep_open) {
    return lab.io().run([&]() -> net::awaitable<std::string> {
      test::tls_stream fresh(co_await net::this_coro::executor, client);
      test::tls_stream& stream = keep_open ? idle : fresh;
      const tcp::endpoint ep(net::ip::make_address(started.address.host), started.address.port);
      co_await stream.next_layer().async_connect(ep, net::use_awaitable);
      prepare_client_tls(stream.native_handle(), "mail.contoso.example", true);
      co_await stream.async_handshake(ssl::stream_base::client, net::use_awaitable);
      const std::string request = "GET /EWS/Exchange.asmx HTTP/1.1\r\nHost: mail.contoso.example\r\n\r\n";
      co_await test::send_text(stream, request);
      beast::flat_buffer buffer;
      const auto response = co_await test::read_response(stream, buffer);
      co_return std::string(response["X-Frame-Options"]);
    }());
  };
  EXPECT_EQ(frame_options(true), "SAMEORIGIN");

  std::ofstream(file) << listening_on(config("DENY", ""));
  supervisor.signal("exbridge", SIGHUP);
  ASSERT_TRUE(reloaded());
  EXPECT_EQ(admin_counter(admin_port, "config_reloads"), 1);
  EXPECT_EQ(frame_options(false), "DENY");

  std::ofstream(file) << listening_on(config("SAMEORIGIN", "[timeouts]\nclient_dat = \"20m\"\n"));  // unknown key
  supervisor.signal("exbridge", SIGHUP);
  ASSERT_TRUE(reloaded());
  EXPECT_EQ(admin_counter(admin_port, "config_reload_failures"), 1);
  EXPECT_EQ(frame_options(false), "DENY") << "a refused reload changed the running configuration";
  EXPECT_EQ(admin_counter(admin_port, "config_reloads"), 1);

  // SIGTERM with an idle keep-alive connection open: the drain closes it, and exbridge exits 0 on its own
  // (stop() would log a kill after 5 s otherwise; the exit status says which).
  const auto stopping = std::chrono::steady_clock::now();
  EXPECT_EQ(lab.io().run(supervisor.stop("exbridge")), 0);
  EXPECT_LT(std::chrono::steady_clock::now() - stopping, std::chrono::seconds(5));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace exbridge
