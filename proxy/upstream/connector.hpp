// Opening a connection to one Exchange server: resolve and TCP connect within the connect timeout, then the
// TLS handshake within the handshake timeout (SNI and the name check before it; after it the classified
// failure or the pin check). Sessions, health checks and `exbridge --check --probe-upstream` all connect
// through here, on the same TLS stream (common/tls_socket.hpp), so a probe or a check that passes means
// sessions will pass.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "common/clock.hpp"
#include "common/net.hpp"
#include "common/tls_diagnosis.hpp"
#include "common/tls_socket.hpp"
#include "proxy/config/options.hpp"
#include "proxy/upstream/pool.hpp"

namespace exbridge::proxy {

/// What a connection attempt to one server ended with (sessions, health checks and --probe-upstream).
struct connect_result {
  enum stage { ok, resolve, connect, handshake } failed_at = ok;
  bool timed_out = false;
  error_code ec;
  std::optional<tls_diagnosis> tls;  ///< failed_at == handshake: the classified failure
  std::string message;               ///< one sentence: what failed (empty when ok)
  std::string fix;                   ///< resolve/connect: what to check (the TLS diagnosis has its own hint)
  std::string to_string() const { return fix.empty() ? message : message + "; " + fix; }
};

/// The name sent as SNI and checked in the certificate: the pool's sni, else the server's host.
std::string upstream_server_name(const upstream_settings& u, const host_port& server);

/// Resolves `server` and connects `socket` to it within `limit` (one deadline for both).
net::awaitable<connect_result> connect_server(tcp::socket& socket, const server_state& server,
                                              scaled_clock::duration limit);

/// The TLS handshake with `server` as every connection to it makes it (SNI, name or pin check, the server's
/// session cache for resumption), within `limit`; a failure comes back classified.
net::awaitable<connect_result> handshake_server(tls_socket& stream, server_state& server, const upstream_settings& u,
                                                scaled_clock::duration limit);

/// When each step of an attempt ended (steady clock), for the access log's timers and the histograms.
struct connect_timing {
  std::chrono::steady_clock::time_point connected;                  ///< TCP connect done (or failed)
  std::optional<std::chrono::steady_clock::time_point> handshaken;  ///< TLS handshake done (or failed), if tried
};

/// Sessions' connector: a new TLS connection to `server` in `stream` (emplaced), TCP within
/// t.upstream_connect, TLS within t.upstream_handshake. The session's unit tests put a scripted connector in
/// its place.
struct tls_connector {
  net::awaitable<connect_result> open(std::optional<tls_socket>& stream, const net::any_io_executor& executor,
                                      upstream_pool& pool, server_state& server, const struct timeouts& t,
                                      connect_timing& timing);
};

}  // namespace exbridge::proxy
