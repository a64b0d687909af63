// The administrator's own exbridge.toml as the proxy under test: rewritten for the lab as haproxy.cfg, stunnel.conf
// and nginx.conf are (listener, certificate, upstream servers of the default upstream and every pool, SNI, CA;
// process settings that need the machine -- user, group, chroot, the admin listener -- left out), and run with the
// scenario's --time-scale always, so that its timers run on the rehearsal's clock. Its own --check is its lint.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "common/lab_pki.hpp"
#include "rehearse/peers/peer.hpp"
#include "rehearse/runner/scenario_file.hpp"

namespace exbridge::rehearse {

struct exbridge_rewrite {
  std::string text;
  std::vector<std::string> changes;
};

/// The lab copy of an exbridge.toml (its text parsed as TOML; config_error with the line for a file that is not).
exbridge_rewrite rewrite_exbridge_for_lab(const std::filesystem::path& user_config, const lab_target& lab,
                                          const std::string& listen_address);

/// Rewrites the process's exbridge.toml into `run_dir` and says how to start it (`exbridge --config LAB
/// --time-scale S`, ready on its readiness line).
prepared_peer prepare_exbridge(const process_spec& process, const std::filesystem::path& program,
                               const std::vector<std::string>& upstreams, const std::string& upstream_name,
                               const lab_pki& pki, const std::filesystem::path& run_dir, double time_scale);

}  // namespace exbridge::rehearse
