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
  args.option("cert", "FILE", "PEM certificate served downstream: leaf first, then the chain",
              [&](const std::string& v) { o.identity.cert_file = v; });
  args.option("key", "FILE", "PEM private key of --cert", [&](const std::string& v) { o.identity.key_file = v; });
  args.option("upstream", "HOST:PORT", "the Exchange 2007 server (TLS 1.0), e.g. owa.customer.example:443",
              [&](const std::string& v) { o.upstream.address = parse_host_port(v, "--upstream", false), have_upstream = true; });
  args.option("upstream-tls", "VERSION", "lowest TLS version accepted from the upstream: 1.0 (default), 1.1 or 1.2",
              [&](const std::string& v) {
                parse_tls_version(v, "--upstream-tls");
                o.upstream.min_tls = v;
              });
  args.option("upstream-verify", "none|ca:FILE",
              "check the upstream's certificate against a CA file, or not at all (a warning is logged)",
              [&](const std::string& v) {
                have_verify = true;
                if (v == "none") {
                  o.upstream.verify = tls_verify::none;
                } else if (v.rfind("ca:", 0) == 0 && v.size() > 3) {
                  o.upstream.verify = tls_verify::ca_file;
                  o.upstream.ca_file = v.substr(3);
                } else {
                  throw config_error("--upstream-verify '" + v + "' is not understood; use 'none' or 'ca:/path/to/ca.pem'");
                }
              });
  args.option("upstream-sni", "NAME", "server name sent to the upstream (default: its host name)",
              [&](const std::string& v) { o.upstream.sni = v; });
  const auto timeout_option = [&](const char* name, scaled_clock::duration& field, const char* help) {
    args.option(name, "DURATION", std::string(help) + " (default " + format_duration(field) + ")",
                [&field, name](const std::string& v) { field = parse_duration(v, std::string("--") + name); });
  };
  timeout_option("timeout-downstream-handshake", o.timeouts.downstream_handshake, "downstream TLS handshake");
  timeout_option("timeout-request-headers", o.timeouts.request_headers, "receiving a request's headers");
  timeout_option("timeout-keep-alive", o.timeouts.keep_alive_idle, "idle client connection between requests");
  timeout_option("timeout-upstream-connect", o.timeouts.upstream_connect, "TCP connect to the upstream");
  timeout_option("timeout-upstream-handshake", o.timeouts.upstream_handshake, "upstream TLS handshake");
  timeout_option("timeout-response-headers", o.timeouts.response_headers, "upstream think time before response headers");
  timeout_option("timeout-data-idle", o.timeouts.data_idle, "no body byte in either direction");
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
  if (o.identity.cert_file.empty() || o.identity.key_file.empty()) {
    throw config_error("--cert and --key are required: the certificate Exchange Online will see (e.g. Let's Encrypt "
                       "fullchain.pem and privkey.pem)");
  }
  if (!have_verify) {
    throw config_error("--upstream-verify is missing; use 'ca:/path/to/ca.pem' to check the Exchange 2007 certificate, "
                       "or 'none' to accept any (an old self-signed certificate)");
  }
  return o;
}

}  // namespace exbridge::proxy
