// Scenario file parsing with toml++.
#include "rehearse/runner/scenario_file.hpp"

#include <toml++/toml.h>

#include <algorithm>
#include <map>
#include <set>

#include "common/errors.hpp"
#include "common/toml_util.hpp"

namespace exbridge::rehearse {
namespace {

std::string position(const std::filesystem::path& file, const toml::source_region& src) {
  return toml_position(file.string(), src);
}

[[noreturn]] void fail_at(const std::filesystem::path& file, const toml::node& node, const std::string& what) {
  toml_fail_at(file.string(), node, what);
}

void reject_unknown_keys(const std::filesystem::path& file, const toml::table& table, const std::set<std::string>& known,
                         const std::string& where) {
  toml_reject_unknown_keys(file.string(), table, known, where);
}

std::string get_string(const std::filesystem::path& file, const toml::table& t, const char* key, bool required,
                       const std::string& fallback, const std::string& where) {
  return toml_get_string(file.string(), t, key, required, fallback, where);
}

std::vector<std::string> get_strings(const std::filesystem::path& file, const toml::table& t, const char* key) {
  std::vector<std::string> out;
  const toml::node* node = t.get(key);
  if (node == nullptr) return out;
  const toml::array* arr = node->as_array();
  if (arr == nullptr) fail_at(file, *node, std::string("'") + key + "' must be an array of strings");
  for (const auto& item : *arr) {
    if (!item.is_string()) fail_at(file, item, std::string("every element of '") + key + "' must be a string");
    out.push_back(item.as_string()->get());
  }
  return out;
}

const toml::array& get_table_array(const std::filesystem::path& file, const toml::table& root, const char* key) {
  const toml::node* node = root.get(key);
  if (node == nullptr || !node->is_array_of_tables()) {
    throw config_error(file.string() + ": needs at least one [[" + key + "]] table");
  }
  return *node->as_array();
}

}  // namespace

const std::vector<std::string>& known_outcomes() {
  static const std::vector<std::string> outcomes{
      "ok", "tls-version-refused", "tls-no-shared-cipher", "tls-security-level", "untrusted-certificate",
      "certificate-name-mismatch", "certificate-expired", "not-tls", "tls-reset", "tls-timeout", "tls-failure",
      "connect-failed", "auth-refused", "ntlm-connection-broken", "upstream-tls-failure", "identity-crossover", "data-corruption", "data-missing", "proxy-error", "http-error", "bad-response",
      "client-timeout", "connection-lost", "proxy-timeout", "proxy-idle-timeout", "autodiscover-failed",
      "migration-stalled", "rpc-refused", "request-too-large"};
  return outcomes;
}

scenario load_scenario(const std::filesystem::path& file) {
  toml::table root;
  try {
    root = toml::parse_file(file.string());
  } catch (const toml::parse_error& e) {
    if (!std::filesystem::exists(file)) {
      throw config_error(file.string() + ": no such scenario file; the catalog's are scenarios/<theme>/<name>.toml ('rehearse run --all' runs them all)");
    }
    throw config_error(position(file, e.source()) + ": " + std::string(e.description()));
  }
  reject_unknown_keys(file, root, {"name", "description", "time_scale", "lab", "process", "step"}, "the scenario");
  scenario s;
  s.file = file;
  s.name = get_string(file, root, "name", true, "", "the scenario");
  s.description = get_string(file, root, "description", false, "", "the scenario");
  if (const toml::node* ts = root.get("time_scale")) {
    const auto value = ts->value<double>();
    if (!value || *value < 1) fail_at(file, *ts, "'time_scale' must be a number >= 1");
    s.time_scale = *value;
  }
  if (const toml::node* lab = root.get("lab")) {
    if (!lab->is_table()) fail_at(file, *lab, "'lab' must be a table");
    reject_unknown_keys(file, *lab->as_table(), {"bridge_names", "exchange_names"}, "[lab]");
    if (auto names = get_strings(file, *lab->as_table(), "bridge_names"); !names.empty()) s.bridge_names = names;
    if (auto names = get_strings(file, *lab->as_table(), "exchange_names"); !names.empty()) s.exchange_names = names;
  }

  std::set<std::string> names{"lab", "run", "scenario"};
  for (const auto& node : get_table_array(file, root, "process")) {
    const toml::table& t = *node.as_table();
    reject_unknown_keys(file, t, {"name", "kind", "program", "args", "config", "upstream", "cert", "key", "start",
                                  "ready_timeout", "address"},
                        "[[process]]");
    process_spec p;
    p.where = position(file, t.source());
    p.name = get_string(file, t, "name", true, "", "[[process]]");
    if (!names.insert(p.name).second) fail_at(file, t, "process name '" + p.name + "' is used twice (or reserved)");
    const std::string what = "[[process]] '" + p.name + "'";
    p.kind = get_string(file, t, "kind", false, p.kind, what);
    static const std::map<std::string, std::set<std::string>> kind_keys{
        {"program", {"program", "args"}},
        {"haproxy", {"program", "args", "config", "upstream", "cert", "key"}},
        {"stunnel", {"program", "args", "config", "upstream", "cert", "key"}},
        {"nginx", {"program", "args", "config", "upstream", "cert", "key"}},
        {"exbridge", {"program", "args", "config", "upstream", "cert", "key"}},
        {"command", {"program", "args", "address"}},
        {"external", {"address"}}};
    const auto allowed = kind_keys.find(p.kind);
    if (allowed == kind_keys.end()) {
      fail_at(file, *t.get("kind"), "kind '" + p.kind + "' is unknown (known: program, exbridge, haproxy, stunnel, nginx, command, external)");
    }
    for (const char* key : {"program", "args", "config", "upstream", "cert", "key", "address"}) {
      if (const toml::node* n = t.get(key); n != nullptr && allowed->second.count(key) == 0) {
        fail_at(file, *n, std::string("'") + key + "' does not apply to kind = \"" + p.kind + "\"");
      }
    }
    const bool peer = p.kind == "haproxy" || p.kind == "stunnel" || p.kind == "nginx" || p.kind == "exbridge";
    const std::string default_program = p.kind == "haproxy"    ? "haproxy"
                                        : p.kind == "stunnel"  ? "stunnel4"
                                        : p.kind == "nginx"    ? "nginx"
                                        : p.kind == "exbridge" ? "exbridge"
                                                               : "";
    if (p.kind != "external") p.program = get_string(file, t, "program", !peer, default_program, what);
    p.args = get_strings(file, t, "args");
    p.address = get_string(file, t, "address", p.kind == "external", "", what);
    if (peer) {
      const std::string config = get_string(file, t, "config", true, "", what + " (kind " + p.kind + ")");
      p.config = std::filesystem::path(config).is_absolute() ? std::filesystem::path(config)
                                                              : file.parent_path() / config;
      const toml::node* upstream = t.get("upstream");
      if (upstream != nullptr && upstream->is_string()) p.upstreams = {upstream->as_string()->get()};
      else p.upstreams = get_strings(file, t, "upstream");
      p.cert = get_string(file, t, "cert", false, "", what);
      p.key = get_string(file, t, "key", false, "", what);
      if (p.cert.empty() != p.key.empty()) fail_at(file, t, what + ": 'cert' and 'key' come together");
      if (p.upstreams.empty()) {
        fail_at(file, t, what + " (kind " + p.kind + ") needs 'upstream': the lab Exchange server(s) it reaches, "
                               "e.g. upstream = \"${exchange.addr}\"");
      }
    }
    if (p.kind == "external" && t.get("start") != nullptr) {
      fail_at(file, *t.get("start"), "'start' does not apply to kind = \"external\" (nothing is started)");
    }
    const std::string start = get_string(file, t, "start", false, "setup", what);
    if (start != "setup" && start != "step") fail_at(file, *t.get("start"), "'start' must be \"setup\" or \"step\"");
    p.deferred = start == "step";
    const std::string ready = get_string(file, t, "ready_timeout", false, "20s", "[[process]]");
    p.ready_timeout = std::chrono::duration_cast<std::chrono::milliseconds>(parse_duration(ready, p.where + ": ready_timeout"));
    s.processes.push_back(std::move(p));
  }
  for (const auto& node : get_table_array(file, root, "step")) {
    const toml::table& t = *node.as_table();
    reject_unknown_keys(file, t,
                        {"name", "action", "connect", "server_name", "trust", "email", "password", "auth", "ntlm_domain",
                         "autodiscover", "autodiscover_email", "resolve", "listing", "ews_requests", "manifest", "page_size", "batch", "idle", "ping_interval", "rpc_server",
                         "request_timeout", "retries", "backoff", "mailboxes", "expect", "process", "expect_findings",
                         "transport", "no_progress_limit", "in_channel_bytes"},
                        "[[step]]");
    step_spec st;
    st.where = position(file, t.source());
    st.name = get_string(file, t, "name", true, "", "[[step]]");
    st.action = get_string(file, t, "action", false, st.action, "[[step]]");
    if (st.action != "migration-probe" && st.action != "migrate-mailbox" && st.action != "outlook-anywhere" &&
        st.action != "lint" && st.action != "start" && st.action != "stop") {
      fail_at(file, t, "step '" + st.name + "': action '" + st.action +
                           "' is unknown (known: migration-probe, migrate-mailbox, outlook-anywhere, lint, start, stop)");
    }
    if (st.action == "lint" || st.action == "start" || st.action == "stop") {
      // About one process; none of the client keys apply.
      for (const auto& [key, value] : t) {
        const std::string k(key.str());
        if (k != "name" && k != "action" && k != "process" && k != "expect" &&
            (k != "expect_findings" || st.action != "lint")) {
          fail_at(file, value, "'" + k + "' does not apply to action = \"" + st.action + "\"");
        }
      }
      st.process = get_string(file, t, "process", true, "", "[[step]] '" + st.name + "' (action " + st.action + ")");
      const auto p = std::find_if(s.processes.begin(), s.processes.end(),
                                  [&](const process_spec& ps) { return ps.name == st.process; });
      if (p == s.processes.end() || (st.action == "lint" && p->kind != "haproxy" && p->kind != "stunnel" && p->kind != "nginx") ||
          (st.action == "start" && !p->deferred) || (st.action == "stop" && p->kind == "external")) {
        const std::string need = st.action == "lint"    ? "a [[process]] with kind = \"haproxy\", \"stunnel\" or \"nginx\""
                                 : st.action == "start" ? "a [[process]] with start = \"step\""
                                                        : "a [[process]] rehearse started (not kind = \"external\")";
        fail_at(file, *t.get("process"), "step '" + st.name + "': process '" + st.process + "' is not " + need);
      }
      st.has_expect_findings = t.contains("expect_findings");
      st.expect_findings = get_strings(file, t, "expect_findings");
      st.expect = get_string(file, t, "expect", false, st.expect, "[[step]]");
      const std::vector<std::string> allowed = st.action == "lint"    ? std::vector<std::string>{"ok", "config-warnings", "config-errors"}
                                               : st.action == "start" ? std::vector<std::string>{"ok", "refused-to-start"}
                                                                      : std::vector<std::string>{"ok"};
      if (std::find(allowed.begin(), allowed.end(), st.expect) == allowed.end()) {
        std::string list;
        for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
        fail_at(file, *t.get("expect"), "a " + st.action + " step expects " + list);
      }
      s.steps.push_back(std::move(st));
      continue;
    }
    for (const char* key : {"process", "expect_findings"}) {
      if (const toml::node* n = t.get(key)) fail_at(file, *n, std::string("'") + key + "' belongs to the lint, start and stop actions");
    }
    // Outlook Anywhere's keys mean nothing to the EWS actions: a misplaced one is a mistake, not a no-op.
    for (const char* key : {"idle", "ping_interval", "rpc_server"}) {
      if (const toml::node* n = t.get(key); n != nullptr && st.action != "outlook-anywhere") {
        fail_at(file, *n, std::string("'") + key + "' applies only to action = \"outlook-anywhere\"");
      }
    }
    const auto duration_key = [&](const char* key, scaled_clock::duration& field) {
      const toml::node* n = t.get(key);
      if (n == nullptr) return;
      const auto text = n->value<std::string>();
      try {
        if (!text) throw config_error("not a string");
        field = parse_duration(*text, key);
      } catch (const config_error&) {
        fail_at(file, *n, std::string("'") + key + "' must be a duration string such as \"40m\", \"720s\" or \"1h\"");
      }
      if (field <= scaled_clock::duration::zero()) fail_at(file, *n, std::string("'") + key + "' must be more than 0");
    };
    duration_key("request_timeout", st.request_timeout);
    duration_key("backoff", st.backoff);
    if (const toml::node* n = t.get("retries")) {
      st.retries = static_cast<unsigned>(toml_whole_number(file.string(), *n, "retries", 0, 1000));
    }
    duration_key("no_progress_limit", st.no_progress_limit);
    st.transport = get_string(file, t, "transport", false, st.transport, "[[step]]");
    if (st.transport != "outlook-anywhere" && st.transport != "ews") {
      fail_at(file, *t.get("transport"), "'transport' must be \"outlook-anywhere\" (RPC over HTTP, as Exchange Online "
                                         "moves 2007 mailboxes) or \"ews\" (as EWS-based migration tools do)");
    }
    if (const toml::node* n = t.get("in_channel_bytes")) {
      st.in_channel_bytes = static_cast<std::uint64_t>(toml_whole_number(file.string(), *n, "in_channel_bytes", 8192, 4294967295LL));
    }
    // Keys of one transport mean nothing to the other: a misplaced one is a mistake, not a no-op.
    for (const char* key : {"transport", "no_progress_limit", "in_channel_bytes"}) {
      if (const toml::node* n = t.get(key); n != nullptr && st.action != "migrate-mailbox") {
        fail_at(file, *n, std::string("'") + key + "' applies only to action = \"migrate-mailbox\"");
      }
    }
    for (const char* key : {"no_progress_limit", "in_channel_bytes"}) {
      if (const toml::node* n = t.get(key); n != nullptr && st.transport != "outlook-anywhere") {
        fail_at(file, *n, std::string("'") + key + "' applies only to transport = \"outlook-anywhere\"");
      }
    }
    for (const char* key : {"listing", "page_size", "batch"}) {
      if (const toml::node* n = t.get(key); n != nullptr && st.action == "migrate-mailbox" && st.transport != "ews") {
        fail_at(file, *n, std::string("'") + key + "' is an EWS setting: add transport = \"ews\" (the migration "
                                                   "moves mailboxes over Outlook Anywhere by default)");
      }
    }
    if (const toml::node* n = t.get("mailboxes")) {
      st.mailboxes = static_cast<unsigned>(toml_whole_number(file.string(), *n, "mailboxes", 1, 1000));
      if (st.action == "outlook-anywhere") fail_at(file, *n, "'mailboxes' applies to migration-probe and migrate-mailbox");
    }
    for (const char* key : {"retries", "backoff"}) {
      if (const toml::node* n = t.get(key); n != nullptr && st.action != "migrate-mailbox") {
        fail_at(file, *n, std::string("'") + key + "' applies only to action = \"migrate-mailbox\"");
      }
    }
    duration_key("idle", st.idle);
    duration_key("ping_interval", st.ping_interval);
    st.rpc_server = get_string(file, t, "rpc_server", false, st.rpc_server, "[[step]]");
    if (st.rpc_server.empty() || st.rpc_server.find_first_of(":/?# ") != std::string::npos) {
      fail_at(file, *t.get("rpc_server"), "'rpc_server' must be a host name (rpcproxy.dll gets '<rpc_server>:6001')");
    }
    st.connect = get_string(file, t, "connect", true, "", "[[step]] '" + st.name + "'");
    st.server_name = get_string(file, t, "server_name", false, s.bridge_names.front(), "[[step]]");
    st.trust = get_string(file, t, "trust", false, st.trust, "[[step]]");
    if (st.trust != "lab" && st.trust != "system" && (!st.trust.starts_with("ca:") || st.trust.size() == 3)) {
      fail_at(file, *t.get("trust"), "'trust' must be \"lab\" (the run's lab CA), \"system\" (the system's CAs) or "
                                     "\"ca:FILE\" (a CA file, for a proxy started outside rehearse with its own certificate)");
    }
    st.email = get_string(file, t, "email", true, "", "[[step]] '" + st.name + "'");
    st.password = get_string(file, t, "password", true, "", "[[step]] '" + st.name + "'");
    if (st.mailboxes > 1 && (st.email.find("{n}") == std::string::npos || st.password.find("{n}") == std::string::npos)) {
      fail_at(file, *t.get("mailboxes"), "with mailboxes = " + std::to_string(st.mailboxes) +
                                             ", 'email' and 'password' must carry {n} (user{n}@contoso.example, "
                                             "as fake-exchange --user ... --user-count numbers them)");
    }
    st.auth = get_string(file, t, "auth", false, st.auth, "[[step]]");
    if (st.auth != "basic" && st.auth != "ntlm") fail_at(file, *t.get("auth"), "'auth' must be \"basic\" or \"ntlm\"");
    st.ntlm_domain = get_string(file, t, "ntlm_domain", false, "", "[[step]]");
    st.autodiscover = get_string(file, t, "autodiscover", false, st.autodiscover, "[[step]]");
    if (st.autodiscover != "public-name" && st.autodiscover != "domain") {
      fail_at(file, *t.get("autodiscover"), "'autodiscover' must be \"public-name\" (ask the server name given) or "
                                            "\"domain\" (the candidate URLs of the address's domain, as Exchange Online)");
    }
    st.autodiscover_email = get_string(file, t, "autodiscover_email", false, "", "[[step]]");
    if (const toml::node* n = t.get("resolve")) {
      if (!n->is_table()) fail_at(file, *n, "'resolve' must be a table of host name = \"HOST:PORT\", e.g. "
                                           "resolve = { \"autodiscover.contoso.example\" = \"${bridge.addr}\" }");
      for (const auto& [name, value] : *n->as_table()) {
        const auto text = value.value<std::string>();
        if (!text || text->empty()) fail_at(file, value, "resolve: '" + std::string(name.str()) + "' must map to \"HOST:PORT\"");
        st.resolve[std::string(name.str())] = *text;
      }
    }
    const auto whole_number = [&](const char* key, unsigned& field, std::int64_t max) {
      const toml::node* n = t.get(key);
      if (n == nullptr) return;
      const auto v = n->value<std::int64_t>();
      if (!v || *v < 1 || *v > max) {
        fail_at(file, *n, std::string("'") + key + "' must be a whole number from 1 to " + std::to_string(max));
      }
      field = static_cast<unsigned>(*v);
    };
    whole_number("ews_requests", st.ews_requests, 100000);
    whole_number("page_size", st.page_size, 1000);
    whole_number("batch", st.batch, 100);
    st.listing = get_string(file, t, "listing", false, st.listing, "[[step]]");
    if (st.listing != "find-item" && st.listing != "sync-folder-items") {
      fail_at(file, *t.get("listing"), "'listing' must be \"find-item\" or \"sync-folder-items\"");
    }
    if (const toml::node* n = t.get("listing"); n != nullptr && st.action != "migrate-mailbox") {
      fail_at(file, *n, "'listing' applies only to action = \"migrate-mailbox\"");
    }
    if (st.listing == "sync-folder-items" && st.page_size > 512) {
      fail_at(file, *t.get("page_size"), "SyncFolderItems returns at most 512 changes per call (MaxChangesReturned "
                                         "1-512): set page_size to 512 or less");
    }
    st.manifest = get_string(file, t, "manifest", false, "", "[[step]]");
    if (st.action == "migrate-mailbox" && st.manifest.empty()) {
      fail_at(file, t, "step '" + st.name + "': migrate-mailbox needs 'manifest' (fake-exchange's --manifest file)");
    }
    st.expect = get_string(file, t, "expect", false, st.expect, "[[step]]");
    const auto& outcomes = known_outcomes();
    if (std::find(outcomes.begin(), outcomes.end(), st.expect) == outcomes.end()) {
      std::string list;
      for (const auto& o : outcomes) list += (list.empty() ? "" : ", ") + o;
      fail_at(file, *t.get("expect"), "expect = '" + st.expect + "' is not an outcome rehearse reports (" + list + ")");
    }
    s.steps.push_back(std::move(st));
  }
  return s;
}

std::string substitute(const std::string& text, const std::map<std::string, std::string>& vars,
                       const std::string& where) {
  std::string out;
  std::size_t pos = 0;
  while (pos < text.size()) {
    const auto open = text.find("${", pos);
    if (open == std::string::npos) {
      out += text.substr(pos);
      break;
    }
    const auto close = text.find('}', open);
    if (close == std::string::npos) throw config_error(where + ": unterminated ${ in '" + text + "'");
    out += text.substr(pos, open - pos);
    const std::string name = text.substr(open + 2, close - open - 2);
    const auto it = vars.find(name);
    if (it == vars.end()) {
      std::string list;
      for (const auto& [k, v] : vars) list += (list.empty() ? "" : ", ") + k;
      throw config_error(where + ": unknown variable ${" + name + "} (defined so far: " + list + ")");
    }
    out += it->second;
    pos = close + 1;
  }
  return out;
}

std::vector<std::filesystem::path> catalog_scenarios(const std::filesystem::path& catalog) {
  std::vector<std::filesystem::path> files;
  std::error_code ec;
  for (std::filesystem::recursive_directory_iterator it(catalog, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    // A scenario's fault rules (NAME.faults.toml) and exbridge config (NAME.exbridge.toml) sit beside it: data for
    // the programs it starts, not scenarios.
    if (it->is_regular_file() && name.ends_with(".toml") && !name.ends_with(".faults.toml") &&
        !name.ends_with(".exbridge.toml")) {
      files.push_back(it->path());
    }
  }
  if (ec) throw config_error("cannot list scenario catalog " + catalog.string() + ": " + ec.message());
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace exbridge::rehearse
