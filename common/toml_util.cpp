// Strict TOML reading helpers.
#include "common/toml_util.hpp"

#include "common/errors.hpp"

namespace exbridge {

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

}  // namespace exbridge
