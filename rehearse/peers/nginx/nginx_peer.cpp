// nginx as proxy under test: preparation (lint, lab rewrite) and diagnosis from its error log.
#include "rehearse/peers/nginx/nginx_peer.hpp"

#include <sstream>

#include "common/errors.hpp"

namespace exbridge::rehearse {

prepared_nginx prepare_nginx(const process_spec& process, const std::vector<std::string>& upstreams,
                             const std::string& upstream_name, const lab_pki& pki, const std::filesystem::path& run_dir,
                             double time_scale) {
  prepared_nginx out;
  out.program = find_peer_program(process.name, process.program, "nginx-light");
  out.user_config = process.config;
  out.config = load_nginx_config(process.config);
  out.findings = lint_nginx_config(out.config);
  nginx_lab lab;
  static_cast<lab_target&>(lab) = lab_target_for(process, upstreams, upstream_name, pki, time_scale);
  lab.listen_address = "127.0.0.1:" + std::to_string(free_loopback_port());
  lab.run_dir = std::filesystem::absolute(run_dir);
  lab.spare_address = [] { return "127.0.0.1:" + std::to_string(free_loopback_port()); };
  const auto rewritten = rewrite_nginx_for_lab(out.config, lab);
  out.changes = rewritten.changes;
  out.lab_config = lab.run_dir / (process.name + ".conf");
  out.error_log = lab.run_dir / "nginx-error.log";
  write_file(out.lab_config, rewritten.text);
  out.ready.listen_probe = true;
  out.ready.address = parse_host_port(lab.listen_address, "nginx listen");
  // -p: the prefix for relative paths; -e: the error log before the config's own is read.
  out.args = {"-p", lab.run_dir.string(), "-e", out.error_log.string(), "-c", out.lab_config.string()};
  out.args.insert(out.args.end(), process.args.begin(), process.args.end());
  return out;
}

probe_result diagnose_through_nginx(probe_result result, const std::string& step_log, const prepared_nginx& nginx) {
  if (result.outcome == "ok") return result;
  const auto with = [&](std::string outcome, std::string why, const char* code) {
    if (const auto* f = find_code(nginx.findings, code)) why += "; " + at_line(nginx.user_config, f->line) + ": " + f->fix;
    probe_result r{std::move(outcome), std::move(why), result.items, result.bytes};
    r.metrics = result.metrics;
    return r;
  };
  // nginx's error log: "[error] ... client intended to send too large body: 1073741824 bytes", "upstream timed out
  // (110: Connection timed out) while reading upstream", "client timed out ... while reading client request body",
  // "SSL_do_handshake() failed (SSL: ...) while SSL handshaking to upstream".
  if (result.outcome == "ntlm-connection-broken") {
    // No log line says it: open-source nginx simply has no way to keep a client on one server connection.
    if (const auto* f = find_code(nginx.findings, "ntlm-not-bound")) {
      return with(result.outcome, result.explanation + "; through nginx this is by design: " + f->message, "ntlm-not-bound");
    }
  }
  std::istringstream in(step_log);
  for (std::string line; std::getline(in, line);) {
    const auto quote = [&](const char* marker) {
      const auto at = line.find(marker);
      return line.substr(at, line.find(", client:", at) - at);
    };
    if (line.find("client intended to send too large body") != std::string::npos) {
      return with("request-too-large", "nginx refused the request body's size (" + quote("client intended") + ")",
                  "body-size-limit");
    }
    if (line.find("while SSL handshaking to upstream") != std::string::npos) {
      return with("upstream-tls-failure",
                  "nginx could not complete its TLS handshake with Exchange 2007 (" + quote("SSL_do_handshake") + ")",
                  "tls10-needs-seclevel0");
    }
    if (line.find("upstream timed out") != std::string::npos && line.find("while reading upstream") != std::string::npos) {
      return with("proxy-idle-timeout", "nginx closed a channel that was quiet for its proxy_read_timeout (" +
                                            quote("upstream timed out") + ")",
                  "read-timeout");
    }
    if (line.find("client timed out") != std::string::npos && line.find("request body") != std::string::npos) {
      return with("proxy-idle-timeout", "nginx closed the IN channel between two of the client's pings (" +
                                            quote("client timed out") + ")",
                  "body-timeout");
    }
  }
  return result;
}

}  // namespace exbridge::rehearse
