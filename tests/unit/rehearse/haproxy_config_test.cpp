// Unit tests for the HAProxy config module: parsing with HAProxy's quoting, every lint rule (each one has a
// config that triggers it and a correct one that does not), and the lab rewrite, checked with the real
// `haproxy -c` when HAProxy is installed.
#include <gtest/gtest.h>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "common/errors.hpp"
#include "common/lab_pki.hpp"
#include "rehearse/peers/haproxy/haproxy_config.hpp"
#include "tests/support/test_support.hpp"

namespace exbridge::rehearse {
namespace {

using namespace std::chrono_literals;

const std::string seed_file = EXBRIDGE_SOURCE_DIR "/scenarios/haproxy/haproxy-seed.haproxy.cfg";
const std::string fixed_file = EXBRIDGE_SOURCE_DIR "/scenarios/haproxy/haproxy-fixed.haproxy.cfg";

/// A correct bridge config: every rule's test changes one thing in it.
constexpr const char* good = R"(global
    log stdout format raw local0
    maxconn 4000
defaults
    mode http
    log global
    timeout connect 10s
    timeout client 1h
    timeout server 1h
frontend https-in
    bind :443 ssl crt /etc/haproxy/owa.pem
    default_backend exchange
backend exchange
    server ex1 10.0.0.5:443 ssl verify required ca-file /etc/haproxy/ca.pem force-tlsv10 ciphers DEFAULT:@SECLEVEL=0
)";

std::string replaced(std::string text, const std::string& from, const std::string& to) {
  const auto at = text.find(from);
  if (at == std::string::npos) throw std::logic_error("test config has no '" + from + "'");
  return text.replace(at, from.size(), to);
}

std::vector<haproxy_finding> lint(const std::string& text) {
  return lint_haproxy_config(parse_haproxy_config(text, "test.cfg"), {.fd_limit = 20000});
}

/// "code@line" of every finding, in order.
std::vector<std::string> codes(const std::vector<haproxy_finding>& findings) {
  std::vector<std::string> out;
  for (const auto& f : findings) out.push_back(f.code + "@" + std::to_string(f.line));
  return out;
}

std::vector<std::string> codes(const std::string& text) { return codes(lint(text)); }

const haproxy_finding* find(const std::vector<haproxy_finding>& findings, const std::string& code) {
  for (const auto& f : findings) {
    if (f.code == code) return &f;
  }
  return nullptr;
}

std::string read(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

std::filesystem::path temp_dir() {
  const auto dir = std::filesystem::temp_directory_path() / ("exbridge-haproxy-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  return dir;
}

// --- parsing -------------------------------------------------------------------------------------------

TEST(HaproxyConfigParse, SeedSplitsIntoSectionsWithLineNumbers) {
  const auto cfg = load_haproxy_config(seed_file);
  ASSERT_EQ(cfg.sections.size(), 5u);
  EXPECT_EQ(cfg.sections[0].kind, "global");
  EXPECT_EQ(cfg.sections[0].name, "");
  EXPECT_EQ(cfg.sections[0].number, 2);
  EXPECT_EQ(cfg.sections[2].kind, "listen");
  EXPECT_EQ(cfg.sections[2].name, "stats");
  EXPECT_EQ(cfg.sections[4].name, "ms_backend");
  EXPECT_EQ(cfg.original_lines.size(), 51u);
  const auto& client = cfg.sections[1].lines[8];  // comments and blank lines are not lines
  EXPECT_EQ(client.number, 26);
  EXPECT_EQ(client.keyword, "timeout");
  EXPECT_EQ(client.args, (std::vector<std::string>{"client", "15m"}));
  EXPECT_EQ(client.text, "        timeout client 15m");
  const auto& acl = cfg.sections[4].lines.back();
  EXPECT_EQ(acl.number, 51);
  EXPECT_EQ(acl.args.back(), "}");
}

TEST(HaproxyConfigParse, QuotesEscapesAndComments) {
  const auto cfg = parse_haproxy_config(
      "frontend f\n"
      "  http-response set-header X-A \"a b # c\"  # comment\n"
      "  http-response set-header X-B 'it''s \"raw\" \\n' x\\ y\n"
      "  acl a path_beg /a\\#b#tail\n"
      "  http-request set-var(txn.x) str(\"\")\n",
      "q.cfg");
  const auto& l = cfg.sections[0].lines;
  ASSERT_EQ(l.size(), 4u);
  EXPECT_EQ(l[0].args, (std::vector<std::string>{"set-header", "X-A", "a b # c"}));
  EXPECT_EQ(l[0].text, "  http-response set-header X-A \"a b # c\"");
  EXPECT_EQ(l[1].args, (std::vector<std::string>{"set-header", "X-B", "its \"raw\" \\n", "x y"}));
  EXPECT_EQ(l[2].args, (std::vector<std::string>{"a", "path_beg", "/a#b"}));
  EXPECT_EQ(l[2].text, "  acl a path_beg /a\\#b");
  EXPECT_EQ(l[3].args.back(), "str()");
}

TEST(HaproxyConfigParse, UnmatchedQuoteNamesFileAndLine) {
  try {
    parse_haproxy_config("global\n  log \"stdout local0\n", "bad.cfg");
    FAIL();
  } catch (const config_error& e) {
    EXPECT_NE(std::string(e.what()).find("bad.cfg:2: unmatched double quote"), std::string::npos) << e.what();
  }
}

TEST(HaproxyConfigParse, LineOutsideAnySectionNamesFileAndLine) {
  try {
    parse_haproxy_config("# comment\n\n  maxconn 100\nglobal\n", "bad.cfg");
    FAIL();
  } catch (const config_error& e) {
    EXPECT_NE(std::string(e.what()).find("bad.cfg:3: 'maxconn' is outside any section"), std::string::npos)
        << e.what();
  }
}

TEST(HaproxyConfigParse, UnreadableFileNamesIt) {
  try {
    load_haproxy_config("/nonexistent/haproxy.cfg");
    FAIL();
  } catch (const config_error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/haproxy.cfg: cannot read"), std::string::npos) << e.what();
  }
}

// --- time values ---------------------------------------------------------------------------------------

TEST(HaproxyConfigTime, ParsesEveryUnitAndDefaultsToMilliseconds) {
  EXPECT_EQ(parse_haproxy_time("100"), 100ms);
  EXPECT_EQ(parse_haproxy_time("100ms"), 100ms);
  EXPECT_EQ(parse_haproxy_time("500us"), 500us);
  EXPECT_EQ(parse_haproxy_time("30s"), 30s);
  EXPECT_EQ(parse_haproxy_time("15m"), 15min);
  EXPECT_EQ(parse_haproxy_time("1h"), 1h);
  EXPECT_EQ(parse_haproxy_time("1d"), 24h);
  EXPECT_EQ(parse_haproxy_time("0"), 0us);
}

TEST(HaproxyConfigTime, RejectsValuesHaproxyRefuses) {
  for (const char* bad : {"", "m", "-5s", "1.5s", "15 m", "15min", "10x", "99999999999999999999"}) {
    EXPECT_THROW(parse_haproxy_time(bad), config_error) << bad;
  }
}

TEST(HaproxyConfigTime, FormatsTheShortestExactForm) {
  EXPECT_EQ(format_haproxy_time(15min), "15m");
  EXPECT_EQ(format_haproxy_time(9s), "9s");
  EXPECT_EQ(format_haproxy_time(1500ms), "1500ms");
  EXPECT_EQ(format_haproxy_time(250us), "250us");
  EXPECT_EQ(format_haproxy_time(2h), "2h");
  EXPECT_EQ(format_haproxy_time(48h), "2d");
  EXPECT_EQ(format_haproxy_time(0us), "0");
  EXPECT_EQ(parse_haproxy_time(format_haproxy_time(90s)), 90s);
}

// --- lint ----------------------------------------------------------------------------------------------

TEST(HaproxyConfigLint, SeedProducesTheKnownFindings) {
  const auto findings = lint_haproxy_config(load_haproxy_config(seed_file), {.fd_limit = 20000});
  EXPECT_EQ(codes(findings), (std::vector<std::string>{
                                 "maxconn-above-fd-limit@5", "log-invalid@9", "timeout-at-ping-edge@26",
                                 "timeout-at-ping-edge@27", "timeout-at-ping-edge@28",
                                 "http-server-close-breaks-ntlm@32", "listen-without-bind@34",
                                 "tls10-needs-seclevel0@48", "verify-none@48"}));
  for (const auto& f : findings) {
    EXPECT_FALSE(f.message.empty()) << f.code;
    EXPECT_FALSE(f.fix.empty()) << f.code;
    EXPECT_TRUE(f.severity == "error" || f.severity == "warning") << f.code;
  }
  const std::vector<std::string> severities{"warning", "error", "warning", "warning", "warning",
                                            "error",   "warning", "error", "warning"};
  for (std::size_t i = 0; i < findings.size() && i < severities.size(); ++i) {
    EXPECT_EQ(findings[i].severity, severities[i]) << findings[i].code;
  }
  EXPECT_NE(find(findings, "maxconn-above-fd-limit")->message.find("20000"), std::string::npos);
  EXPECT_NE(find(findings, "tls10-needs-seclevel0")->fix.find("ciphers DEFAULT:@SECLEVEL=0"), std::string::npos);
}

TEST(HaproxyConfigLint, FixedConfigAndTheBaseConfigHaveNoFindings) {
  EXPECT_EQ(codes(lint_haproxy_config(load_haproxy_config(fixed_file), {.fd_limit = 20000})),
            std::vector<std::string>{});
  EXPECT_EQ(codes(good), std::vector<std::string>{});
}

TEST(HaproxyConfigLint, LogWithoutAddressOrFacilityIsAnError) {
  EXPECT_EQ(codes(replaced(good, "log stdout format raw local0", "log local0")),
            std::vector<std::string>{"log-invalid@2"});
  EXPECT_EQ(codes(replaced(good, "log stdout format raw local0", "log 127.0.0.1")),
            std::vector<std::string>{"log-invalid@2"});
  EXPECT_EQ(codes(replaced(good, "log global", "log local0")), std::vector<std::string>{"log-invalid@6"});
  for (const char* valid : {"log 127.0.0.1 local0", "log 127.0.0.1:514 local0", "log /dev/log local0 notice",
                            "log stdout format raw local0", "log ring@x local0", "log 10.0.0.1 len 4096 local7 info"}) {
    EXPECT_EQ(codes(replaced(good, "log stdout format raw local0", valid)), std::vector<std::string>{}) << valid;
  }
}

TEST(HaproxyConfigLint, ListenWithoutBindIsUnreachable) {
  const std::string stats = std::string(good) + "listen stats\n    stats enable\n    stats uri /stats\n";
  EXPECT_EQ(codes(stats), std::vector<std::string>{"listen-without-bind@15"});
  EXPECT_EQ(codes(stats + "    bind 127.0.0.1:8404\n"), std::vector<std::string>{});
}

TEST(HaproxyConfigLint, MaxconnNeedsTwoDescriptorsPerConnection) {
  const auto cfg = parse_haproxy_config(replaced(good, "maxconn 4000", "maxconn 10000"), "t.cfg");
  EXPECT_EQ(codes(lint_haproxy_config(cfg, {.fd_limit = 20000})), std::vector<std::string>{"maxconn-above-fd-limit@3"});
  EXPECT_EQ(codes(lint_haproxy_config(cfg, {.fd_limit = 30000})), std::vector<std::string>{});
  EXPECT_NE(find(lint_haproxy_config(cfg, {.fd_limit = 20000}), "maxconn-above-fd-limit")->message.find("20000"),
            std::string::npos);
}

TEST(HaproxyConfigLint, MaxconnDefaultsToTheHardFdLimit) {
  rlimit rl{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &rl), 0);
  if (rl.rlim_max == RLIM_INFINITY) GTEST_SKIP() << "no descriptor limit here";
  const auto cfg = parse_haproxy_config(replaced(good, "maxconn 4000", "maxconn " + std::to_string(rl.rlim_max)), "t");
  const auto findings = lint_haproxy_config(cfg);
  ASSERT_EQ(codes(findings), std::vector<std::string>{"maxconn-above-fd-limit@3"});
  EXPECT_NE(findings[0].message.find(std::to_string(rl.rlim_max)), std::string::npos) << findings[0].message;
}

TEST(HaproxyConfigLint, HttpServerCloseBreaksNtlm) {
  EXPECT_EQ(codes(replaced(good, "    log global\n", "    log global\n    option http-server-close\n")),
            std::vector<std::string>{"http-server-close-breaks-ntlm@7"});
  EXPECT_EQ(codes(std::string(good) + "    option httpclose\n"),
            std::vector<std::string>{"http-server-close-breaks-ntlm@15"});
  EXPECT_EQ(codes(replaced(good, "    default_backend", "    option http-server-close\n    default_backend")),
            std::vector<std::string>{"http-server-close-breaks-ntlm@12"});
  // A statistics page does not carry NTLM; 'no option' is the fix, not the problem.
  EXPECT_EQ(codes(std::string(good) + "    no option http-server-close\n" +
                  "listen stats\n    bind 127.0.0.1:8404\n    option httpclose\n    stats enable\n"),
            std::vector<std::string>{});
  // In defaults it applies unless both the frontend and the backend negate it.
  const std::string in_defaults = replaced(good, "    log global\n", "    log global\n    option http-server-close\n");
  const std::string backend_negates = in_defaults + "    no option http-server-close\n";
  EXPECT_EQ(codes(backend_negates), std::vector<std::string>{"http-server-close-breaks-ntlm@7"});
  EXPECT_EQ(codes(replaced(backend_negates, "    default_backend", "    no option http-server-close\n    default_backend")),
            std::vector<std::string>{});
  EXPECT_EQ(codes(std::string(good) + "    http-reuse always\n"), std::vector<std::string>{"http-reuse-shares-ntlm@15"});
  EXPECT_EQ(codes(std::string(good) + "    http-reuse aggressive\n"),
            std::vector<std::string>{"http-reuse-shares-ntlm@15"});
  EXPECT_EQ(codes(std::string(good) + "    http-reuse safe\n"), std::vector<std::string>{});
}

TEST(HaproxyConfigLint, HttpBufferRequestStallsRpcOverHttp) {
  EXPECT_EQ(codes(std::string(good) + "    option http-buffer-request\n"),
            std::vector<std::string>{"http-buffer-request-stalls-rpc@15"});
}

TEST(HaproxyConfigLint, Tls10NeedsSecurityLevelZero) {
  const std::string no_ciphers = replaced(good, " ciphers DEFAULT:@SECLEVEL=0", "");
  EXPECT_EQ(codes(no_ciphers), std::vector<std::string>{"tls10-needs-seclevel0@14"});
  EXPECT_EQ(codes(replaced(no_ciphers, "force-tlsv10", "force-tlsv11")),
            std::vector<std::string>{"tls10-needs-seclevel0@14"});
  EXPECT_EQ(codes(replaced(no_ciphers, "force-tlsv10", "ssl-min-ver TLSv1.0")),
            std::vector<std::string>{"tls10-needs-seclevel0@14"});
  EXPECT_EQ(codes(replaced(no_ciphers, " force-tlsv10", "")), std::vector<std::string>{});  // TLS 1.2+ upstream
  // A global default is as good as the server line's own ciphers; the wrong level is not.
  EXPECT_EQ(codes(replaced(no_ciphers, "    maxconn 4000\n",
                           "    maxconn 4000\n    ssl-default-server-ciphers DEFAULT:@SECLEVEL=0\n")),
            std::vector<std::string>{});
  EXPECT_EQ(codes(replaced(good, "@SECLEVEL=0", "@SECLEVEL=1")), std::vector<std::string>{"tls10-needs-seclevel0@14"});
  // Inherited from default-server: reported where force-tlsv10 is written.
  EXPECT_EQ(codes(replaced(no_ciphers, "    server ex1 10.0.0.5:443 ssl verify required ca-file /etc/haproxy/ca.pem force-tlsv10",
                           "    default-server ssl force-tlsv10 verify required ca-file /etc/haproxy/ca.pem\n"
                           "    server ex1 10.0.0.5:443\n    server ex2 10.0.0.6:443")),
            std::vector<std::string>{"tls10-needs-seclevel0@14"});
}

TEST(HaproxyConfigLint, Tls10WithoutSslSendsPlainHttpTo443) {
  EXPECT_EQ(codes(replaced(good, "10.0.0.5:443 ssl verify required ca-file /etc/haproxy/ca.pem", "10.0.0.5:443")),
            std::vector<std::string>{"server-without-ssl@14"});
}

TEST(HaproxyConfigLint, TimeoutsAgainstOutlookAnywherePings) {
  EXPECT_EQ(codes(replaced(good, "timeout client 1h", "timeout client 15m")),
            std::vector<std::string>{"timeout-at-ping-edge@8"});
  EXPECT_EQ(codes(replaced(good, "timeout server 1h", "timeout server 750s")),
            std::vector<std::string>{"timeout-at-ping-edge@9"});
  EXPECT_EQ(codes(std::string(good) + "    timeout http-keep-alive 900s\n"),
            std::vector<std::string>{"timeout-at-ping-edge@15"});
  EXPECT_EQ(codes(std::string(good) + "    timeout tunnel 12m\n"), std::vector<std::string>{"timeout-at-ping-edge@15"});
  const auto below = lint(replaced(good, "timeout client 1h", "timeout client 5m"));
  EXPECT_EQ(codes(below), std::vector<std::string>{"timeout-below-ping@8"});
  EXPECT_EQ(below[0].severity, "error");
  // Clear of both pings, or not an inactivity timer of the RPC channels: fine.
  for (const char* fine : {"timeout client 20m", "timeout client 11h"}) {
    EXPECT_EQ(codes(replaced(good, "timeout client 1h", fine)), std::vector<std::string>{}) << fine;
  }
  // 0 is no timeout at all: not cut at 720 s, but HAProxy warns that it is missing.
  EXPECT_EQ(codes(replaced(good, "timeout client 1h", "timeout client 0")),
            std::vector<std::string>{"no-timeout-client@10"});
  EXPECT_EQ(codes(std::string(good) + "    timeout http-keep-alive 10s\n    timeout http-request 1m\n"),
            std::vector<std::string>{});
  EXPECT_EQ(codes(replaced(good, "timeout client 1h", "timeout client 1hour")),
            std::vector<std::string>{"timeout-invalid@8"});
}

TEST(HaproxyConfigLint, VerifyNoneLetsAnyoneImpersonateExchange) {
  EXPECT_EQ(codes(replaced(good, "verify required ca-file /etc/haproxy/ca.pem", "verify none")),
            std::vector<std::string>{"verify-none@14"});
  EXPECT_EQ(codes(replaced(replaced(good, "verify required ca-file /etc/haproxy/ca.pem ", ""), "    maxconn 4000\n",
                           "    maxconn 4000\n    ssl-server-verify none\n")),
            std::vector<std::string>{"verify-none@15"});
}

TEST(HaproxyConfigLint, VerifyWithoutCaFileIsRefused) {
  EXPECT_EQ(codes(replaced(good, " ca-file /etc/haproxy/ca.pem", "")), std::vector<std::string>{"verify-without-ca@14"});
  EXPECT_EQ(codes(replaced(good, " verify required ca-file /etc/haproxy/ca.pem", "")),
            std::vector<std::string>{"verify-without-ca@14"});
}

TEST(HaproxyConfigLint, BindOn443NeedsSslCrt) {
  EXPECT_EQ(codes(replaced(good, "bind :443 ssl crt /etc/haproxy/owa.pem", "bind :443")),
            std::vector<std::string>{"no-bind-ssl@11"});
  EXPECT_EQ(codes(replaced(good, "bind :443 ssl crt /etc/haproxy/owa.pem", "bind 10.0.0.1:80,10.0.0.1:443 ssl")),
            std::vector<std::string>{"no-bind-ssl@11"});
  EXPECT_EQ(codes(replaced(good, "    default_backend", "    bind :80\n    default_backend")), std::vector<std::string>{});
}

TEST(HaproxyConfigLint, BindAllowingOldTlsIsAWarning) {
  EXPECT_EQ(codes(replaced(good, "owa.pem", "owa.pem ssl-min-ver TLSv1.0")),
            std::vector<std::string>{"bind-allows-old-tls@11"});
  EXPECT_EQ(codes(replaced(good, "owa.pem", "owa.pem force-tlsv11")), std::vector<std::string>{"bind-allows-old-tls@11"});
  EXPECT_EQ(codes(replaced(good, "owa.pem", "owa.pem ssl-min-ver TLSv1.2")), std::vector<std::string>{});
}

TEST(HaproxyConfigLint, MissingTimeoutsAreWarnings) {
  const std::string none = replaced(replaced(replaced(good, "    timeout connect 10s\n", ""), "    timeout client 1h\n", ""),
                                    "    timeout server 1h\n", "");
  EXPECT_EQ(codes(none), (std::vector<std::string>{"no-timeout-client@7", "no-timeout-connect@10",
                                                   "no-timeout-server@10"}));
  // Set in the section instead of defaults, or a tunnel timeout instead of the server one: fine.
  EXPECT_EQ(codes(replaced(replaced(none, "    default_backend", "    timeout client 1h\n    default_backend"),
                           "    server ex1", "    timeout connect 5s\n    timeout tunnel 1h\n    server ex1")),
            std::vector<std::string>{});
}

// --- lab rewrite ---------------------------------------------------------------------------------------

haproxy_lab test_lab() {
  return {.bind_address = "127.0.0.1:40443",
          .bridge_pem = "/lab/bridge.pem",
          .upstream_address = "127.0.0.1:40444",
          .ca_file = "/lab/ca.crt",
          .time_scale = 100};
}

TEST(HaproxyConfigRewrite, SeedKeepsLineNumbersAndTheUsersMistakes) {
  const auto cfg = load_haproxy_config(seed_file);
  const auto r = rewrite_haproxy_for_lab(cfg, test_lab());
  const auto out = lines_of(r.text);
  ASSERT_EQ(out.size(), cfg.original_lines.size());
  EXPECT_EQ(out[2], "        # rehearse: removed: chroot /var/lib/haproxy");
  EXPECT_EQ(out[3], "        # rehearse: removed: pidfile /var/run/haproxy.pid");
  EXPECT_EQ(out[4], "        maxconn 65000");
  EXPECT_EQ(out[8], "        log stdout format raw local0");
  EXPECT_EQ(out[25], "        timeout client 9s  # this value should be rather high with Exchange");
  EXPECT_EQ(out[22], "        timeout http-request 600ms");
  EXPECT_EQ(out[31], "        option http-server-close");
  EXPECT_EQ(out[40], "        bind 127.0.0.1:40443 ssl crt /lab/bridge.pem");
  EXPECT_EQ(out[47], "        server server1 127.0.0.1:40444 check maxconn 5000 force-tlsv10 ssl verify none");
  // Everything not listed in the rule set is byte for byte the user's line.
  for (const int unchanged : {1, 2, 5, 11, 17, 18, 19, 32, 34, 35, 38, 40, 42, 46, 50, 51}) {
    EXPECT_EQ(out[static_cast<std::size_t>(unchanged - 1)], cfg.original_lines[static_cast<std::size_t>(unchanged - 1)])
        << "line " << unchanged;
  }
}

TEST(HaproxyConfigRewrite, ListsEveryChange) {
  const auto r = rewrite_haproxy_for_lab(load_haproxy_config(seed_file), test_lab());
  const auto has = [&](const std::string& change) {
    return std::find(r.changes.begin(), r.changes.end(), change) != r.changes.end();
  };
  EXPECT_TRUE(has("line 3: chroot /var/lib/haproxy removed (the lab runs unprivileged)"));
  EXPECT_TRUE(has("line 6: user haproxy removed (the lab runs unprivileged)"));
  EXPECT_TRUE(has("line 26: timeout client 15m -> 9s (time scale 100)"));
  EXPECT_TRUE(has("line 41: bind *:443 -> 127.0.0.1:40443"));
  EXPECT_TRUE(has("line 48: server server1 owa.mycustomer.com:443 -> 127.0.0.1:40444 (the lab's Exchange 2007)"));
  ASSERT_FALSE(r.changes.empty());
  EXPECT_EQ(r.changes.front().rfind("line 3:", 0), 0u) << "changes are in line order";
  EXPECT_EQ(r.changes.size(), 15u) << "4 global removals, log, 7 timeouts, bind address and crt, server";
}

TEST(HaproxyConfigRewrite, ServerOptionsBindsAndTimeScale) {
  const auto cfg = parse_haproxy_config(std::string(good) +
                                            "    default-server inter 2s fastinter 500ms downinter 1\n"
                                            "frontend plain\n    bind :80\n    bind :8080\n"
                                            "listen stats\n    stats enable\n"
                                            "userlist admins\n    user admin insecure-password x\n",
                                        "t.cfg");
  const auto out = lines_of(rewrite_haproxy_for_lab(cfg, test_lab()).text);
  EXPECT_EQ(out[10], "    bind 127.0.0.1:40443 ssl crt /lab/bridge.pem");
  EXPECT_EQ(out[13], "    server ex1 127.0.0.1:40444 ssl verify required ca-file /lab/ca.crt force-tlsv10 "
                     "ciphers DEFAULT:@SECLEVEL=0");
  EXPECT_EQ(out[14], "    default-server inter 20ms fastinter 5ms downinter 1");  // at least 1 ms
  EXPECT_EQ(out[16], "    # rehearse: removed: bind :80");
  EXPECT_EQ(out[17], "    # rehearse: removed: bind :8080");
  EXPECT_EQ(out[19], "    stats enable");
  EXPECT_EQ(out[21], "    user admin insecure-password x");  // only global's user is a privilege
  EXPECT_EQ(out[7], "    timeout client 36s");
  // Time scale 1 leaves every time as written.
  auto lab = test_lab();
  lab.time_scale = 1;
  EXPECT_EQ(lines_of(rewrite_haproxy_for_lab(cfg, lab).text)[7], "    timeout client 1h");
}

TEST(HaproxyConfigRewrite, GlobalWithoutLogGetsOneWithoutMovingLines) {
  const std::string text = replaced(good, "    log stdout format raw local0\n", "    # no log\n");
  const auto r = rewrite_haproxy_for_lab(parse_haproxy_config(text, "t.cfg"), test_lab());
  const auto out = lines_of(r.text);
  ASSERT_EQ(out.size(), 14u);
  EXPECT_EQ(out[1], "    log stdout format raw local0");
  // No room in global: inserted after its header, and the change says that lines move.
  const auto tight = rewrite_haproxy_for_lab(
      parse_haproxy_config(replaced(good, "    log stdout format raw local0\n", ""), "t.cfg"), test_lab());
  EXPECT_EQ(lines_of(tight.text)[1], "    log stdout format raw local0");
  EXPECT_NE(tight.changes.front().find("one higher"), std::string::npos) << tight.changes.front();
  // No global section at all: one is added at the end, where it moves nothing.
  const auto none = rewrite_haproxy_for_lab(parse_haproxy_config("defaults\n    mode http\n", "t.cfg"), test_lab());
  EXPECT_EQ(none.text, "defaults\n    mode http\nglobal\n    log stdout format raw local0\n");
  EXPECT_EQ(none.changes, std::vector<std::string>{"global section with 'log stdout format raw local0' added at the end"});
}

/// Writes the rewritten config and runs `haproxy -c` on it; returns HAProxy's exit status and output.
std::pair<int, std::string> haproxy_check(const std::string& config_text, const std::string& name) {
  const auto dir = temp_dir();
  const auto cfg = dir / name;
  const auto out = dir / (name + ".out");
  write_file(cfg, config_text);
  const std::string command = "/usr/sbin/haproxy -c -f '" + cfg.string() + "' > '" + out.string() + "' 2>&1";
  const int status = std::system(command.c_str());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, read(out.string())};
}

/// The lab of the haproxy -c tests: real certificate files, since HAProxy loads them while checking.
haproxy_lab real_lab() {
  const auto& pki = test::test_pki();
  const auto pem = temp_dir() / "bridge.pem";
  write_file(pem, read(pki.bridge_cert.string()) + read(pki.bridge_key.string()), true);
  auto lab = test_lab();
  lab.bridge_pem = pem.string();
  lab.ca_file = pki.ca_cert.string();
  return lab;
}

TEST(HaproxyConfigRewrite, HaproxyAcceptsTheRewrittenFixedConfig) {
  if (!std::filesystem::exists("/usr/sbin/haproxy")) GTEST_SKIP() << "HAProxy is not installed";
  const auto [status, output] =
      haproxy_check(rewrite_haproxy_for_lab(load_haproxy_config(fixed_file), real_lab()).text, "fixed.cfg");
  EXPECT_EQ(status, 0) << output;
}

TEST(HaproxyConfigRewrite, HaproxyAcceptsTheRewrittenSeedOnlyBecauseOfTheLogLine) {
  if (!std::filesystem::exists("/usr/sbin/haproxy")) GTEST_SKIP() << "HAProxy is not installed";
  const auto r = rewrite_haproxy_for_lab(load_haproxy_config(seed_file), real_lab());
  EXPECT_NE(r.text.find("option http-server-close"), std::string::npos);
  EXPECT_NE(r.text.find("force-tlsv10"), std::string::npos);
  const auto [status, output] = haproxy_check(r.text, "seed.cfg");
  EXPECT_EQ(status, 0) << output;
  // The user's own log line put back: HAProxy refuses it, and names line 9.
  auto lines = lines_of(r.text);
  lines[8] = "        log local0";
  std::string broken;
  for (const auto& l : lines) broken += l + "\n";
  const auto [broken_status, broken_output] = haproxy_check(broken, "seed-log.cfg");
  EXPECT_NE(broken_status, 0) << broken_output;
  EXPECT_NE(broken_output.find(":9]"), std::string::npos) << broken_output;
}

}  // namespace
}  // namespace exbridge::rehearse
