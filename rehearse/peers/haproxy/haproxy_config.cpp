// HAProxy config parsing (HAProxy 2.6's word splitting and quoting), the Exchange 2007 -> Exchange Online
// linter, and the rewrite that makes a user's config runnable in rehearse's lab.
#include "rehearse/peers/haproxy/haproxy_config.hpp"

#include <sys/resource.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <fstream>
#include <limits>
#include <map>
#include <set>
#include <sstream>
#include <string_view>

#include "common/errors.hpp"

namespace exbridge::rehearse {
namespace {

using namespace std::chrono;

// ---------------------------------------------------------------------------------------------------------
// Word splitting, as HAProxy's parse_line() does it: words are separated by blanks; "..." and '...' quote
// (adjacent quoted and plain parts join into one word); a backslash escapes the next character outside
// single quotes; '#' outside quotes starts a comment. Environment variables in "..." are not expanded.

struct token {
  std::string value;
  std::size_t begin = 0;  ///< offsets in the raw line, so that the rewrite can replace one word in place
  std::size_t end = 0;
};

bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\r'; }

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/// Appends the character escaped at line[i] (just after the backslash) and returns the index after it.
std::size_t unescape(const std::string& line, std::size_t i, std::string& out) {
  if (i >= line.size()) {
    out += '\\';
    return i;
  }
  switch (line[i]) {
    case 'n': out += '\n'; return i + 1;
    case 'r': out += '\r'; return i + 1;
    case 't': out += '\t'; return i + 1;
    case 'x':
      if (i + 2 < line.size() && hex_digit(line[i + 1]) >= 0 && hex_digit(line[i + 2]) >= 0) {
        out += static_cast<char>(hex_digit(line[i + 1]) * 16 + hex_digit(line[i + 2]));
        return i + 3;
      }
      out += 'x';
      return i + 1;
    default: out += line[i]; return i + 1;
  }
}

/// Splits one line; `where` ("FILE:LINE") prefixes the error for an unmatched quote.
std::vector<token> tokenize(const std::string& line, const std::string& where) {
  std::vector<token> words;
  std::size_t i = 0;
  for (;;) {
    while (i < line.size() && is_blank(line[i])) ++i;
    if (i >= line.size() || line[i] == '#') break;
    token t;
    t.begin = i;
    char quote = 0;
    while (i < line.size()) {
      const char c = line[i];
      if (quote == '\'') {
        if (c == '\'') quote = 0;
        else t.value += c;
        ++i;
      } else if (quote == '"') {
        if (c == '"') {
          quote = 0;
          ++i;
        } else if (c == '\\') {
          i = unescape(line, i + 1, t.value);
        } else {
          t.value += c;
          ++i;
        }
      } else if (is_blank(c) || c == '#') {
        break;
      } else if (c == '\\') {
        i = unescape(line, i + 1, t.value);
      } else if (c == '"' || c == '\'') {
        quote = c;
        ++i;
      } else {
        t.value += c;
        ++i;
      }
    }
    if (quote != 0) {
      throw config_error(where + ": unmatched " + (quote == '"' ? "double" : "single") +
                         " quote; HAProxy refuses the line (close the quote or escape it with a backslash)");
    }
    t.end = i;
    words.push_back(std::move(t));
  }
  return words;
}

bool is_section_keyword(const std::string& word) {
  static const std::set<std::string> kinds{"global", "defaults", "frontend", "backend", "listen",
                                           "userlist", "peers", "resolvers", "program", "cache",
                                           "mailers", "http-errors", "ring"};
  return kinds.count(word) > 0;
}

// ---------------------------------------------------------------------------------------------------------
// Small queries on words.

bool has_word(const std::vector<std::string>& args, std::string_view word) {
  return std::find(args.begin(), args.end(), word) != args.end();
}

/// The word after `key` ("ciphers X" -> X), or null.
const std::string* value_after(const std::vector<std::string>& args, std::string_view key) {
  for (std::size_t i = 0; i + 1 < args.size(); ++i) {
    if (args[i] == key) return &args[i + 1];
  }
  return nullptr;
}

std::string leading_blanks(const std::string& line) { return line.substr(0, line.find_first_not_of(" \t")); }

std::string trimmed(const std::string& text) {
  const auto first = text.find_first_not_of(" \t");
  return first == std::string::npos ? "" : text.substr(first);
}

bool is_proxy(const haproxy_section& s) { return s.kind == "frontend" || s.kind == "backend" || s.kind == "listen"; }
bool has_frontend_side(const haproxy_section& s) { return s.kind == "frontend" || s.kind == "listen"; }
bool has_backend_side(const haproxy_section& s) { return s.kind == "backend" || s.kind == "listen"; }

bool section_has(const haproxy_section& s, std::string_view keyword) {
  return std::any_of(s.lines.begin(), s.lines.end(), [&](const haproxy_line& l) { return l.keyword == keyword; });
}

/// Whether a proxy carries the Exchange traffic, i.e. is not just a statistics page.
bool carries_exchange(const haproxy_section& s) {
  if (!is_proxy(s)) return false;
  const bool routes = section_has(s, "server") || section_has(s, "default_backend") || section_has(s, "use_backend");
  return routes || !section_has(s, "stats");
}

/// The port of "host:port" ("*:443", "[::]:443", ":443"); empty if there is none.
std::string port_of(const std::string& address) {
  const auto colon = address.rfind(':');
  if (colon == std::string::npos || address.back() == ']') return "";
  return address.substr(colon + 1);
}

bool listens_on_443(const haproxy_line& bind) {
  if (bind.args.empty()) return false;
  std::istringstream list(bind.args[0]);
  for (std::string one; std::getline(list, one, ',');) {
    if (port_of(one) == "443") return true;
  }
  return false;
}

/// The TLS setting on a line that allows TLS 1.0/1.1 ("force-tlsv10", "ssl-min-ver TLSv1.0"), or "".
std::string old_tls_option(const std::vector<std::string>& args) {
  for (const char* force : {"force-tlsv10", "force-tlsv11", "force-sslv3"}) {
    if (has_word(args, force)) return force;
  }
  if (const std::string* min = value_after(args, "ssl-min-ver")) {
    if (*min == "TLSv1.0" || *min == "TLSv1.1" || *min == "SSLv3") return "ssl-min-ver " + *min;
  }
  return "";
}

bool is_facility(const std::string& word) {
  static const std::set<std::string> facilities{"kern",  "user",   "mail",   "daemon", "auth",   "syslog", "lpr",
                                                "news",  "uucp",   "cron",   "auth2",  "ftp",    "ntp",    "audit",
                                                "alert", "cron2",  "local0", "local1", "local2", "local3", "local4",
                                                "local5", "local6", "local7"};
  return facilities.count(word) > 0;
}

/// `log <address> [len N] [format F] [sample R:S] <facility> [level [minlevel]]`, or `log global`.
bool valid_log_line(const haproxy_line& l) {
  if (l.args.size() == 1 && l.args[0] == "global") return true;
  if (l.args.size() < 2) return false;
  std::size_t i = 1;
  while (i + 1 < l.args.size() && (l.args[i] == "len" || l.args[i] == "format" || l.args[i] == "sample")) i += 2;
  return i < l.args.size() && is_facility(l.args[i]);
}

std::string seconds_text(microseconds t) { return std::to_string(duration_cast<seconds>(t).count()) + " s"; }

// ---------------------------------------------------------------------------------------------------------
// The linter.

class linter {
 public:
  linter(const haproxy_config& cfg, std::uint64_t fd_limit) : cfg_(cfg), fd_limit_(fd_limit) {
    for (const auto& s : cfg.sections) {
      if (s.kind != "global") continue;
      for (const auto& l : s.lines) global_.push_back(&l);
    }
  }

  std::vector<haproxy_finding> run() {
    check_global();
    const haproxy_section* defaults = nullptr;
    for (const auto& s : cfg_.sections) {
      if (s.kind == "defaults") {
        check_proxy_lines(s);
        defaults = &s;
        continue;
      }
      if (!is_proxy(s)) continue;
      const haproxy_section* inherited = defaults;
      if (s.header.args.size() >= 3 && s.header.args[1] == "from") inherited = named_defaults(s.header.args[2]);
      if (inherited != nullptr) users_[inherited].push_back(&s);
      check_proxy_lines(s);
      check_binds(s);
      check_servers(s, inherited);
      check_missing_timeouts(s, inherited);
    }
    for (const auto& s : cfg_.sections) {
      if (s.kind == "defaults") check_connection_close(s);
    }
    std::stable_sort(found_.begin(), found_.end(),
                     [](const haproxy_finding& a, const haproxy_finding& b) { return a.line < b.line; });
    return std::move(found_);
  }

 private:
  void add(int line, std::string code, std::string severity, std::string message, std::string fix) {
    if (!reported_.insert({line, code}).second) return;  // one default-server line may serve many servers
    found_.push_back({line, std::move(code), std::move(severity), std::move(message), std::move(fix)});
  }

  const haproxy_line* global_line(std::string_view keyword) const {
    const haproxy_line* last = nullptr;
    for (const auto* l : global_) {
      if (l->keyword == keyword) last = l;
    }
    return last;
  }

  const haproxy_section* named_defaults(const std::string& name) const {
    for (const auto& s : cfg_.sections) {
      if (s.kind == "defaults" && s.name == name) return &s;
    }
    return nullptr;
  }

  void check_log(const haproxy_line& l) {
    if (l.keyword != "log" || valid_log_line(l)) return;
    add(l.number, "log-invalid", "error",
        "'" + trimmed(l.text) +
            "' has no syslog address and facility: HAProxy 2.6 refuses to start (\"log : expects <address> and "
            "<facility> as arguments\"), so the proxy never comes up for the migration",
        "write 'log 127.0.0.1:514 local0' (a syslog listener) or 'log stdout format raw local0'");
  }

  void check_global() {
    for (const auto* l : global_) check_log(*l);
    const haproxy_line* maxconn = global_line("maxconn");
    if (maxconn == nullptr || maxconn->args.empty()) return;
    std::uint64_t n = 0;
    try {
      n = std::stoull(maxconn->args[0]);
    } catch (const std::exception&) {
      return;  // HAProxy itself names a non-number
    }
    std::uint64_t limit = fd_limit_;
    if (limit == 0) {
      rlimit rl{};
      if (::getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_max == RLIM_INFINITY) return;
      limit = rl.rlim_max;
    }
    // Two descriptors per proxied connection (client side and server side) plus listeners, health checks,
    // log and resolver sockets.
    constexpr std::uint64_t margin = 100;
    if (2 * n + margin <= limit) return;
    const std::uint64_t fits = limit > margin ? (limit - margin) / 2 : 0;
    add(maxconn->number, "maxconn-above-fd-limit", "warning",
        "global maxconn " + std::to_string(n) + " needs about " + std::to_string(2 * n + margin) +
            " file descriptors (two per proxied connection) but the limit here is " + std::to_string(limit) +
            ": HAProxy cannot raise its limit that far, and when a migration batch opens many connections, "
            "accepts fail with 'Too many open files' instead of queueing",
        "lower it to 'maxconn " + std::to_string(std::min<std::uint64_t>(fits, 4000)) +
            "' (at most " + std::to_string(fits) + " for this limit), or raise LimitNOFILE for haproxy.service");
  }

  /// Checks of lines that may appear in defaults as well as in a proxy.
  void check_proxy_lines(const haproxy_section& s) {
    const bool exchange = s.kind == "defaults" || carries_exchange(s);
    for (const auto& l : s.lines) {
      check_log(l);
      if (!exchange) continue;
      if (s.kind != "defaults" && closes_connections(l)) add_connection_close(l);
      if (l.keyword == "http-reuse" && !l.args.empty() && (l.args[0] == "always" || l.args[0] == "aggressive")) {
        add(l.number, "http-reuse-shares-ntlm", "error",
            "'http-reuse " + l.args[0] +
                "' may send another user's request over a server connection before HAProxy has seen its NTLM "
                "401 and made it private, so one mailbox user can act with another's Exchange 2007 logon",
            "replace it with 'http-reuse safe' (or 'http-reuse never')");
      }
      if (l.keyword == "option" && !l.args.empty() && l.args[0] == "http-buffer-request") {
        add(l.number, "http-buffer-request-stalls-rpc", "error",
            "'option http-buffer-request' makes HAProxy wait for the request body, but Outlook Anywhere's "
            "RPC_IN_DATA declares a 1 GiB body and streams it for hours, so it is never forwarded",
            "remove 'option http-buffer-request'");
      }
      if (l.keyword == "timeout") check_timeout(l);
    }
  }

  static bool closes_connections(const haproxy_line& l) {
    return l.keyword == "option" && !l.args.empty() && (l.args[0] == "http-server-close" || l.args[0] == "httpclose");
  }

  void add_connection_close(const haproxy_line& l) {
    add(l.number, "http-server-close-breaks-ntlm", "error",
        "'option " + l.args[0] +
            "' closes the server connection after each response, but NTLM authenticates the TCP connection: "
            "Exchange 2007's challenge is lost with it and every NTLM logon loops on 401",
        "remove 'option " + l.args[0] +
            "' (HAProxy's default keep-alive keeps one server connection per client connection after an NTLM "
            "401) and keep 'http-reuse safe'");
  }

  /// The option in defaults matters unless every Exchange proxy using those defaults says 'no option ...'
  /// (HAProxy closes if either the frontend or the backend asks for it, so both must negate it).
  void check_connection_close(const haproxy_section& defaults) {
    const auto it = users_.find(&defaults);
    for (const auto& l : defaults.lines) {
      if (!closes_connections(l)) continue;
      bool exposed = it == users_.end();
      for (const auto* proxy : it != users_.end() ? it->second : std::vector<const haproxy_section*>{}) {
        const bool negated = std::any_of(proxy->lines.begin(), proxy->lines.end(), [&](const haproxy_line& n) {
          return n.keyword == "no" && n.args.size() >= 2 && n.args[0] == "option" && n.args[1] == l.args[0];
        });
        if (carries_exchange(*proxy) && !negated) exposed = true;
      }
      if (exposed) add_connection_close(l);
    }
  }

  void check_timeout(const haproxy_line& l) {
    if (l.args.size() < 2) return;
    const std::string& name = l.args[0];
    microseconds value{};
    try {
      value = parse_haproxy_time(l.args[1]);
    } catch (const config_error& e) {
      add(l.number, "timeout-invalid", "error", "'timeout " + name + " " + l.args[1] + "': " + e.what(),
          "write the value as a number with a unit, e.g. '1h'");
      return;
    }
    if (value == microseconds::zero()) return;  // 0 = no timeout
    const bool inactivity = name == "client" || name == "server" || name == "tunnel";
    if (!inactivity && name != "http-keep-alive") return;
    // Outlook Anywhere keeps its RPC_IN_DATA/RPC_OUT_DATA channels open and idle; the client pings after 720 s
    // of silence and Exchange after 900 s, so an inactivity timeout must be well clear of both.
    const auto shown = "'timeout " + name + " " + l.args[1] + "' (" + seconds_text(value) + ")";
    if (inactivity && value < seconds(720)) {
      add(l.number, "timeout-below-ping", "error",
          shown + " is shorter than Outlook Anywhere's 720 s keep-alive ping, so idle RPC over HTTP channels "
                  "are cut and Outlook reconnects over and over during and after the migration",
          "set 'timeout " + name + " 1h' for /rpc/ traffic (or 'timeout tunnel 1h'); at least 20m");
      return;
    }
    for (const int edge : {720, 900}) {
      if (value >= milliseconds(edge * 900) && value <= milliseconds(edge * 1100)) {
        add(l.number, "timeout-at-ping-edge", "warning",
            shown + " is within 10 % of Outlook Anywhere's " + std::to_string(edge) +
                " s keep-alive ping (720 s client to server, 900 s server to client), so an idle channel races "
                "the timeout and is cut at random",
            "set 'timeout " + name + (name == "http-keep-alive" ? " 20m'" : " 1h' (at least 20m)"));
        return;
      }
    }
  }

  void check_binds(const haproxy_section& s) {
    if (!has_frontend_side(s)) return;
    bool any_bind = false;
    for (const auto& l : s.lines) {
      if (l.keyword != "bind") continue;
      any_bind = true;
      const bool ssl = has_word(l.args, "ssl");
      const bool crt = has_word(l.args, "crt") || has_word(l.args, "crt-list");
      if (listens_on_443(l) && !(ssl && crt)) {
        add(l.number, "no-bind-ssl", "error",
            "'bind " + l.args[0] +
                "' listens on 443 without 'ssl crt': Exchange Online's migration service only talks TLS 1.2+ "
                "to the proxy and fails at the handshake",
            "add 'ssl crt /etc/haproxy/owa.pem' (the public certificate and key of the OWA name) to the bind line");
      }
      if (const std::string old = old_tls_option(l.args); ssl && !old.empty()) {
        add(l.number, "bind-allows-old-tls", "warning",
            "'" + old + "' on the bind line lets clients use TLS below 1.2 towards the proxy; Exchange Online "
                        "does not need it and only the Exchange 2007 side must speak TLS 1.0",
            "remove '" + old + "' from the bind line (HAProxy 2.6 defaults to TLS 1.2+ there)");
      }
    }
    if (!any_bind && s.kind == "listen") {
      add(s.number, "listen-without-bind", "warning",
          "'listen " + s.name + "' has no 'bind' line, so nothing ever reaches it (its statistics page is "
                                "unreachable while you watch the migration)",
          "add 'bind 127.0.0.1:8404' to it (or make it a backend)");
    }
  }

  /// Server settings are the global ssl-default-server-options, then default-server lines (defaults, then the
  /// section, before the server), then the server line; a later word overrides an earlier one.
  void check_servers(const haproxy_section& s, const haproxy_section* defaults) {
    if (!has_backend_side(s)) return;
    std::vector<const haproxy_line*> inherited;
    if (const auto* opts = global_line("ssl-default-server-options")) inherited.push_back(opts);
    if (defaults != nullptr) {
      for (const auto& l : defaults->lines) {
        if (l.keyword == "default-server") inherited.push_back(&l);
      }
    }
    for (const auto& l : s.lines) {
      if (l.keyword == "default-server") inherited.push_back(&l);
      if (l.keyword != "server") continue;
      std::vector<const haproxy_line*> sources = inherited;
      sources.push_back(&l);
      check_server(l, sources);
    }
  }

  void check_server(const haproxy_line& server, const std::vector<const haproxy_line*>& sources) {
    bool ssl = false;
    const haproxy_line* old_tls_at = nullptr;
    std::string old_tls;
    std::string ciphers;
    const haproxy_line* verify_at = nullptr;
    std::string verify;
    bool ca_file = false;
    for (const auto* src : sources) {
      for (const auto& word : src->args) {
        if (word == "ssl") ssl = true;
        if (word == "no-ssl") ssl = false;
      }
      if (const std::string old = old_tls_option(src->args); !old.empty()) {
        old_tls = old;
        old_tls_at = src;
      }
      if (const std::string* c = value_after(src->args, "ciphers")) ciphers = *c;
      if (const std::string* v = value_after(src->args, "verify")) {
        verify = *v;
        verify_at = src;
      }
      if (value_after(src->args, "ca-file") != nullptr) ca_file = true;
    }
    if (ciphers.empty()) {
      if (const auto* g = global_line("ssl-default-server-ciphers"); g != nullptr && !g->args.empty()) ciphers = g->args[0];
    }
    const std::string address = server.args.size() >= 2 ? server.args[1] : "";
    if (!ssl) {
      if (old_tls_at != nullptr && port_of(address) == "443") {
        add(server.number, "server-without-ssl", "warning",
            "server " + address + " has '" + old_tls +
                "' but no 'ssl', so HAProxy ignores the TLS settings and sends plain HTTP to Exchange 2007's "
                "HTTPS port; IIS drops it and every request fails",
            "add 'ssl' to the server line");
      }
      return;
    }
    if (old_tls_at != nullptr && ciphers.find("@SECLEVEL=0") == std::string::npos) {
      add(old_tls_at->number, "tls10-needs-seclevel0", "error",
          "'" + old_tls +
              "' towards Exchange 2007 cannot work with OpenSSL 3 (Debian 12) at its default security level, which "
              "refuses TLS 1.0/1.1 signatures: the health check and every request fail and Exchange Online gets 503",
          "add 'ciphers DEFAULT:@SECLEVEL=0' to that " + old_tls_at->keyword + " line");
    }
    if (verify.empty()) {
      const auto* g = global_line("ssl-server-verify");
      verify = g != nullptr && !g->args.empty() ? g->args[0] : "required";  // HAProxy's default is required
      verify_at = &server;
    }
    if (verify == "none") {
      add(verify_at->number, "verify-none", "warning",
          "server " + address +
              " is used with 'ssl verify none': anyone on the path to Exchange 2007 can impersonate it and read "
              "every mailbox password the migration sends",
          "use 'verify required ca-file /etc/haproxy/exchange2007-ca.pem' (the old server's self-signed "
          "certificate)");
    } else if (!ca_file) {
      add(server.number, "verify-without-ca", "error",
          "server " + address +
              " verifies Exchange 2007's certificate (verify required is HAProxy's default) but has no 'ca-file': "
              "HAProxy 2.6 refuses to start",
          "add 'ca-file /etc/haproxy/exchange2007-ca.pem' (the old server's self-signed certificate) to the "
          "server line");
    }
  }

  void check_missing_timeouts(const haproxy_section& s, const haproxy_section* defaults) {
    const auto has_timeout = [&](const char* name) {
      for (const auto* sec : {defaults, &s}) {
        if (sec == nullptr) continue;
        for (const auto& l : sec->lines) {
          if (l.keyword != "timeout" || l.args.size() < 2 || l.args[0] != name) continue;
          try {
            if (parse_haproxy_time(l.args[1]) > microseconds::zero()) return true;
          } catch (const config_error&) {
            return true;  // reported as timeout-invalid
          }
        }
      }
      return false;
    };
    const auto require = [&](const char* name) {
      if (has_timeout(name)) return;
      add(s.number, std::string("no-timeout-") + name, "warning",
          s.kind + " '" + s.name + "' has no 'timeout " + name +
              "': HAProxy warns and waits forever, so dead connections to Exchange 2007 pile up until maxconn",
          std::string("add 'timeout ") + name + (std::string(name) == "connect" ? " 10s'" : " 1h'") +
              " to the defaults section");
    };
    if (has_frontend_side(s)) require("client");
    if (has_backend_side(s) && section_has(s, "server")) {
      require("connect");
      if (!has_timeout("tunnel")) require("server");
    }
  }

  const haproxy_config& cfg_;
  std::uint64_t fd_limit_;
  std::vector<const haproxy_line*> global_;
  std::vector<haproxy_finding> found_;
  std::set<std::pair<int, std::string>> reported_;
  std::map<const haproxy_section*, std::vector<const haproxy_section*>> users_;  ///< defaults -> its proxies
};

// ---------------------------------------------------------------------------------------------------------
// The lab rewrite: edits words in place, so that comments, indentation and line numbers stay the user's.

/// A word as HAProxy reads it back.
std::string quote_word(const std::string& word) {
  if (!word.empty() && word.find_first_of(" \t#\"'\\") == std::string::npos) return word;
  std::string out = "'";
  for (const char c : word) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

class rewriter {
 public:
  rewriter(const haproxy_config& cfg, const haproxy_lab& lab) : cfg_(cfg), lab_(lab), out_(cfg.original_lines) {}

  haproxy_rewrite run() {
    bool global_log = false;
    for (const auto& s : cfg_.sections) {
      for (const auto& l : s.lines) {
        if (!from_text(l)) continue;
        if (s.kind == "global") global_log = rewrite_global(l, global_log);
        if (s.kind == "global" && l.keyword == "maxconn") fit_maxconn(l);
        if (l.keyword == "option" && l.args.size() == 1 && l.args[0] == "httplog" && lab_.tls_error_log) {
          std::string& line = out_[static_cast<std::size_t>(l.number - 1)];
          line = leading_blanks(line) + httplog_with_tls_error;
          changes_.emplace_back(l.number, "option httplog -> the same log line plus bc_err_str and ssl_bc_err (HAProxy "
                                          "logs why an upstream TLS handshake failed only there)");
        }
        if (l.keyword == "timeout" && l.args.size() >= 2) scale(l, 2, "timeout " + l.args[0]);
        if ((l.keyword == "server" && has_backend_side(s)) ||
            (l.keyword == "default-server" && (has_backend_side(s) || s.kind == "defaults"))) {
          rewrite_server(l);
        }
      }
      if (has_frontend_side(s)) rewrite_binds(s);
    }
    apply_word_edits();
    if (!global_log) add_global_log();
    haproxy_rewrite result;
    for (const auto& line : out_) result.text += line + "\n";
    std::stable_sort(changes_.begin(), changes_.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    for (auto& [number, text] : changes_) {
      result.changes.push_back(number > 0 ? "line " + std::to_string(number) + ": " + text : text);
    }
    return result;
  }

 private:
  /// Whether the line is one of original_lines (a config assembled by hand may have none).
  bool from_text(const haproxy_line& l) const {
    return l.number >= 1 && static_cast<std::size_t>(l.number) <= cfg_.original_lines.size();
  }

  /// Replaces word `index` (0 = the keyword) of line `l`; applied by apply_word_edits().
  void replace_word(const haproxy_line& l, std::size_t index, const std::string& value) {
    word_edits_[l.number][index] = value;
  }

  /// Applies the word edits of each line from its last word to its first, so that the original offsets
  /// of the words still to be replaced stay valid.
  void apply_word_edits() {
    for (const auto& [number, edits] : word_edits_) {
      const std::size_t at = static_cast<std::size_t>(number - 1);
      const auto w = tokenize(cfg_.original_lines[at], cfg_.file);
      for (auto it = edits.rbegin(); it != edits.rend(); ++it) {
        if (it->first < w.size()) {
          out_[at].replace(w[it->first].begin, w[it->first].end - w[it->first].begin, quote_word(it->second));
        }
      }
    }
  }

  void remove(const haproxy_line& l, const std::string& why) {
    std::string& line = out_[static_cast<std::size_t>(l.number - 1)];
    line = leading_blanks(line) + "# rehearse: removed: " + trimmed(l.text);
    changes_.emplace_back(l.number, trimmed(l.text) + " removed (" + why + ")");
  }

  /// Returns whether global has had its log line.
  bool rewrite_global(const haproxy_line& l, bool had_log) {
    static const std::map<std::string, std::string> unprivileged{
        {"chroot", "the lab runs unprivileged"},
        {"user", "the lab runs unprivileged"},
        {"group", "the lab runs unprivileged"},
        {"uid", "the lab runs unprivileged"},
        {"gid", "the lab runs unprivileged"},
        {"pidfile", "rehearse supervises the process; no pid file"},
        {"daemon", "rehearse runs HAProxy in the foreground"}};
    if (const auto it = unprivileged.find(l.keyword); it != unprivileged.end()) {
      remove(l, it->second);
    } else if (l.keyword == "stats" && !l.args.empty() && l.args[0] == "socket") {
      remove(l, "the system HAProxy's socket path is not writable in the lab");
    } else if (l.keyword == "log") {
      if (had_log) {
        remove(l, "the lab logs once, to stdout");
      } else {
        std::string& line = out_[static_cast<std::size_t>(l.number - 1)];
        line = leading_blanks(line) + "log " + lab_.log_target;
        changes_.emplace_back(l.number, trimmed(l.text) + " -> log " + lab_.log_target +
                                            " (the syslog target does not exist in the lab; rehearse reads "
                                            "HAProxy's log from its stdout)");
      }
      return true;
    }
    return had_log;
  }

  // HAProxy 2.6's httplog format, then the upstream TLS error fields.
  static constexpr const char* httplog_with_tls_error =
      "log-format \"%ci:%cp [%tr] %ft %b/%s %TR/%Tw/%Tc/%Tr/%Ta %ST %B %CC %CS %tsc %ac/%fc/%bc/%sc/%rc %sq/%bq %{+Q}r "
      "bc_err=%{+Q}[bc_err_str] ssl_bc_err=%[ssl_bc_err,hex]\"";

  void fit_maxconn(const haproxy_line& l) {
    if (lab_.fd_limit == 0 || l.args.empty()) return;
    std::uint64_t maxconn = 0;
    try {
      maxconn = std::stoull(l.args[0]);
    } catch (const std::exception&) {
      return;
    }
    const std::uint64_t fits = lab_.fd_limit > 200 ? (lab_.fd_limit - 100) / 2 : 50;
    if (2 * maxconn + 100 <= lab_.fd_limit) return;
    replace_word(l, 1, std::to_string(fits));
    changes_.emplace_back(l.number, "maxconn " + l.args[0] + " -> " + std::to_string(fits) + " (this machine allows " +
                                        std::to_string(lab_.fd_limit) + " file descriptors; HAProxy needs two per "
                                        "connection and would not start)");
  }

  /// Divides the time at word `index` by the time scale (at least 1 ms; 0 = infinite stays 0).
  void scale(const haproxy_line& l, std::size_t index, const std::string& what) {
    if (lab_.time_scale == 1 || index == 0 || index > l.args.size()) return;
    const std::string& old = l.args[index - 1];
    microseconds t{};
    try {
      t = parse_haproxy_time(old);
    } catch (const config_error&) {
      return;  // the linter reports it; HAProxy will too
    }
    if (t == microseconds::zero()) return;
    const double ms = static_cast<double>(t.count()) / 1000.0 / lab_.time_scale;
    const microseconds scaled = milliseconds(std::max<long long>(1, std::llround(ms)));
    if (scaled == t) return;  // already at the 1 ms floor
    const std::string value = format_haproxy_time(scaled);
    replace_word(l, index, value);
    std::ostringstream factor;
    factor << lab_.time_scale;
    changes_.emplace_back(l.number, what + " " + old + " -> " + value + " (time scale " + factor.str() + ")");
  }

  void rewrite_server(const haproxy_line& l) {
    std::string address = lab_.upstream_address;
    if (l.keyword == "server" && !lab_.upstream_addresses.empty()) {
      address = lab_.upstream_addresses[std::min(servers_seen_++, lab_.upstream_addresses.size() - 1)];
    }
    if (l.keyword == "server" && l.args.size() >= 2 && !address.empty() && l.args[1] != address) {
      replace_word(l, 2, address);
      changes_.emplace_back(l.number, "server " + l.args[0] + " " + l.args[1] + " -> " + address +
                                          " (the lab's Exchange 2007)");
    }
    for (std::size_t i = 0; i + 1 < l.args.size(); ++i) {
      const std::string& key = l.args[i];
      if (key == "inter" || key == "fastinter" || key == "downinter") scale(l, i + 2, key);
      if (!lab_.upstream_name.empty() && ((key == "sni" && l.args[i + 1].rfind("str(", 0) == 0) || key == "verifyhost")) {
        const std::string value = key == "sni" ? "str(" + lab_.upstream_name + ")" : lab_.upstream_name;
        if (l.args[i + 1] != value) {
          replace_word(l, i + 2, value);
          changes_.emplace_back(l.number, key + " " + l.args[i + 1] + " -> " + value +
                                              " (the name on the lab Exchange 2007 certificate)");
        }
      }
      if (key == "ca-file" && !lab_.ca_file.empty()) {
        replace_word(l, i + 2, lab_.ca_file);
        changes_.emplace_back(l.number, "ca-file " + l.args[i + 1] + " -> " + lab_.ca_file + " (the lab CA)");
      }
    }
  }

  /// The first ssl bind (else the first on 443, to reproduce a plain-HTTP 443) listens on the lab address;
  /// other binds are removed: their ports are privileged or busy, and the lab listens in one place only.
  void rewrite_binds(const haproxy_section& s) {
    const haproxy_line* chosen = nullptr;
    for (const auto& l : s.lines) {
      if (l.keyword == "bind" && has_word(l.args, "ssl")) {
        chosen = &l;
        break;
      }
    }
    for (const auto& l : s.lines) {
      if (chosen == nullptr && l.keyword == "bind" && listens_on_443(l)) chosen = &l;
    }
    for (const auto& l : s.lines) {
      if (l.keyword != "bind" || l.args.empty() || !from_text(l)) continue;
      if (&l != chosen) {
        remove(l, "the lab listens only on " + lab_.bind_address);
        continue;
      }
      for (std::size_t i = 1; i < l.args.size(); ++i) {
        if ((l.args[i - 1] == "crt" || l.args[i - 1] == "crt-list") && !lab_.bridge_pem.empty()) {
          replace_word(l, i + 1, lab_.bridge_pem);
          if (l.args[i - 1] == "crt-list") replace_word(l, i, "crt");
          changes_.emplace_back(l.number, l.args[i - 1] + " " + l.args[i] + " -> crt " + lab_.bridge_pem +
                                              " (the lab's certificate for the public name)");
        }
      }
      if (!lab_.bind_address.empty() && l.args[0] != lab_.bind_address) {
        replace_word(l, 1, lab_.bind_address);
        changes_.emplace_back(l.number, "bind " + l.args[0] + " -> " + lab_.bind_address);
      }
    }
  }

  /// Global has no log line: use a blank or comment line inside global so that line numbers stay the same.
  void add_global_log() {
    const std::string line = "log " + lab_.log_target;
    for (std::size_t i = 0; i < cfg_.sections.size(); ++i) {
      const auto& s = cfg_.sections[i];
      if (s.kind != "global") continue;
      const int last = static_cast<int>(cfg_.original_lines.size());
      if (s.number < 1 || s.number > last) continue;
      const int end = i + 1 < cfg_.sections.size() ? std::min(cfg_.sections[i + 1].number, last + 1) : last + 1;
      for (int n = s.number + 1; n < end; ++n) {
        const std::string& text = cfg_.original_lines[static_cast<std::size_t>(n - 1)];
        if (!trimmed(text).empty() && trimmed(text)[0] != '#') continue;
        out_[static_cast<std::size_t>(n - 1)] = "    " + line;
        changes_.emplace_back(n, "'" + line + "' added to global (rehearse reads HAProxy's log from its stdout)");
        return;
      }
      out_.insert(out_.begin() + s.number, "    " + line);
      changes_.emplace_back(s.number, "'" + line + "' inserted after this line (HAProxy's line numbers after it are "
                                      "one higher than in your file)");
      return;
    }
    out_.push_back("global");
    out_.push_back("    " + line);
    changes_.emplace_back(0, "global section with '" + line + "' added at the end");
  }

  const haproxy_config& cfg_;
  const haproxy_lab& lab_;
  std::vector<std::string> out_;
  std::vector<std::pair<int, std::string>> changes_;
  std::map<int, std::map<std::size_t, std::string>> word_edits_;  ///< line -> word index -> new word
  std::size_t servers_seen_ = 0;
};

}  // namespace

haproxy_config parse_haproxy_config(const std::string& text, const std::string& file) {
  haproxy_config cfg;
  cfg.file = file;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    cfg.original_lines.push_back(line);
  }
  for (std::size_t i = 0; i < cfg.original_lines.size(); ++i) {
    const std::string& raw = cfg.original_lines[i];
    const int number = static_cast<int>(i) + 1;
    const std::string where = file + ":" + std::to_string(number);
    auto words = tokenize(raw, where);
    if (words.empty()) continue;
    haproxy_line l;
    l.number = number;
    l.keyword = words[0].value;
    for (std::size_t w = 1; w < words.size(); ++w) l.args.push_back(std::move(words[w].value));
    l.text = raw.substr(0, words.back().end);
    if (is_section_keyword(l.keyword)) {
      haproxy_section s;
      s.kind = l.keyword;
      s.name = l.args.empty() ? "" : l.args[0];
      s.number = number;
      s.header = std::move(l);
      cfg.sections.push_back(std::move(s));
    } else if (cfg.sections.empty()) {
      throw config_error(where + ": '" + l.keyword +
                         "' is outside any section; HAProxy needs a section header (global, defaults, frontend, "
                         "backend, listen, ...) before it");
    } else {
      cfg.sections.back().lines.push_back(std::move(l));
    }
  }
  return cfg;
}

haproxy_config load_haproxy_config(const std::filesystem::path& file) {
  std::error_code ec;
  std::ifstream in(file, std::ios::binary);
  std::ostringstream text;
  if (in && !std::filesystem::is_directory(file, ec)) {
    text << in.rdbuf();  // an empty file inserts nothing, which is not an error here
    if (!in.bad()) return parse_haproxy_config(text.str(), file.string());
  }
  throw config_error(file.string() + ": cannot read this HAProxy configuration (does it exist and is it readable?)");
}

std::vector<haproxy_finding> lint_haproxy_config(const haproxy_config& cfg, const haproxy_lint_options& options) {
  return linter(cfg, options.fd_limit).run();
}

std::chrono::microseconds parse_haproxy_time(const std::string& text) {
  static const std::array<std::pair<const char*, std::int64_t>, 7> units{
      {{"", 1000}, {"us", 1}, {"ms", 1000}, {"s", 1'000'000}, {"m", 60'000'000}, {"h", 3'600'000'000},
       {"d", 86'400'000'000}}};
  const auto bad = [&] {
    return config_error("'" + text + "' is not an HAProxy time; write e.g. 500ms, 30s, 15m, 1h or 1d (no unit = ms)");
  };
  std::size_t i = 0;
  std::int64_t value = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
    if (value > 1'000'000'000'000) throw bad();
    value = value * 10 + (text[i] - '0');
    ++i;
  }
  if (i == 0) throw bad();
  const std::string unit = text.substr(i);
  for (const auto& [name, us] : units) {
    if (unit != name) continue;
    if (value > std::numeric_limits<std::int64_t>::max() / us) throw bad();
    return microseconds(value * us);
  }
  throw bad();
}

std::string format_haproxy_time(std::chrono::microseconds t) {
  if (t.count() == 0) return "0";
  static const std::array<std::pair<const char*, std::int64_t>, 6> units{
      {{"d", 86'400'000'000}, {"h", 3'600'000'000}, {"m", 60'000'000}, {"s", 1'000'000}, {"ms", 1000}, {"us", 1}}};
  for (const auto& [name, us] : units) {
    if (t.count() % us == 0) return std::to_string(t.count() / us) + name;
  }
  return std::to_string(t.count()) + "us";
}

haproxy_rewrite rewrite_haproxy_for_lab(const haproxy_config& cfg, const haproxy_lab& lab) {
  return rewriter(cfg, lab).run();
}

}  // namespace exbridge::rehearse
