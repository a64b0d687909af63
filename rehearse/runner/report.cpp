// JSON and JUnit XML reports, and the end-of-run summary table.
#include "rehearse/runner/report.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <iomanip>
#include <ostream>
#include <sstream>

#include "common/errors.hpp"
#include "common/lab_pki.hpp"
#include "common/xml.hpp"

namespace exbridge::rehearse {
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
      boost::json::object step{{"name", st.name},
                               {"expected", st.expected},
                               {"outcome", st.outcome},
                               {"passed", st.passed},
                               {"verdict", st.verdict()},
                               {"seconds", seconds(st.duration)},
                               {"explanation", st.explanation}};
      if (!st.metrics.empty()) {
        boost::json::object metrics;
        for (const auto& [name, value] : st.metrics) metrics[name] = value;
        step["metrics"] = std::move(metrics);
      }
      steps.push_back(std::move(step));
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
  // The run's verdict first, so that a script reads one field: "failed" when any scenario failed, "passed" when
  // the others passed (skipped ones count neither way), "skipped" when every one was; then the counts behind it.
  std::size_t passed = 0, failed = 0, skipped = 0, reproduced = 0;
  for (const auto& r : reports) {
    const std::string status = status_of(r);
    (status == "passed" ? passed : status == "skipped" ? skipped : failed) += 1;
    for (const auto& st : r.steps) reproduced += st.verdict() == "reproduced" ? 1 : 0;
  }
  boost::json::object root{{"verdict", failed > 0 ? "failed" : passed > 0 ? "passed" : "skipped"},
                           {"scenarios_passed", passed},
                           {"scenarios_failed", failed},
                           {"scenarios_skipped", skipped},
                           {"failures_reproduced", reproduced},
                           {"scenarios", std::move(scenarios)}};
  return boost::json::serialize(root) + "\n";
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

std::string fixed(double v, int precision) {
  std::ostringstream o;
  o << std::fixed << std::setprecision(precision) << v;
  return o.str();
}

std::string request_colour(const timeline_event& e) {
  if (e.status == 0) return "#8b0000";  // no answer at all
  if (e.status == 401) return "#7da7d9";  // an authentication challenge: normal for NTLM
  if (e.status < 300) return "#3c9a4a";
  if (e.status < 500) return "#e08a1e";
  return "#d62728";
}

/// An SVG timeline: steps on the first row, then one row per client connection with its requests as
/// bars (green 2xx, blue 401 challenges, orange 4xx, red 5xx, dark red unanswered) and failures as red
/// lines across the chart. Hover titles carry the details.
std::string timeline_svg(const std::vector<timeline_event>& events) {
  constexpr double label = 120, width = 860, row = 14, top = 24;
  constexpr unsigned max_rows = 60;  // connections beyond share the last row
  // The chart begins with the first event (the lab PKI is made before anything else happens).
  double origin = events.empty() ? 0 : events.front().start_ms;
  double end = 1;
  unsigned connections = 0;
  for (const auto& e : events) {
    origin = std::min(origin, e.start_ms);
    end = std::max(end, e.end_ms);
    connections = std::max(connections, e.connection);
  }
  end = std::max(1.0, end - origin);
  const unsigned rows = 1 + std::min(connections, max_rows);
  const double height = top + rows * row + 10;
  const auto x = [&](double ms) { return fixed(label + (ms - origin) / end * width, 1); };
  const auto y = [&](unsigned connection) {
    return top + static_cast<double>(connection == 0 ? 0 : std::min(connection, max_rows)) * row;
  };
  std::ostringstream svg;
  svg << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << label + width + 10 << "\" height=\"" << height
      << "\" font-family=\"sans-serif\" font-size=\"10\">\n";
  // Time axis: five ticks.
  for (int i = 0; i <= 5; ++i) {
    const double ms = origin + end * i / 5;
    svg << "<line x1=\"" << x(ms) << "\" x2=\"" << x(ms) << "\" y1=\"" << top - 4 << "\" y2=\"" << height - 10
        << "\" stroke=\"#ddd\"/><text x=\"" << x(ms) << "\" y=\"12\" text-anchor=\"middle\">"
        << (end >= 10000 ? fixed(ms / 1000, 1) + " s" : fixed(ms, 0) + " ms") << "</text>\n";
    // (times are since the scenario began)
  }
  svg << "<text x=\"4\" y=\"" << y(0) + 10 << "\">steps</text>\n";
  for (unsigned c = 1; c <= std::min(connections, max_rows); ++c) {
    svg << "<text x=\"4\" y=\"" << y(c) + 10 << "\">connection " << c << (c == max_rows && connections > max_rows ? "+" : "")
        << "</text>\n";
  }
  for (const auto& e : events) {
    const std::string title = "<title>" + xml_escape(e.text) + " (" + fixed(e.start_ms, 0) + "-" + fixed(e.end_ms, 0) +
                              " ms)</title>";
    switch (e.what) {
      case timeline_event::kind::step_end:
        svg << "<rect x=\"" << x(e.start_ms) << "\" y=\"" << y(0) + 1 << "\" width=\""
            << fixed(std::max(2.0, (e.end_ms - e.start_ms) / end * width), 1) << "\" height=\"" << row - 2
            << "\" fill=\"" << (e.ok ? "#b7dfb9" : "#f4a6a6") << "\" stroke=\"#666\">" << title << "</rect>\n";
        break;
      case timeline_event::kind::request:
        svg << "<rect x=\"" << x(e.start_ms) << "\" y=\"" << y(e.connection) + 2 << "\" width=\""
            << fixed(std::max(1.5, (e.end_ms - e.start_ms) / end * width), 1) << "\" height=\"" << row - 4
            << "\" fill=\"" << request_colour(e) << "\">" << title << "</rect>\n";
        break;
      case timeline_event::kind::connection:
        svg << "<line x1=\"" << x(e.start_ms) << "\" x2=\"" << x(e.end_ms) << "\" y1=\"" << y(e.connection) + row / 2
            << "\" y2=\"" << y(e.connection) + row / 2 << "\" stroke=\"#999\">" << title << "</line>\n";
        break;
      case timeline_event::kind::failure:
        svg << "<line x1=\"" << x(e.start_ms) << "\" x2=\"" << x(e.start_ms) << "\" y1=\"" << top - 4 << "\" y2=\""
            << height - 10 << "\" stroke=\"#d62728\" stroke-width=\"2\">" << title << "</line>"
            << "<text x=\"" << x(e.start_ms) << "\" y=\"" << y(e.connection) + 11
            << "\" fill=\"#d62728\" font-weight=\"bold\">&#x2716; " << xml_escape(e.text.substr(0, 40)) << "</text>\n";
        break;
      case timeline_event::kind::process:
        svg << "<circle cx=\"" << x(e.start_ms) << "\" cy=\"" << y(0) + row / 2 << "\" r=\"3\" fill=\"#555\">"
            << title << "</circle>\n";
        break;
      case timeline_event::kind::step_begin:
        break;
    }
  }
  svg << "</svg>\n";
  return svg.str();
}

std::string to_html(const std::vector<scenario_report>& reports) {
  std::ostringstream h;
  h << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>rehearse report</title>\n<style>"
       "body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:1em 0}"
       "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}"
       ".passed{color:#2a7a35;font-weight:bold}.failed{color:#c62828;font-weight:bold}.skipped{color:#777}"
       "pre{white-space:pre-wrap;margin:0;font-size:90%}.legend span{display:inline-block;padding:0 6px;margin-right:4px;color:#fff}"
       "</style></head><body>\n<h1>rehearse report</h1>\n<table><tr><th>scenario</th><th>result</th><th>steps</th>"
       "<th>time</th></tr>\n";
  for (const auto& r : reports) {
    std::size_t passed = 0;
    for (const auto& st : r.steps) passed += st.passed ? 1 : 0;
    h << "<tr><td><a href=\"#" << xml_escape(r.name) << "\">" << xml_escape(r.name) << "</a></td><td class=\""
      << status_of(r) << "\">" << status_of(r) << "</td><td>" << passed << "/" << r.steps.size() << "</td><td>"
      << fixed(seconds(r.duration), 1) << " s</td></tr>\n";
  }
  h << "</table>\n<p class=\"legend\">Requests: <span style=\"background:#3c9a4a\">2xx</span>"
       "<span style=\"background:#7da7d9\">401 challenge</span><span style=\"background:#e08a1e\">4xx</span>"
       "<span style=\"background:#d62728\">5xx</span><span style=\"background:#8b0000\">no answer</span> "
       "Red lines: failures. Hover for details.</p>\n";
  for (const auto& r : reports) {
    h << "<h2 id=\"" << xml_escape(r.name) << "\">" << xml_escape(r.name) << " &mdash; <span class=\"" << status_of(r)
      << "\">" << status_of(r) << "</span></h2>\n<p>Run folder (logs, lab PKI): <code>" << xml_escape(r.run_dir.string())
      << "</code></p>\n";
    if (!r.skipped.empty()) h << "<p class=\"skipped\">" << xml_escape(r.skipped) << "</p>\n";
    if (!r.setup_error.empty()) h << "<p class=\"failed\">setup failed</p><pre>" << xml_escape(r.setup_error) << "</pre>\n";
    if (!r.steps.empty()) {
      h << "<table><tr><th>#</th><th>step</th><th>expected</th><th>got</th><th>time</th><th>explanation</th></tr>\n";
      std::size_t i = 0;
      for (const auto& st : r.steps) {
        h << "<tr><td>" << ++i << "</td><td>" << xml_escape(st.name) << "</td><td>" << xml_escape(st.expected)
          << "</td><td class=\"" << (st.passed ? "passed" : "failed") << "\">"
          << xml_escape(st.verdict() == "reproduced" ? st.outcome + " (reproduced, as expected)" : st.outcome) << "</td><td>"
          << st.duration.count() << " ms</td><td><pre>" << xml_escape(st.explanation) << "</pre></td></tr>\n";
      }
      h << "</table>\n";
    }
    if (!r.events.empty()) h << timeline_svg(r.events);
  }
  h << "</body></html>\n";
  return h.str();
}

}  // namespace

std::vector<std::filesystem::path> write_reports(const std::vector<scenario_report>& reports,
                                                 const std::filesystem::path& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw config_error("cannot create report folder " + dir.string() + ": " + ec.message());
  const auto json = std::filesystem::absolute(dir / "report.json");
  const auto junit = std::filesystem::absolute(dir / "junit.xml");
  const auto html = std::filesystem::absolute(dir / "report.html");
  write_file(json, to_json(reports));
  write_file(junit, to_junit(reports));
  write_file(html, to_html(reports));
  return {json, junit, html};
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

}  // namespace exbridge::rehearse
