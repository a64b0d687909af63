// rehearse's reports (JSON, JUnit, HTML with its timeline) and the progress line of a migration.
#include "rehearse/runner/report.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <pugixml.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "rehearse/runner/progress.hpp"

namespace exbridge::rehearse {
namespace {

TEST(Reports, JsonAndJunitCarryEveryStep) {
  scenario_report passed{.name = "a & b", .steps = {{"s1", "ok", "ok", "fine", true, std::chrono::milliseconds(12)}}};
  scenario_report failed{.name = "c",
                         .steps = {{"s<2>", "ok", "proxy-timeout", "the proxy's \"timeout\"", false, {}}}};
  scenario_report skipped{.name = "d", .skipped = "haproxy is not installed"};
  const auto dir = std::filesystem::temp_directory_path() / ("exbridge-reports-" + std::to_string(::getpid()));
  const auto files = write_reports({passed, failed, skipped}, dir);
  ASSERT_EQ(files.size(), 3u);

  std::ifstream json_in(files[0]);
  const std::string json_text((std::istreambuf_iterator<char>(json_in)), std::istreambuf_iterator<char>());
  const auto json = boost::json::parse(json_text).as_object();
  const auto& scenarios = json.at("scenarios").as_array();
  ASSERT_EQ(scenarios.size(), 3u);
  EXPECT_EQ(scenarios[0].at("status").as_string(), "passed");
  EXPECT_EQ(scenarios[1].at("status").as_string(), "failed");
  EXPECT_EQ(scenarios[1].at("steps").as_array()[0].at("outcome").as_string(), "proxy-timeout");
  EXPECT_EQ(scenarios[2].at("status").as_string(), "skipped");

  pugi::xml_document junit;
  ASSERT_TRUE(junit.load_file(files[1].c_str()));
  const auto suites = junit.child("testsuites");
  EXPECT_STREQ(suites.first_child().attribute("name").value(), "a & b");
  EXPECT_STREQ(suites.find_child_by_attribute("testsuite", "name", "c").attribute("failures").value(), "1");
  EXPECT_TRUE(suites.find_child_by_attribute("testsuite", "name", "c").child("testcase").child("failure"));
  EXPECT_TRUE(suites.find_child_by_attribute("testsuite", "name", "d").child("testcase").child("skipped"));

  std::ifstream html_in(files[2]);
  const std::string html((std::istreambuf_iterator<char>(html_in)), std::istreambuf_iterator<char>());
  EXPECT_NE(html.find("a &amp; b"), std::string::npos);
  EXPECT_NE(html.find("the proxy&apos;s &quot;timeout&quot;"), std::string::npos);
  std::filesystem::remove_all(dir);
}

TEST(Reports, HtmlTimelineDrawsRequestsAndMarksFailures) {
  scenario_report r{.name = "t", .steps = {{"s", "ok", "client-timeout", "stalled", false, {}}}};
  r.events = {{timeline_event::kind::process, 0, 0, 0, 0, true, "started exchange"},
              {timeline_event::kind::request, 10, 20, 1, 200, true, "POST /EWS/Exchange.asmx -> 200"},
              {timeline_event::kind::request, 20, 120, 2, 0, false, "POST /EWS/Exchange.asmx -> no complete response"},
              {timeline_event::kind::failure, 120, 120, 2, 0, false, "client-timeout: stalled"},
              {timeline_event::kind::step_end, 0, 121, 0, 0, false, "s: expected ok, got client-timeout"}};
  const auto dir = std::filesystem::temp_directory_path() / ("exbridge-html-" + std::to_string(::getpid()));
  const auto files = write_reports({r}, dir);
  pugi::xml_document doc;  // the SVG part must be well-formed XML
  std::ifstream in(files[2]);
  const std::string html((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto svg = html.substr(html.find("<svg"), html.find("</svg>") + 6 - html.find("<svg"));
  ASSERT_TRUE(doc.load_string(svg.c_str())) << svg;
  EXPECT_NE(svg.find("connection 2"), std::string::npos);
  EXPECT_NE(svg.find("#8b0000"), std::string::npos);   // the unanswered request
  EXPECT_NE(svg.find("#d62728"), std::string::npos);   // the failure line
  EXPECT_NE(svg.find("client-timeout: stalled"), std::string::npos);
  std::filesystem::remove_all(dir);
}

TEST(Progress, LineShowsItemsBytesRateAndEta) {
  std::FILE* sink = std::tmpfile();
  progress_meter meter("migrating a@b", 100, 50'000'000, sink);
  const std::string line = meter.line(25, 12'500'000);
  EXPECT_NE(line.find("25/100 items"), std::string::npos) << line;
  EXPECT_NE(line.find("12.5/50.0 MB"), std::string::npos) << line;
  EXPECT_NE(line.find("MB/s, ETA "), std::string::npos) << line;
  EXPECT_EQ(meter.line(100, 50'000'000).find("ETA"), std::string::npos);  // done: no ETA
  std::fclose(sink);
}

}  // namespace
}  // namespace exbridge::rehearse
