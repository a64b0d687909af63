// libFuzzer target: fake-exchange's --config file (fake_exchange/config_file.cpp, apply_config_file):
// organisation, users, lists, mailboxes and fault rules. Any input must load or be refused with
// config_error (see fuzz_config.hpp).
#include "fake_exchange/config_file.hpp"
#include "tests/fuzz/fuzz_config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  exbridge::fuzz::load_expecting_config_error_only(".fake-exchange.toml", data, size, [](const std::string& path) {
    exbridge::fake_exchange::server_options options;
    exbridge::fake_exchange::apply_config_file(path, options);
  });
  return 0;
}
