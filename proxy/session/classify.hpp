// How a request or connection ended, decided in one place: every stage of a downstream connection reports
// what happened as a value (an outcome: errors, which timers fired, how far each half of the exchange got),
// and classify() maps it to the termination code, the status the client is told (if it can still be told
// anything) and the detail for the access log. A pure function: the table in tests/unit/proxy/ reaches every
// termination code without a socket.
#pragma once

#include <bitset>
#include <optional>
#include <string>
#include <variant>

#include "common/net.hpp"
#include "proxy/config/options.hpp"
#include "proxy/session/http_checks.hpp"
#include "proxy/session/relay.hpp"
#include "proxy/session/termination.hpp"
#include "proxy/upstream/connector.hpp"
#include "proxy/upstream/pool.hpp"

namespace exbridge::proxy {

/// The timers of a connection that have fired, as a value.
class fired_timers {
 public:
  fired_timers() = default;
  fired_timers(std::initializer_list<timeout_kind> kinds) {
    for (const auto k : kinds) add(k);
  }
  void add(timeout_kind k) { bits_.set(static_cast<std::size_t>(k)); }
  void add(const std::optional<timeout_kind>& k) {
    if (k) add(*k);
  }
  bool has(timeout_kind k) const { return bits_.test(static_cast<std::size_t>(k)); }

 private:
  std::bitset<timeout_kind_count> bits_;
};

/// The downstream TLS handshake failed (the session has already diagnosed the TLS failure).
struct handshake_outcome {
  bool timed_out = false;
  std::string diagnosis;
};

/// A connection idled out before its first request, or between two requests.
struct idle_outcome {
  bool first = true;  ///< no request yet on this connection
  scaled_clock::duration limit{};
};

/// Reading and checking a request's header block failed.
struct head_outcome {
  error_code ec;
  bool folded = false;                        ///< obsolete line folding (refused before parsing)
  bool timed_out = false;                     ///< the request-headers timer ended the read
  std::optional<request_rejection> rejected;  ///< parsed, but refused by check_request_header
  scaled_clock::duration limit{};             ///< the request-headers timeout
};

/// One request/response exchange: the request half (the client's body to the upstream) and the response
/// half (interim responses, then the final one to the client), as far as each got.
struct exchange_outcome {
  /// Where the response half stopped.
  enum class phase {
    request_header,    ///< writing the request header upstream failed (ec)
    response_headers,  ///< no usable response header (ec, or `refused` says why it was refused)
    client_headers,    ///< writing the response header to the client failed (ec)
    response_body,     ///< relaying the response body failed (download)
    done,              ///< the response reached the client whole
  };
  phase at = phase::done;
  bool rpc = false;  ///< an Outlook Anywhere channel (/rpc/): the RPC idle timeout applies
  const struct timeouts* timeouts = nullptr;
  fired_timers fired;
  error_code ec;        ///< request_header, response_headers, client_headers
  std::string refused;  ///< response_headers: why the upstream's header was refused
  // The request half.
  relay_outcome upload;
  bool upload_stopped = false;    ///< the response half ended the exchange first and stopped the upload
  bool request_sent = false;      ///< the whole request, body included, reached the upstream
  bool response_started = false;  ///< the final response's header arrived
  // The response half.
  relay_outcome download;
  bool response_keep_alive = false;  ///< the upstream keeps its connection (done only)
  bool client_keep_alive = false;    ///< the client asked to keep its connection
};

/// Every outcome classify() decides on.
using outcome = std::variant<handshake_outcome, idle_outcome, head_outcome, no_server, connect_result, exchange_outcome>;

struct verdict {
  termination why = termination::normal;
  unsigned status = 0;  ///< the error response the client gets; 0 = none (nothing to say, or too late to say it)
  std::string detail;
  bool keep_alive = false;  ///< the connection carries another request (a completed exchange only)
};

verdict classify(const handshake_outcome& o);
verdict classify(const idle_outcome& o);
verdict classify(const head_outcome& o);
verdict classify(const no_server& o);
verdict classify(const connect_result& o);
verdict classify(const exchange_outcome& o);
verdict classify(const outcome& o);

/// An error that means the peer went away (closed, reset, or the connection was closed under the operation).
bool is_peer_close(const error_code& ec);

}  // namespace exbridge::proxy
