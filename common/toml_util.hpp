// Helpers for reading TOML files (toml++) strictly: every problem is a config_error that names
// "SOURCE:LINE:COLUMN" (the node's source region), and unknown keys are errors, never silently ignored.
#pragma once

#include <toml++/toml.h>

#include <cstdint>
#include <set>
#include <string>

#include "common/clock.hpp"

namespace exbridge {

/// Parses a TOML file. Throws config_error: "FILE: no such file; HINT" when it does not exist, else
/// "FILE:LINE:COLUMN: what toml++ found wrong".
toml::table toml_parse_file(const std::string& file, const std::string& missing_hint);

/// "SOURCE:LINE:COLUMN", or just "SOURCE" for nodes without a position (built in code, e.g. from JSON).
std::string toml_position(const std::string& source, const toml::source_region& where);

/// Throws config_error("SOURCE:LINE:COLUMN: what").
[[noreturn]] void toml_fail_at(const std::string& source, const toml::node& node, const std::string& what);

/// Throws config_error for the first key of `table` not in `known`, listing the known ones.
void toml_reject_unknown_keys(const std::string& source, const toml::table& table, const std::set<std::string>& known,
                              const std::string& where);

/// The string at `key`; `fallback` when absent and not `required`. Throws config_error otherwise.
std::string toml_get_string(const std::string& source, const toml::table& table, const char* key, bool required,
                            const std::string& fallback, const std::string& where);

/// A whole number `node` in [min, max]; throws config_error naming `key` and the line otherwise.
std::uint64_t toml_whole_number(const std::string& source, const toml::node& node, const std::string& key,
                                std::int64_t min, std::int64_t max = INT64_MAX);

/// A duration: a string such as "250ms", "30s", "15m" (parse_duration) or a number of seconds.
scaled_clock::duration toml_duration(const std::string& source, const toml::node& node, const std::string& key);

}  // namespace exbridge
