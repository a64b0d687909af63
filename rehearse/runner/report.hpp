// The reports of a rehearse run: JSON (every scenario, step, outcome and explanation), JUnit XML (one
// testsuite per scenario, one testcase per step) for CI systems, a self-contained HTML page with a timeline
// of connections and requests per scenario that marks where each failure happened, and the summary table
// printed at the end of a run.
#pragma once

#include <filesystem>
#include <iosfwd>
#include <vector>

#include "rehearse/runner/runner.hpp"

namespace exbridge::rehearse {

/// Writes `report.json`, `junit.xml` and `report.html` into `dir`; returns their paths. Throws config_error
/// when it cannot.
std::vector<std::filesystem::path> write_reports(const std::vector<scenario_report>& reports,
                                                 const std::filesystem::path& dir);

/// One row per scenario: result, steps passed, time, and the first failed step's outcome.
void print_summary_table(const std::vector<scenario_report>& reports, std::ostream& out);

}  // namespace exbridge::rehearse
