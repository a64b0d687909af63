// What every peer proxy under test shares (the user's HAProxy, the user's stunnel): skipping a scenario when
// the peer is not installed, a loopback port for its lab listener, and the lint step's verdict.
#pragma once

#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/lab_pki.hpp"
#include "rehearse/peers/config_finding.hpp"
#include "rehearse/peers/lab_target.hpp"
#include "rehearse/runner/scenario_file.hpp"
#include "rehearse/runner/process_supervisor.hpp"

namespace exbridge::rehearse {

/// A peer program the scenario needs is not installed: the scenario is skipped, with this reason.
class skip_scenario : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A peer ready to start: its program and arguments, how it signals readiness, the user's config and the lab
/// copy that runs, what the lint found in the user's file and what the lab rewrite changed.
struct prepared_peer {
  std::filesystem::path program;
  std::vector<std::string> args;
  readiness ready;
  std::filesystem::path user_config;  ///< the file as the user wrote it
  std::filesystem::path lab_config;   ///< what runs in the lab
  std::vector<config_finding> findings;
  std::vector<std::string> changes;   ///< what the lab rewrite changed, one line each
};

/// The installed peer program: an absolute path as is, else found on PATH (or /usr/sbin). Throws
/// skip_scenario naming the Debian package to install when it is missing.
std::filesystem::path find_peer_program(const std::string& process_name, const std::string& program,
                                        const std::string& debian_package);

/// What a peer's lab rewrite points at: the process's own cert/key or the lab bridge's, the lab upstreams, CA,
/// name and time scale.
lab_target lab_target_for(const process_spec& process, const std::vector<std::string>& upstreams,
                          const std::string& upstream_name, const lab_pki& pki, double time_scale);

/// A free loopback port for a peer's listener. Peers that cannot report a port they picked themselves get
/// one taken here and released just before they bind it (a short window; loopback only).
unsigned short free_loopback_port();

/// The result of a lint step: "ok", "config-warnings" or "config-errors", every finding on its own line.
/// With `expected_codes` (has_expected), the step also fails unless the codes found are exactly those.
struct lint_report {
  std::string outcome;
  std::string explanation;
  bool codes_match = true;
};
lint_report summarize_lint(const std::filesystem::path& user_config, const std::vector<config_finding>& findings,
                           const std::vector<std::string>& expected_codes, bool has_expected);

/// "FILE line N" (or just FILE for a whole-file finding), for messages about a user's config.
std::string at_line(const std::filesystem::path& user_config, int line);

/// The finding with this code, or nullptr.
const config_finding* find_code(const std::vector<config_finding>& findings, const std::string& code);

}  // namespace exbridge::rehearse
