// exbridge command-line parsing (quick mode: one listener, one upstream; or --config FILE), and the
// validation the command line and the config file share, so that both accept and refuse the same values.
#include "proxy/config/options.hpp"

#include <boost/algorithm/string/predicate.hpp>

#include "common/errors.hpp"
#include "proxy/config/config_file.hpp"

namespace exbridge::proxy {

namespace {

int check_security_level(double level, const std::string& what) {
  if (level < 0 || level > 5 || level != static_cast<int>(level)) {
    throw config_error(what + " must be 0..5; TLS 1.0 needs 0");
  }
  return static_cast<int>(level);
}

unsigned check_threads(double threads, const std::string& what) {
  if (threads < 1 || threads > 256 || threads != static_cast<unsigned>(threads)) {
    throw config_error(what + " must be between 1 and 256");
  }
  return static_cast<unsigned>(threads);
}

std::uint64_t check_min_throughput(double rate, const std::string& what) {
  if (rate < 0) throw config_error(what + " must be 0 (off) or a rate in bytes per second");
  return static_cast<std::uint64_t>(rate);
}

}  // namespace

const std::vector<timeout_field>& timeout_fields() {
  static const std::vector<timeout_field> fields{
      {"timeout-downstream-handshake", "downstream_handshake", &timeouts::downstream_handshake, "downstream TLS handshake"},
      {"timeout-client-idle", "client_idle", &timeouts::client_idle, "new connection without a request"},
      {"timeout-request-headers", "request_headers", &timeouts::request_headers, "receiving a request's headers"},
      {"timeout-keep-alive", "keep_alive", &timeouts::keep_alive_idle, "idle client connection between requests"},
      {"timeout-upstream-connect", "upstream_connect", &timeouts::upstream_connect, "TCP connect to the upstream"},
      {"timeout-upstream-handshake", "upstream_handshake", &timeouts::upstream_handshake, "upstream TLS handshake"},
      {"timeout-response-headers", "response_headers", &timeouts::response_headers,
       "upstream think time before response headers"},
      {"timeout-client-data", "client_data", &timeouts::client_data,
       "client sends no request body byte, or takes no response byte"},
      {"timeout-upstream-data", "upstream_data", &timeouts::upstream_data,
       "upstream sends no response body byte, or takes no request byte"},
      {"timeout-rpc-idle", "rpc_idle", &timeouts::rpc_idle,
       "either side of an Outlook Anywhere /rpc/ channel silent (keep above the 900 s RPC ping)"},
      {"throughput-window", "throughput_window", &timeouts::throughput_window, "window of the minimum-throughput watchdog"},
  };
  return fields;
}

void parse_upstream_verify(const std::string& text, const std::string& what, upstream_settings& u) {
  if (text == "none") {
    u.verify = tls_verify::none;
  } else if (text.rfind("ca:", 0) == 0 && text.size() > 3) {
    u.verify = tls_verify::ca_file;
    u.ca_file = text.substr(3);
  } else if (text.rfind("pin:", 0) == 0) {
    u.verify = tls_verify::pin;
    u.pin_sha256 = normalize_pin(text.substr(4), what + " pin");
  } else {
    throw config_error(what + " '" + text +
                       "' is not understood; use 'ca:/path/to/ca.pem', 'pin:SHA256-FINGERPRINT' or 'none'");
  }
}

void check_response_header(const std::string& name, const std::string& value, const std::string& what) {
  const bool token = !name.empty() && name.find_first_of(" \t\r\n()<>@,;:\\\"/[]?={}") == std::string::npos;
  if (!token || value.empty() || value.find_first_of("\r\n") != std::string::npos) {
    throw config_error(what + " '" + name + ": " + value +
                       "' must be 'Name: value': a header name without spaces or separators, and a non-empty value on one "
                       "line, e.g. 'X-Frame-Options: SAMEORIGIN'");
  }
}

log_format parse_log_format(const std::string& text, const std::string& what) {
  if (text == "text") return log_format::text;
  if (text == "json") return log_format::json;
  throw config_error(what + " '" + text + "' is not understood; use 'text' or 'json'");
}

std::optional<invocation> parse_invocation(int argc, char** argv) {
  invocation inv;
  bridge_options& o = inv.options;
  std::vector<std::string> data_flags;  // given data-path flags, refused together with --config
  arg_parser args("exbridge",
                  "--listen HOST:PORT --cert FILE --key FILE --upstream HOST:PORT [options]\n"
                  "       exbridge --config FILE [--threads N] [--time-scale N]\n"
                  "       exbridge --check (--config FILE | quick-mode options) [--probe-upstream]");
  // A data-path option: remembered for the --config conflict check and for --check's messages.
  const auto data_option = [&](std::string name, std::string metavar, std::string help, std::string origin_key,
                               std::function<void(const std::string&)> set) {
    args.option(name, std::move(metavar), std::move(help),
                [&, name, origin_key, set = std::move(set)](const std::string& v) {
                  data_flags.push_back("--" + name);
                  if (!origin_key.empty()) inv.origins[origin_key] = "--" + name;
                  set(v);
                });
  };
  bool have_listen = false, have_upstream = false, have_verify = false;
  data_option("listen", "HOST:PORT", "downstream listener for Exchange Online (TLS 1.2/1.3); port 0 = any free port",
              "listen.address", [&](const std::string& v) { o.listen = parse_host_port(v, "--listen"), have_listen = true; });
  std::vector<std::string> certs, keys;
  data_option("cert", "FILE",
              "PEM certificate served downstream: leaf first, then the chain. Repeat --cert/--key pairs to serve "
              "several names; the client's SNI picks one, the first pair is the default",
              "", [&](const std::string& v) {
                inv.origins["listen.certificate." + std::to_string(certs.size())] = "--cert " + v;
                certs.push_back(v);
              });
  data_option("key", "FILE", "PEM private key of the preceding --cert", "",
              [&](const std::string& v) { keys.push_back(v); });
  data_option("upstream", "HOST:PORT", "the Exchange 2007 server (TLS 1.0), e.g. owa.customer.example:443",
              "upstream.address",
              [&](const std::string& v) { o.upstream.address = parse_host_port(v, "--upstream", false), have_upstream = true; });
  data_option("upstream-tls", "VERSION", "lowest TLS version accepted from the upstream: 1.0 (default), 1.1 or 1.2",
              "upstream.tls_min", [&](const std::string& v) {
                parse_tls_version(v, "--upstream-tls");
                o.upstream.min_tls = v;
              });
  data_option("upstream-max-tls", "VERSION", "highest TLS version offered to the upstream (default 1.2)",
              "upstream.tls_max", [&](const std::string& v) {
                parse_tls_version(v, "--upstream-max-tls");
                o.upstream.max_tls = v;
              });
  data_option("upstream-ciphers", "LIST", "OpenSSL cipher list offered to the upstream (default: all this OpenSSL has)",
              "upstream.ciphers", [&](const std::string& v) { o.upstream.ciphers = v; });
  data_option("upstream-security-level", "N",
              "OpenSSL security level towards the upstream (default 0: TLS 1.0 and SHA-1 need it)",
              "upstream.security_level", [&](const std::string& v) {
                o.upstream.security_level =
                    check_security_level(parse_number(v, "--upstream-security-level"), "--upstream-security-level");
              });
  data_option("upstream-verify", "none|ca:FILE|pin:SHA256",
              "check the upstream's certificate against a CA file, or pin its SHA-256 fingerprint (for an old "
              "self-signed certificate), or not at all (a warning is logged)",
              "upstream.verify", [&](const std::string& v) {
                have_verify = true;
                parse_upstream_verify(v, "--upstream-verify", o.upstream);
              });
  data_option("upstream-sni", "NAME", "server name sent to the upstream (default: its host name)", "upstream.sni",
              [&](const std::string& v) { o.upstream.sni = v; });
  for (const auto& f : timeout_fields()) {
    scaled_clock::duration& field = o.timeouts.*f.member;
    data_option(f.option, "DURATION", std::string(f.help) + " (default " + format_duration(field) + ")",
                std::string("timeouts.") + f.key,
                [&field, name = f.option](const std::string& v) { field = parse_duration(v, std::string("--") + name); });
  }
  data_option("min-throughput", "BYTES/S",
              "end a body transfer slower than this over a whole --throughput-window (default 0 = off)",
              "timeouts.min_throughput", [&](const std::string& v) {
                o.timeouts.min_throughput = check_min_throughput(parse_number(v, "--min-throughput"), "--min-throughput");
              });
  data_option("log-format", "text|json", "access log lines: HAProxy-like text (default) or JSON", "log.format",
              [&](const std::string& v) { o.access_log = parse_log_format(v, "--log-format"); });
  data_option("response-header", "'NAME: VALUE'",
              "set a header on every response to the client (repeatable), e.g. 'Strict-Transport-Security: "
              "max-age=63072000' or 'X-Frame-Options: SAMEORIGIN'",
              "", [&](const std::string& v) {
                const auto colon = v.find(':');
                if (colon == std::string::npos) {
                  throw config_error("--response-header '" + v + "' must be 'Name: value', e.g. 'X-Frame-Options: SAMEORIGIN'");
                }
                const std::string name = v.substr(0, colon);
                std::string value = v.substr(colon + 1);
                value.erase(0, value.find_first_not_of(' '));
                check_response_header(name, value, "--response-header");
                o.response_headers.emplace_back(name, value);
              });
  args.option("threads", "N", "event-loop threads (default: one per core); overrides the config file's",
              [&](const std::string& v) {
                o.threads = check_threads(parse_number(v, "--threads"), "--threads");
                inv.threads_given = true;
                inv.origins["threads"] = "--threads";
              });
  args.option("time-scale", "N", "run every timeout N times faster (for rehearsals; default 1)",
              [&](const std::string& v) { o.time_scale = parse_number(v, "--time-scale"); });
  args.option("config", "FILE",
              "read every data-path setting from a TOML file (see proxy/exbridge.example.toml) instead of the "
              "flags above; only --threads and --time-scale may be added",
              [&](const std::string& v) { inv.config_file = v; });
  args.flag("check", "load the settings and certificates exactly as a start would, lint them, print one line per "
                     "finding and exit (never listens)",
            [&] { inv.check = true; });
  args.flag("probe-upstream", "with --check: one real TCP+TLS handshake with the upstream; prints the TLS version, "
                              "cipher and certificate, or why it failed",
            [&] { inv.probe_upstream = true; });
  args.epilog("Durations: 250ms, 30s, 15m, 1h. Once listening, exbridge prints one line on stdout:\n"
              "  listening https HOST:PORT\n"
              "--check exit status: 0 = clean, 1 = warnings only, 2 = errors (including any config or certificate\n"
              "error); a failed --probe-upstream is an error.\n");
  if (!args.parse(argc, argv)) return std::nullopt;
  if (inv.probe_upstream && !inv.check) throw config_error("--probe-upstream works only with --check");
  if (!inv.config_file.empty()) {
    if (!data_flags.empty()) {
      std::string given;
      for (const auto& f : data_flags) {
        if (given.find(f) == std::string::npos) given += (given.empty() ? "" : ", ") + f;
      }
      throw config_error("--config " + inv.config_file + " cannot be combined with " + given +
                         ": with a config file every data-path setting comes from the file (only --threads and "
                         "--time-scale may be added); move them into the file or drop --config");
    }
    return inv;
  }
  if (!have_listen) throw config_error("--listen is missing; e.g. --listen 0.0.0.0:443 (or use --config FILE)");
  if (!have_upstream) throw config_error("--upstream is missing; name the Exchange 2007 server, e.g. --upstream owa.customer.example:443");
  if (certs.empty() || keys.empty()) {
    throw config_error("--cert and --key are required: the certificate Exchange Online will see (e.g. Let's Encrypt "
                       "fullchain.pem and privkey.pem)");
  }
  if (certs.size() != keys.size()) {
    throw config_error("--cert and --key come in pairs: " + std::to_string(certs.size()) + " --cert but " +
                       std::to_string(keys.size()) + " --key");
  }
  o.identity = {.cert_file = certs[0], .key_file = keys[0]};
  for (std::size_t i = 1; i < certs.size(); ++i) o.sni_identities.push_back({.cert_file = certs[i], .key_file = keys[i]});
  if (!have_verify) {
    throw config_error("--upstream-verify is missing; use 'ca:/path/to/ca.pem' to check the Exchange 2007 certificate, "
                       "or 'none' to accept any (an old self-signed certificate)");
  }
  return inv;
}

bridge_options resolve_options(invocation& inv) {
  if (inv.config_file.empty()) return inv.options;
  auto loaded = load_config_file(inv.config_file);
  bridge_options o = std::move(loaded.options);
  for (auto& [key, origin] : loaded.origins) inv.origins.try_emplace(key, origin);  // --threads stays the flag's
  if (inv.threads_given) o.threads = inv.options.threads;
  o.time_scale = inv.options.time_scale;
  o.on_end = inv.options.on_end;
  return o;
}

std::optional<bridge_options> parse_command_line(int argc, char** argv) {
  auto inv = parse_invocation(argc, argv);
  if (!inv) return std::nullopt;
  return resolve_options(*inv);
}

route_match route_of(const bridge_options& o, std::string_view target) {
  const route_settings* best = nullptr;
  for (const auto& r : o.routes) {
    if (boost::algorithm::istarts_with(target, r.prefix) && (best == nullptr || r.prefix.size() > best->prefix.size())) {
      best = &r;
    }
  }
  route_match m{&o.upstream, 0, o.upstream.persistence, &o.timeouts, best};
  if (best == nullptr) return m;
  for (std::size_t i = 0; i < o.pools.size(); ++i) {
    if (o.pools[i].name == best->pool) m.pool = &o.pools[i], m.pool_index = i + 1;
  }
  m.persistence = best->persistence.value_or(m.pool->persistence);
  m.timeouts = &best->timeouts;
  return m;
}

}  // namespace exbridge::proxy
