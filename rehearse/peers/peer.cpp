// Shared parts of the peer proxies under test: program lookup, lab ports, lint verdicts.
#include "rehearse/peers/peer.hpp"

#include <unistd.h>

#include <fstream>
#include <random>
#include <set>

#include "common/net.hpp"
#include "rehearse/runner/process_supervisor.hpp"

namespace exbridge::rehearse {

std::filesystem::path find_peer_program(const std::string& process_name, const std::string& program,
                                        const std::string& debian_package) {
  const std::filesystem::path found =
      std::filesystem::path(program).is_absolute() ? std::filesystem::path(program) : find_on_path(program);
  if (found.empty() || ::access(found.c_str(), X_OK) != 0) {
    throw skip_scenario("process '" + process_name + "' needs " + program + ", which is not installed; install it (apt-get install " +
                        debian_package + ") to rehearse this scenario");
  }
  return found;
}

lab_target lab_target_for(const process_spec& process, const std::vector<std::string>& upstreams,
                          const std::string& upstream_name, const lab_pki& pki, double time_scale) {
  lab_target t;
  t.cert = process.cert.empty() ? pki.bridge_cert.string() : process.cert;
  t.key = process.key.empty() ? pki.bridge_key.string() : process.key;
  t.upstream_addresses = upstreams;
  t.ca_file = pki.ca_cert.string();
  t.upstream_name = upstream_name;
  t.time_scale = time_scale;
  return t;
}

// A port for a peer whose config names its own (HAProxy, stunnel): free now, and below the kernel's ephemeral
// range. Port 0 would hand out an ephemeral port, which any outgoing connection on the machine (a test beside
// this one opening thousands) may take before the peer binds it: "Address already in use".
unsigned short free_loopback_port() {
  unsigned low = 32768;
  if (std::ifstream range("/proc/sys/net/ipv4/ip_local_port_range"); !(range >> low) || low <= 11000) low = 32768;
  net::io_context ioc;
  std::minstd_rand pick(std::random_device{}());
  for (int attempt = 0; attempt < 200; ++attempt) {
    const auto port = static_cast<unsigned short>(10000 + pick() % (low - 10000));
    tcp::acceptor probe(ioc);
    error_code ec;
    probe.open(tcp::v4(), ec);
    if (!ec) probe.bind(tcp::endpoint(net::ip::make_address("127.0.0.1"), port), ec);
    if (!ec) return port;
  }
  tcp::acceptor probe(ioc, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
  return probe.local_endpoint().port();
}

std::string at_line(const std::filesystem::path& user_config, int line) {
  return user_config.filename().string() + (line > 0 ? " line " + std::to_string(line) : std::string());
}

const config_finding* find_code(const std::vector<config_finding>& findings, const std::string& code) {
  for (const auto& f : findings) {
    if (f.code == code) return &f;
  }
  return nullptr;
}

lint_report summarize_lint(const std::filesystem::path& user_config, const std::vector<config_finding>& findings,
                           const std::vector<std::string>& expected_codes, bool has_expected) {
  lint_report r;
  std::size_t errors = 0, warnings = 0;
  std::string lines;
  std::set<std::string> found;
  for (const auto& f : findings) {
    (f.severity == "error" ? errors : warnings) += 1;
    found.insert(f.code);
    lines += "\n          " + f.severity + (f.severity == "error" ? "   " : " ") + at_line(user_config, f.line) + ": " +
             f.code + ": " + f.message + "; fix: " + f.fix;
  }
  r.outcome = errors > 0 ? "config-errors" : warnings > 0 ? "config-warnings" : "ok";
  r.explanation = user_config.string() + ": " + std::to_string(errors) + " error(s), " + std::to_string(warnings) +
                  " warning(s)" + lines;
  if (has_expected) {
    const std::set<std::string> want(expected_codes.begin(), expected_codes.end());
    r.codes_match = want == found;
    if (!r.codes_match) {
      std::string missing, extra;
      for (const auto& c : want) {
        if (found.count(c) == 0) missing += " " + c;
      }
      for (const auto& c : found) {
        if (want.count(c) == 0) extra += " " + c;
      }
      r.explanation += "\n          expected findings differ:" + (missing.empty() ? "" : " missing" + missing) +
                       (extra.empty() ? "" : " unexpected" + extra);
    }
  }
  return r;
}

}  // namespace exbridge::rehearse
