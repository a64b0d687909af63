// The user's HAProxy as the peer under test in rehearse: haproxy processes and lint steps in scenario files,
// and the diagnosis of failed steps from HAProxy's log.
#include "rehearse/peers/haproxy/haproxy_peer.hpp"

#include <gtest/gtest.h>

#include "common/errors.hpp"
#include "rehearse/runner/scenario_file.hpp"
#include "tests/support/scenario_support.hpp"

namespace exbridge::rehearse {
namespace {

using test::load_error;
using test::write_temp;

const std::string processes = R"(name = "t"
[[process]]
name = "exchange"
program = "fake-exchange"
[[process]]
name = "haproxy"
kind = "haproxy"
config = "haproxy/seed-haproxy-exchange2007.cfg"
upstream = "${exchange.addr}"
)";

TEST(HaproxyPeer, ShippedHaproxyScenariosLoad) {
  for (const char* name : {"haproxy/haproxy-seed.toml", "haproxy/haproxy-fixed.toml", "ntlm/ntlm-http-server-close.toml",
                           "haproxy/failover-haproxy.toml", "tls/bridge-certificate.toml"}) {
    const auto s = load_scenario(std::filesystem::path(EXBRIDGE_SOURCE_DIR "/scenarios") / name);
    const auto haproxy = std::find_if(s.processes.begin(), s.processes.end(),
                                      [](const process_spec& p) { return p.kind == "haproxy"; });
    ASSERT_NE(haproxy, s.processes.end()) << name;
    EXPECT_TRUE(std::filesystem::exists(haproxy->config)) << haproxy->config;
    EXPECT_TRUE(std::any_of(s.steps.begin(), s.steps.end(), [](const step_spec& st) { return st.action != "lint"; }))
        << name;
  }
}

TEST(HaproxyPeer, HaproxyProcessNeedsConfigAndUpstream) {
  const std::string e = load_error("name = \"t\"\n[[process]]\nname = \"h\"\nkind = \"haproxy\"\nupstream = \"x:1\"\n"
                                   "[[step]]\nname = \"s\"\naction = \"lint\"\nprocess = \"h\"\n");
  EXPECT_NE(e.find("'config'"), std::string::npos) << e;
  EXPECT_NE(load_error("name = \"t\"\n[[process]]\nname = \"h\"\nkind = \"caddy\"\nprogram = \"x\"\n").find("bad.toml:4:"),
            std::string::npos);
  const std::string misplaced = load_error(
      "name = \"t\"\n[[process]]\nname = \"e\"\nprogram = \"fake-exchange\"\nconfig = \"x.cfg\"\n");
  EXPECT_NE(misplaced.find("does not apply to kind = \"program\""), std::string::npos) << misplaced;
}

TEST(HaproxyPeer, LintStepNamesAHaproxyProcess) {
  const auto s = load_scenario(write_temp("lint.toml", processes + R"([[step]]
name = "lint"
action = "lint"
process = "haproxy"
expect = "config-errors"
expect_findings = ["log-invalid"]
)"));
  ASSERT_EQ(s.steps.size(), 1u);
  EXPECT_TRUE(s.steps[0].has_expect_findings);
  EXPECT_EQ(s.steps[0].expect_findings, std::vector<std::string>{"log-invalid"});
  // A relative config path is relative to the scenario file.
  EXPECT_EQ(s.processes[1].config, std::filesystem::temp_directory_path() / "haproxy/seed-haproxy-exchange2007.cfg");

  const std::string not_haproxy = load_error(processes + "[[step]]\nname = \"l\"\naction = \"lint\"\nprocess = \"exchange\"\n");
  EXPECT_NE(not_haproxy.find("bad.toml:13:"), std::string::npos) << not_haproxy;
  const std::string bad_expect =
      load_error(processes + "[[step]]\nname = \"l\"\naction = \"lint\"\nprocess = \"haproxy\"\nexpect = \"ok-ish\"\n");
  EXPECT_NE(bad_expect.find("config-warnings"), std::string::npos) << bad_expect;
  const std::string lint_key_on_probe = load_error(
      processes + "[[step]]\nname = \"p\"\nconnect = \"x:1\"\nemail = \"a@b\"\npassword = \"p\"\nprocess = \"haproxy\"\n");
  EXPECT_NE(lint_key_on_probe.find("belongs to the lint, start and stop actions"), std::string::npos) << lint_key_on_probe;
}

TEST(HaproxyPeer, RetriesBelongToMigrationsAndAreBounded) {
  const std::string base = processes + "[[step]]\nname = \"m\"\nconnect = \"x:1\"\nemail = \"a@b\"\npassword = \"p\"\n";
  const auto s = load_scenario(write_temp("retries.toml", base + "action = \"migrate-mailbox\"\nmanifest = \"m.json\"\n"
                                                                 "retries = 3\nbackoff = \"10s\"\n"));
  EXPECT_EQ(s.steps[0].retries, 3u);
  EXPECT_EQ(s.steps[0].backoff, std::chrono::seconds(10));
  EXPECT_NE(load_error(base + "retries = 2\n").find("applies only to action = \"migrate-mailbox\""), std::string::npos);
  EXPECT_NE(load_error(base + "action = \"migrate-mailbox\"\nmanifest = \"m.json\"\nretries = 1001\n").find("retries"),
            std::string::npos);
}

prepared_haproxy seed_haproxy() {
  prepared_haproxy h;
  h.user_config = EXBRIDGE_SOURCE_DIR "/scenarios/haproxy/haproxy-seed.haproxy.cfg";
  h.config = load_haproxy_config(h.user_config);
  h.findings = lint_haproxy_config(h.config, {.fd_limit = 20000});
  return h;
}

TEST(HaproxyPeer, LintSummaryChecksTheExactFindings) {
  const auto h = seed_haproxy();
  const auto all = summarize_lint(h.user_config, h.findings, {"log-invalid", "listen-without-bind", "maxconn-above-fd-limit",
                                      "http-server-close-breaks-ntlm", "tls10-needs-seclevel0", "timeout-at-ping-edge",
                                      "verify-none"},
                                  true);
  EXPECT_EQ(all.outcome, "config-errors");
  EXPECT_TRUE(all.codes_match) << all.explanation;
  EXPECT_NE(all.explanation.find("line 48: tls10-needs-seclevel0"), std::string::npos) << all.explanation;
  const auto partial = summarize_lint(h.user_config, h.findings, {"log-invalid"}, true);
  EXPECT_FALSE(partial.codes_match);
  EXPECT_NE(partial.explanation.find("unexpected"), std::string::npos);
  EXPECT_TRUE(summarize_lint(h.user_config, h.findings, {}, false).codes_match);
}

// Log lines as HAProxy 2.6 writes them with the lab's log format (httplog plus the upstream TLS error).
const std::string sc_with_tls_error =
    "127.0.0.1:55440 [26/Nov/2026:00:00:01.945] https-in~ ms_backend/server1 0/0/-1/-1/3021 503 217 - - SC-- "
    "1/1/0/0/3 0/0 \"POST /autodiscover/autodiscover.xml HTTP/1.1\" bc_err=\"SSL handshake failure\" "
    "ssl_bc_err=0A00014D\n";

TEST(HaproxyPeer, ServerConnectionFailureWithTlsErrorIsAnUpstreamTlsFailure) {
  const auto r = diagnose_through_haproxy({"http-error", "503"}, sc_with_tls_error, sc_with_tls_error, seed_haproxy());
  EXPECT_EQ(r.outcome, "upstream-tls-failure");
  EXPECT_NE(r.explanation.find("SSL handshake failure"), std::string::npos) << r.explanation;
  EXPECT_NE(r.explanation.find("legacy sigalg"), std::string::npos) << r.explanation;  // OpenSSL's reason for 0A00014D
  EXPECT_NE(r.explanation.find("line 48"), std::string::npos) << r.explanation;
  EXPECT_NE(r.explanation.find("@SECLEVEL=0"), std::string::npos) << r.explanation;
}

TEST(HaproxyPeer, ServerConnectionFailureWithTheServerDownSaysWhy) {
  const std::string nosrv =
      "127.0.0.1:1 [26/Nov/2026:00:07:47.753] https-in~ ms_backend/<NOSRV> 0/-1/-1/-1/0 503 217 - - SC-- 1/1/0/0/0 "
      "0/0 \"POST /autodiscover/autodiscover.xml HTTP/1.1\" bc_err=\"\" ssl_bc_err=-\n";
  const std::string down = "Server ms_backend/server1 is DOWN, reason: Layer4 connection problem, info: \"Connection "
                           "refused\", check duration: 0ms.\n";
  auto fixed = seed_haproxy();
  fixed.findings.clear();
  const auto r = diagnose_through_haproxy({"http-error", "503"}, nosrv, down + nosrv, fixed);
  EXPECT_EQ(r.outcome, "connect-failed");
  EXPECT_NE(r.explanation.find("Connection refused"), std::string::npos) << r.explanation;
}

TEST(HaproxyPeer, TimeoutsNameTheUsersTimeoutLine) {
  const std::string sh = "127.0.0.1:1 [26/Nov/2026:00:00:01.945] https-in~ ms_backend/server1 0/0/1/-1/9000 504 194 "
                         "- - sH-- 1/1/0/0/0 0/0 \"POST /EWS/Exchange.asmx HTTP/1.1\" bc_err=\"\" ssl_bc_err=0\n";
  const auto r = diagnose_through_haproxy({"http-error", "504"}, sh, sh, seed_haproxy());
  EXPECT_EQ(r.outcome, "proxy-timeout");
  EXPECT_NE(r.explanation.find("'timeout server 15m' (haproxy-seed.haproxy.cfg line 27)"), std::string::npos)
      << r.explanation;
  std::string sd = sh;
  sd.replace(sd.find("sH--"), 4, "sD--");
  EXPECT_EQ(diagnose_through_haproxy({"connection-lost", "x"}, sd, sd, seed_haproxy()).outcome, "proxy-idle-timeout");
}

TEST(HaproxyPeer, SuccessAndUnrelatedFailuresStand) {
  EXPECT_EQ(diagnose_through_haproxy({"ok", "fine"}, sc_with_tls_error, "", seed_haproxy()).outcome, "ok");
  const auto ntlm = diagnose_through_haproxy({"ntlm-connection-broken", "401 loop"}, "", "", seed_haproxy());
  EXPECT_EQ(ntlm.outcome, "ntlm-connection-broken");
  EXPECT_NE(ntlm.explanation.find("line 32"), std::string::npos) << ntlm.explanation;
  EXPECT_FALSE(has_request_log("[WARNING] Server x is DOWN, reason: Layer6 invalid response, info: \"SSL\"\n"));
  EXPECT_TRUE(has_request_log(sc_with_tls_error));
}

}  // namespace
}  // namespace exbridge::rehearse
