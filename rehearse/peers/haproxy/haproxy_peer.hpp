// The user's HAProxy as the proxy under test: lint their haproxy.cfg, rewrite it for the lab (addresses,
// certificates, log target, time scale), and explain failed steps from what HAProxy logged -- HAProxy's
// own answer (a bare 503) says nothing about why, its log and the config do.
#pragma once

#include <filesystem>
#include <string>
#include <vector>


#include "common/lab_pki.hpp"
#include "rehearse/clients/exo_client.hpp"
#include "rehearse/peers/haproxy/haproxy_config.hpp"
#include "rehearse/peers/peer.hpp"
#include "rehearse/runner/process_supervisor.hpp"
#include "rehearse/runner/scenario_file.hpp"

namespace exbridge::rehearse {

struct prepared_haproxy : prepared_peer {
  haproxy_config config;  ///< the user's file, parsed
};

/// Lints and rewrites the process's haproxy.cfg into `run_dir`, and says how to start it. Throws
/// skip_scenario when haproxy is not installed, config_error when the file cannot be read.
/// `upstreams` are the lab Exchange servers the server lines reach, in order; `upstream_name` is the name on
/// the lab Exchange certificate (the server line's SNI/verifyhost).
prepared_haproxy prepare_haproxy(const process_spec& process, const std::vector<std::string>& upstreams,
                                 const std::string& upstream_name, const lab_pki& pki,
                                 const std::filesystem::path& run_dir, double time_scale);

/// Whether a log excerpt holds at least one request line (HAProxy writes it when the stream ends, a
/// moment after the client has its answer).
bool has_request_log(const std::string& log);

/// Explains a failed step that went through HAProxy from the log lines it wrote during the step
/// (`step_log`), its whole log (health-check state changes) and the lint findings.
probe_result diagnose_through_haproxy(probe_result result, const std::string& step_log, const std::string& whole_log,
                                      const prepared_haproxy& haproxy);

}  // namespace exbridge::rehearse
