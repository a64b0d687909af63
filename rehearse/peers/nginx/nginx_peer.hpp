// The user's nginx as the proxy under test: lint their nginx.conf, rewrite it for the lab (listeners, certificates,
// upstreams, names, time scale), and explain failed steps from nginx's error log, which says why it refused a
// request or cut a channel.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "common/lab_pki.hpp"
#include "rehearse/clients/exo_connection.hpp"
#include "rehearse/peers/nginx/nginx_config.hpp"
#include "rehearse/peers/peer.hpp"
#include "rehearse/runner/scenario_file.hpp"

namespace exbridge::rehearse {

struct prepared_nginx : prepared_peer {
  nginx_config config;  ///< the user's file, parsed
  std::filesystem::path error_log;  ///< where the lab copy writes nginx's error log
};

/// Lints and rewrites the process's nginx.conf into `run_dir`, and says how to start it (ready when its TLS
/// listener accepts). Throws skip_scenario when nginx is not installed, config_error when the file cannot be
/// read or parsed.
prepared_nginx prepare_nginx(const process_spec& process, const std::vector<std::string>& upstreams,
                             const std::string& upstream_name, const lab_pki& pki, const std::filesystem::path& run_dir,
                             double time_scale);

/// Explains a failed step that went through nginx from the error-log lines written during the step.
probe_result diagnose_through_nginx(probe_result result, const std::string& step_log, const prepared_nginx& nginx);

}  // namespace exbridge::rehearse
