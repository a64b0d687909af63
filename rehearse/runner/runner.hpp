// Runs one scenario: makes the run folder and lab PKI, starts the processes, runs each step as the
// Exchange Online client, checks the expectation, prints one result line per step and a summary, and
// always tears the processes down.
#pragma once

#include <filesystem>
#include <iosfwd>
#include <map>
#include <string>
#include <vector>

#include "rehearse/runner/scenario_file.hpp"
#include "rehearse/runner/timeline.hpp"

namespace exbridge::rehearse {

struct step_report {
  std::string name;
  std::string expected;
  std::string outcome;
  std::string explanation;
  bool passed = false;
  std::chrono::milliseconds duration{0};
  std::map<std::string, double> metrics;  ///< a migration's counts (items, bytes, channels recycled, retries, ...)
  bool check = false;  ///< a lint, start or stop step: its expected outcome is a result, not a failure reproduced
  /// "passed" (worked as expected), "reproduced" (the failure it expects happened) or "failed".
  std::string verdict() const;
  /// The result line's word: PASS, REPRODUCED or FAIL.
  std::string label() const;
};

struct scenario_report {
  std::string name;
  std::vector<step_report> steps;
  std::string setup_error;  ///< non-empty when the scenario could not start (a process never became ready, ...)
  std::string skipped;      ///< non-empty when a peer program it needs is not installed (not a failure)
  std::filesystem::path run_dir;
  std::chrono::milliseconds duration{0};
  std::vector<timeline_event> events;  ///< processes, steps, connections and requests, for the HTML timeline
  bool passed() const;
};

struct run_options {
  std::filesystem::path out_dir = "rehearse-out";
  double time_scale = 0;  ///< 0 = the scenario's own
};

/// Runs the scenario, printing progress and results on `out`.
scenario_report run_scenario(const scenario& s, const run_options& options, std::ostream& out);

}  // namespace exbridge::rehearse
