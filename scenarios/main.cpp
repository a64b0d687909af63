// rehearse: plays Exchange Online against fake-exchange and a proxy under test, step by step.
#include <algorithm>
#include <filesystem>
#include <iostream>

#include "common/cli.hpp"
#include "common/main_guard.hpp"
#include "common/log.hpp"
#include "scenarios/runner.hpp"

using namespace exbridge;
using namespace exbridge::scenario;

int main(int argc, char** argv) {
  return guarded_main("rehearse", [&] {
    run_options options;
    std::vector<std::string> positional;
    bool all = false;
    std::filesystem::path catalog = EXBRIDGE_SCENARIO_DIR;
    arg_parser args("rehearse", "run SCENARIO.toml [SCENARIO.toml ...] | run --all [options]");
    args.flag("all", "run every scenario of the catalog (--scenarios), in name order", [&] { all = true; });
    args.option("scenarios", "DIR", "the scenario catalog for --all (default: this checkout's scenarios/)",
                [&](const std::string& v) { catalog = v; });
    args.option("out", "DIR", "where run folders (logs, lab PKI) go (default ./rehearse-out)",
                [&](const std::string& v) { options.out_dir = v; });
    args.option("time-scale", "N", "override every scenario's time scale (1 = real time)", [&](const std::string& v) {
      options.time_scale = parse_number(v, "--time-scale");
      if (options.time_scale < 1) throw config_error("--time-scale must be >= 1");
    });
    args.epilog("Exit status: 0 every expectation held, 1 one did not, 2 bad command line or scenario file.\n");
    if (!args.parse(argc, argv, 1, &positional)) return static_cast<int>(exit_ok);
    if (positional.empty() || positional.front() != "run" || (positional.size() < 2 && !all)) {
      throw config_error("say what to run: 'rehearse run scenarios/seed-story.toml' or 'rehearse run --all' "
                         "(see 'rehearse --help')");
    }
    std::vector<std::filesystem::path> files(positional.begin() + 1, positional.end());
    if (all) {
      std::error_code ec;
      for (const auto& entry : std::filesystem::directory_iterator(catalog, ec)) {
        if (entry.path().extension() == ".toml") files.push_back(entry.path());
      }
      if (ec) throw config_error("cannot list scenario catalog " + catalog.string() + ": " + ec.message());
      std::sort(files.begin() + static_cast<std::ptrdiff_t>(positional.size() - 1), files.end());
    }
    // Load every file first: a typo in the third scenario should not cost the first two's run time.
    std::vector<exbridge::scenario::scenario> scenarios;
    for (const auto& file : files) scenarios.push_back(load_scenario(file));

    std::size_t passed_steps = 0, failed_steps = 0, failed_scenarios = 0;
    for (const auto& s : scenarios) {
      const auto report = run_scenario(s, options, std::cout);
      for (const auto& st : report.steps) (st.passed ? passed_steps : failed_steps) += 1;
      if (!report.passed()) {
        ++failed_scenarios;
        if (report.steps.size() < s.steps.size()) failed_steps += s.steps.size() - report.steps.size();
      }
    }
    std::cout << "summary: " << passed_steps << " passed, " << failed_steps << " failed\n";
    return static_cast<int>(failed_scenarios == 0 ? exit_ok : exit_failed);
  });
}
