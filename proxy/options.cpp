// exbridge command-line parsing (quick mode: one listener, one upstream).
#include "proxy/options.hpp"

#include "common/errors.hpp"

namespace exbridge::proxy {

std::optional<bridge_options> parse_command_line(int argc, char** argv) {
  bridge_options o;
  bool have_listen = false, have_upstream = false, have_verify = false;
  arg_parser args("exbridge", "--listen HOST:PORT --cert FILE --key FILE --upstream HOST:PORT [options]");
  args.option("listen", "HOST:PORT", "downstream listener for Exchange Online (TLS 1.2/1.3); port 0 = any free port",
              [&](const std::string& v) { o.listen = parse_host_port(v, "--listen"), have_listen = true; });
  std::vector<std::string> certs, keys;
  args.option("cert", "FILE",
              "PEM certificate served downstream: leaf first, then the chain. Repeat --cert/--key pairs to serve "
              "several names; the client's SNI picks one, the first pair is the default",
              [&](const std::string& v) { certs.push_back(v); });
  args.option("key", "FILE", "PEM private key of the preceding --cert", [&](const std::string& v) { keys.push_back(v); });
  args.option("upstream", "HOST:PORT", "the Exchange 2007 server (TLS 1.0), e.g. owa.customer.example:443",
              [&](const std::string& v) { o.upstream.address = parse_host_port(v, "--upstream", false), have_upstream = true; });
  args.option("upstream-tls", "VERSION", "lowest TLS version accepted from the upstream: 1.0 (default), 1.1 or 1.2",
              [&](const std::string& v) {
                parse_tls_version(v, "--upstream-tls");
                o.upstream.min_tls = v;
              });
  args.option("upstream-max-tls", "VERSION", "highest TLS version offered to the upstream (default 1.2)",
              [&](const std::string& v) {
                parse_tls_version(v, "--upstream-max-tls");
                o.upstream.max_tls = v;
              });
  args.option("upstream-ciphers", "LIST", "OpenSSL cipher list offered to the upstream (default: all this OpenSSL has)",
              [&](const std::string& v) { o.upstream.ciphers = v; });
  args.option("upstream-security-level", "N",
              "OpenSSL security level towards the upstream (default 0: TLS 1.0 and SHA-1 need it)",
              [&](const std::string& v) {
                const double n = parse_number(v, "--upstream-security-level");
                if (n < 0 || n > 5 || n != static_cast<int>(n)) {
                  throw config_error("--upstream-security-level must be 0..5; TLS 1.0 needs 0");
                }
                o.upstream.security_level = static_cast<int>(n);
              });
  args.option("upstream-verify", "none|ca:FILE|pin:SHA256",
              "check the upstream's certificate against a CA file, or pin its SHA-256 fingerprint (for an old "
              "self-signed certificate), or not at all (a warning is logged)",
              [&](const std::string& v) {
                have_verify = true;
                if (v == "none") {
                  o.upstream.verify = tls_verify::none;
                } else if (v.rfind("ca:", 0) == 0 && v.size() > 3) {
                  o.upstream.verify = tls_verify::ca_file;
                  o.upstream.ca_file = v.substr(3);
                } else if (v.rfind("pin:", 0) == 0) {
                  o.upstream.verify = tls_verify::pin;
                  o.upstream.pin_sha256 = normalize_pin(v.substr(4), "--upstream-verify pin");
                } else {
                  throw config_error("--upstream-verify '" + v +
                                     "' is not understood; use 'ca:/path/to/ca.pem', 'pin:SHA256-FINGERPRINT' or 'none'");
                }
              });
  args.option("upstream-sni", "NAME", "server name sent to the upstream (default: its host name)",
              [&](const std::string& v) { o.upstream.sni = v; });
  const auto timeout_option = [&](const char* name, scaled_clock::duration& field, const char* help) {
    args.option(name, "DURATION", std::string(help) + " (default " + format_duration(field) + ")",
                [&field, name](const std::string& v) { field = parse_duration(v, std::string("--") + name); });
  };
  timeout_option("timeout-downstream-handshake", o.timeouts.downstream_handshake, "downstream TLS handshake");
  timeout_option("timeout-client-idle", o.timeouts.client_idle, "new connection without a request");
  timeout_option("timeout-request-headers", o.timeouts.request_headers, "receiving a request's headers");
  timeout_option("timeout-keep-alive", o.timeouts.keep_alive_idle, "idle client connection between requests");
  timeout_option("timeout-upstream-connect", o.timeouts.upstream_connect, "TCP connect to the upstream");
  timeout_option("timeout-upstream-handshake", o.timeouts.upstream_handshake, "upstream TLS handshake");
  timeout_option("timeout-response-headers", o.timeouts.response_headers, "upstream think time before response headers");
  timeout_option("timeout-client-data", o.timeouts.client_data,
                 "client sends no request body byte, or takes no response byte");
  timeout_option("timeout-upstream-data", o.timeouts.upstream_data,
                 "upstream sends no response body byte, or takes no request byte");
  timeout_option("timeout-rpc-idle", o.timeouts.rpc_idle,
                 "either side of an Outlook Anywhere /rpc/ channel silent (keep above the 900 s RPC ping)");
  args.option("min-throughput", "BYTES/S",
              "end a body transfer slower than this over a whole --throughput-window (default 0 = off)",
              [&](const std::string& v) {
                const double n = parse_number(v, "--min-throughput");
                if (n < 0) throw config_error("--min-throughput must be 0 (off) or a rate in bytes per second");
                o.timeouts.min_throughput = static_cast<std::uint64_t>(n);
              });
  timeout_option("throughput-window", o.timeouts.throughput_window, "window of the --min-throughput watchdog");
  args.option("log-format", "text|json", "access log lines: HAProxy-like text (default) or JSON",
              [&](const std::string& v) {
                if (v == "text") o.access_log = log_format::text;
                else if (v == "json") o.access_log = log_format::json;
                else throw config_error("--log-format '" + v + "' is not understood; use 'text' or 'json'");
              });
  args.option("response-header", "'NAME: VALUE'",
              "set a header on every response to the client (repeatable), e.g. 'Strict-Transport-Security: "
              "max-age=63072000' or 'X-Frame-Options: SAMEORIGIN'",
              [&](const std::string& v) {
                const auto colon = v.find(':');
                const std::string name = v.substr(0, colon);
                std::string value = colon == std::string::npos ? "" : v.substr(colon + 1);
                value.erase(0, value.find_first_not_of(' '));
                const bool token = !name.empty() && name.find_first_of(" \t\r\n()<>@,;:\\\"/[]?={}") == std::string::npos;
                if (colon == std::string::npos || !token || value.empty() ||
                    value.find_first_of("\r\n") != std::string::npos) {
                  throw config_error("--response-header '" + v + "' must be 'Name: value', e.g. 'X-Frame-Options: SAMEORIGIN'");
                }
                o.response_headers.emplace_back(name, value);
              });
  args.option("threads", "N", "event-loop threads (default: one per core)", [&](const std::string& v) {
    const double n = parse_number(v, "--threads");
    if (n < 1 || n > 256) throw config_error("--threads must be between 1 and 256");
    o.threads = static_cast<unsigned>(n);
  });
  args.option("time-scale", "N", "run every timeout N times faster (for rehearsals; default 1)",
              [&](const std::string& v) { o.time_scale = parse_number(v, "--time-scale"); });
  args.epilog("Durations: 250ms, 30s, 15m, 1h. Once listening, exbridge prints one line on stdout:\n"
              "  listening https HOST:PORT\n");
  if (!args.parse(argc, argv)) return std::nullopt;
  if (!have_listen) throw config_error("--listen is missing; e.g. --listen 0.0.0.0:443");
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
  return o;
}

}  // namespace exbridge::proxy
