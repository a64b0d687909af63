// rehearse: plays Exchange Online against fake-exchange and a proxy under test, step by step.
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
    arg_parser args("rehearse", "run SCENARIO.toml [SCENARIO.toml ...] [options]");
    args.option("out", "DIR", "where run folders (logs, lab PKI) go (default ./rehearse-out)",
                [&](const std::string& v) { options.out_dir = v; });
    args.option("time-scale", "N", "override every scenario's time scale (1 = real time)", [&](const std::string& v) {
      options.time_scale = parse_number(v, "--time-scale");
      if (options.time_scale < 1) throw config_error("--time-scale must be >= 1");
    });
    args.epilog("Exit status: 0 every expectation held, 1 one did not, 2 bad command line or scenario file.\n");
    if (!args.parse(argc, argv, 1, &positional)) return static_cast<int>(exit_ok);
    if (positional.empty() || positional.front() != "run" || positional.size() < 2) {
      throw config_error("say what to run: 'rehearse run scenarios/seed-story.toml' (see 'rehearse --help')");
    }
    // Load every file first: a typo in the third scenario should not cost the first two's run time.
    std::vector<exbridge::scenario::scenario> scenarios;
    for (std::size_t i = 1; i < positional.size(); ++i) scenarios.push_back(load_scenario(positional[i]));

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
