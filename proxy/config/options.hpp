// exbridge's settings: where to listen, which certificate to serve, which Exchange 2007 server to reach
// and how, and every timeout (virtual durations on the scaled clock). Filled from the command line now;
// the TOML config file of the operations issue fills the same struct.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/cli.hpp"
#include "common/clock.hpp"
#include "common/tls_context.hpp"
#include "proxy/session/termination.hpp"

namespace exbridge::proxy {

/// Every timeout of the data path. Exchange-safe defaults: nothing on a data path at or below the 900 s
/// Outlook Anywhere keep-alive ping (proxy-anchors.md §3.4; exchange-protocols.md §5.3).
struct timeouts {
  scaled_clock::duration downstream_handshake = std::chrono::seconds(30);
  scaled_clock::duration client_idle = std::chrono::seconds(60);         ///< new connection, before its first request
  scaled_clock::duration request_headers = std::chrono::seconds(60);     ///< slowloris guard, from the first byte
  scaled_clock::duration keep_alive_idle = std::chrono::minutes(20);     ///< between requests on one connection
  scaled_clock::duration upstream_connect = std::chrono::seconds(30);
  scaled_clock::duration upstream_handshake = std::chrono::seconds(30);
  scaled_clock::duration response_headers = std::chrono::minutes(20);    ///< server think time (big mailboxes)
  scaled_clock::duration client_data = std::chrono::minutes(20);         ///< client silent, or not reading, on a body
  scaled_clock::duration upstream_data = std::chrono::minutes(20);       ///< upstream silent, or not reading, on a body
  scaled_clock::duration rpc_idle = std::chrono::hours(1);               ///< either side of an /rpc/ channel
  /// Optional minimum-throughput watchdog on bodies: fewer than min_throughput bytes/s over a whole window
  /// ends the request (0 = off). Catches trickling transfers that never trip an inactivity timer.
  std::uint64_t min_throughput = 0;
  scaled_clock::duration throughput_window = std::chrono::minutes(1);
};

/// Active health checks of a pool's servers: L4 (TCP connect), L6 (TLS handshake, as a session makes it) or
/// L7 (an HTTP request over TLS; the status must fall in [status_min, status_max]). A server goes down after
/// `fall` failed checks in a row and comes back after `rise` good ones.
enum class check_type { none, tcp, tls, http };
struct health_check_settings {
  check_type type = check_type::none;
  scaled_clock::duration interval = std::chrono::seconds(5);
  scaled_clock::duration timeout = std::chrono::seconds(3);
  unsigned rise = 2;
  unsigned fall = 3;
  std::string path = "/owa/";  ///< http: GET this path (no credentials)
  unsigned status_min = 200;
  unsigned status_max = 499;   ///< 401 counts as alive: IIS challenges for credentials before anything else
};

/// How a pool picks a server for a new upstream connection. Each keeps the server for the connection's life
/// (NTLM is bound to it). The IN and OUT channels of one Outlook Anywhere session must meet on one server:
/// `cookie` places them by their virtual connection's cookie even when they come from different addresses or a
/// channel is replaced on a new connection; `source` only when they come from one address.
enum class persistence {
  connection,  ///< round robin: each new upstream connection goes to the next healthy server
  source,      ///< by client address: every connection of one client address goes to one server
  cookie,      ///< Outlook Anywhere channels by their virtual connection's cookie (vc_pairing.hpp), others by source
};

/// One upstream pool: its servers and how exbridge speaks TLS to them. [upstream] is the pool named
/// "default"; [[pool]] tables add more, and [[route]] tables send paths to them.
struct upstream_settings {
  std::string name = "default";
  host_port address;                     ///< the first server (quick mode: the only one)
  std::vector<host_port> servers;        ///< every server, first = address; empty = just address
  std::string sni;                       ///< empty = each server's host when it is a name
  std::string min_tls = "1.0";
  std::string max_tls = "1.2";
  std::string ciphers;                   ///< OpenSSL cipher list; empty = everything this OpenSSL has
  int security_level = 0;                ///< OpenSSL security level; TLS 1.0 needs 0
  tls_verify verify = tls_verify::ca_file;
  std::string ca_file;
  std::string pin_sha256;                ///< with tls_verify::pin: the certificate's SHA-256 (hex)
  enum persistence persistence = persistence::cookie;
  health_check_settings check;
  unsigned max_connections_per_server = 0;  ///< 0 = no limit; above it new connections queue
  scaled_clock::duration queue_timeout = std::chrono::seconds(30);  ///< queued longer -> 503
  unsigned retries = 2;                  ///< connection attempts on other servers after a failed one
};

/// The pool's servers, in order (address alone when servers is empty).
std::vector<host_port> pool_servers(const upstream_settings& u);

/// Requests whose path starts with `prefix` (case-insensitive; the longest prefix wins) go to `pool`,
/// under `timeouts` (the global ones with this route's overrides) and, when set, this route's persistence.
struct route_settings {
  std::string prefix;
  std::string pool = "default";
  std::optional<enum persistence> persistence;
  struct timeouts timeouts;  ///< the global [timeouts] with this route's [route.timeouts] on top
};

/// The admin listener: stats page, JSON and Prometheus /metrics, behind Basic auth.
struct admin_settings {
  std::optional<host_port> address;  ///< nullopt = no admin listener
  std::string user;
  std::string password;
  tls_identity identity;  ///< empty = plain HTTP (keep it on loopback then)
};

enum class log_format { text, json };

struct bridge_options {
  host_port listen{"0.0.0.0", 443};
  /// Set on every final response to the client, replacing the upstream's (X-Frame-Options, HSTS, ...).
  std::vector<std::pair<std::string, std::string>> response_headers;
  tls_identity identity;                  ///< the default certificate (clients without SNI, or no match)
  std::vector<tls_identity> sni_identities;  ///< further certificates, chosen by the client's SNI
  upstream_settings upstream;              ///< the default pool
  std::vector<upstream_settings> pools;    ///< further named pools ([[pool]])
  std::vector<route_settings> routes;      ///< path prefixes to pools ([[route]])
  std::vector<host_port> also_listen;      ///< further listening addresses, same certificates and settings
  unsigned max_connections = 0;            ///< downstream connections at once per listener; 0 = no limit
  admin_settings admin;
  /// Certificate files are checked for changes this often (Let's Encrypt renewals); 0 = only on SIGHUP.
  std::chrono::seconds certificate_watch = std::chrono::seconds(10);
  std::chrono::seconds drain_timeout = std::chrono::seconds(30);  ///< SIGTERM: how long open pairs may finish
  std::string user, group, chroot_dir;     ///< privileges dropped after binding (empty = stay)
  log_format access_log = log_format::text;
  struct timeouts timeouts;
  unsigned threads = 0;  ///< 0 = one event loop thread per core
  /// Called after each termination is counted, on the connection's strand (tests wait on it).
  std::function<void(termination)> on_end;
  /// Called when a client connection has ended, both of its legs closed (tests wait on it).
  std::function<void()> on_connection_closed;
  /// Called when a health check marks a server up or down: (pool, server "host:port", up). Tests wait on it.
  std::function<void(const std::string&, const std::string&, bool)> on_server_state;
  double time_scale = 1;
};

/// Where a request goes: the longest route prefix matching `target` (case-insensitive), else the default pool.
struct route_match {
  const upstream_settings* pool;
  std::size_t pool_index;  ///< 0 = [upstream], i = pools[i - 1]
  enum persistence persistence;
  const struct timeouts* timeouts;
  const route_settings* route;  ///< null = no route matched
};
route_match route_of(const bridge_options& o, std::string_view target);

/// One timeout of struct timeouts, by its names on the command line ("timeout-client-data") and in the
/// config file's [timeouts] table ("client_data"). The one list both readers and the linter walk.
struct timeout_field {
  const char* option;
  const char* key;
  scaled_clock::duration timeouts::*member;
  const char* help;
};
const std::vector<timeout_field>& timeout_fields();

// Validation shared by the command line and the config file: each throws config_error naming `what`
// (the flag, or the file's key) with the fix. (Whole-number ranges -- threads, security level, minimum
// throughput -- are checked in the file by toml_whole_number, which also refuses fractions and strings.)
/// "none", "ca:FILE" or "pin:SHA256" into u.verify / u.ca_file / u.pin_sha256.
void parse_upstream_verify(const std::string& text, const std::string& what, upstream_settings& u);
/// A header set on every response: a token name and a non-empty value without CR/LF.
void check_response_header(const std::string& name, const std::string& value, const std::string& what);
log_format parse_log_format(const std::string& text, const std::string& what);

/// Where each setting came from, for --check's messages: "FILE:LINE" for the config file, "--flag" for the
/// command line. Keys: "threads", "listen.address", "listen.certificate.N", "upstream.verify", "upstream.address",
/// "timeouts.client_data", ... (absent = the default).
using setting_origins = std::map<std::string, std::string>;

/// What the command line asked for: quick-mode options, or a config file to read (see config_file.hpp).
struct invocation {
  bridge_options options;       ///< quick mode: complete; with --config: only --threads/--time-scale applied
  setting_origins origins;
  std::string config_file;      ///< empty = quick mode
  bool threads_given = false;   ///< --threads overrides the file's threads
  bool check = false;           ///< --check: load, lint, report, exit (never listen)
  bool probe_upstream = false;  ///< --check --probe-upstream: one real handshake with the upstream
};

/// Parses exbridge's command line without reading --config. Returns nullopt when --help was printed.
/// Throws config_error (missing quick-mode flags, --config mixed with data-path flags).
std::optional<invocation> parse_invocation(int argc, char** argv);

/// The options to run with: quick mode's as parsed, or the config file's with --threads/--time-scale
/// applied. Fills inv.origins from the file. Throws config_error naming FILE:LINE.
bridge_options resolve_options(invocation& inv);

/// parse_invocation + resolve_options. Returns nullopt when --help was printed. Throws config_error.
std::optional<bridge_options> parse_command_line(int argc, char** argv);

}  // namespace exbridge::proxy
