// Unit tests for stunnel.conf parsing, linting and the lab rewrite (rehearse/peers/stunnel/stunnel_config.hpp), on the
// shipped first-try and fixed configs and on small hand-written ones.
#include <gtest/gtest.h>

#include <set>

#include "common/errors.hpp"
#include "rehearse/peers/stunnel/stunnel_config.hpp"

namespace exbridge::rehearse {
namespace {

std::set<std::string> finding_codes(const std::vector<config_finding>& findings) {
  std::set<std::string> out;
  for (const auto& f : findings) out.insert(f.code);
  return out;
}

std::set<std::string> lint_codes(const std::string& text) {
  return finding_codes(lint_stunnel_config(parse_stunnel_config(text, "t.conf")));
}

const std::string chain_head = "[online]\naccept = 443\ncert = c.pem\nkey = k.pem\nconnect = 127.0.0.1:8443\n";

TEST(StunnelConfig, ParsesServicesGlobalDefaultsAndLines) {
  const auto cfg = parse_stunnel_config("; comment\nsetuid = stunnel4\nCLIENT = no\n\n[a]\n# c\naccept = 443\n[b]\nclient = yes\n", "t.conf");
  ASSERT_EQ(cfg.services.size(), 2u);
  EXPECT_EQ(cfg.global.size(), 2u);
  EXPECT_EQ(cfg.services[0].name, "a");
  EXPECT_EQ(cfg.services[0].options[0].line, 7);
  EXPECT_FALSE(cfg.is_client(cfg.services[0]));  // the global default, compared without case
  EXPECT_TRUE(cfg.is_client(cfg.services[1]));
}

TEST(StunnelConfig, BadLinesNameFileAndLine) {
  try {
    parse_stunnel_config("[a]\naccept 443\n", "x.conf");
    FAIL() << "accepted a line without '='";
  } catch (const config_error& e) {
    EXPECT_NE(std::string(e.what()).find("x.conf:2:"), std::string::npos) << e.what();
  }
  EXPECT_THROW(parse_stunnel_config("include = /etc/stunnel/conf.d\n", "x.conf"), config_error);
  EXPECT_THROW(parse_stunnel_config("[a\n", "x.conf"), config_error);
}

TEST(StunnelConfig, TheShippedFirstTryHasItsThreeMistakes) {
  const auto cfg = load_stunnel_config(EXBRIDGE_SOURCE_DIR "/scenarios/stunnel/stunnel-first-try.stunnel.conf");
  const auto findings = lint_stunnel_config(cfg);
  EXPECT_EQ(finding_codes(findings), (std::set<std::string>{"tls10-needs-seclevel0", "verify-none", "timeout-at-ping-edge"}));
  for (const auto& f : findings) {
    EXPECT_GT(f.line, 0) << f.code;
    EXPECT_FALSE(f.fix.empty()) << f.code;
  }
}

TEST(StunnelConfig, TheShippedFixedConfigIsClean) {
  const auto findings = lint_stunnel_config(load_stunnel_config(EXBRIDGE_SOURCE_DIR "/scenarios/stunnel/stunnel-fixed.stunnel.conf"));
  EXPECT_TRUE(findings.empty()) << findings.front().code << ": " << findings.front().message;
}

TEST(StunnelConfig, LintNamesEachTrap) {
  // One service only: no TLS towards Exchange 2007.
  EXPECT_EQ(lint_codes("[a]\naccept = 443\ncert = c.pem\nconnect = 10.0.0.2:443\n"), (std::set<std::string>{"no-upstream-tls"}));
  // Only a client service: nothing accepts Exchange Online.
  EXPECT_TRUE(lint_codes("[b]\nclient = yes\naccept = 8443\nconnect = 10.0.0.2:443\nsecurityLevel = 0\nverifyChain = yes\n"
                   "checkHost = x\n")
                  .count("no-downstream-tls"));
  const std::string good_client = "[ex]\nclient = yes\naccept = 127.0.0.1:8443\nconnect = 10.0.0.2:443\nverifyChain = yes\ncheckHost = x\n";
  EXPECT_EQ(lint_codes(chain_head + good_client + "securityLevel = 0\n"), std::set<std::string>{});
  EXPECT_EQ(lint_codes(chain_head + good_client + "ciphers = DEFAULT:@SECLEVEL=0\n"), std::set<std::string>{});
  EXPECT_EQ(lint_codes(chain_head + good_client), (std::set<std::string>{"tls10-needs-seclevel0"}));
  EXPECT_EQ(lint_codes(chain_head + good_client + "securityLevel = 0\nsslVersionMin = TLSv1.2\n"),
            (std::set<std::string>{"upstream-tls-above-1.0"}));
  // A global securityLevel = 0 reaches the public service too.
  EXPECT_EQ(lint_codes("securityLevel = 0\n" + chain_head + good_client), (std::set<std::string>{"downstream-accepts-tls10"}));
  EXPECT_EQ(lint_codes("securityLevel = 0\n" + chain_head + "sslVersionMin = TLSv1.2\n" + good_client), std::set<std::string>{});
  // The chain's ports do not meet.
  EXPECT_TRUE(lint_codes("[online]\naccept = 443\ncert = c.pem\nconnect = 127.0.0.1:9999\n" + good_client + "securityLevel = 0\n")
                  .count("chain-broken"));
  EXPECT_EQ(lint_codes(chain_head + "TIMEOUTidle = 300\n" + good_client + "securityLevel = 0\n"),
            (std::set<std::string>{"timeout-below-ping"}));
  EXPECT_EQ(lint_codes(chain_head + "[ex]\nclient = yes\naccept = 127.0.0.1:8443\nconnect = 10.0.0.2:443\nsecurityLevel = 0\nverify = 2\n"),
            (std::set<std::string>{"no-check-host"}));
}

TEST(StunnelConfig, LabRewritePointsEverythingAtTheLabAndKeepsTheMistakes) {
  const auto cfg = load_stunnel_config(EXBRIDGE_SOURCE_DIR "/scenarios/stunnel/stunnel-first-try.stunnel.conf");
  int next = 0;
  stunnel_lab lab;
  lab.accept_address = "127.0.0.1:40001";
  lab.cert = "/lab/bridge.pem";
  lab.key = "/lab/bridge.key";
  lab.upstream_addresses = {"127.0.0.1:50001"};
  lab.ca_file = "/lab/ca.pem";
  lab.upstream_name = "ex2007.contoso.example";
  lab.time_scale = 100;
  lab.internal_address = [&] { return "127.0.0.1:4100" + std::to_string(++next); };
  const auto r = rewrite_stunnel_for_lab(cfg, lab);
  const auto lab_cfg = parse_stunnel_config(r.text, "lab.conf");
  EXPECT_EQ(lab_cfg.effective(lab_cfg.services[0], "foreground")->value, "yes");
  EXPECT_EQ(lab_cfg.effective(lab_cfg.services[0], "setuid"), nullptr);
  EXPECT_EQ(lab_cfg.effective(lab_cfg.services[0], "output"), nullptr);
  EXPECT_EQ(lab_cfg.effective(lab_cfg.services[0], "accept")->value, "127.0.0.1:40001");
  EXPECT_EQ(lab_cfg.effective(lab_cfg.services[0], "cert")->value, "/lab/bridge.pem");
  // The chain's inner hop moves to one fresh port on both ends.
  EXPECT_EQ(lab_cfg.effective(lab_cfg.services[0], "connect")->value, "127.0.0.1:41001");
  EXPECT_EQ(lab_cfg.effective(lab_cfg.services[1], "accept")->value, "127.0.0.1:41001");
  EXPECT_EQ(lab_cfg.effective(lab_cfg.services[1], "connect")->value, "127.0.0.1:50001");
  EXPECT_EQ(lab_cfg.effective(lab_cfg.services[1], "TIMEOUTidle")->value, "9");  // 900 s at time scale 100
  // The mistakes stay: the lint of the lab file finds the same TLS problem.
  EXPECT_EQ(lab_cfg.effective(lab_cfg.services[1], "sslVersion")->value, "TLSv1");
  EXPECT_TRUE(finding_codes(lint_stunnel_config(lab_cfg)).count("tls10-needs-seclevel0"));
  bool listed = false;
  for (const auto& c : r.changes) listed = listed || c.find("accept = 443 -> 127.0.0.1:40001") != std::string::npos;
  EXPECT_TRUE(listed);
}

}  // namespace
}  // namespace exbridge::rehearse
