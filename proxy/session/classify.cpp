// The termination classifier (see classify.hpp): outcome values in, {termination, status, detail} out.
#include "proxy/session/classify.hpp"

#include <type_traits>

namespace exbridge::proxy {

bool is_peer_close(const error_code& ec) {
  return ec == http::error::end_of_stream || ec == net::error::eof || ec == ssl::error::stream_truncated ||
         ec == net::error::connection_reset || ec == net::error::broken_pipe || ec == net::error::operation_aborted ||
         ec == net::error::bad_descriptor;
}

verdict classify(const handshake_outcome& o) {
  return {o.timed_out ? termination::downstream_handshake_timeout : termination::downstream_handshake_failed, 0,
          o.diagnosis};
}

verdict classify(const idle_outcome& o) {
  if (!o.first) return {termination::keep_alive_timeout, 0, ""};
  return {termination::client_idle_timeout, 0, "no request within " + format_duration(o.limit) + " of the TLS handshake"};
}

verdict classify(const head_outcome& o) {
  if (o.folded) return {termination::bad_request, 400, "obsolete line folding in the request headers"};
  if (o.ec) {
    if (o.timed_out) {
      return {termination::request_headers_timeout, 408,
              "the request headers did not arrive within " + format_duration(o.limit)};
    }
    if (is_peer_close(o.ec)) return {termination::client_closed_request, 0, o.ec.message()};
    return {termination::bad_request, o.ec == http::error::header_limit ? 431u : 400u, o.ec.message()};
  }
  if (o.rejected) return {termination::bad_request, static_cast<unsigned>(o.rejected->status), o.rejected->detail};
  return {termination::normal, 0, ""};
}

verdict classify(const no_server& o) {
  return {o.queue_timeout ? termination::upstream_queue_timeout : termination::upstream_unavailable, 503, o.detail};
}

verdict classify(const connect_result& o) {
  if (o.failed_at == connect_result::ok) return {termination::normal, 0, ""};
  const bool handshake = o.failed_at == connect_result::handshake;
  verdict v{termination::upstream_connect_failed, 503, o.to_string()};
  if (o.failed_at == connect_result::resolve) v.why = termination::upstream_resolve_failed;
  if (handshake) {
    v.why = termination::upstream_tls_failed;
    v.status = 502;
  }
  if (o.timed_out) {
    v.why = handshake ? termination::upstream_handshake_timeout : termination::upstream_connect_timeout;
    v.status = 504;
  }
  return v;
}

namespace {

using phase = exchange_outcome::phase;

/// The termination of a failed body relay. `reader_is_client`: the relay read from the client (the upload).
termination relay_failure(const exchange_outcome& o, const relay_outcome& r, bool reader_is_client) {
  if (r.too_slow) {
    return r.blame_reader == reader_is_client ? termination::client_too_slow : termination::upstream_too_slow;
  }
  if (r.failed_reading && is_malformed(r.ec)) {
    return reader_is_client ? termination::bad_request : termination::upstream_bad_response;
  }
  // The side that failed: the client when it was the one read from (upload) or written to (download).
  const bool client_side = r.failed_reading == reader_is_client;
  if (client_side) {
    if (o.fired.has(reader_is_client ? timeout_kind::client_read : timeout_kind::client_write)) {
      if (o.rpc) return termination::rpc_client_idle_timeout;
      return reader_is_client ? termination::request_body_timeout : termination::client_write_timeout;
    }
    return reader_is_client ? termination::client_closed_body : termination::client_closed_response;
  }
  if (o.fired.has(reader_is_client ? timeout_kind::upstream_write : timeout_kind::upstream_read)) {
    if (o.rpc) return termination::rpc_upstream_idle_timeout;
    return reader_is_client ? termination::upstream_write_timeout : termination::response_body_timeout;
  }
  return reader_is_client ? termination::upstream_write_failed : termination::upstream_closed_body;
}

std::string relay_detail(const exchange_outcome& o, const relay_outcome& r, termination why) {
  const struct timeouts& t = *o.timeouts;
  if (r.too_slow) {
    return "fewer than " + std::to_string(t.min_throughput) + " bytes/s over " + format_duration(t.throughput_window);
  }
  if (!is_timeout(why)) return r.ec.message();
  const bool client = info(why).code[0] == 'c';
  const auto idle = o.rpc ? t.rpc_idle : (client ? t.client_data : t.upstream_data);
  return std::string(client ? "the client" : "the upstream") + " moved no body byte for " + format_duration(idle);
}

}  // namespace

verdict classify(const exchange_outcome& o) {
  const struct timeouts& t = *o.timeouts;
  if (o.at == phase::request_header) return {termination::upstream_write_failed, 502, o.ec.message()};
  if (o.at == phase::done) {
    if (!o.request_sent) {
      return {termination::normal, 0, "the upstream answered before the request body ended; connection closed"};
    }
    return {termination::normal, 0, "", o.response_keep_alive && o.client_keep_alive};
  }
  const relay_outcome& up = o.upload;
  // The client failed (or stalled) first during its upload; the response half only followed.
  if (up.ec && !o.upload_stopped && (up.failed_reading || (up.too_slow && up.blame_reader))) {
    const termination why = relay_failure(o, up, true);
    // A malformed body: the client hears why, if nothing of the response reached it yet.
    const unsigned status = why == termination::bad_request && !o.response_started ? 400 : 0;
    return {why, status, relay_detail(o, up, why)};
  }
  switch (o.at) {
    case phase::response_headers: {
      if (o.fired.has(timeout_kind::response_headers)) {
        return {termination::response_headers_timeout, 504,
                "the upstream sent no response headers within " + format_duration(t.response_headers)};
      }
      if (o.fired.has(timeout_kind::upstream_write)) {  // it stopped taking the body
        return {o.rpc ? termination::rpc_upstream_idle_timeout : termination::upstream_write_timeout, 504,
                "the upstream took no request body byte for " + format_duration(o.rpc ? t.rpc_idle : t.upstream_data)};
      }
      if (up.ec && !o.upload_stopped) {  // the upstream stopped taking the request body
        const termination why = relay_failure(o, up, true);
        return {why, is_timeout(why) ? 504u : 502u, relay_detail(o, up, why)};
      }
      const termination why =
          is_peer_close(o.ec) ? termination::upstream_closed_before_response : termination::upstream_bad_response;
      return {why, 502, o.refused.empty() ? o.ec.message() : o.refused};
    }
    case phase::client_headers:
      return {o.fired.has(timeout_kind::client_write) ? termination::client_write_timeout
                                                      : termination::client_closed_response,
              0, o.ec.message()};
    case phase::response_body:
    case phase::request_header:
    case phase::done:
      break;
  }
  const termination why = relay_failure(o, o.download, false);
  return {why, 0, relay_detail(o, o.download, why)};
}

verdict classify(const outcome& o) {
  return std::visit([](const auto& x) { return classify(x); }, o);
}

}  // namespace exbridge::proxy
