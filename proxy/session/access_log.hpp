// The access log: one line per request, HAProxy-like, with timers, bytes, status, the two-letter
// termination code plus exbridge's reason, the TLS of both legs, auth scheme and pinning.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "proxy/config/options.hpp"
#include "proxy/session/termination.hpp"

namespace exbridge::proxy {

struct request_record {
  std::string client;
  std::string method = "-";
  std::string target = "-";
  unsigned status = 0;  ///< 0 = no response was sent
  std::uint64_t bytes_from_client = 0;  ///< request body bytes
  std::uint64_t bytes_to_client = 0;    ///< response bytes on the wire (headers and body)
  std::chrono::steady_clock::time_point started;
  long t_handshake = -1;  ///< the connection's downstream TLS handshake (ms), repeated on each of its requests
  long t_request = -1, t_connect = -1, t_upstream_tls = -1, t_response = -1, t_total = -1;  ///< ms from start
  termination end = termination::normal;
  std::string detail;
  std::string auth_scheme = "-";
  std::string down_tls = "-";
  std::string up_tls = "-";
  std::string server = "-";  ///< "pool/host:port" that served it
  bool pinned = false;
  /// Outlook Anywhere channels: how the server was chosen -- "cookie" (by the virtual connection's cookie, no
  /// channel of it placed yet), "cookie-joined" (the server a channel of its virtual connection went to),
  /// "cookie-moved:SERVER" (that server was down: placed elsewhere), "ntlm-bound" (the client connection was
  /// already bound to its server by NTLM), "ntlm-conflict:SERVER" (so bound, to another server than its virtual
  /// connection's), "no-cookie" (the first PDU names no virtual connection), "source" (source persistence).
  std::string pairing = "-";
  std::string vc = "-";  ///< the virtual connection cookie's first 8 hex digits
  std::uint64_t upstream_requests = 0;  ///< how many requests the upstream connection has carried

  long elapsed_ms() const {
    return static_cast<long>(
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count());
  }
};

/// Formats the line (exposed for tests): HAProxy-like text, with the timers as Th/TR/Tc/Ts/Tr/Tt in ms.
std::string format_access_line(const request_record& r);

/// The same record as one JSON object (for log shippers); field names are stable.
std::string format_access_json(const request_record& r);

/// Writes the record to the log in the chosen format.
void log_access(const request_record& r, log_format format);

}  // namespace exbridge::proxy
