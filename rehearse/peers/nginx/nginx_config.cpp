// nginx.conf: parse, lint, rewrite for the lab (see nginx_config.hpp).
#include "rehearse/peers/nginx/nginx_config.hpp"

#include <boost/algorithm/string/case_conv.hpp>
#include <boost/algorithm/string/predicate.hpp>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <sstream>

#include "common/errors.hpp"

namespace exbridge::rehearse {
namespace {

// --- parsing -----------------------------------------------------------------------------------------------------

struct token {
  std::string text;
  int line = 0;
  bool quoted = false;
};

std::vector<token> tokenize(const std::string& text, const std::string& file) {
  std::vector<token> out;
  int line = 1;
  for (std::size_t i = 0; i < text.size();) {
    const char c = text[i];
    if (c == '\n') ++line;
    if (std::isspace(static_cast<unsigned char>(c))) {
      ++i;
      continue;
    }
    if (c == '#') {
      while (i < text.size() && text[i] != '\n') ++i;
      continue;
    }
    if (c == ';' || c == '{' || c == '}') {
      out.push_back({std::string(1, c), line, false});
      ++i;
      continue;
    }
    token t{"", line, false};
    if (c == '"' || c == '\'') {
      t.quoted = true;
      const int start = line;
      for (++i; i < text.size() && text[i] != c; ++i) {
        if (text[i] == '\\' && i + 1 < text.size()) ++i;
        if (text[i] == '\n') ++line;
        t.text += text[i];
      }
      if (i >= text.size()) throw config_error(file + ":" + std::to_string(start) + ": a quoted string is not closed");
      ++i;
    } else {
      while (i < text.size() && !std::isspace(static_cast<unsigned char>(text[i])) && text[i] != ';' &&
             text[i] != '{' && text[i] != '}') {
        t.text += text[i++];
      }
    }
    out.push_back(std::move(t));
  }
  return out;
}

std::vector<nginx_directive> parse_block(const std::vector<token>& tokens, std::size_t& at, const std::string& file,
                                         bool nested) {
  std::vector<nginx_directive> out;
  while (at < tokens.size()) {
    const token& t = tokens[at];
    if (!t.quoted && t.text == "}") {
      if (!nested) throw config_error(file + ":" + std::to_string(t.line) + ": '}' without a block to close");
      ++at;
      return out;
    }
    if (!t.quoted && (t.text == ";" || t.text == "{")) {
      throw config_error(file + ":" + std::to_string(t.line) + ": '" + t.text + "' without a directive name");
    }
    nginx_directive d;
    d.line = t.line;
    d.name = t.text;
    for (++at;; ++at) {
      if (at >= tokens.size()) {
        throw config_error(file + ":" + std::to_string(d.line) + ": directive '" + d.name + "' has no ';' or '{'");
      }
      const token& a = tokens[at];
      if (!a.quoted && a.text == ";") {
        ++at;
        break;
      }
      if (!a.quoted && a.text == "{") {
        ++at;
        d.has_block = true;
        d.block = parse_block(tokens, at, file, true);
        break;
      }
      if (!a.quoted && a.text == "}") {
        throw config_error(file + ":" + std::to_string(d.line) + ": directive '" + d.name + "' is not ended by ';'");
      }
      d.args.push_back(a.text);
    }
    out.push_back(std::move(d));
  }
  if (nested) throw config_error(file + ": a block is not closed (a '}' is missing)");
  return out;
}

// --- looking things up -------------------------------------------------------------------------------------------

/// The last directive `name` directly in `block` (nginx: a later one of the same name is a duplicate or wins).
const nginx_directive* find(const std::vector<nginx_directive>& block, const std::string& name) {
  const nginx_directive* found = nullptr;
  for (const auto& d : block) {
    if (d.name == name) found = &d;
  }
  return found;
}

std::vector<const nginx_directive*> find_all(const std::vector<nginx_directive>& block, const std::string& name) {
  std::vector<const nginx_directive*> out;
  for (const auto& d : block) {
    if (d.name == name) out.push_back(&d);
  }
  return out;
}

/// Where Outlook Anywhere's requests are handled: http, the TLS server, and the location /rpc/rpcproxy.dll matches.
struct rpc_scope {
  const nginx_directive* http = nullptr;
  const nginx_directive* server = nullptr;
  const nginx_directive* location = nullptr;

  /// The directive as the location sees it: its own, else the server's, else http's.
  const nginx_directive* effective(const std::string& name) const {
    for (const auto* level : {location, server, http}) {
      if (level == nullptr) continue;
      if (const auto* d = find(level->block, name)) return d;
    }
    return nullptr;
  }
  /// The line a missing directive belongs on.
  int line() const { return location ? location->line : server ? server->line : http ? http->line : 0; }
  std::string where() const { return location ? "location " + join_args(*location) : "the server block"; }
  static std::string join_args(const nginx_directive& d) {
    std::string s;
    for (const auto& a : d.args) s += (s.empty() ? "" : " ") + a;
    return s;
  }
};

bool listens_with_tls(const nginx_directive& server) {
  for (const auto* l : find_all(server.block, "listen")) {
    if (std::find(l->args.begin(), l->args.end(), "ssl") != l->args.end()) return true;
  }
  return false;
}

const nginx_directive* rpc_location(const nginx_directive& server) {
  const std::string path = "/rpc/rpcproxy.dll";
  const nginx_directive* best = nullptr;
  std::size_t best_length = 0;
  for (const auto* l : find_all(server.block, "location")) {
    if (l->args.empty()) continue;
    const std::string& modifier = l->args.front();
    if ((modifier == "~" || modifier == "~*") && l->args.size() > 1 &&
        boost::algorithm::icontains(l->args[1], "rpc")) {
      return l;  // a regular expression naming rpc: nginx prefers it over any plain prefix
    }
    const std::string prefix = l->args.size() > 1 && (modifier == "^~" || modifier == "=") ? l->args[1] : modifier;
    const bool matches = modifier == "=" ? prefix == path : path.rfind(prefix, 0) == 0;
    if (matches && prefix.size() >= best_length) {
      best = l;
      best_length = prefix.size();
    }
  }
  return best;
}

rpc_scope find_rpc_scope(const nginx_config& cfg) {
  rpc_scope s;
  s.http = find(cfg.main, "http");
  if (s.http == nullptr) return s;
  for (const auto* server : find_all(s.http->block, "server")) {
    if (listens_with_tls(*server)) {
      s.server = server;
      break;
    }
  }
  if (s.server != nullptr) s.location = rpc_location(*s.server);
  return s;
}

std::string lower(std::string s) { return boost::algorithm::to_lower_copy(s); }

}  // namespace

nginx_config parse_nginx_config(const std::string& text, const std::string& file) {
  const auto tokens = tokenize(text, file);
  std::size_t at = 0;
  return {file, parse_block(tokens, at, file, false)};
}

nginx_config load_nginx_config(const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in) throw config_error("cannot read nginx config '" + file.string() + "'");
  std::stringstream text;
  text << in.rdbuf();
  return parse_nginx_config(text.str(), file.string());
}

std::optional<long long> nginx_time_ms(const std::string& text) {
  if (text.empty()) return std::nullopt;
  long long total = 0;
  std::size_t i = 0;
  while (i < text.size()) {
    long long n = 0;
    const std::size_t start = i;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) n = n * 10 + (text[i++] - '0');
    if (i == start) return std::nullopt;
    std::string unit;
    while (i < text.size() && std::isalpha(static_cast<unsigned char>(text[i]))) unit += text[i++];
    static const std::pair<const char*, long long> units[] = {{"ms", 1},         {"", 1000},          {"s", 1000},
                                                              {"m", 60'000},     {"h", 3'600'000},    {"d", 86'400'000},
                                                              {"w", 604'800'000}, {"M", 2'592'000'000}, {"y", 31'536'000'000}};
    bool known = false;
    for (const auto& [name, factor] : units) {
      if (unit == name) {
        total += n * factor;
        known = true;
        break;
      }
    }
    if (!known) return std::nullopt;
  }
  return total;
}

std::optional<long long> nginx_size_bytes(const std::string& text) {
  if (text.empty()) return std::nullopt;
  std::size_t i = 0;
  long long n = 0;
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) n = n * 10 + (text[i++] - '0');
  if (i == 0) return std::nullopt;
  const std::string unit = lower(text.substr(i));
  if (unit.empty()) return n;
  if (unit == "k") return n << 10;
  if (unit == "m") return n << 20;
  if (unit == "g") return n << 30;
  return std::nullopt;
}

std::vector<config_finding> lint_nginx_config(const nginx_config& cfg) {
  std::vector<config_finding> out;
  const auto add = [&](int line, const char* code, const char* severity, std::string message, std::string fix) {
    out.push_back({line, code, severity, std::move(message), std::move(fix)});
  };
  const rpc_scope s = find_rpc_scope(cfg);
  if (s.http == nullptr || s.server == nullptr) {
    add(s.http ? s.http->line : 0, "no-tls-listener", "error",
        "no server block listens with TLS ('listen ... ssl'): Exchange Online only connects with TLS 1.2 or later",
        "listen 443 ssl; with ssl_certificate and ssl_certificate_key in the server block");
    return out;
  }
  const auto* pass = s.effective("proxy_pass");
  if (s.location == nullptr || pass == nullptr || pass->args.empty()) {
    add(s.line(), "no-proxy-pass", "error",
        "no location sends /rpc/rpcproxy.dll to Exchange (proxy_pass): Outlook Anywhere cannot reach the server",
        "location / { proxy_pass https://exchange2007; ... }");
    return out;
  }
  const bool tls_upstream = boost::algorithm::istarts_with(pass->args[0], "https://");
  const auto value = [&](const std::string& name) -> std::string {
    const auto* d = s.effective(name);
    return d == nullptr || d->args.empty() ? std::string() : d->args[0];
  };
  const auto line_of = [&](const std::string& name) {
    const auto* d = s.effective(name);
    return d ? d->line : s.line();
  };

  // The 1 GB IN channel against the default 1 MB body limit: 413 before anything reaches Exchange.
  const std::string body_limit = value("client_max_body_size");
  const auto limit = nginx_size_bytes(body_limit.empty() ? "1m" : body_limit);
  if (!limit || (*limit != 0 && *limit < (1LL << 30))) {
    add(line_of("client_max_body_size"), "body-size-limit", "error",
        "client_max_body_size is " + (body_limit.empty() ? std::string("1m (the default)") : body_limit) +
            ": Outlook Anywhere's IN channel (RPC_IN_DATA) declares a 1 GB body, so nginx answers 413 Request Entity "
            "Too Large and the migration never starts",
        "client_max_body_size 0;  (in " + s.where() + ")");
  }
  if (lower(value("proxy_request_buffering")) != "off") {
    add(line_of("proxy_request_buffering"), "request-buffering", "error",
        "proxy_request_buffering is on (the default): nginx waits for the whole 1 GB RPC_IN_DATA body before it "
        "forwards a byte, and the IN channel's body only ends when the channel is recycled -- every RPC call waits "
        "until the client gives up",
        "proxy_request_buffering off;  (in " + s.where() + ")");
  }
  if (lower(value("proxy_buffering")) != "off") {
    add(line_of("proxy_buffering"), "response-buffering", "warning",
        "proxy_buffering is on (the default): the OUT channel's answers (RPC_OUT_DATA, a 1 GB streaming response) "
        "go through nginx's buffers and temporary files instead of straight to the client",
        "proxy_buffering off;  (in " + s.where() + ")");
  }
  if (value("proxy_http_version") != "1.1") {
    add(line_of("proxy_http_version"), "http-version", "error",
        "proxy_http_version is " + (value("proxy_http_version").empty() ? std::string("1.0 (the default)") : value("proxy_http_version")) +
            ": nginx talks HTTP/1.0 to Exchange and closes the server connection after every request, so NTLM "
            "(bound to that connection) never completes and no server connection is reused",
        "proxy_http_version 1.1;  (in " + s.where() + ")");
  }
  bool clears_connection = false;
  for (const auto* level : {s.location, s.server, s.http}) {
    if (level == nullptr) continue;
    const auto headers = find_all(level->block, "proxy_set_header");
    if (headers.empty()) continue;  // nginx inherits proxy_set_header only from the level where none is set
    for (const auto* h : headers) {
      if (h->args.size() == 2 && boost::algorithm::iequals(h->args[0], "Connection") && h->args[1].empty()) clears_connection = true;
    }
    break;
  }
  if (!clears_connection) {
    add(s.line(), "connection-header", "warning",
        "nginx sends 'Connection: close' to Exchange unless the header is cleared: the server connection closes after "
        "each request, and upstream keepalive has no effect",
        "proxy_set_header Connection \"\";  (in " + s.where() + ")");
  }
  // Timeouts against the pings: Exchange pings the OUT channel every 900 s, the client the IN channel every 720 s.
  const auto check_timeout = [&](const char* name, long long need_ms, const char* code, const std::string& what) {
    const std::string v = value(name);
    const auto ms = nginx_time_ms(v.empty() ? "60s" : v);
    if (ms && *ms > need_ms) return;
    add(line_of(name), code, "error",
        std::string(name) + " is " + (v.empty() ? std::string("60s (the default)") : v) + ": " + what,
        std::string(name) + " 1h;  (in " + s.where() + ")");
  };
  check_timeout("proxy_read_timeout", 900'000, "read-timeout",
                "nginx closes a quiet OUT channel after that long without a byte from Exchange, whose RPC proxy pings "
                "the OUT channel only every 900 s");
  check_timeout("client_body_timeout", 720'000, "body-timeout",
                "with request buffering off nginx reads the IN channel's body as it comes, and closes it after that "
                "long between two reads; Outlook pings the IN channel only every 720 s");
  if (const auto send = value("proxy_send_timeout"); !send.empty()) {
    if (const auto ms = nginx_time_ms(send); ms && *ms <= 900'000) {
      add(line_of("proxy_send_timeout"), "send-timeout", "warning",
          "proxy_send_timeout is " + send + ": a write to Exchange that waits longer (a server slow to read the IN "
          "channel) ends the channel; keep it as long as proxy_read_timeout",
          "proxy_send_timeout 1h;  (in " + s.where() + ")");
    }
  }
  // NTLM: open-source nginx cannot bind a server connection to one client connection.
  const nginx_directive* upstream = nullptr;
  std::string upstream_name = pass->args[0].substr(pass->args[0].find("://") == std::string::npos ? 0 : pass->args[0].find("://") + 3);
  upstream_name = upstream_name.substr(0, upstream_name.find_first_of(":/"));
  for (const auto* u : find_all(s.http->block, "upstream")) {
    if (!u->args.empty() && u->args[0] == upstream_name) upstream = u;
  }
  const nginx_directive* ntlm = upstream ? find(upstream->block, "ntlm") : nullptr;
  const nginx_directive* keepalive = upstream ? find(upstream->block, "keepalive") : nullptr;
  if (ntlm != nullptr) {
    add(ntlm->line, "ntlm-directive", "error",
        "'ntlm' is an nginx Plus directive: open-source nginx refuses to start with it",
        "remove it, and have Exchange Online use Basic authentication through nginx (or use exbridge, which binds "
        "each server connection to one client connection)");
  } else {
    add(keepalive ? keepalive->line : (upstream ? upstream->line : s.line()), "ntlm-not-bound", "warning",
        keepalive ? "open-source nginx shares its idle server connections ('keepalive') among all clients: a "
                    "connection NTLM authenticated for one user can carry another client's requests, and a user's "
                    "own requests can land on a connection NTLM never authenticated"
                  : "open-source nginx gives each request its own server connection (no 'keepalive'), so NTLM, which "
                    "authenticates the connection, can never complete through it",
        "use Basic authentication for the migration endpoint through nginx (Outlook Anywhere and EWS both offer "
        "it), or exbridge, which binds each server connection to one client connection; nginx Plus has 'ntlm'");
  }
  // TLS 1.0 to Exchange 2007 on OpenSSL 3.
  if (tls_upstream) {
    const auto* protocols = s.effective("proxy_ssl_protocols");
    bool tls10 = protocols == nullptr;  // nginx 1.22 offers TLSv1 by default
    if (protocols != nullptr) tls10 = std::find(protocols->args.begin(), protocols->args.end(), "TLSv1") != protocols->args.end();
    if (!tls10) {
      add(protocols->line, "tls10-not-offered", "error",
          "proxy_ssl_protocols does not offer TLSv1: Exchange 2007 speaks TLS 1.0 only, so the handshake fails",
          "proxy_ssl_protocols TLSv1;");
    }
    const auto* ciphers = s.effective("proxy_ssl_ciphers");
    bool level0 = false;
    if (ciphers != nullptr) {
      for (const auto& a : ciphers->args) level0 = level0 || a.find("@SECLEVEL=0") != std::string::npos;
    }
    if (!level0) {
      add(ciphers ? ciphers->line : s.line(), "tls10-needs-seclevel0", "error",
          "OpenSSL 3 refuses TLS 1.0 at its default security level, so nginx's handshake with Exchange 2007 fails "
          "(\"SSL_do_handshake() failed ... no protocols available\" in the error log)",
          "proxy_ssl_ciphers DEFAULT:@SECLEVEL=0;  (in " + s.where() + ")");
    }
    if (lower(value("proxy_ssl_verify")) != "on") {
      add(line_of("proxy_ssl_verify"), "upstream-not-verified", "warning",
          "nginx does not check Exchange 2007's certificate (proxy_ssl_verify is off by default): anyone on the path "
          "can stand in for the server and collect every mailbox password",
          "proxy_ssl_verify on; proxy_ssl_trusted_certificate /etc/nginx/exchange-ca.pem; proxy_ssl_name <the "
          "certificate's name>;");
    }
  } else {
    add(pass->line, "upstream-plain-http", "warning",
        "proxy_pass sends Exchange Online's requests, passwords included, to Exchange over plain HTTP",
        "proxy_pass https://...; with proxy_ssl_protocols TLSv1 and proxy_ssl_ciphers DEFAULT:@SECLEVEL=0");
  }
  if (const auto* p = s.effective("ssl_protocols")) {
    for (const auto& a : p->args) {
      if (a == "TLSv1" || a == "TLSv1.1") {
        add(p->line, "public-old-tls", "warning",
            "ssl_protocols offers " + a + " to the Internet: Exchange Online never uses it, scanners flag it",
            "ssl_protocols TLSv1.2 TLSv1.3;");
        break;
      }
    }
  }
  std::sort(out.begin(), out.end(), [](const config_finding& a, const config_finding& b) { return a.line < b.line; });
  return out;
}

// --- the lab rewrite -----------------------------------------------------------------------------------------------

namespace {

class lab_writer {
 public:
  lab_writer(const nginx_config& cfg, const nginx_lab& lab) : cfg_(cfg), lab_(lab) {}

  nginx_rewrite run() {
    const auto dir = lab_.run_dir.string();
    out_ << "# rehearse's lab copy of " << cfg_.file << " (each directive keeps its line there as '# line N')\n";
    out_ << "daemon off;\nworker_processes 1;\npid " << dir << "/nginx.pid;\nerror_log " << dir
         << "/nginx-error.log info;\n";
    bool events = false;
    for (const auto& d : cfg_.main) {
      if (d.name == "user" || d.name == "pid" || d.name == "daemon" || d.name == "worker_processes" ||
          d.name == "error_log" || d.name == "master_process") {
        change(d.line, d.name + " (set for the lab: foreground, one worker, pid and error log in the run folder)");
        continue;
      }
      if (d.name == "include" && !include_ok(d)) continue;
      if (d.name == "events") events = true;
      write(d, 0, "main");
    }
    if (!events) out_ << "events { worker_connections 1024; }\n";
    return {out_.str(), std::move(changes_)};
  }

 private:
  void change(int line, const std::string& what) { changes_.push_back("line " + std::to_string(line) + ": " + what); }

  /// An include the lab can follow: an absolute path that exists (mime.types, modules); others are dropped.
  bool include_ok(const nginx_directive& d) {
    if (!d.args.empty()) {
      std::filesystem::path p = d.args[0];
      if (p.is_relative()) p = std::filesystem::path(cfg_.file).parent_path() / p;
      const bool glob = d.args[0].find('*') != std::string::npos;
      if (glob || std::filesystem::exists(p)) {
        resolved_include_ = p.string();
        return true;
      }
    }
    change(d.line, "include " + (d.args.empty() ? std::string() : d.args[0]) + " dropped (not found from the lab)");
    return false;
  }

  static std::string quote(const std::string& a) {
    if (a.empty() || a.find_first_of(" \t;{}#\"'") != std::string::npos) {
      std::string q = "\"";
      for (const char c : a) q += (c == '"' || c == '\\') ? std::string("\\") + c : std::string(1, c);
      return q + "\"";
    }
    return a;
  }

  void emit(const nginx_directive& d, const std::vector<std::string>& args, int depth) {
    out_ << std::string(2 * depth, ' ') << d.name;
    for (const auto& a : args) out_ << ' ' << quote(a);
    if (d.has_block) {
      out_ << " {  # line " << d.line << '\n';
      return;
    }
    out_ << ";  # line " << d.line << '\n';
  }

  std::string scaled(const std::string& value, int line, const std::string& name) {
    const auto ms = nginx_time_ms(value);
    if (!ms || lab_.time_scale == 1) return value;
    const auto lab_ms = std::max<long long>(1, static_cast<long long>(static_cast<double>(*ms) / lab_.time_scale));
    change(line, name + " " + value + " -> " + std::to_string(lab_ms) + "ms (time scale " + std::to_string(lab_.time_scale) + ")");
    return std::to_string(lab_ms) + "ms";
  }

  std::string upstream_address() {
    const auto& list = lab_.upstream_addresses;
    const std::string a = list.empty() ? std::string("127.0.0.1:1") : list[std::min(next_upstream_, list.size() - 1)];
    ++next_upstream_;
    return a;
  }

  void write(const nginx_directive& d, int depth, const std::string& context) {
    std::vector<std::string> args = d.args;
    static const char* timeouts[] = {"proxy_read_timeout", "proxy_send_timeout", "proxy_connect_timeout",
                                     "client_body_timeout", "client_header_timeout", "send_timeout",
                                     "keepalive_timeout"};
    if (d.name == "access_log" || d.name == "error_log" || d.name.ends_with("_temp_path")) {
      change(d.line, d.name + " (the lab's, in the run folder)");
      return;
    }
    if (d.name == "include" && !include_ok(d)) return;
    if (d.name == "include") args[0] = resolved_include_;
    if (d.name == "listen" && !args.empty()) {
      const bool tls = std::find(args.begin(), args.end(), "ssl") != args.end();
      const std::string to = tls && !listened_ ? lab_.listen_address : lab_.spare_address();
      listened_ = listened_ || tls;
      change(d.line, "listen " + args[0] + " -> " + to);
      args[0] = to;
      // Options that need privileges or other sockets of the machine go.
      args.erase(std::remove_if(args.begin() + 1, args.end(),
                                [](const std::string& a) { return a == "reuseport" || a.starts_with("backlog="); }),
                 args.end());
    } else if (d.name == "ssl_certificate" || d.name == "ssl_certificate_key") {
      const std::string& to = d.name == "ssl_certificate" ? lab_.cert : lab_.key;
      change(d.line, d.name + " -> the lab's");
      args = {to};
    } else if (d.name == "proxy_ssl_trusted_certificate") {
      change(d.line, d.name + " -> the lab CA");
      args = {lab_.ca_file};
    } else if (d.name == "proxy_ssl_name") {
      change(d.line, d.name + " " + (args.empty() ? "" : args[0]) + " -> " + lab_.upstream_name);
      args = {lab_.upstream_name};
    } else if (d.name == "server" && context == "upstream" && !args.empty()) {
      const std::string to = upstream_address();
      change(d.line, "upstream server " + args[0] + " -> " + to);
      args[0] = to;
    } else if (d.name == "proxy_pass" && !args.empty()) {
      // A host that is not an upstream block's name is the Exchange server itself: point it at the lab.
      std::string target = args[0];
      const auto scheme_end = target.find("://");
      if (scheme_end != std::string::npos) {
        const auto host_begin = scheme_end + 3;
        const auto host_end = target.find('/', host_begin);
        const std::string host = target.substr(host_begin, host_end - host_begin);
        bool named = false;
        if (const auto* http = find(cfg_.main, "http")) {
          for (const auto* u : find_all(http->block, "upstream")) named = named || (!u->args.empty() && u->args[0] == host);
        }
        if (!named && host.find('$') == std::string::npos) {
          const std::string to = upstream_address();
          target = target.substr(0, host_begin) + to + (host_end == std::string::npos ? "" : target.substr(host_end));
          change(d.line, "proxy_pass " + args[0] + " -> " + target);
          args[0] = target;
        }
      }
    } else if (std::find(std::begin(timeouts), std::end(timeouts), d.name) != std::end(timeouts) && !args.empty()) {
      args[0] = scaled(args[0], d.line, d.name);
    }
    emit(d, args, depth);
    if (!d.has_block) return;
    if (d.name == "http") {
      const auto dir = lab_.run_dir.string();
      const std::string pad(2 * (depth + 1), ' ');
      // Where the lab keeps nginx's files, and an access log with what explains a failed step.
      out_ << pad << "log_format rehearse '$remote_addr \"$request\" $status $body_bytes_sent rt=$request_time "
                     "upstream=$upstream_addr ustatus=$upstream_status urt=$upstream_response_time';\n";
      out_ << pad << "access_log " << dir << "/nginx-access.log rehearse;\n";
      for (const char* temp : {"client_body_temp_path", "proxy_temp_path", "fastcgi_temp_path", "uwsgi_temp_path",
                               "scgi_temp_path"}) {
        out_ << pad << temp << ' ' << dir << "/nginx-" << std::string(temp).substr(0, std::string(temp).find("_temp")) << ";\n";
      }
    }
    for (const auto& child : d.block) write(child, depth + 1, d.name);
    out_ << std::string(2 * depth, ' ') << "}\n";
  }

  const nginx_config& cfg_;
  const nginx_lab& lab_;
  std::ostringstream out_;
  std::vector<std::string> changes_;
  std::string resolved_include_;
  std::size_t next_upstream_ = 0;
  bool listened_ = false;
};

}  // namespace

nginx_rewrite rewrite_nginx_for_lab(const nginx_config& cfg, const nginx_lab& lab) { return lab_writer(cfg, lab).run(); }

}  // namespace exbridge::rehearse
