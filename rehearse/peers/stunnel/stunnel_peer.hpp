// The user's stunnel as the proxy under test: lint their stunnel.conf, rewrite it for the lab (addresses,
// certificates, names, time scale), and explain failed steps from stunnel's log -- stunnel only closes the
// client's connection when its TLS 1.0 handshake with Exchange 2007 fails; its log says why.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "common/lab_pki.hpp"
#include "rehearse/clients/exo_connection.hpp"
#include "rehearse/peers/peer.hpp"
#include "rehearse/runner/process_supervisor.hpp"
#include "rehearse/runner/scenario_file.hpp"
#include "rehearse/peers/stunnel/stunnel_config.hpp"

namespace exbridge::rehearse {

struct prepared_stunnel : prepared_peer {
  stunnel_config config;  ///< the user's file, parsed
};

/// Lints and rewrites the process's stunnel.conf into `run_dir`, and says how to start it (ready when its
/// public port listens). Throws skip_scenario when stunnel is not installed, config_error when the file
/// cannot be read or parsed.
prepared_stunnel prepare_stunnel(const process_spec& process, const std::vector<std::string>& upstreams,
                                 const std::string& upstream_name, const lab_pki& pki,
                                 const std::filesystem::path& run_dir, double time_scale);

/// Explains a failed step that went through stunnel from the log lines it wrote during the step.
probe_result diagnose_through_stunnel(probe_result result, const std::string& step_log, const prepared_stunnel& stunnel);

}  // namespace exbridge::rehearse
