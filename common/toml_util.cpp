// Strict TOML reading helpers.
#include "common/toml_util.hpp"

#include <filesystem>

#include "common/errors.hpp"

namespace exbridge {

toml::table toml_parse_file(const std::string& file, const std::string& missing_hint) {
  try {
    return toml::parse_file(file);
  } catch (const toml::parse_error& e) {
    if (!std::filesystem::exists(file)) throw config_error(file + ": no such file; " + missing_hint);
    throw config_error(toml_position(file, e.source()) + ": " + std::string(e.description()));
  }
}

std::string toml_position(const std::string& source, const toml::source_region& where) {
  if (where.begin.line == 0) return source;
  return source + ":" + std::to_string(where.begin.line) + ":" + std::to_string(where.begin.column);
}

void toml_fail_at(const std::string& source, const toml::node& node, const std::string& what) {
  throw config_error(toml_position(source, node.source()) + ": " + what);
}

void toml_reject_unknown_keys(const std::string& source, const toml::table& table, const std::set<std::string>& known,
                              const std::string& where) {
  for (const auto& [key, value] : table) {
    if (known.count(std::string(key.str())) == 0) {
      std::string list;
      for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
      toml_fail_at(source, value, "unknown key '" + std::string(key.str()) + "' in " + where + " (known: " + list + ")");
    }
  }
}

std::string toml_get_string(const std::string& source, const toml::table& table, const char* key, bool required,
                            const std::string& fallback, const std::string& where) {
  const toml::node* node = table.get(key);
  if (node == nullptr) {
    if (required) throw config_error(toml_position(source, table.source()) + ": " + where + " needs '" + key + "'");
    return fallback;
  }
  if (!node->is_string()) toml_fail_at(source, *node, std::string("'") + key + "' must be a string");
  return node->as_string()->get();
}

std::uint64_t toml_whole_number(const std::string& source, const toml::node& node, const std::string& key,
                                std::int64_t min, std::int64_t max) {
  const auto v = node.value_exact<std::int64_t>();
  if (!v || *v < min || *v > max) {
    std::string range = ">= " + std::to_string(min);
    if (max != INT64_MAX) range = "from " + std::to_string(min) + " to " + std::to_string(max);
    toml_fail_at(source, node, "'" + key + "' must be a whole number " + range);
  }
  return static_cast<std::uint64_t>(*v);
}

scaled_clock::duration toml_duration(const std::string& source, const toml::node& node, const std::string& key) {
  if (node.is_string()) {
    try {
      return parse_duration(node.as_string()->get(), "'" + key + "'");
    } catch (const config_error& e) {
      toml_fail_at(source, node, e.what());
    }
  }
  if (const auto seconds = node.value<double>(); seconds && *seconds >= 0 && !node.is_boolean()) {
    // Found by fuzz_config_exbridge: 1e308 or inf would overflow the nanosecond count (undefined behaviour).
    if (!(*seconds <= 360'000'000.0)) toml_fail_at(source, node, "'" + key + "' is too long; at most 360000000 seconds");
    return std::chrono::duration_cast<scaled_clock::duration>(std::chrono::duration<double>(*seconds));
  }
  toml_fail_at(source, node, "'" + key + "' must be a duration such as \"250ms\", \"30s\" or \"2m\" (or seconds)");
}

}  // namespace exbridge
