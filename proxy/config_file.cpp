// exbridge --config file reading: toml++ with the strict helpers of common/toml_util, values checked by the
// validators the command line uses, so a value means the same in both places.
#include "proxy/config_file.hpp"

#include <algorithm>

#include "common/errors.hpp"
#include "common/toml_util.hpp"

namespace exbridge::proxy {
namespace {

class reader {
 public:
  explicit reader(std::string file) : file_(std::move(file)) {}

  loaded_config read() {
    const toml::table root = toml_parse_file(file_, "check the --config path (an example: proxy/exbridge.example.toml)");
    toml_reject_unknown_keys(file_, root, {"threads", "listen", "upstream", "timeouts", "log"}, "the configuration");
    auto& o = out_.options;
    if (const auto* n = root.get("threads")) {
      o.threads = static_cast<unsigned>(toml_whole_number(file_, *n, "threads", 0, 256));
      note("threads", *n);
    }
    read_listen(table(root, "listen", true, "[listen] with address = \"0.0.0.0:443\" and a [[listen.certificate]]"));
    read_upstream(table(root, "upstream", true, "[upstream] with address = \"owa.customer.example:443\" and verify"));
    if (const auto* t = table(root, "timeouts", false, "")) read_timeouts(*t);
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
    toml_reject_unknown_keys(file_, *t, {"address", "certificate", "response_headers"}, "[listen]");
    auto& o = out_.options;
    const std::string address = required(*t, "address", "listen.address", "address = \"0.0.0.0:443\"");
    o.listen = checked(*t->get("address"), [&] { return parse_host_port(address, "listen.address"); });
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
      for (const auto& [key, value] : entries) {
        const std::string qualified = "listen.response_headers." + key;
        if (!value->is_string()) toml_fail_at(file_, *value, "'" + qualified + "' must be a string");
        const std::string text = value->as_string()->get();
        checked(*value, [&] { check_response_header(key, text, "listen.response_headers"); });
        o.response_headers.emplace_back(key, text);
      }
    }
  }

  void read_upstream(const toml::table* t) {
    toml_reject_unknown_keys(file_, *t, {"address", "sni", "tls_min", "tls_max", "ciphers", "security_level", "verify"},
                             "[upstream]");
    auto& u = out_.options.upstream;
    const std::string address = required(*t, "address", "upstream.address", "address = \"owa.customer.example:443\"");
    u.address = checked(*t->get("address"), [&] { return parse_host_port(address, "upstream.address", false); });
    if (t->get("sni") != nullptr) u.sni = string(*t, "sni", "upstream.sni");
    for (auto [key, field] : {std::pair{"tls_min", &u.min_tls}, std::pair{"tls_max", &u.max_tls}}) {
      if (t->get(key) == nullptr) continue;
      const std::string qualified = std::string("upstream.") + key;
      *field = string(*t, key, qualified);
      checked(*t->get(key), [&] { return parse_tls_version(*field, qualified); });
    }
    if (t->get("ciphers") != nullptr) u.ciphers = string(*t, "ciphers", "upstream.ciphers");
    if (const auto* n = t->get("security_level")) {
      u.security_level = static_cast<int>(toml_whole_number(file_, *n, "upstream.security_level", 0, 5));
      note("upstream.security_level", *n);
    }
    const std::string verify =
        required(*t, "verify", "upstream.verify",
                 "verify = \"ca:/etc/exbridge/exchange2007-ca.pem\" to check the Exchange 2007 certificate, "
                 "\"pin:SHA256\" to pin it, or \"none\" to accept any");
    checked(*t->get("verify"), [&] { parse_upstream_verify(verify, "upstream.verify", u); });
  }

  void read_timeouts(const toml::table& t) {
    std::set<std::string> known{"min_throughput"};
    for (const auto& f : timeout_fields()) known.insert(f.key);
    toml_reject_unknown_keys(file_, t, known, "[timeouts]");
    auto& to = out_.options.timeouts;
    for (const auto& f : timeout_fields()) {
      if (const auto* n = t.get(f.key)) {
        const std::string qualified = std::string("timeouts.") + f.key;
        to.*f.member = toml_duration(file_, *n, qualified);
        note(qualified, *n);
      }
    }
    if (const auto* n = t.get("min_throughput")) {
      to.min_throughput = toml_whole_number(file_, *n, "timeouts.min_throughput", 0);
      note("timeouts.min_throughput", *n);
    }
  }

  std::string file_;
  loaded_config out_;
};

}  // namespace

loaded_config load_config_file(const std::string& file) { return reader(file).read(); }

}  // namespace exbridge::proxy
