// stunnel as proxy under test: preparation (lint, lab rewrite) and diagnosis from its log.
#include "rehearse/peers/stunnel/stunnel_peer.hpp"

#include <sstream>

#include "common/errors.hpp"

namespace exbridge::rehearse {

prepared_stunnel prepare_stunnel(const process_spec& process, const std::vector<std::string>& upstreams,
                                 const std::string& upstream_name, const lab_pki& pki,
                                 const std::filesystem::path& run_dir, double time_scale) {
  prepared_stunnel out;
  out.program = find_peer_program(process.name, process.program, "stunnel4");
  out.user_config = process.config;
  out.config = load_stunnel_config(process.config);
  out.findings = lint_stunnel_config(out.config);
  stunnel_lab lab;
  static_cast<lab_target&>(lab) = lab_target_for(process, upstreams, upstream_name, pki, time_scale);
  lab.accept_address = "127.0.0.1:" + std::to_string(free_loopback_port());
  lab.internal_address = [] { return "127.0.0.1:" + std::to_string(free_loopback_port()); };
  const auto rewritten = rewrite_stunnel_for_lab(out.config, lab);
  out.changes = rewritten.changes;
  out.lab_config = run_dir / (process.name + ".conf");
  write_file(out.lab_config, rewritten.text);
  // stunnel prints "Configuration successful" before it binds, so readiness is its public port listening.
  out.ready.listen_probe = true;
  out.ready.address = parse_host_port(lab.accept_address, "stunnel accept");
  out.args = {out.lab_config.string()};
  out.args.insert(out.args.end(), process.args.begin(), process.args.end());
  return out;
}

probe_result diagnose_through_stunnel(probe_result result, const std::string& step_log, const prepared_stunnel& stunnel) {
  if (result.outcome == "ok") return result;
  // stunnel 5 logs a failed client-side handshake as "LOG3[n]: SSL_connect: <OpenSSL reason>" and a refused
  // connection as "LOG3[n]: s_connect: connect ...: Connection refused".
  std::istringstream in(step_log);
  std::string tls, refused;
  for (std::string line; std::getline(in, line);) {
    if (tls.empty() && line.find("SSL_connect") != std::string::npos) tls = line.substr(line.find("SSL_connect"));
    if (refused.empty() && line.find("s_connect: connect") != std::string::npos) refused = line.substr(line.find("s_connect"));
  }
  if (!tls.empty()) {
    std::string why = "stunnel could not complete its TLS handshake with Exchange 2007 (" + tls + ")";
    for (const char* code : {"upstream-tls-above-1.0", "tls10-needs-seclevel0"}) {
      if (const auto* f = find_code(stunnel.findings, code)) {
        why += "; " + at_line(stunnel.user_config, f->line) + ": " + f->fix;
        break;
      }
    }
    return {"upstream-tls-failure", why, result.items, result.bytes};
  }
  if (!refused.empty()) {
    return {"connect-failed", "stunnel could not connect to Exchange 2007 (" + refused +
                                  "); check the client = yes service's connect address and that the server is up",
            result.items, result.bytes};
  }
  return result;
}

}  // namespace exbridge::rehearse
