// libFuzzer target: rehearse's scenario files (rehearse/runner/scenario_file.cpp, load_scenario): processes,
// lab, steps and their expectations. Any input must load or be refused with config_error (see
// fuzz_config.hpp).
#include "rehearse/runner/scenario_file.hpp"
#include "tests/fuzz/fuzz_config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  exbridge::fuzz::load_expecting_config_error_only(".scenario.toml", data, size, [](const std::string& path) {
    (void)exbridge::rehearse::load_scenario(path);
  });
  return 0;
}
