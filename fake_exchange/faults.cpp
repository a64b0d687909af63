// Fault rules: matching (deterministic, seeded), and reading them from TOML or JSON.
#include "fake_exchange/faults.hpp"

#include <boost/algorithm/string/predicate.hpp>
#include <boost/json.hpp>

#include <array>
#include <fstream>
#include <sstream>

#include "common/errors.hpp"
#include "common/toml_util.hpp"
#include "fake_exchange/fault_toml.hpp"

namespace exbridge::fake_exchange {
namespace {

constexpr std::array<std::pair<fault_kind, std::string_view>, 10> kind_names{{
    {fault_kind::delay, "delay"},
    {fault_kind::throttle, "throttle"},
    {fault_kind::stall, "stall"},
    {fault_kind::reset, "reset"},
    {fault_kind::truncate, "truncate"},
    {fault_kind::error500, "error-500"},
    {fault_kind::error503, "error-503"},
    {fault_kind::execution_timeout, "execution-timeout"},
    {fault_kind::slow_handshake, "slow-handshake"},
    {fault_kind::no_close_notify, "no-close-notify"},
}};

/// A uniform draw in [0, 100) from the rule's own generator (the same on every platform).
double percent_draw(std::mt19937_64& random) { return static_cast<double>(random() >> 11) * 0x1.0p-53 * 100.0; }

/// Which of duration / after_bytes / rate an action takes, and whether it must be given.
struct action_keys {
  bool duration = false, duration_required = false, after_bytes = false, rate = false;
  scaled_clock::duration default_duration{};
};

action_keys keys_of(fault_kind k) {
  switch (k) {
    case fault_kind::delay:
    case fault_kind::slow_handshake: return {.duration = true, .duration_required = true};
    case fault_kind::stall: return {.duration = true, .duration_required = true, .after_bytes = true};
    case fault_kind::throttle: return {.rate = true};
    case fault_kind::reset:
    case fault_kind::truncate:
    case fault_kind::no_close_notify: return {.after_bytes = true};
    case fault_kind::execution_timeout:
      return {.duration = true, .default_duration = std::chrono::seconds(110)};  // EWS's executionTimeout
    case fault_kind::error500:
    case fault_kind::error503: return {};
  }
  return {};
}

double number(const std::string& source, const toml::node& node, const std::string& key) {
  const auto v = node.value<double>();
  if (!v) toml_fail_at(source, node, "'" + key + "' must be a number");
  return *v;
}

fault_rule parse_rule(const std::string& source, const toml::table& t, std::size_t index) {
  toml_reject_unknown_keys(source, t,
                           {"name", "path", "operation", "user", "nth", "percent", "seed", "times", "action", "duration",
                            "after_bytes", "rate"},
                           "[[fault]]");
  fault_rule r;
  r.where = toml_position(source, t.source());
  r.name = toml_get_string(source, t, "name", false, "rule-" + std::to_string(index + 1), "[[fault]]");
  r.path = toml_get_string(source, t, "path", false, "", "[[fault]]");
  r.operation = toml_get_string(source, t, "operation", false, "", "[[fault]]");
  r.user = toml_get_string(source, t, "user", false, "", "[[fault]]");
  if (!r.path.empty() && r.path.front() != '/') toml_fail_at(source, *t.get("path"), "'path' must start with '/'");
  if (const auto* n = t.get("nth")) r.nth = toml_whole_number(source, *n, "nth", 1);
  if (const auto* n = t.get("times")) r.times = toml_whole_number(source, *n, "times", 1);
  if (const auto* n = t.get("seed")) r.seed = toml_whole_number(source, *n, "seed", 0);
  if (const auto* n = t.get("percent")) {
    r.percent = number(source, *n, "percent");
    if (!(r.percent > 0 && r.percent <= 100)) toml_fail_at(source, *n, "'percent' must be more than 0 and at most 100");
  }
  const std::string action = toml_get_string(source, t, "action", true, "", "[[fault]] '" + r.name + "'");
  const auto found = std::find_if(kind_names.begin(), kind_names.end(), [&](const auto& p) { return p.second == action; });
  if (found == kind_names.end()) {
    std::string list;
    for (const auto& [k, name] : kind_names) list += (list.empty() ? "" : ", ") + std::string(name);
    toml_fail_at(source, *t.get("action"), "action '" + action + "' is unknown (known: " + list + ")");
  }
  r.action.kind = found->first;
  const action_keys keys = keys_of(r.action.kind);
  const auto not_for = [&](const char* key) {
    toml_fail_at(source, *t.get(key), std::string("'") + key + "' does not apply to action '" + action + "'");
  };
  if (const auto* n = t.get("duration")) {
    if (!keys.duration) not_for("duration");
    r.action.duration = toml_duration(source, *n, "duration");
  } else if (keys.duration_required) {
    toml_fail_at(source, t, "action '" + action + "' needs 'duration'");
  } else {
    r.action.duration = keys.default_duration;
  }
  if (const auto* n = t.get("after_bytes")) {
    if (!keys.after_bytes) not_for("after_bytes");
    r.action.after_bytes = toml_whole_number(source, *n, "after_bytes", 0);
  } else if (r.action.kind == fault_kind::reset || r.action.kind == fault_kind::truncate ||
             r.action.kind == fault_kind::stall) {
    r.action.after_bytes = 0;  // right after the response header
  }
  if (const auto* n = t.get("rate")) {
    if (!keys.rate) not_for("rate");
    r.action.rate = number(source, *n, "rate");
    if (!(r.action.rate >= 1)) toml_fail_at(source, *n, "'rate' must be at least 1 (bytes per second)");
  } else if (keys.rate) {
    toml_fail_at(source, t, "action '" + action + "' needs 'rate' (bytes per second)");
  }
  if (r.action.kind == fault_kind::slow_handshake && (!r.path.empty() || !r.operation.empty() || !r.user.empty())) {
    toml_fail_at(source, t, "slow-handshake happens before any request: it matches connections (nth, percent), not "
                            "'path', 'operation' or 'user'");
  }
  return r;
}

/// JSON values as TOML nodes, so that one validator reads both (JSON has no line numbers to report).
toml::table json_to_toml(const boost::json::object& object, const std::string& source);

void append_json(toml::array& out, const boost::json::value& v, const std::string& source);

template <class Insert>
void convert(const boost::json::value& v, const std::string& source, Insert insert) {
  if (v.is_string()) insert(std::string(v.get_string()));
  else if (v.is_int64()) insert(v.get_int64());
  else if (v.is_uint64()) insert(static_cast<std::int64_t>(v.get_uint64()));
  else if (v.is_double()) insert(v.get_double());
  else if (v.is_bool()) insert(v.get_bool());
  else if (v.is_object()) insert(json_to_toml(v.get_object(), source));
  else if (v.is_array()) {
    toml::array arr;
    for (const auto& e : v.get_array()) append_json(arr, e, source);
    insert(std::move(arr));
  } else {
    throw config_error(source + ": null is not a value a fault rule takes");
  }
}

void append_json(toml::array& out, const boost::json::value& v, const std::string& source) {
  convert(v, source, [&](auto&& x) { out.push_back(std::forward<decltype(x)>(x)); });
}

toml::table json_to_toml(const boost::json::object& object, const std::string& source) {
  toml::table t;
  for (const auto& entry : object) {  // not a structured binding: clang < 16 cannot capture one (fuzz build)
    const std::string key(entry.key());
    convert(entry.value(), source, [&](auto&& x) { t.insert_or_assign(key, std::forward<decltype(x)>(x)); });
  }
  return t;
}

std::string format_ms(scaled_clock::duration d) {
  return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(d).count()) + "ms";
}

}  // namespace

std::string_view fault_kind_name(fault_kind kind) {
  for (const auto& [k, name] : kind_names) {
    if (k == kind) return name;
  }
  return "?";
}

std::string fault_hit::describe() const { return rule + ":" + std::string(fault_kind_name(action.kind)); }

void fault_injector::replace(std::vector<fault_rule> rules) {
  std::vector<state> fresh;
  for (auto& r : rules) {
    const auto seed = r.seed;
    fresh.push_back({std::move(r), 0, 0, std::mt19937_64(seed)});
  }
  std::lock_guard lock(mutex_);
  rules_ = std::move(fresh);
}

std::vector<fault_rule> fault_injector::rules() const {
  std::lock_guard lock(mutex_);
  std::vector<fault_rule> out;
  for (const auto& s : rules_) out.push_back(s.rule);
  return out;
}

std::optional<fault_hit> fault_injector::fire(state& s) {
  ++s.matched;
  if (s.rule.nth != 0 && s.matched != s.rule.nth) return std::nullopt;
  if (s.rule.times != 0 && s.fired >= s.rule.times) return std::nullopt;
  if (s.rule.percent < 100 && percent_draw(s.random) >= s.rule.percent) return std::nullopt;
  ++s.fired;
  return fault_hit{s.rule.name, s.rule.action};
}

std::optional<fault_hit> fault_injector::match_request(std::string_view path, std::string_view operation,
                                                       std::string_view user) {
  std::lock_guard lock(mutex_);
  for (auto& s : rules_) {
    const fault_rule& r = s.rule;
    if (r.action.kind == fault_kind::slow_handshake) continue;
    if (!boost::algorithm::istarts_with(path, r.path)) continue;
    if (!r.operation.empty() && !boost::algorithm::iequals(operation, r.operation)) continue;
    if (!r.user.empty() && !boost::algorithm::iequals(user, r.user)) continue;
    if (auto hit = fire(s)) return hit;
  }
  return std::nullopt;
}

std::optional<fault_hit> fault_injector::match_connection() {
  std::lock_guard lock(mutex_);
  for (auto& s : rules_) {
    if (s.rule.action.kind != fault_kind::slow_handshake) continue;
    if (auto hit = fire(s)) return hit;
  }
  return std::nullopt;
}

std::vector<fault_rule> parse_fault_rules(const toml::table& root, const std::string& source) {
  std::vector<fault_rule> rules;
  const toml::node* node = root.get("fault");
  if (node == nullptr) return rules;
  if (!node->is_array_of_tables()) toml_fail_at(source, *node, "'fault' must be [[fault]] tables");
  for (const auto& t : *node->as_array()) rules.push_back(parse_rule(source, *t.as_table(), rules.size()));
  return rules;
}

std::vector<fault_rule> parse_fault_document(std::string_view text, const std::string& source) {
  const auto first = text.find_first_not_of(" \t\r\n");
  if (first != std::string_view::npos && text[first] == '{') {
    boost::json::error_code ec;
    const auto value = boost::json::parse(text, ec);
    if (ec || !value.is_object()) {
      throw config_error(source + ": not a JSON object (" + (ec ? ec.message() : "another JSON value") + ")");
    }
    const toml::table root = json_to_toml(value.get_object(), source);
    toml_reject_unknown_keys(source, root, {"fault"}, "the fault rules");
    return parse_fault_rules(root, source);
  }
  toml::table root;
  try {
    root = toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    throw config_error(toml_position(source, e.source()) + ": " + std::string(e.description()));
  }
  toml_reject_unknown_keys(source, root, {"fault"}, "the fault rules");
  return parse_fault_rules(root, source);
}

std::vector<fault_rule> load_fault_file(const std::string& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw config_error("--faults " + file + ": cannot read the file (does it exist?)");
  std::ostringstream text;
  text << in.rdbuf();
  return parse_fault_document(text.str(), file);
}

std::string fault_rules_json(const std::vector<fault_rule>& rules) {
  boost::json::array list;
  for (const auto& r : rules) {
    boost::json::object o;
    o["name"] = r.name;
    if (!r.path.empty()) o["path"] = r.path;
    if (!r.operation.empty()) o["operation"] = r.operation;
    if (!r.user.empty()) o["user"] = r.user;
    if (r.nth != 0) o["nth"] = r.nth;
    if (r.percent < 100) {
      o["percent"] = r.percent;
      o["seed"] = r.seed;
    }
    if (r.times != 0) o["times"] = r.times;
    o["action"] = std::string(fault_kind_name(r.action.kind));
    const action_keys keys = keys_of(r.action.kind);
    if (keys.duration) o["duration"] = format_ms(r.action.duration);
    if (keys.after_bytes && r.action.after_bytes) o["after_bytes"] = *r.action.after_bytes;
    if (keys.rate) o["rate"] = r.action.rate;
    list.push_back(std::move(o));
  }
  return boost::json::serialize(boost::json::object{{"fault", std::move(list)}});
}

}  // namespace exbridge::fake_exchange
