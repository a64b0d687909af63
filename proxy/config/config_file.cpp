// exbridge --config file reading: toml++ with the strict helpers of common/toml_util, values checked by the
// validators the command line uses, so a value means the same in both places.
#include "proxy/config/config_file.hpp"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "common/errors.hpp"
#include "common/toml_util.hpp"

namespace exbridge::proxy {
namespace {

class reader {
 public:
  explicit reader(std::string file) : file_(std::move(file)) {}

  loaded_config read() {
    const toml::table root = toml_parse_file(file_, "check the --config path (an example: proxy/exbridge.example.toml)");
    toml_reject_unknown_keys(file_, root,
                             {"threads", "user", "group", "chroot", "drain_timeout", "listen", "upstream", "pool", "route",
                              "timeouts", "log", "admin"},
                             "the configuration");
    auto& o = out_.options;
    if (const auto* n = root.get("threads")) {
      o.threads = static_cast<unsigned>(toml_whole_number(file_, *n, "threads", 0, 256));
      note("threads", *n);
    }
    if (root.get("user") != nullptr) o.user = string(root, "user", "user");
    if (root.get("group") != nullptr) o.group = string(root, "group", "group");
    if (root.get("chroot") != nullptr) o.chroot_dir = string(root, "chroot", "chroot");
    if (const auto* n = root.get("drain_timeout")) o.drain_timeout = seconds(*n, "drain_timeout");
    read_listen(table(root, "listen", true, "[listen] with address = \"0.0.0.0:443\" and a [[listen.certificate]]"));
    read_pool(*table(root, "upstream", true, "[upstream] with address = \"owa.customer.example:443\" and verify"),
              o.upstream, "upstream");
    if (const auto* t = table(root, "timeouts", false, "")) read_timeouts(*t, o.timeouts, "timeouts");
    read_pools(root);
    read_routes(root);
    if (const auto* t = table(root, "admin", false, "")) read_admin(*t);
    if (const auto* t = table(root, "log", false, "")) {
      toml_reject_unknown_keys(file_, *t, {"format"}, "[log]");
      if (const auto* n = t->get("format")) {
        const std::string format = string(*t, "format", "log.format");
        o.access_log = checked(*n, [&] { return parse_log_format(format, "log.format"); });
      }
    }
    return std::move(out_);
  }

 private:
  /// The table at `key`; null when absent and optional. A missing required one says what to write.
  const toml::table* table(const toml::table& parent, const char* key, bool required, const char* example) {
    const toml::node* n = parent.get(key);
    if (n == nullptr) {
      if (required) throw config_error(file_ + ": [" + key + "] is missing; add " + example);
      return nullptr;
    }
    if (!n->is_table()) toml_fail_at(file_, *n, std::string("'") + key + "' must be a table: [" + key + "]");
    return n->as_table();
  }

  /// The string at `key` (which must be present); `qualified` names it in messages ("upstream.sni").
  std::string string(const toml::table& t, const char* key, const std::string& qualified) {
    const toml::node& n = *t.get(key);
    if (!n.is_string()) toml_fail_at(file_, n, "'" + qualified + "' must be a string");
    note(qualified, n);
    return n.as_string()->get();
  }

  /// A required string: missing says what to write, e.g. `verify = "ca:/etc/exbridge/exchange2007-ca.pem"`.
  std::string required(const toml::table& t, const char* key, const std::string& qualified, const std::string& example) {
    if (t.get(key) == nullptr) {
      throw config_error(toml_position(file_, t.source()) + ": '" + qualified + "' is missing; add " + example);
    }
    return string(t, key, qualified);
  }

  /// Runs a shared validator; its config_error gets the node's FILE:LINE:COLUMN in front.
  template <class F>
  auto checked(const toml::node& n, F&& validate) -> decltype(validate()) {
    try {
      return validate();
    } catch (const config_error& e) {
      toml_fail_at(file_, n, e.what());
    }
  }

  void note(const std::string& key, const toml::node& n) {
    out_.origins[key] = file_ + ":" + std::to_string(n.source().begin.line);
  }

  void read_listen(const toml::table* t) {
    toml_reject_unknown_keys(file_, *t,
                             {"address", "certificate", "response_headers", "max_connections", "certificate_watch"},
                             "[listen]");
    auto& o = out_.options;
    // One address, or a list of them ("0.0.0.0:443" plus "[::]:443", say): one listener each, same settings.
    const toml::node* addresses = t->get("address");
    if (addresses != nullptr && addresses->is_array()) {
      if (addresses->as_array()->empty()) toml_fail_at(file_, *addresses, "'listen.address' lists no address");
      for (const auto& entry : *addresses->as_array()) {
        if (!entry.is_string()) toml_fail_at(file_, entry, "'listen.address' entries must be \"host:port\" strings");
        const std::string text = entry.as_string()->get();
        const auto where = checked(entry, [&] { return parse_host_port(text, "listen.address"); });
        if (&entry == &addresses->as_array()->front()) o.listen = where;
        else o.also_listen.push_back(where);
      }
      note("listen.address", *addresses);
    } else {
      const std::string address = required(*t, "address", "listen.address", "address = \"0.0.0.0:443\"");
      o.listen = checked(*t->get("address"), [&] { return parse_host_port(address, "listen.address"); });
    }
    if (const auto* n = t->get("max_connections")) {
      o.max_connections = static_cast<unsigned>(toml_whole_number(file_, *n, "listen.max_connections", 0, 10'000'000));
      note("listen.max_connections", *n);
    }
    if (const auto* n = t->get("certificate_watch")) o.certificate_watch = seconds(*n, "listen.certificate_watch");
    const toml::node* certs = t->get("certificate");
    if (certs == nullptr) {
      throw config_error(toml_position(file_, t->source()) +
                         ": [listen] has no certificate; add the one Exchange Online will see: [[listen.certificate]] with "
                         "cert = \"/etc/letsencrypt/live/NAME/fullchain.pem\" and key = \"/etc/letsencrypt/live/NAME/privkey.pem\"");
    }
    if (!certs->is_array_of_tables() || certs->as_array()->empty()) {
      toml_fail_at(file_, *certs, "'listen.certificate' must be [[listen.certificate]] tables with cert and key");
    }
    std::size_t index = 0;
    for (const auto& entry : *certs->as_array()) {
      const toml::table& c = *entry.as_table();
      toml_reject_unknown_keys(file_, c, {"cert", "key"}, "[[listen.certificate]]");
      const std::string which = "listen.certificate." + std::to_string(index);
      tls_identity id;
      id.cert_file = required(c, "cert", "listen.certificate.cert", "cert = \"/path/to/fullchain.pem\"");
      id.key_file = required(c, "key", "listen.certificate.key",
                             "key = \"/path/to/privkey.pem\" (the private key of " + id.cert_file + ")");
      note(which, c);
      if (index++ == 0) o.identity = id;
      else o.sni_identities.push_back(id);
    }
    if (const auto* headers = table(*t, "response_headers", false, "")) {
      // toml++ keeps keys sorted; headers go out in the order the file lists them.
      std::vector<std::pair<std::string, const toml::node*>> entries;
      for (const auto& [name, value] : *headers) entries.emplace_back(std::string(name.str()), &value);
      std::stable_sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) {
        return a.second->source().begin < b.second->source().begin;
      });
      // Not structured bindings: clang before 16 cannot capture those in the lambda below (the fuzz build).
      for (const auto& entry : entries) {
        const std::string& key = entry.first;
        const toml::node* value = entry.second;
        const std::string qualified = "listen.response_headers." + key;
        if (!value->is_string()) toml_fail_at(file_, *value, "'" + qualified + "' must be a string");
        const std::string text = value->as_string()->get();
        checked(*value, [&] { check_response_header(key, text, "listen.response_headers"); });
        o.response_headers.emplace_back(key, text);
      }
    }
  }

  /// [upstream] (the default pool) or one [[pool]]: `prefix` names its keys in messages ("upstream", "pool.rpc").
  void read_pool(const toml::table& t, upstream_settings& u, const std::string& prefix) {
    std::set<std::string> known{"address", "servers", "sni", "tls_min", "tls_max", "ciphers", "security_level",
                                "verify", "persistence", "max_connections_per_server", "queue_timeout", "retries",
                                "health_check"};
    if (prefix != "upstream") known.insert("name");
    toml_reject_unknown_keys(file_, t, known, "[" + prefix + "]");
    const std::string at = prefix + ".";
    if (t.get("servers") != nullptr) {
      if (t.get("address") != nullptr) {
        toml_fail_at(file_, *t.get("address"), "'" + at + "address' and '" + at + "servers' together; list every server in servers");
      }
      const toml::node& n = *t.get("servers");
      if (!n.is_array() || n.as_array()->empty()) {
        toml_fail_at(file_, n, "'" + at + "servers' must be a list of \"host:port\" strings, e.g. [\"cas1.customer.example:443\", \"cas2.customer.example:443\"]");
      }
      for (const auto& entry : *n.as_array()) {
        if (!entry.is_string()) toml_fail_at(file_, entry, "'" + at + "servers' entries must be \"host:port\" strings");
        const std::string text = entry.as_string()->get();
        u.servers.push_back(checked(entry, [&] { return parse_host_port(text, at + "servers", false); }));
      }
      u.address = u.servers.front();
      note(at + "address", n);
    } else {
      const std::string address =
          required(t, "address", at + "address", "address = \"owa.customer.example:443\" (or servers = [...])");
      u.address = checked(*t.get("address"), [&] { return parse_host_port(address, at + "address", false); });
    }
    if (t.get("sni") != nullptr) u.sni = string(t, "sni", at + "sni");
    for (const auto& tls_key : {std::pair{"tls_min", &u.min_tls}, std::pair{"tls_max", &u.max_tls}}) {
      const char* key = tls_key.first;  // not a structured binding: clang < 16 cannot capture one (fuzz build)
      std::string* field = tls_key.second;
      if (t.get(key) == nullptr) continue;
      const std::string qualified = at + key;
      *field = string(t, key, qualified);
      checked(*t.get(key), [&] { return parse_tls_version(*field, qualified); });
    }
    if (t.get("ciphers") != nullptr) u.ciphers = string(t, "ciphers", at + "ciphers");
    if (const auto* n = t.get("security_level")) {
      u.security_level = static_cast<int>(toml_whole_number(file_, *n, at + "security_level", 0, 5));
      note(at + "security_level", *n);
    }
    const std::string verify =
        required(t, "verify", at + "verify",
                 "verify = \"ca:/etc/exbridge/exchange2007-ca.pem\" to check the Exchange 2007 certificate, "
                 "\"pin:SHA256\" to pin it, or \"none\" to accept any");
    checked(*t.get("verify"), [&] { parse_upstream_verify(verify, at + "verify", u); });
    if (t.get("persistence") != nullptr) u.persistence = read_persistence(t, at + "persistence");
    if (const auto* n = t.get("max_connections_per_server")) {
      u.max_connections_per_server =
          static_cast<unsigned>(toml_whole_number(file_, *n, at + "max_connections_per_server", 0, 10'000'000));
      note(at + "max_connections_per_server", *n);
    }
    if (const auto* n = t.get("queue_timeout")) u.queue_timeout = toml_duration(file_, *n, at + "queue_timeout");
    if (const auto* n = t.get("retries")) u.retries = static_cast<unsigned>(toml_whole_number(file_, *n, at + "retries", 0, 16));
    if (const auto* c = table(t, "health_check", false, "")) read_health_check(*c, u.check, at + "health_check");
  }

  enum persistence read_persistence(const toml::table& t, const std::string& qualified) {
    const std::string text = string(t, "persistence", qualified);
    if (text == "cookie") return persistence::cookie;
    if (text == "source") return persistence::source;
    if (text == "connection") return persistence::connection;
    toml_fail_at(file_, *t.get("persistence"),
                 "'" + qualified + "' must be \"cookie\" (the default: Outlook Anywhere's channels meet by their virtual "
                 "connection's cookie, other requests by client address), \"source\" (one server per client address) "
                 "or \"connection\" (round robin; each connection keeps its server)");
  }

  void read_health_check(const toml::table& t, health_check_settings& c, const std::string& qualified) {
    toml_reject_unknown_keys(file_, t, {"type", "interval", "timeout", "rise", "fall", "path", "expect_status"},
                             "[" + qualified + "]");
    const std::string at = qualified + ".";
    const std::string type = required(t, "type", at + "type", "type = \"tcp\", \"tls\" or \"http\"");
    if (type == "tcp") c.type = check_type::tcp;
    else if (type == "tls") c.type = check_type::tls;
    else if (type == "http") c.type = check_type::http;
    else if (type == "none") c.type = check_type::none;
    else toml_fail_at(file_, *t.get("type"), "'" + at + "type' must be \"tcp\" (L4), \"tls\" (L6), \"http\" (L7) or \"none\"");
    if (const auto* n = t.get("interval")) c.interval = toml_duration(file_, *n, at + "interval");
    if (const auto* n = t.get("timeout")) c.timeout = toml_duration(file_, *n, at + "timeout");
    if (const auto* n = t.get("rise")) c.rise = static_cast<unsigned>(toml_whole_number(file_, *n, at + "rise", 1, 100));
    if (const auto* n = t.get("fall")) c.fall = static_cast<unsigned>(toml_whole_number(file_, *n, at + "fall", 1, 100));
    if (t.get("path") != nullptr) {
      c.path = string(t, "path", at + "path");
      if (c.path.empty() || c.path[0] != '/') toml_fail_at(file_, *t.get("path"), "'" + at + "path' must start with /");
    }
    if (t.get("expect_status") != nullptr) {
      const std::string text = string(t, "expect_status", at + "expect_status");
      unsigned lo = 0, hi = 0;
      char dash = 0;
      std::istringstream in(text);
      in >> lo;
      if (in >> dash) in >> hi;
      else hi = lo;
      if (!in.eof() || (dash != 0 && dash != '-') || lo < 100 || hi > 599 || lo > hi) {
        toml_fail_at(file_, *t.get("expect_status"), "'" + at + "expect_status' must be a status or a range, e.g. \"200-399\"");
      }
      c.status_min = lo;
      c.status_max = hi;
    }
  }

  /// The [[key]] tables of `root` (none when absent); anything else under `key` is an error.
  std::vector<const toml::table*> table_array(const toml::table& root, const char* key) {
    std::vector<const toml::table*> out;
    const toml::node* n = root.get(key);
    if (n == nullptr) return out;
    if (!n->is_array_of_tables()) toml_fail_at(file_, *n, "'" + std::string(key) + "' must be [[" + key + "]] tables");
    for (const auto& entry : *n->as_array()) out.push_back(entry.as_table());
    return out;
  }

  bool pool_defined(const std::string& name) const {
    return name == "default" || std::any_of(out_.options.pools.begin(), out_.options.pools.end(),
                                            [&](const auto& p) { return p.name == name; });
  }

  void read_pools(const toml::table& root) {
    for (const toml::table* t : table_array(root, "pool")) {
      upstream_settings u;
      u.name = required(*t, "name", "pool.name", "name = \"rpc\" (routes name pools by it)");
      if (pool_defined(u.name)) {
        toml_fail_at(file_, *t->get("name"), "pool name '" + u.name + "' is already used ([upstream] is \"default\")");
      }
      read_pool(*t, u, "pool." + u.name);
      out_.options.pools.push_back(std::move(u));
    }
  }

  void read_routes(const toml::table& root) {
    for (const toml::table* table_of_route : table_array(root, "route")) {
      const toml::table& t = *table_of_route;
      toml_reject_unknown_keys(file_, t, {"prefix", "pool", "persistence", "timeouts"}, "[[route]]");
      route_settings r;
      r.prefix = required(t, "prefix", "route.prefix", "prefix = \"/rpc/\"");
      if (r.prefix.empty() || r.prefix[0] != '/') toml_fail_at(file_, *t.get("prefix"), "'route.prefix' must start with /, e.g. \"/rpc/\"");
      const std::string at = "route." + r.prefix + ".";
      if (t.get("pool") != nullptr) {
        r.pool = string(t, "pool", at + "pool");
        if (!pool_defined(r.pool)) {
          toml_fail_at(file_, *t.get("pool"), "route '" + r.prefix + "' names pool '" + r.pool +
                                                  "', which is not defined; add [[pool]] with name = \"" + r.pool +
                                                  "\" or use \"default\" ([upstream])");
        }
      }
      if (t.get("persistence") != nullptr) r.persistence = read_persistence(t, at + "persistence");
      r.timeouts = out_.options.timeouts;
      if (const auto* to = table(t, "timeouts", false, "")) read_timeouts(*to, r.timeouts, at + "timeouts");
      out_.options.routes.push_back(std::move(r));
    }
  }

  void read_admin(const toml::table& t) {
    toml_reject_unknown_keys(file_, t, {"address", "user", "password", "password_file", "cert", "key"}, "[admin]");
    auto& a = out_.options.admin;
    a.address = host_port{"127.0.0.1", 8404};  // loopback unless the file says otherwise
    if (t.get("address") != nullptr) {
      const std::string address = string(t, "address", "admin.address");
      a.address = checked(*t.get("address"), [&] { return parse_host_port(address, "admin.address"); });
    }
    a.user = required(t, "user", "admin.user", "user = \"admin\"");
    if (t.get("password") != nullptr && t.get("password_file") != nullptr) {
      toml_fail_at(file_, *t.get("password"), "'admin.password' and 'admin.password_file' together; keep one");
    }
    if (t.get("password_file") != nullptr) {
      const std::string path = string(t, "password_file", "admin.password_file");
      std::ifstream in(path);
      if (!in || !std::getline(in, a.password) || a.password.empty()) {
        toml_fail_at(file_, *t.get("password_file"), "cannot read a password from " + path +
                                                           " (first line); write one there, readable by exbridge only");
      }
    } else {
      a.password = required(t, "password", "admin.password", "password_file = \"/etc/exbridge/admin.password\"");
    }
    if (t.get("cert") != nullptr || t.get("key") != nullptr) {
      a.identity.cert_file = required(t, "cert", "admin.cert", "cert = \"/path/to/cert.pem\"");
      a.identity.key_file = required(t, "key", "admin.key", "key = \"/path/to/key.pem\"");
    }
  }

  std::chrono::seconds seconds(const toml::node& n, const std::string& key) {
    note(key, n);
    return std::chrono::duration_cast<std::chrono::seconds>(toml_duration(file_, n, key));
  }

  void read_timeouts(const toml::table& t, struct timeouts& to, const std::string& prefix) {
    std::set<std::string> known{"min_throughput"};
    for (const auto& f : timeout_fields()) known.insert(f.key);
    toml_reject_unknown_keys(file_, t, known, "[" + prefix + "]");
    for (const auto& f : timeout_fields()) {
      if (const auto* n = t.get(f.key)) {
        const std::string qualified = prefix + "." + f.key;
        to.*f.member = toml_duration(file_, *n, qualified);
        note(qualified, *n);
      }
    }
    if (const auto* n = t.get("min_throughput")) {
      to.min_throughput = toml_whole_number(file_, *n, prefix + ".min_throughput", 0);
      note(prefix + ".min_throughput", *n);
    }
  }

  std::string file_;
  loaded_config out_;
};

}  // namespace

loaded_config load_config_file(const std::string& file) { return reader(file).read(); }

}  // namespace exbridge::proxy
