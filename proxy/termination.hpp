// Why a request or connection ended: HAProxy's two-letter termination state (first letter: who ended it —
// C client, S server, P proxy, c/s client/server timeout; second: in which phase — R request, C connect,
// H response headers, D data) plus exbridge's fine-grained reason. Declared once, as data.
#pragma once

#include <string_view>

namespace exbridge::proxy {

#define EXBRIDGE_TERMINATIONS(X)                                                    \
  X(normal, "--", "completed")                                                      \
  X(client_closed_request, "CR", "client-closed-during-request-headers")           \
  X(client_closed_body, "CD", "client-closed-during-request-body")                 \
  X(client_closed_response, "CD", "client-closed-during-response")                 \
  X(bad_request, "PR", "malformed-request")                                         \
  X(request_headers_timeout, "cR", "request-headers-timeout")                       \
  X(request_body_timeout, "cD", "client-data-timeout")                              \
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
  X(upstream_write_failed, "SD", "upstream-closed-during-request")

enum class termination {
#define EXBRIDGE_X(name, code, reason) name,
  EXBRIDGE_TERMINATIONS(EXBRIDGE_X)
#undef EXBRIDGE_X
};

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
  }
  return {"??", "unknown"};
}

/// Timeouts are the terminations whose first letter is lower case (HAProxy's convention).
constexpr bool is_timeout(termination t) { return info(t).code[0] == 'c' || info(t).code[0] == 's'; }

/// The named timeouts; each maps to its own termination above.
enum class timeout_kind {
  downstream_handshake,
  keep_alive_idle,
  request_headers,
  downstream_data,
  upstream_connect,
  upstream_handshake,
  response_headers,
  upstream_data,
};

}  // namespace exbridge::proxy
