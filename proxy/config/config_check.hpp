// exbridge --check: loads the settings (config file or quick-mode flags) and the certificates exactly as a
// start would, without binding the listener, then lints what would bite a migration later:
//   timeout-at-ping-edge     a keep-alive/data/rpc timeout within 10 % of Outlook Anywhere's 720 s
//                            (client->server) or 900 s (server->client) ping: idle channels race the timer
//   timeout-below-ping       (error) rpc_idle, client_data or upstream_data below 720 s: every idle channel dies
//   verify-none              the Exchange 2007 certificate is not checked
//   certificate-expires-soon fewer than 14 days left (a migration batch runs for days)
//   fd-limit                 hard RLIMIT_NOFILE below 4096 (two descriptors per client connection)
//   max-connections-above-fd-limit (error) listen.max_connections needs more descriptors than the hard limit
//   no-health-check          a pool with several servers and no health check
//   rpc-channels-split       /rpc/ over several servers without source persistence (IN/OUT channels split)
//   admin-plaintext          the admin listener off loopback without TLS
// One line per finding, "WHERE: warning|error: CODE: message; fix: ...", then a summary line. Exit status:
// 0 clean, 1 warnings only, 2 errors (any config or certificate error, a failed --probe-upstream).
#pragma once

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include <openssl/x509.h>

#include "proxy/config/options.hpp"

namespace exbridge::proxy {

enum class severity { warning, error };

struct finding {
  severity level = severity::warning;
  std::string where;  ///< "FILE:LINE", "--flag", or empty (the process, a default value)
  std::string code;   ///< stable kebab-case name, e.g. "timeout-at-ping-edge"
  std::string message;
  std::string fix;    ///< empty when the message already says it
  std::string to_string() const;  ///< "WHERE: warning: CODE: message; fix: fix"
};

/// The two timing lints. `file_mode` picks the names used in messages ("timeouts.client_data" or
/// "--timeout-client-data").
/// `table` is where the timeouts come from: "timeouts", or a route's "route./rpc/.timeouts" (then only the
/// keys the route sets itself are linted).
std::vector<finding> lint_timeouts(const timeouts& t, const setting_origins& origins, bool file_mode,
                                   const std::string& table = "timeouts");
/// no-health-check (several servers, no check), rpc-channels-split (/rpc/ over several servers without
/// source persistence).
std::vector<finding> lint_pools(const bridge_options& o, const setting_origins& origins);
/// max-connections-above-fd-limit: `hard_limit` is the hard RLIMIT_NOFILE.
std::optional<finding> lint_connection_limit(unsigned max_connections, std::uint64_t hard_limit,
                                             const setting_origins& origins);
/// admin-plaintext: an admin listener off loopback without TLS.
std::optional<finding> lint_admin(const admin_settings& a, const setting_origins& origins);
std::optional<finding> lint_upstream_verify(const upstream_settings& u, const setting_origins& origins);
/// `soft_limit`: the process's soft RLIMIT_NOFILE.
std::optional<finding> lint_fd_limit(std::uint64_t soft_limit);

/// What --check and --probe-upstream print about a certificate.
struct certificate_facts {
  std::string subject, issuer;  ///< RFC 2253
  std::string not_after;        ///< "2027-02-24 10:00 UTC"
  int days_left = 0;            ///< negative once expired
};
certificate_facts describe_certificate(X509* cert);
std::optional<finding> lint_certificate_expiry(const certificate_facts& facts, const std::string& file,
                                               const std::string& where);

/// 0 = no finding, 1 = warnings only, 2 = any error.
int check_exit_code(const std::vector<finding>& findings);
/// "config OK: NAME", "config OK with 2 warnings: NAME", "config has 1 error and 2 warnings: NAME".
std::string check_summary(const std::vector<finding>& findings, const std::string& name);

/// A start-up error (certificate, key, bind) located for the administrator: prefixed with the FILE:LINE of
/// the [[listen.certificate]] whose file the message names, else with the config file; unchanged in quick mode.
std::string locate_startup_error(const std::string& message, const bridge_options& options,
                                 const setting_origins& origins, const std::string& config_file);

/// The whole --check (and --probe-upstream): prints findings and the summary on `out`, returns the exit status.
int run_check(invocation& inv, std::ostream& out);

}  // namespace exbridge::proxy
