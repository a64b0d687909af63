// exbridge's settings: where to listen, which certificate to serve, which Exchange 2007 server to reach
// and how, and every timeout (virtual durations on the scaled clock). Filled from the command line now;
// the TOML config file of the operations issue fills the same struct.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/cli.hpp"
#include "common/clock.hpp"
#include "common/tls_context.hpp"

namespace exbridge::proxy {

/// Every timeout of the data path. Exchange-safe defaults: nothing on a data path at or below the 900 s
/// Outlook Anywhere keep-alive ping (proxy-anchors.md §3.4; exchange-protocols.md §5.3).
struct timeouts {
  scaled_clock::duration downstream_handshake = std::chrono::seconds(30);
  scaled_clock::duration request_headers = std::chrono::seconds(60);     ///< slowloris guard, from first byte
  scaled_clock::duration keep_alive_idle = std::chrono::minutes(20);     ///< between requests on one connection
  scaled_clock::duration upstream_connect = std::chrono::seconds(30);
  scaled_clock::duration upstream_handshake = std::chrono::seconds(30);
  scaled_clock::duration response_headers = std::chrono::minutes(20);    ///< server think time (big mailboxes)
  scaled_clock::duration data_idle = std::chrono::minutes(20);           ///< no byte either way on a body
};

struct upstream_settings {
  host_port address;
  std::string sni;                       ///< empty = the upstream host when it is a name
  std::string min_tls = "1.0";
  std::string max_tls = "1.2";
  tls_verify verify = tls_verify::ca_file;
  std::string ca_file;
};

struct bridge_options {
  host_port listen{"0.0.0.0", 443};
  /// Set on every final response to the client, replacing the upstream's (X-Frame-Options, HSTS, ...).
  std::vector<std::pair<std::string, std::string>> response_headers;
  tls_identity identity;
  upstream_settings upstream;
  struct timeouts timeouts;
  unsigned threads = 0;  ///< 0 = one event loop thread per core
  double time_scale = 1;
};

/// Parses exbridge's command line. Returns nullopt when --help was printed. Throws config_error.
std::optional<bridge_options> parse_command_line(int argc, char** argv);

}  // namespace exbridge::proxy
