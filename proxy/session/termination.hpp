// Why a request or connection ended: HAProxy's two-letter termination state (first letter: who ended it —
// C client, S server, P proxy, c/s client/server timeout; second: in which phase — R request, C connect,
// H response headers, D data) plus exbridge's fine-grained reason. Declared once, as data.
#pragma once

#include <cstddef>
#include <string_view>

namespace exbridge::proxy {

#define EXBRIDGE_TERMINATIONS(X)                                                    \
  X(normal, "--", "completed")                                                      \
  X(downstream_handshake_failed, "CR", "downstream-tls-handshake-failed")           \
  X(downstream_handshake_timeout, "cR", "downstream-tls-handshake-timeout")         \
  X(client_idle_timeout, "cR", "client-idle-timeout")                               \
  X(keep_alive_timeout, "cR", "keep-alive-idle-timeout")                            \
  X(client_closed_request, "CR", "client-closed-during-request-headers")           \
  X(client_closed_body, "CD", "client-closed-during-request-body")                 \
  X(client_closed_response, "CD", "client-closed-during-response")                 \
  X(bad_request, "PR", "malformed-request")                                         \
  X(request_headers_timeout, "cR", "request-headers-timeout")                       \
  X(request_body_timeout, "cD", "client-data-timeout")                              \
  X(client_write_timeout, "cD", "client-not-reading-timeout")                       \
  X(rpc_client_idle_timeout, "cD", "rpc-channel-client-idle-timeout")               \
  X(client_too_slow, "cD", "client-below-minimum-throughput")                       \
  X(upstream_unavailable, "SC", "no-upstream-server-available")                    \
  X(upstream_queue_timeout, "sQ", "upstream-queue-timeout")                         \
  X(upstream_resolve_failed, "SC", "upstream-name-not-resolved")                    \
  X(upstream_connect_failed, "SC", "upstream-connect-refused")                      \
  X(upstream_connect_timeout, "sC", "upstream-connect-timeout")                     \
  X(upstream_tls_failed, "SC", "upstream-tls-handshake-failed")                     \
  X(upstream_handshake_timeout, "sC", "upstream-tls-handshake-timeout")             \
  X(upstream_closed_before_response, "SH", "upstream-closed-before-response")       \
  X(upstream_bad_response, "PH", "upstream-malformed-response")                     \
  X(response_headers_timeout, "sH", "response-headers-timeout")                     \
  X(upstream_closed_body, "SD", "upstream-closed-during-response-body")             \
  X(response_body_timeout, "sD", "upstream-data-timeout")                           \
  X(upstream_write_timeout, "sD", "upstream-not-reading-timeout")                   \
  X(rpc_upstream_idle_timeout, "sD", "rpc-channel-server-idle-timeout")             \
  X(upstream_too_slow, "sD", "upstream-below-minimum-throughput")                   \
  X(upstream_write_failed, "SD", "upstream-closed-during-request")

enum class termination {
#define EXBRIDGE_X(name, code, reason) name,
  EXBRIDGE_TERMINATIONS(EXBRIDGE_X)
#undef EXBRIDGE_X
      count_
};

inline constexpr std::size_t termination_count = static_cast<std::size_t>(termination::count_);

struct termination_info {
  std::string_view code;    ///< HAProxy's two letters
  std::string_view reason;  ///< exbridge's reason, stable for logs, stats and tests
};

constexpr termination_info info(termination t) {
  switch (t) {
#define EXBRIDGE_X(name, code, reason) \
  case termination::name:              \
    return {code, reason};
    EXBRIDGE_TERMINATIONS(EXBRIDGE_X)
#undef EXBRIDGE_X
    case termination::count_:
      break;
  }
  return {"??", "unknown"};
}

/// Timeouts are the terminations whose first letter is lower case (HAProxy's convention).
constexpr bool is_timeout(termination t) { return info(t).code[0] == 'c' || info(t).code[0] == 's'; }

/// The named timers of one connection. Each data direction has its own, so that a timeout always says
/// which side went quiet: the client (request body, or not reading the response) or the upstream.
enum class timeout_kind {
  downstream_handshake,
  client_idle,        ///< a new connection with no request yet
  keep_alive_idle,    ///< between two requests
  request_headers,
  client_read,        ///< request body bytes from the client
  client_write,       ///< the client accepting response bytes
  upstream_connect,
  upstream_handshake,
  response_headers,
  upstream_read,      ///< response body bytes from the upstream
  upstream_write,     ///< the upstream accepting request body bytes
  count_
};

inline constexpr std::size_t timeout_kind_count = static_cast<std::size_t>(timeout_kind::count_);

}  // namespace exbridge::proxy
