// HAProxy as proxy under test: preparation (lint, lab rewrite) and diagnosis from its log.
#include "rehearse/peers/haproxy/haproxy_peer.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <regex>
#include <set>
#include <sstream>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "common/errors.hpp"
#include "common/net.hpp"

namespace exbridge::rehearse {
namespace {

/// `timeout NAME` as the user wrote it (a backend's or listen's own value first, then defaults), with its line.
std::pair<std::string, int> user_timeout(const prepared_haproxy& h, const std::string& name) {
  std::pair<std::string, int> from_defaults{"", 0};
  for (const auto& section : h.config.sections) {
    for (const auto& line : section.lines) {
      if (line.keyword != "timeout" || line.args.size() < 2 || line.args[0] != name) continue;
      if (section.kind == "defaults") from_defaults = {line.args[1], line.number};
      else return {line.args[1], line.number};
    }
  }
  return from_defaults;
}

std::string describe_timeout(const prepared_haproxy& h, const std::string& name) {
  const auto [value, line] = user_timeout(h, name);
  if (value.empty()) return "'timeout " + name + "' (not set)";
  return "'timeout " + name + " " + value + "' (" + at_line(h.user_config, line) + ")";
}

struct httplog_entry {
  std::string server;
  int status = 0;
  std::string termination;  // HAProxy's 4-character termination state, e.g. "SC--"
  std::string request;
  std::string tls_error;  // bc_err_str and the OpenSSL reason of ssl_bc_err (the lab's log format adds them)
};

/// The `option httplog` lines of a log excerpt.
std::vector<httplog_entry> parse_httplog(const std::string& log) {
  static const std::regex line_re(
      R"re(\] \S+ (\S+) -?\d+/-?\d+/-?\d+/-?\d+/\+?-?\d+ (-?\d+) \+?\d+ \S+ \S+ ([-A-Za-z]{4}) \S+ \S+ "([^"]*)"(?: bc_err="([^"]*)" ssl_bc_err=([0-9A-Fa-f]*))?)re");
  std::vector<httplog_entry> out;
  std::istringstream in(log);
  for (std::string line; std::getline(in, line);) {
    std::smatch m;
    if (!std::regex_search(line, m, line_re)) continue;
    httplog_entry e{m[1], std::stoi(m[2]), m[3], m[4], ""};
    if (m[5].matched && !m[5].str().empty() && m[5].str() != "-") {
      e.tls_error = m[5];
      const unsigned long code = m[6].str().empty() ? 0 : std::stoul(m[6].str(), nullptr, 16);
      OPENSSL_init_ssl(OPENSSL_INIT_LOAD_SSL_STRINGS, nullptr);  // libssl's reason strings, e.g. for 0A00014D
      if (const char* reason = code == 0 ? nullptr : ERR_reason_error_string(code)) {
        e.tls_error += std::string(" (OpenSSL: ") + reason + ")";
      }
    }
    out.push_back(std::move(e));
  }
  return out;
}

std::string last_line_containing(const std::string& log, const std::string& needle) {
  std::string found;
  std::istringstream in(log);
  for (std::string line; std::getline(in, line);) {
    if (line.find(needle) != std::string::npos) found = line;
  }
  return found;
}

}  // namespace

bool has_request_log(const std::string& log) { return !parse_httplog(log).empty(); }

prepared_haproxy prepare_haproxy(const process_spec& process, const std::vector<std::string>& upstreams,
                                 const std::string& upstream_name, const lab_pki& pki,
                                 const std::filesystem::path& run_dir, double time_scale) {
  prepared_haproxy out;
  out.program = find_peer_program(process.name, process.program, "haproxy");
  out.user_config = process.config;
  out.config = load_haproxy_config(process.config);
  out.findings = lint_haproxy_config(out.config);

  // The lab serves HAProxy a PEM with the bridge certificate, its chain and key, as `crt` expects.
  const auto pem = run_dir / (process.name + ".pem");
  const std::filesystem::path cert = process.cert.empty() ? pki.bridge_cert : std::filesystem::path(process.cert);
  const std::filesystem::path key = process.key.empty() ? pki.bridge_key : std::filesystem::path(process.key);
  write_file(pem, read_file(cert) + read_file(key), true);
  haproxy_lab lab;
  lab.bind_address = "127.0.0.1:" + std::to_string(free_loopback_port());
  lab.bridge_pem = pem.string();
  lab.upstream_addresses = upstreams;
  lab.ca_file = pki.ca_cert.string();
  lab.time_scale = time_scale;
  lab.upstream_name = upstream_name;
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_max != RLIM_INFINITY) lab.fd_limit = limit.rlim_max;
  lab.tls_error_log = true;
  const haproxy_rewrite rewritten = rewrite_haproxy_for_lab(out.config, lab);
  out.changes = rewritten.changes;
  out.lab_config = run_dir / (process.name + ".cfg");
  write_file(out.lab_config, rewritten.text);

  // -Ws: master-worker mode with systemd's readiness protocol, the only way HAProxy says it is ready.
  static std::atomic<unsigned> serial{0};
  out.ready.notify_socket = "@exbridge-rehearse-" + std::to_string(::getpid()) + "-" + std::to_string(++serial);
  out.ready.address = parse_host_port(lab.bind_address, "haproxy bind");
  out.args = {"-Ws", "-f", out.lab_config.string()};
  out.args.insert(out.args.end(), process.args.begin(), process.args.end());
  return out;
}

probe_result diagnose_through_haproxy(probe_result result, const std::string& step_log, const std::string& whole_log,
                                      const prepared_haproxy& haproxy) {
  if (result.outcome == "ok") return result;
  const auto entries = parse_httplog(step_log);
  // The first request HAProxy did not complete normally explains the step.
  const httplog_entry* culprit = nullptr;
  for (const auto& e : entries) {
    if (e.termination.substr(0, 2) != "--") {
      culprit = &e;
      break;
    }
  }
  const std::string where = culprit ? " (HAProxy logged " + std::to_string(culprit->status) + " " +
                                          culprit->termination + " for \"" + culprit->request + "\")"
                                    : std::string();
  const std::string term = culprit ? culprit->termination.substr(0, 2) : std::string();

  if (term == "SC") {
    // SC covers refused connections and failed TLS handshakes alike; the health check's reason and the
    // config tell them apart (the default httplog line carries no TLS error).
    const std::string down = last_line_containing(whole_log, " is DOWN, reason: ");
    const auto* seclevel = find_code(haproxy.findings, "tls10-needs-seclevel0");
    const bool layer4 = down.find("Layer4") != std::string::npos;
    const bool tls = !culprit->tls_error.empty() || down.find("Layer6") != std::string::npos;
    if (tls || (!layer4 && seclevel != nullptr)) {
      const std::string check = down.empty() ? std::string() : down.substr(down.find("reason: ") + 8);
      std::string why = "HAProxy could not complete its TLS handshake with Exchange 2007" +
                        (!culprit->tls_error.empty() ? ": " + culprit->tls_error
                         : check.empty()             ? std::string()
                                                     : " (health check: " + check.substr(0, check.find(", check duration")) + ")") +
                        where;
      if (seclevel != nullptr && culprit->tls_error.find("certificate") == std::string::npos) {
        why += "; " + at_line(haproxy.user_config, seclevel->line) +
               " forces TLS 1.0 without security level 0: OpenSSL 3 refuses the MD5+SHA-1 signed ECDHE key exchange "
               "a TLS 1.0 server sends; fix: " + seclevel->fix;
      }
      return {"upstream-tls-failure", why};
    }
    return {"connect-failed", "HAProxy could not connect to Exchange 2007" + where +
                                  (down.empty() ? std::string() : "; health check: " + down.substr(down.find("reason: ") + 8)) +
                                  "; check the server line's address and that the server is up"};
  }
  if (term == "sH") {
    return {"proxy-timeout", "HAProxy's " + describe_timeout(haproxy, "server") +
                                 " expired before Exchange answered" + where +
                                 "; fix: raise it above the server's longest think time (a large mailbox's GetItem)"};
  }
  if (term == "cR" || term == "cH") {
    return {"proxy-timeout", "HAProxy's " + describe_timeout(haproxy, "http-request") +
                                 " expired while the client sent its request" + where};
  }
  if (term == "sD" || term == "cD") {
    const std::string which = term == "sD" ? "server" : "client";
    return {"proxy-idle-timeout", "HAProxy's " + describe_timeout(haproxy, which) + " cut a transfer that was idle on the " +
                                      which + " side" + where + "; fix: raise it above Outlook Anywhere's 15-minute "
                                      "keep-alive (1h for /rpc/, or 'timeout tunnel 1h')"};
  }
  // A client-side classification stands; point at the config line that explains it, if any.
  if (result.outcome == "ntlm-connection-broken") {
    if (const auto* f = find_code(haproxy.findings, "http-server-close-breaks-ntlm")) {
      result.explanation += "; the cause is " + at_line(haproxy.user_config, f->line) + ": " + f->fix;
    } else if (const auto* r = find_code(haproxy.findings, "http-reuse-shares-ntlm")) {
      result.explanation += "; the cause is " + at_line(haproxy.user_config, r->line) + ": " + r->fix;
    }
  }
  if (!where.empty() && result.explanation.find("HAProxy logged") == std::string::npos) result.explanation += where;
  return result;
}

}  // namespace exbridge::rehearse
