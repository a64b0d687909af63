// JSON and JUnit XML reports, and the end-of-run summary table.
#include "scenarios/report.hpp"

#include <boost/json.hpp>

#include <iomanip>
#include <ostream>
#include <sstream>

#include "common/errors.hpp"
#include "common/lab_pki.hpp"
#include "common/xml.hpp"

namespace exbridge::scenario {
namespace {

double seconds(std::chrono::milliseconds d) { return static_cast<double>(d.count()) / 1000.0; }

std::string status_of(const scenario_report& r) {
  if (!r.skipped.empty()) return "skipped";
  return r.passed() ? "passed" : "failed";
}

std::string to_json(const std::vector<scenario_report>& reports) {
  boost::json::array scenarios;
  for (const auto& r : reports) {
    boost::json::array steps;
    for (const auto& st : r.steps) {
      steps.push_back({{"name", st.name},
                       {"expected", st.expected},
                       {"outcome", st.outcome},
                       {"passed", st.passed},
                       {"seconds", seconds(st.duration)},
                       {"explanation", st.explanation}});
    }
    boost::json::object o{{"name", r.name},
                          {"status", status_of(r)},
                          {"seconds", seconds(r.duration)},
                          {"run_dir", r.run_dir.string()},
                          {"steps", std::move(steps)}};
    if (!r.setup_error.empty()) o["setup_error"] = r.setup_error;
    if (!r.skipped.empty()) o["skipped"] = r.skipped;
    scenarios.push_back(std::move(o));
  }
  return boost::json::serialize(boost::json::object{{"scenarios", std::move(scenarios)}}) + "\n";
}

std::string to_junit(const std::vector<scenario_report>& reports) {
  std::ostringstream x;
  x << std::fixed << std::setprecision(3) << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"rehearse\">\n";
  for (const auto& r : reports) {
    std::size_t failures = 0;
    for (const auto& st : r.steps) failures += st.passed ? 0 : 1;
    const bool setup_failed = !r.setup_error.empty();
    const bool skipped = !r.skipped.empty();
    x << "  <testsuite name=\"" << xml_escape(r.name) << "\" tests=\"" << (r.steps.size() + (setup_failed || skipped ? 1 : 0))
      << "\" failures=\"" << failures << "\" errors=\"" << (setup_failed ? 1 : 0) << "\" skipped=\""
      << (skipped ? 1 : 0) << "\" time=\"" << seconds(r.duration) << "\">\n";
    if (skipped || setup_failed) {
      x << "    <testcase classname=\"" << xml_escape(r.name) << "\" name=\"setup\">\n";
      if (skipped) x << "      <skipped message=\"" << xml_escape(r.skipped) << "\"/>\n";
      else x << "      <error message=\"" << xml_escape(r.setup_error.substr(0, r.setup_error.find('\n'))) << "\">"
             << xml_escape(r.setup_error) << "</error>\n";
      x << "    </testcase>\n";
    }
    for (const auto& st : r.steps) {
      x << "    <testcase classname=\"" << xml_escape(r.name) << "\" name=\"" << xml_escape(st.name) << "\" time=\""
        << seconds(st.duration) << "\">\n";
      if (!st.passed) {
        x << "      <failure message=\"expected " << xml_escape(st.expected) << ", got " << xml_escape(st.outcome)
          << "\">" << xml_escape(st.explanation) << "</failure>\n";
      } else {
        x << "      <system-out>" << xml_escape(st.outcome + ": " + st.explanation) << "</system-out>\n";
      }
      x << "    </testcase>\n";
    }
    x << "  </testsuite>\n";
  }
  x << "</testsuites>\n";
  return x.str();
}

}  // namespace

std::vector<std::filesystem::path> write_reports(const std::vector<scenario_report>& reports,
                                                 const std::filesystem::path& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw config_error("cannot create report folder " + dir.string() + ": " + ec.message());
  const auto json = std::filesystem::absolute(dir / "report.json");
  const auto junit = std::filesystem::absolute(dir / "junit.xml");
  write_file(json, to_json(reports));
  write_file(junit, to_junit(reports));
  return {json, junit};
}

void print_summary_table(const std::vector<scenario_report>& reports, std::ostream& out) {
  std::size_t width = 8;
  for (const auto& r : reports) width = std::max(width, r.name.size());
  out << "\n" << std::left << std::setw(static_cast<int>(width)) << "scenario" << "  result   steps   time    first failure\n";
  for (const auto& r : reports) {
    std::size_t passed = 0;
    std::string first_failure;
    for (const auto& st : r.steps) {
      passed += st.passed ? 1 : 0;
      if (!st.passed && first_failure.empty()) first_failure = st.name + ": expected " + st.expected + ", got " + st.outcome;
    }
    if (!r.setup_error.empty()) first_failure = "setup: " + r.setup_error.substr(0, r.setup_error.find('\n'));
    if (!r.skipped.empty()) first_failure = r.skipped;
    std::ostringstream steps, time;
    steps << passed << "/" << r.steps.size();
    time << std::fixed << std::setprecision(1) << seconds(r.duration) << " s";
    out << std::left << std::setw(static_cast<int>(width)) << r.name << "  " << std::setw(7) << status_of(r) << "  "
        << std::setw(6) << steps.str() << "  " << std::setw(6) << time.str() << "  " << first_failure << '\n';
  }
}

}  // namespace exbridge::scenario
