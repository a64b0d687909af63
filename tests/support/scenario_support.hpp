// Helpers for tests of rehearse's scenario files: write one to a temporary file, and load one expecting
// the config_error it must produce.
#pragma once

#include <string>

#include "common/errors.hpp"
#include "rehearse/runner/scenario_file.hpp"
#include "tests/support/test_support.hpp"

namespace exbridge::test {

inline std::filesystem::path write_temp(const std::string& name, const std::string& text) {
  return write_temp_file(name, text);
}

/// The message load_scenario throws for `text` (written as bad.toml), or "" when it loads.
inline std::string load_error(const std::string& text) {
  try {
    rehearse::load_scenario(write_temp("bad.toml", text));
  } catch (const config_error& e) {
    return e.what();
  }
  return "";
}

}  // namespace exbridge::test
