// libFuzzer target: exbridge's --config file (proxy/config/config_file.cpp, load_config_file): toml++ then every
// key's validation. Any input must load or be refused with config_error (see fuzz_config.hpp).
#include "proxy/config/config_file.hpp"
#include "tests/fuzz/fuzz_config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  exbridge::fuzz::load_expecting_config_error_only(".exbridge.toml", data, size,
                                                   [](const std::string& path) { (void)exbridge::proxy::load_config_file(path); });
  return 0;
}
