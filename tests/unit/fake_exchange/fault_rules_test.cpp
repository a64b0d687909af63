// Unit tests for fault rules: TOML and JSON documents, errors that name the line, and matching
// (path prefix, operation, user, Nth request, seeded percentages, `times`).
#include <gtest/gtest.h>

#include "common/errors.hpp"
#include "fake_exchange/faults.hpp"

namespace exbridge::fake_exchange {
namespace {

std::string parse_error(const std::string& text) {
  try {
    parse_fault_document(text, "f.toml");
  } catch (const config_error& e) {
    return e.what();
  }
  return "";
}

TEST(FaultRules, TomlDocumentWithEveryKind) {
  const auto rules = parse_fault_document(R"(
[[fault]]
name = "slow"
path = "/EWS/"
operation = "GetItem"
user = "alex.wilber@contoso.example"
nth = 3
action = "delay"
duration = "30s"

[[fault]]
action = "throttle"
rate = 65536
percent = 25
seed = 7

[[fault]]
action = "reset"
after_bytes = 1000

[[fault]]
action = "execution-timeout"

[[fault]]
action = "slow-handshake"
duration = 5
)",
                                          "f.toml");
  ASSERT_EQ(rules.size(), 5u);
  EXPECT_EQ(rules[0].name, "slow");
  EXPECT_EQ(rules[0].nth, 3u);
  EXPECT_EQ(rules[0].action.kind, fault_kind::delay);
  EXPECT_EQ(rules[0].action.duration, std::chrono::seconds(30));
  EXPECT_EQ(rules[0].where, "f.toml:2:1");
  EXPECT_EQ(rules[1].name, "rule-2");
  EXPECT_EQ(rules[1].action.rate, 65536);
  EXPECT_EQ(rules[1].percent, 25);
  EXPECT_EQ(rules[2].action.after_bytes, 1000u);
  EXPECT_EQ(rules[3].action.duration, std::chrono::seconds(110));  // ASP.NET executionTimeout for EWS
  EXPECT_EQ(rules[4].action.duration, std::chrono::seconds(5));
}

TEST(FaultRules, MistakesNameTheLine) {
  EXPECT_EQ(parse_error("[[fault]]\naction = \"delay\"\nduraton = \"1s\"\n").rfind("f.toml:3:", 0), 0u)
      << parse_error("[[fault]]\naction = \"delay\"\nduraton = \"1s\"\n");
  EXPECT_NE(parse_error("[[fault]]\naction = \"explode\"\n").find("f.toml:2:10: action 'explode' is unknown"),
            std::string::npos);
  EXPECT_NE(parse_error("[[fault]]\naction = \"delay\"\n").find("needs 'duration'"), std::string::npos);
  EXPECT_NE(parse_error("[[fault]]\naction = \"delay\"\nduration = \"soon\"\n").find("f.toml:3:"), std::string::npos);
  EXPECT_NE(parse_error("[[fault]]\naction = \"reset\"\nafter_bytes = -1\n").find("f.toml:3:"), std::string::npos);
  EXPECT_NE(parse_error("[[fault]]\naction = \"error-500\"\npercent = 0\n").find("'percent'"), std::string::npos);
  EXPECT_NE(parse_error("[[fault]]\naction = \"slow-handshake\"\nduration = 1\npath = \"/EWS/\"\n").find("connections"),
            std::string::npos);
  EXPECT_NE(parse_error("[fault]\naction = \"delay\"\n").find("[[fault]]"), std::string::npos);
  EXPECT_NE(parse_error("[[fault]\n").find("f.toml:1:"), std::string::npos);
  EXPECT_NE(parse_error("rules = 1\n").find("unknown key 'rules'"), std::string::npos);
}

TEST(FaultRules, JsonRoundTrip) {
  const auto rules = parse_fault_document(
      R"({"fault": [{"name": "a", "action": "stall", "after_bytes": 10, "duration": "2s"},
                    {"action": "error-503", "path": "/rpc/", "nth": 2}]})",
      "PUT /faults");
  ASSERT_EQ(rules.size(), 2u);
  EXPECT_EQ(rules[0].action.duration, std::chrono::seconds(2));
  const auto again = parse_fault_document(fault_rules_json(rules), "again");
  ASSERT_EQ(again.size(), 2u);
  EXPECT_EQ(again[0].action.after_bytes, 10u);
  EXPECT_EQ(again[0].action.duration, std::chrono::seconds(2));
  EXPECT_EQ(again[1].path, "/rpc/");
  EXPECT_EQ(again[1].nth, 2u);
  EXPECT_THROW(parse_fault_document(R"({"fault": [{"action": "delay", "duration": null}]})", "j"), config_error);
  EXPECT_THROW(parse_fault_document("{not json", "j"), config_error);
}

fault_rule make(fault_kind kind) {
  fault_rule r;
  r.name = "r";
  r.action.kind = kind;
  return r;
}

TEST(FaultInjector, MatchesPathOperationUserCaseInsensitively) {
  fault_injector f;
  auto r = make(fault_kind::error500);
  r.path = "/ews/";
  r.operation = "GetItem";
  r.user = "Alex.Wilber@contoso.example";
  f.replace({r});
  EXPECT_FALSE(f.match_request("/autodiscover/autodiscover.xml", "GetItem", "alex.wilber@contoso.example"));
  EXPECT_FALSE(f.match_request("/EWS/Exchange.asmx", "FindItem", "alex.wilber@contoso.example"));
  EXPECT_FALSE(f.match_request("/EWS/Exchange.asmx", "GetItem", ""));
  EXPECT_TRUE(f.match_request("/EWS/Exchange.asmx", "GetItem", "alex.wilber@contoso.example"));
  EXPECT_FALSE(f.match_connection());
}

TEST(FaultInjector, NthAndTimes) {
  fault_injector f;
  auto nth = make(fault_kind::delay);
  nth.nth = 3;
  f.replace({nth});
  std::vector<bool> fired;
  for (int i = 0; i < 5; ++i) fired.push_back(f.match_request("/", "", "").has_value());
  EXPECT_EQ(fired, (std::vector<bool>{false, false, true, false, false}));
  auto twice = make(fault_kind::delay);
  twice.times = 2;
  f.replace({twice});
  int count = 0;
  for (int i = 0; i < 5; ++i) count += f.match_request("/", "", "") ? 1 : 0;
  EXPECT_EQ(count, 2);
}

TEST(FaultInjector, SeededPercentIsDeterministic) {
  const auto run = [](std::uint64_t seed) {
    fault_injector f;
    auto r = make(fault_kind::reset);
    r.percent = 30;
    r.seed = seed;
    f.replace({r});
    std::vector<bool> fired;
    for (int i = 0; i < 1000; ++i) fired.push_back(f.match_request("/", "", "").has_value());
    return fired;
  };
  const auto a = run(42);
  EXPECT_EQ(a, run(42));
  EXPECT_NE(a, run(43));
  const auto hits = std::count(a.begin(), a.end(), true);
  EXPECT_GT(hits, 240);
  EXPECT_LT(hits, 360);
}

}  // namespace
}  // namespace exbridge::fake_exchange
