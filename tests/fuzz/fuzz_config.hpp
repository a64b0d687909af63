// Shared by the config-file fuzz targets: the loaders read a named file (as the programs do, so that error
// positions name FILE:LINE), hence each input is written to a per-process temporary file first. A loader
// may refuse any input with the project's config_error; any other exception escaping it is a bug.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <string>
#include <typeinfo>

#include "common/errors.hpp"
#include "tests/fuzz/fuzz_streams.hpp"

namespace exbridge::fuzz {

inline const std::string& config_path(const char* suffix) {
  static const std::string path = (std::filesystem::temp_directory_path() /
                                   ("exbridge-fuzz-" + std::to_string(::getpid()) + suffix)).string();
  return path;
}

inline void write_input(const std::string& path, const std::uint8_t* data, std::size_t size) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) invariant_failed("cannot write the temporary config file", path);
  if (size > 0 && std::fwrite(data, 1, size, f) != size) invariant_failed("short write of the temporary config file", path);
  std::fclose(f);
}

/// Runs `load` on the input; config_error is an answer, anything else thrown is a bug.
template <class Load>
void load_expecting_config_error_only(const char* suffix, const std::uint8_t* data, std::size_t size, Load&& load) {
  const std::string& path = config_path(suffix);
  write_input(path, data, size);
  try {
    load(path);
  } catch (const config_error&) {
  } catch (const std::exception& e) {
    invariant_failed("a loader threw something other than config_error:", std::string(typeid(e).name()) + ": " + e.what());
  }
}

}  // namespace exbridge::fuzz
