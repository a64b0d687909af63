// Unit tests for scenario files: valid files load, mistakes are reported with file, line and column.
#include <gtest/gtest.h>

#include <fstream>

#include "common/errors.hpp"
#include "scenarios/scenario_file.hpp"

namespace exbridge::scenario {
namespace {

std::filesystem::path write_temp(const std::string& name, const std::string& text) {
  const auto path = std::filesystem::temp_directory_path() / ("exbridge-" + std::to_string(::getpid()) + "-" + name);
  std::ofstream(path) << text;
  return path;
}

std::string load_error(const std::string& text) {
  try {
    load_scenario(write_temp("bad.toml", text));
  } catch (const config_error& e) {
    return e.what();
  }
  return "";
}

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
  const auto s = load_scenario(EXBRIDGE_SOURCE_DIR "/scenarios/seed-story.toml");
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
  text += "retries = 3\n";
  const std::string e = load_error(text);
  EXPECT_NE(e.find("unknown key 'retries'"), std::string::npos) << e;
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

}  // namespace
}  // namespace exbridge::scenario
