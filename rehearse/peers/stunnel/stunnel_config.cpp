// stunnel.conf parsing, linting and lab rewrite (see stunnel_config.hpp).
#include "rehearse/peers/stunnel/stunnel_config.hpp"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <utility>
#include <sstream>

#include <boost/algorithm/string.hpp>

#include "common/errors.hpp"

namespace exbridge::rehearse {
namespace {

using boost::algorithm::iequals;
using boost::algorithm::to_lower_copy;

/// Without the blanks around it (and a CR, for files written on Windows).
std::string trim(std::string_view s) { return boost::algorithm::trim_copy(std::string(s)); }

bool is_yes(const stunnel_option* o) { return o != nullptr && iequals(o->value, "yes"); }

/// The port of an accept/connect value ("443", "host:443", "[::1]:443").
std::string port_of(const std::string& address) {
  const auto colon = address.rfind(':');
  return colon == std::string::npos ? address : address.substr(colon + 1);
}

/// The host of an accept/connect value, brackets removed; "" when only a port is given.
std::string host_of(const std::string& address) {
  const auto colon = address.rfind(':');
  if (colon == std::string::npos) return "";
  std::string host = address.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  return to_lower_copy(host);
}

bool loopback(const std::string& host) {
  return host.empty() || host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

/// Whether a service connecting to `connect` reaches a service that accepts on `accept` on this machine:
/// how stunnel services chain (an accept without a host, or on 0.0.0.0/::, listens on every address).
bool reaches(const std::string& connect, const std::string& accept) {
  if (port_of(connect) != port_of(accept)) return false;
  const std::string to = host_of(connect), on = host_of(accept);
  if (to == on) return true;
  const bool everywhere = on.empty() || on == "0.0.0.0" || on == "::";
  return loopback(to) && (everywhere || loopback(on));
}

const stunnel_option* find_in(const std::vector<stunnel_option>& options, const std::string& key) {
  for (const auto& o : options) {
    if (iequals(o.key, key)) return &o;
  }
  return nullptr;
}

/// TLS versions in order, as stunnel names them.
int version_rank(const std::string& v) {
  static const std::map<std::string, int> ranks{{"sslv3", 0}, {"tlsv1", 1}, {"tlsv1.1", 2}, {"tlsv1.2", 3}, {"tlsv1.3", 4}};
  const auto it = ranks.find(to_lower_copy(v));
  return it == ranks.end() ? -1 : it->second;
}

class linter {
 public:
  explicit linter(const stunnel_config& cfg) : cfg_(cfg) {}

  std::vector<config_finding> run() {
    std::vector<const stunnel_service*> accepting, connecting;
    for (const auto& s : cfg_.services) (cfg_.is_client(s) ? connecting : accepting).push_back(&s);
    if (accepting.empty()) {
      add(0, "no-downstream-tls", "error",
          "no service accepts TLS (every service has client = yes), so Exchange Online's TLS 1.2 connection has "
          "nowhere to land",
          "add a service with accept = 443, cert and key of the public name, and connect to the client = yes service");
    }
    if (connecting.empty()) {
      add(0, "no-upstream-tls", "error",
          "no service has client = yes, so stunnel sends the decrypted HTTP in plain text to Exchange 2007's HTTPS "
          "port, which answers with a TLS alert",
          "chain two services: the public one connects to 127.0.0.1:PORT, a second one accepts 127.0.0.1:PORT with "
          "client = yes and connects to Exchange 2007 on 443");
    }
    for (const auto* s : accepting) check_accepting(*s, !connecting.empty());
    for (const auto* s : connecting) check_connecting(*s);
    for (const auto& s : cfg_.services) check_idle(s);
    std::stable_sort(findings_.begin(), findings_.end(),
                     [](const config_finding& a, const config_finding& b) { return a.line < b.line; });
    return findings_;
  }

 private:
  void add(int line, std::string code, std::string severity, std::string message, std::string fix) {
    findings_.push_back({line, std::move(code), std::move(severity), std::move(message), std::move(fix)});
  }

  std::string name(const stunnel_service& s) const { return "[" + s.name + "]"; }

  /// Whether the service's TLS may go down to `rank` (1 = TLS 1.0), by its version options.
  bool allows(const stunnel_service& s, int rank) const {
    if (const auto* v = cfg_.effective(s, "sslVersion"); v != nullptr && !iequals(v->value, "all")) {
      return version_rank(v->value) == rank;
    }
    if (const auto* min = cfg_.effective(s, "sslVersionMin"); min != nullptr && !iequals(min->value, "all")) {
      if (version_rank(min->value) > rank) return false;
    }
    if (const auto* max = cfg_.effective(s, "sslVersionMax"); max != nullptr && !iequals(max->value, "all")) {
      if (version_rank(max->value) < rank) return false;
    }
    return true;
  }

  /// OpenSSL 3 allows TLS 1.0 and 1.1 only at security level 0 (securityLevel or @SECLEVEL=0 in ciphers).
  bool security_level_zero(const stunnel_service& s) const {
    if (const auto* level = cfg_.effective(s, "securityLevel"); level != nullptr && level->value == "0") return true;
    const auto* ciphers = cfg_.effective(s, "ciphers");
    return ciphers != nullptr && ciphers->value.find("@SECLEVEL=0") != std::string::npos;
  }

  int line_of(const stunnel_service& s, const std::string& key) const {
    const auto* o = cfg_.effective(s, key);
    return o != nullptr ? o->line : s.line;
  }

  void check_accepting(const stunnel_service& s, bool has_client_service) {
    if (cfg_.effective(s, "cert") == nullptr) {
      add(s.line, "no-certificate", "error",
          name(s) + " accepts TLS without a certificate (stunnel refuses to start)",
          "add cert = /etc/letsencrypt/live/NAME/fullchain.pem and key = .../privkey.pem to " + name(s));
    }
    // Exchange Online speaks TLS 1.2 and 1.3 only; anything older on the public listener is an audit finding.
    if (security_level_zero(s) && allows(s, 1)) {
      add(line_of(s, cfg_.effective(s, "securityLevel") != nullptr ? "securityLevel" : "ciphers"),
          "downstream-accepts-tls10", "warning",
          name(s) + " faces the internet at security level 0 and accepts TLS 1.0 (a global securityLevel or "
                    "@SECLEVEL=0 applies to every service); Exchange Online needs only TLS 1.2",
          "set securityLevel = 0 only in the client = yes service, or add sslVersionMin = TLSv1.2 to " + name(s));
    }
    if (!has_client_service) return;
    const auto* connect = cfg_.effective(s, "connect");
    bool chained = false;
    for (const auto& other : cfg_.services) {
      const auto* accept = find_in(other.options, "accept");
      if (cfg_.is_client(other) && accept != nullptr && connect != nullptr && reaches(connect->value, accept->value)) {
        chained = true;
      }
    }
    if (!chained) {
      add(connect != nullptr ? connect->line : s.line, "chain-broken", "error",
          name(s) + " connects to " + (connect != nullptr ? connect->value : std::string("nothing")) +
              ", which no client = yes service accepts, so its traffic reaches Exchange 2007 unencrypted or not at all",
          "point " + name(s) + "'s connect at the accept address of the client = yes service");
    }
  }

  void check_connecting(const stunnel_service& s) {
    if (!allows(s, 1)) {
      const auto* v = cfg_.effective(s, "sslVersion");
      const auto* min = cfg_.effective(s, "sslVersionMin");
      const auto* culprit = v != nullptr ? v : min;
      add(culprit != nullptr ? culprit->line : s.line, "upstream-tls-above-1.0", "error",
          name(s) + " does not offer TLS 1.0 (" + (culprit != nullptr ? culprit->key + " = " + culprit->value : "") +
              "), the only version Exchange 2007 speaks, so every upstream handshake fails",
          "set sslVersionMin = TLSv1 and sslVersionMax = TLSv1 in " + name(s));
    } else if (!security_level_zero(s)) {
      add(s.line, "tls10-needs-seclevel0", "error",
          name(s) + " connects to Exchange 2007 (TLS 1.0 only) at OpenSSL 3's default security level 1, which "
                    "refuses the MD5+SHA-1 signature of a TLS 1.0 ECDHE key exchange: every handshake fails with an "
                    "Exchange server that prefers ECDHE suites (as hardened Windows servers do)",
          "add securityLevel = 0 to " + name(s) + " (only there: the public service keeps level 1)");
    }
    const auto* chain = cfg_.effective(s, "verifyChain");
    const auto* peer = cfg_.effective(s, "verifyPeer");
    const auto* verify = cfg_.effective(s, "verify");
    const bool verifies = is_yes(chain) || is_yes(peer) || (verify != nullptr && std::atoi(verify->value.c_str()) >= 2);
    if (!verifies) {
      add(s.line, "verify-none", "warning",
          name(s) + " does not verify Exchange 2007's certificate, so anything on the path can read every mailbox",
          "add verifyChain = yes, CAfile = <the CA of Exchange's certificate> and checkHost = <its name> to " + name(s));
    } else if (cfg_.effective(s, "checkHost") == nullptr) {
      add(s.line, "no-check-host", "warning",
          name(s) + " verifies the chain but not the name, so any certificate of that CA is accepted",
          "add checkHost = <the name on Exchange 2007's certificate> to " + name(s));
    }
  }

  void check_idle(const stunnel_service& s) {
    const auto* idle = cfg_.effective(s, "TIMEOUTidle");
    if (idle == nullptr) return;  // stunnel's default is 43200 s
    const long seconds = std::atol(idle->value.c_str());
    // Outlook Anywhere's channels sit idle between keep-alive pings: 720 s client to server, 900 s back.
    if (seconds < 720) {
      add(idle->line, "timeout-below-ping", "error",
          "TIMEOUTidle = " + idle->value + " s in " + name(s) +
              " is shorter than Outlook Anywhere's 720 s keep-alive ping, so idle RPC over HTTP channels are cut",
          "set TIMEOUTidle = 3600 (at least 1200)");
    } else if (seconds <= 990) {
      add(idle->line, "timeout-at-ping-edge", "warning",
          "TIMEOUTidle = " + idle->value + " s in " + name(s) +
              " is at Outlook Anywhere's 720/900 s keep-alive pings, so an idle channel races the timeout",
          "set TIMEOUTidle = 3600 (at least 1200)");
    }
  }

  const stunnel_config& cfg_;
  std::vector<config_finding> findings_;
};

}  // namespace

const stunnel_option* stunnel_config::effective(const stunnel_service& service, const std::string& key) const {
  if (const auto* own = find_in(service.options, key)) return own;
  return find_in(global, key);
}

bool stunnel_config::is_client(const stunnel_service& service) const { return is_yes(effective(service, "client")); }

stunnel_config parse_stunnel_config(const std::string& text, const std::string& file) {
  stunnel_config cfg;
  cfg.file = file;
  std::istringstream in(text);
  int number = 0;
  for (std::string raw; std::getline(in, raw);) {
    ++number;
    const std::string line = trim(raw);
    if (line.empty() || line.front() == ';' || line.front() == '#') continue;
    const std::string where = file + ":" + std::to_string(number);
    if (line.front() == '[') {
      if (line.back() != ']' || line.size() < 3) throw config_error(where + ": a service header is written [name]");
      cfg.services.push_back({trim(std::string_view(line).substr(1, line.size() - 2)), number, {}});
      continue;
    }
    const auto eq = line.find('=');
    if (eq == std::string::npos) throw config_error(where + ": '" + line + "' is not 'option = value'");
    stunnel_option o{number, trim(std::string_view(line).substr(0, eq)), trim(std::string_view(line).substr(eq + 1))};
    if (iequals(o.key, "include")) {
      throw config_error(where + ": 'include' is not supported by rehearse; paste the included file's options here");
    }
    (cfg.services.empty() ? cfg.global : cfg.services.back().options).push_back(std::move(o));
  }
  return cfg;
}

stunnel_config load_stunnel_config(const std::filesystem::path& file) {
  std::error_code ec;
  std::ifstream in(file, std::ios::binary);
  std::ostringstream text;
  if (in && !std::filesystem::is_directory(file, ec)) {
    text << in.rdbuf();
    if (!in.bad()) return parse_stunnel_config(text.str(), file.string());
  }
  throw config_error(file.string() + ": cannot read this stunnel configuration (does it exist and is it readable?)");
}

std::vector<config_finding> lint_stunnel_config(const stunnel_config& cfg) { return linter(cfg).run(); }

stunnel_rewrite rewrite_stunnel_for_lab(const stunnel_config& cfg, const stunnel_lab& lab) {
  stunnel_rewrite out;
  std::ostringstream text;
  text << "; " << cfg.file << " rewritten by rehearse for the lab\n"
       << "foreground = yes\npid =\n";
  const auto change = [&](const stunnel_option& o, const std::string& to) {
    out.changes.push_back("line " + std::to_string(o.line) + ": " + o.key + " = " + o.value +
                          (to.empty() ? " dropped" : " -> " + to));
  };
  const auto scaled = [&](const std::string& value) {
    const double seconds = std::atof(value.c_str());
    return std::to_string(std::max<long>(1, std::lround(seconds / std::max(lab.time_scale, 1e-9))));
  };
  // Internal hops: every address a service accepts on that another service connects to gets a fresh lab port.
  std::vector<std::pair<std::string, std::string>> hops;  // original accept value -> lab address
  for (const auto& s : cfg.services) {
    const auto* accept = find_in(s.options, "accept");
    if (accept == nullptr) continue;
    bool reached = false;
    for (const auto& other : cfg.services) {
      for (const auto& o : other.options) reached = reached || (&other != &s && iequals(o.key, "connect") && reaches(o.value, accept->value));
    }
    if (reached) hops.emplace_back(accept->value, lab.internal_address());
  }
  const auto hop_for_accept = [&](const std::string& value) -> const std::string* {
    for (const auto& [from, to] : hops) {
      if (from == value) return &to;
    }
    return nullptr;
  };
  const auto hop_for_connect = [&](const std::string& value) -> const std::string* {
    for (const auto& [from, to] : hops) {
      if (reaches(value, from)) return &to;
    }
    return nullptr;
  };
  std::size_t upstream_index = 0;
  const auto next_upstream = [&] {
    const auto& list = lab.upstream_addresses;
    return list.empty() ? std::string("127.0.0.1:1") : list[std::min(upstream_index++, list.size() - 1)];
  };
  bool public_taken = false;
  // Returns the option's lab value ("" = drop it).
  const auto rewrite = [&](const stunnel_option& o, const stunnel_service* service) -> std::string {
    const std::string k = to_lower_copy(o.key);
    const bool client = service != nullptr ? cfg.is_client(*service) : false;
    if (service == nullptr && (k == "foreground" || k == "pid" || k == "output" || k == "setuid" || k == "setgid" ||
                               k == "chroot" || k == "syslog")) {
      return "";
    }
    if (k.rfind("timeout", 0) == 0) return scaled(o.value);
    if (k == "cafile") return lab.ca_file;
    if (k == "capath") return "";
    if ((k == "checkhost" || (k == "sni" && client)) && !lab.upstream_name.empty()) return lab.upstream_name;
    if ((k == "cert" || k == "key") && service != nullptr && client) return "";  // a client certificate: Exchange asks for none
    if (k == "cert") return lab.cert;
    if (k == "key") return lab.key;
    if (service == nullptr) return o.value;
    if (k == "accept") {
      if (const auto* to = hop_for_accept(o.value)) return *to;
      if (!client && !public_taken) {
        public_taken = true;
        return lab.accept_address;
      }
      return lab.internal_address();
    }
    if (k == "connect") {
      if (const auto* to = hop_for_connect(o.value)) return *to;
      return next_upstream();
    }
    return o.value;
  };
  const auto emit = [&](const stunnel_option& o, const stunnel_service* service) {
    const std::string to = rewrite(o, service);
    if (to != o.value) change(o, to);
    if (!to.empty()) text << o.key << " = " << to << '\n';
  };
  for (const auto& o : cfg.global) emit(o, nullptr);
  for (const auto& s : cfg.services) {
    text << "\n[" << s.name << "]\n";
    for (const auto& o : s.options) emit(o, &s);
  }
  out.text = text.str();
  return out;
}

}  // namespace exbridge::rehearse
