// Unit tests for scenario files: valid files load, mistakes are reported with file, line and column.
#include <gtest/gtest.h>

#include <fstream>

#include "common/errors.hpp"
#include "rehearse/clients/exo_connection.hpp"
#include "rehearse/runner/scenario_file.hpp"
#include "tests/support/scenario_support.hpp"

namespace exbridge::rehearse {
namespace {

using test::load_error;
using test::write_temp;

constexpr const char* valid = R"(name = "t"
[[process]]
name = "exchange"
program = "fake-exchange"
args = ["--listen", "127.0.0.1:0"]
[[step]]
name = "s"
connect = "${exchange.addr}"
email = "a@b"
password = "p"
expect = "tls-version-refused"
)";

TEST(ScenarioFile, TheShippedSeedStoryLoads) {
  const auto s = load_scenario(EXBRIDGE_SOURCE_DIR "/scenarios/basics/seed-story.toml");
  EXPECT_EQ(s.name, "seed-story");
  EXPECT_EQ(s.processes.size(), 2u);
  EXPECT_EQ(s.steps.size(), 2u);
  EXPECT_EQ(s.steps[0].expect, "tls-version-refused");
}

TEST(ScenarioFile, ValidFileLoadsWithDefaults) {
  const auto s = load_scenario(write_temp("ok.toml", valid));
  EXPECT_EQ(s.steps[0].server_name, "mail.contoso.example");
  EXPECT_EQ(s.steps[0].trust, "lab");
  EXPECT_EQ(s.time_scale, 1);
}

TEST(ScenarioFile, SyntaxErrorsNameLineAndColumn) {
  const std::string e = load_error("name = \"t\"\n[[process]\n");
  EXPECT_NE(e.find("bad.toml:2:"), std::string::npos) << e;
}

TEST(ScenarioFile, UnknownKeysAreErrorsWithTheirLine) {
  std::string text = valid;
  text += "retry = 3\n";  // a typo of 'retries'
  const std::string e = load_error(text);
  EXPECT_NE(e.find("unknown key 'retry'"), std::string::npos) << e;
  EXPECT_NE(e.find(":12:"), std::string::npos) << e;
}

TEST(ScenarioFile, UnknownExpectationIsRejected) {
  std::string text = valid;
  text.replace(text.find("tls-version-refused"), 19, "works-somehow");
  const std::string e = load_error(text);
  EXPECT_NE(e.find("works-somehow"), std::string::npos) << e;
  EXPECT_NE(e.find(":11:"), std::string::npos) << e;
}

TEST(ScenarioFile, MissingFileSaysSo) {
  try {
    load_scenario("/nonexistent/scenario.toml");
    FAIL();
  } catch (const config_error& e) {
    EXPECT_NE(std::string(e.what()).find("no such scenario file"), std::string::npos) << e.what();
  }
}

/// `valid` with its step turned into an Outlook Anywhere step carrying `keys` (one per line, from line 12).
std::string outlook_anywhere_step(const std::string& keys) {
  std::string text = valid;
  text += "action = \"outlook-anywhere\"\n" + keys;
  return text;
}

TEST(ScenarioFile, OutlookAnywhereStepsTakeIdlePingIntervalAndRpcServer) {
  const auto defaults = load_scenario(write_temp("oa.toml", outlook_anywhere_step("")));
  EXPECT_EQ(defaults.steps[0].action, "outlook-anywhere");
  EXPECT_EQ(defaults.steps[0].idle, std::chrono::minutes(30));
  EXPECT_EQ(defaults.steps[0].ping_interval, std::chrono::seconds(720));
  EXPECT_EQ(defaults.steps[0].rpc_server, "ex2007.contoso.example");
  const auto set = load_scenario(write_temp(
      "oa.toml", outlook_anywhere_step("idle = \"40m\"\nping_interval = \"120s\"\nrpc_server = \"EX2007\"\n")));
  EXPECT_EQ(set.steps[0].idle, std::chrono::minutes(40));
  EXPECT_EQ(set.steps[0].ping_interval, std::chrono::minutes(2));
  EXPECT_EQ(set.steps[0].rpc_server, "EX2007");
}

TEST(ScenarioFile, OutlookAnywhereKeysWithBadValuesNameTheirLine) {
  const std::string bad_unit = load_error(outlook_anywhere_step("idle = \"40 minutes\"\n"));
  EXPECT_NE(bad_unit.find("bad.toml:13:"), std::string::npos) << bad_unit;
  EXPECT_NE(bad_unit.find("'idle' must be a duration"), std::string::npos) << bad_unit;
  const std::string number = load_error(outlook_anywhere_step("ping_interval = 720\n"));
  EXPECT_NE(number.find("bad.toml:13:"), std::string::npos) << number;
  EXPECT_NE(number.find("'ping_interval' must be a duration"), std::string::npos) << number;
  const std::string zero = load_error(outlook_anywhere_step("idle = \"0s\"\n"));
  EXPECT_NE(zero.find("bad.toml:13:"), std::string::npos) << zero;
  EXPECT_NE(zero.find("more than 0"), std::string::npos) << zero;
  const std::string port = load_error(outlook_anywhere_step("rpc_server = \"ex2007:6001\"\n"));
  EXPECT_NE(port.find("bad.toml:13:"), std::string::npos) << port;
  EXPECT_NE(port.find("'rpc_server' must be a host name"), std::string::npos) << port;
}

TEST(ScenarioFile, OutlookAnywhereKeysOnOtherActionsAreErrors) {
  std::string text = valid;
  text += "idle = \"40m\"\n";
  const std::string e = load_error(text);
  EXPECT_NE(e.find("bad.toml:12:"), std::string::npos) << e;
  EXPECT_NE(e.find("'idle' applies only to action = \"outlook-anywhere\""), std::string::npos) << e;
}

TEST(ScenarioFile, TheShippedOutlookAnywhereScenariosLoad) {
  const auto idle = load_scenario(EXBRIDGE_SOURCE_DIR "/scenarios/outlook-anywhere/outlook-anywhere-idle.toml");
  ASSERT_EQ(idle.steps.size(), 2u);
  EXPECT_EQ(idle.steps[1].auth, "ntlm");
  EXPECT_EQ(idle.steps[0].idle, std::chrono::minutes(40));
  const auto cut = load_scenario(EXBRIDGE_SOURCE_DIR "/scenarios/outlook-anywhere/outlook-anywhere-short-timeout.toml");
  ASSERT_EQ(cut.steps.size(), 2u);
  EXPECT_EQ(cut.steps[0].expect, "proxy-idle-timeout");
}

TEST(ScenarioFile, AutodiscoverKeysAreCheckedAtTheirLine) {
  std::string text = valid;
  text += "autodiscover = \"domain\"\nautodiscover_email = \"x@fabrikam.example\"\n"
          "resolve = { \"fabrikam.example\" = \"127.0.0.1:1\", \"autodiscover.fabrikam.example:80\" = \"${exchange.addr}\" }\n";
  const auto s = load_scenario(write_temp("ad.toml", text));
  EXPECT_EQ(s.steps[0].autodiscover, "domain");
  EXPECT_EQ(s.steps[0].autodiscover_email, "x@fabrikam.example");
  EXPECT_EQ(s.steps[0].resolve.at("autodiscover.fabrikam.example:80"), "${exchange.addr}");
  std::string bad_mode = valid;
  bad_mode += "autodiscover = \"dns\"\n";
  const std::string e = load_error(bad_mode);
  EXPECT_NE(e.find("bad.toml:12:"), std::string::npos) << e;
  EXPECT_NE(e.find("'autodiscover' must be \"public-name\""), std::string::npos) << e;
  std::string bad_resolve = valid;
  bad_resolve += "resolve = { \"contoso.example\" = 443 }\n";
  const std::string r = load_error(bad_resolve);
  EXPECT_NE(r.find("bad.toml:12:"), std::string::npos) << r;
  EXPECT_NE(r.find("must map to \"HOST:PORT\""), std::string::npos) << r;
  const auto shipped = load_scenario(EXBRIDGE_SOURCE_DIR "/scenarios/migration/autodiscover-redirects.toml");
  ASSERT_EQ(shipped.steps.size(), 2u);
  EXPECT_EQ(shipped.steps[1].expect, "autodiscover-failed");
}

TEST(ScenarioFile, ListingIsForMigrationsAndSyncPagesAreAtMost512) {
  std::string migrate = valid;
  migrate += "action = \"migrate-mailbox\"\nmanifest = \"m.json\"\nlisting = \"sync-folder-items\"\ntransport = \"ews\"\n";
  EXPECT_EQ(load_scenario(write_temp("l.toml", migrate)).steps[0].listing, "sync-folder-items");
  const std::string big = load_error(migrate + "page_size = 1000\n");
  EXPECT_NE(big.find("bad.toml:16:"), std::string::npos) << big;
  EXPECT_NE(big.find("at most 512 changes"), std::string::npos) << big;
  std::string probe = valid;
  probe += "listing = \"sync-folder-items\"\n";
  const std::string e = load_error(probe);
  EXPECT_NE(e.find("'listing' applies only to action = \"migrate-mailbox\""), std::string::npos) << e;
  std::string unknown = valid;
  unknown += "action = \"migrate-mailbox\"\nmanifest = \"m.json\"\nlisting = \"find-folder\"\ntransport = \"ews\"\n";
  EXPECT_NE(load_error(unknown).find("'listing' must be"), std::string::npos);
  // Over Outlook Anywhere (the default transport) the EWS listing keys are a mistake, named with the fix.
  std::string oa = valid;
  oa += "action = \"migrate-mailbox\"\nmanifest = \"m.json\"\nbatch = 5\n";
  const std::string misplaced = load_error(oa);
  EXPECT_NE(misplaced.find("bad.toml:14:"), std::string::npos) << misplaced;
  EXPECT_NE(misplaced.find("'batch' is an EWS setting: add transport = \"ews\""), std::string::npos) << misplaced;
}

TEST(ScenarioFile, OutlookAnywhereMigrationKeys) {
  std::string text = valid;
  text += "action = \"migrate-mailbox\"\nmanifest = \"m.json\"\n";
  const auto defaults = load_scenario(write_temp("oa.toml", text)).steps[0];
  EXPECT_EQ(defaults.transport, "outlook-anywhere");
  EXPECT_EQ(defaults.no_progress_limit, std::chrono::hours(5));
  EXPECT_EQ(defaults.in_channel_bytes, 1073741824u);
  const auto set = load_scenario(write_temp("oa2.toml", text + "no_progress_limit = \"2h\"\nin_channel_bytes = 65536\n")).steps[0];
  EXPECT_EQ(set.no_progress_limit, std::chrono::hours(2));
  EXPECT_EQ(set.in_channel_bytes, 65536u);
  EXPECT_NE(load_error(text + "transport = \"mapi\"\n").find("'transport' must be \"outlook-anywhere\""), std::string::npos);
  EXPECT_NE(load_error(text + "in_channel_bytes = 100\n").find("in_channel_bytes"), std::string::npos);
  EXPECT_NE(load_error(text + "transport = \"ews\"\nin_channel_bytes = 65536\n").find("applies only to transport = \"outlook-anywhere\""),
            std::string::npos);
  std::string probe = valid;
  EXPECT_NE(load_error(probe + "transport = \"ews\"\n").find("applies only to action = \"migrate-mailbox\""), std::string::npos);
  EXPECT_EQ(std::count(known_outcomes().begin(), known_outcomes().end(), "migration-stalled"), 1);
}

TEST(ScenarioFile, RequestTimeoutIsADurationOnAnyAction) {
  std::string text = valid;
  EXPECT_EQ(load_scenario(write_temp("rt.toml", text)).steps[0].request_timeout, std::chrono::seconds(100));
  text += "request_timeout = \"30m\"\n";
  EXPECT_EQ(load_scenario(write_temp("rt.toml", text)).steps[0].request_timeout, std::chrono::minutes(30));
  std::string bad = valid;
  bad += "request_timeout = \"soon\"\n";
  const std::string e = load_error(bad);
  EXPECT_NE(e.find("bad.toml:12:"), std::string::npos) << e;
  EXPECT_NE(e.find("'request_timeout' must be a duration"), std::string::npos) << e;
}

response_t answer(http::status status, const std::string& body) {
  response_t res{status, 11};
  res.body() = body;
  return res;
}

TEST(HttpFailure, ProxyTimeoutsAreToldApartFromOtherProxyErrors) {
  const auto exbridge_504 = http_failure(
      answer(http::status::gateway_timeout,
             "exbridge: response-headers-timeout: the upstream sent no response headers within 15 min\n"),
      "EWS GetItem");
  EXPECT_EQ(exbridge_504.outcome, "proxy-timeout");
  EXPECT_NE(exbridge_504.explanation.find("--timeout-response-headers"), std::string::npos) << exbridge_504.explanation;
  EXPECT_NE(exbridge_504.explanation.find("within 15 min"), std::string::npos) << exbridge_504.explanation;
  const auto haproxy_504 = http_failure(
      answer(http::status::gateway_timeout,
             "<html><body><h1>504 Gateway Time-out</h1>\nThe server didn't respond in time.\n</body></html>\n"),
      "EWS GetItem");
  EXPECT_EQ(haproxy_504.outcome, "proxy-timeout");
  EXPECT_NE(haproxy_504.explanation.find("timeout server"), std::string::npos) << haproxy_504.explanation;
  const auto exbridge_502 = http_failure(
      answer(http::status::bad_gateway, "exbridge: upstream-tls-handshake-failed: upstream 10.0.0.5:443: ...\n"),
      "Autodiscover");
  EXPECT_EQ(exbridge_502.outcome, "proxy-error");
  EXPECT_EQ(http_failure(answer(http::status::gateway_timeout, "IIS page"), "EWS").outcome, "http-error");
}

TEST(Substitute, ReplacesKnownAndNamesUnknownVariables) {
  const std::map<std::string, std::string> vars{{"a.addr", "127.0.0.1:1"}};
  EXPECT_EQ(substitute("x ${a.addr} y", vars, "w"), "x 127.0.0.1:1 y");
  try {
    substitute("${b.addr}", vars, "file:3");
    FAIL();
  } catch (const config_error& e) {
    EXPECT_NE(std::string(e.what()).find("${b.addr}"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("file:3"), std::string::npos);
  }
}

TEST(ScenarioFile, ProcessKindsTakeOnlyTheirKeys) {
  const std::string head = "name = \"t\"\n[[process]]\nname = \"p\"\n";
  const std::string step = "[[step]]\nname = \"s\"\nconnect = \"${p.addr}\"\nemail = \"a@b\"\npassword = \"x\"\n";
  auto s = load_scenario(write_temp("kinds.toml", head + "kind = \"external\"\naddress = \"127.0.0.1:443\"\n" + step));
  EXPECT_EQ(s.processes[0].address, "127.0.0.1:443");
  s = load_scenario(write_temp("kinds.toml", head + "kind = \"stunnel\"\nconfig = \"s.conf\"\nupstream = \"${x.addr}\"\n" + step));
  EXPECT_EQ(s.processes[0].program, "stunnel4");
  EXPECT_EQ(s.processes[0].upstreams.size(), 1u);
  s = load_scenario(write_temp("kinds.toml", head + "kind = \"command\"\nprogram = \"nginx\"\nargs = [\"-c\", \"${p.port}\"]\n" + step));
  EXPECT_EQ(s.processes[0].kind, "command");

  std::string e = load_error(head + "kind = \"external\"\n" + step);
  EXPECT_NE(e.find("address"), std::string::npos) << e;
  e = load_error(head + "kind = \"external\"\naddress = \"h:1\"\nprogram = \"x\"\n" + step);
  EXPECT_NE(e.find("'program' does not apply to kind = \"external\""), std::string::npos) << e;
  EXPECT_NE(e.find(":6:"), std::string::npos) << e;
  e = load_error(head + "kind = \"stunnel\"\nconfig = \"s.conf\"\n" + step);
  EXPECT_NE(e.find("needs 'upstream'"), std::string::npos) << e;
  e = load_error(head + "kind = \"program\"\nprogram = \"x\"\naddress = \"h:1\"\n" + step);
  EXPECT_NE(e.find("'address' does not apply"), std::string::npos) << e;
  e = load_error(head + "kind = \"caddy\"\n" + step);
  EXPECT_NE(e.find("known: program, exbridge, haproxy, stunnel, nginx, command, external"), std::string::npos) << e;
  e = load_error(head + "kind = \"nginx\"\n" + step);
  EXPECT_NE(e.find("(kind nginx) needs 'config'"), std::string::npos) << e;
  e = load_error(head + "kind = \"external\"\naddress = \"h:1\"\n" + step +
                 "[[step]]\nname = \"t\"\naction = \"stop\"\nprocess = \"p\"\n");
  EXPECT_NE(e.find("not kind = \"external\""), std::string::npos) << e;
}

TEST(ScenarioFile, TheShippedStunnelAndCommandScenariosLoad) {
  for (const char* name : {"stunnel/stunnel-first-try.toml", "stunnel/stunnel-fixed.toml", "basics/command-and-external.toml"}) {
    EXPECT_NO_THROW(load_scenario(std::string(EXBRIDGE_SOURCE_DIR "/scenarios/") + name)) << name;
  }
}

}  // namespace
}  // namespace exbridge::rehearse
