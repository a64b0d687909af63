// One request/response exchange between a client and its upstream connection, both directions at once, and
// what each half got to, as an exchange_outcome for classify().
//
// Full duplex (why): the response is read while the request body is still being sent. An upstream may
// answer before the body ends (IIS refuses an EWS body over 30,000,000 bytes at once; a 401 can come first),
// and a client sending "Expect: 100-continue" (.NET, hence Exchange Online) waits for the interim 100
// before it sends its body. A sequential relay would deadlock or turn such answers into 502s.
//
// Timers (why): each direction of each leg has its own watchdog, so a timeout names the side that went
// quiet. The response-headers timer starts only once the request is fully sent: HAProxy's `timeout server`
// firing during slow uploads (issues #949, #1681) blames the server for a slow client.
#pragma once

#include <boost/asio/experimental/awaitable_operators.hpp>

#include "common/net.hpp"
#include "common/watchdog.hpp"
#include "proxy/config/options.hpp"
#include "proxy/session/access_log.hpp"
#include "proxy/session/classify.hpp"
#include "proxy/session/http_checks.hpp"
#include "proxy/session/relay.hpp"
#include "proxy/stats/live.hpp"
#include "proxy/upstream/connection.hpp"

namespace exbridge::proxy {

/// How much of a response header is read at once: room for a whole small response, so that a 1 KiB answer
/// reaches the client as one TLS record.
inline constexpr std::size_t response_read_size = 16 * 1024;

/// The client's side of a connection: its stream, its read buffer and its two watchdogs. A downstream
/// timeout cancels the pending operations but keeps the connection, so that the client can still be told
/// why (408, 504); the session then ends and the connection closes with it.
template <class Stream>
struct downstream_side {
  explicit downstream_side(Stream& s)
      : stream(s), read_timer(s.get_executor(), [this] { stream.cancel(); }),
        write_timer(s.get_executor(), [this] { stream.cancel(); }) {}
  downstream_side(const downstream_side&) = delete;
  downstream_side& operator=(const downstream_side&) = delete;
  Stream& stream;
  beast::flat_buffer buffer;
  watchdog<timeout_kind> read_timer;   ///< the client is to send (handshake, request, body; idle between requests)
  watchdog<timeout_kind> write_timer;  ///< the client is to take bytes
};

template <class Stream, class Connector>
class exchange {
 public:
  exchange(downstream_side<Stream>& down, upstream_connection<Stream, Connector>& up, live_connection& live,
           const bridge_options& options, const struct timeouts& t, request_record& rec, bool rpc)
      : down_(down), up_(up), live_(live), options_(options), t_(t), rec_(rec) {
    o_.rpc = rpc;
    o_.timeouts = &t;
  }
  exchange(const exchange&) = delete;
  exchange& operator=(const exchange&) = delete;

  /// Relays the request whose header `parser` has read (and whatever of its body the downstream buffer holds)
  /// and the upstream's answer. The request header goes at once unless body bytes are already here: then
  /// they leave together (one record) -- except before a chunked body, whose trailer fields Beast would add
  /// to the waiting header.
  net::awaitable<exchange_outcome> run(http::request_parser<http::buffer_body>& parser) {
    auto& req = parser.get();
    http::request_serializer<http::buffer_body> sr{req};
    if (parser.is_done() || down_.buffer.size() == 0 || header_goes_first(parser.chunked())) {
      auto armed = up_.write_timer().scoped(upstream_idle(), timeout_kind::upstream_write);
      auto [wec, wn] = co_await http::async_write_header(up_.stream(), sr, use_tuple);
      if (!wec && parser.is_done() && !sr.is_done()) {  // the (empty) end of a bodiless request
        req.body().data = nullptr;
        req.body().more = false;
        std::tie(wec, wn) = co_await http::async_write(up_.stream(), sr, use_tuple);
      }
      if (wec) {
        o_.at = exchange_outcome::phase::request_header;
        o_.ec = wec;
        co_return finish(req);
      }
    }
    const bool head = req.method() == http::verb::head;
    if (parser.is_done()) {
      o_.request_sent = true;
      co_await relay_response(head);
    } else {
      using namespace net::experimental::awaitable_operators;
      upload_running_ = true;
      co_await (send_request_body(parser, sr) && relay_response(head));
    }
    rec_.bytes_from_client = o_.upload.body_bytes;
    co_return finish(req);
  }

 private:
  using phase = exchange_outcome::phase;

  scaled_clock::duration client_idle() const { return o_.rpc ? t_.rpc_idle : t_.client_data; }
  scaled_clock::duration upstream_idle() const { return o_.rpc ? t_.rpc_idle : t_.upstream_data; }
  throughput_rule rule() const { return {t_.min_throughput, t_.throughput_window}; }

  // The request half: the client's body to the upstream.
  net::awaitable<void> send_request_body(http::request_parser<http::buffer_body>& parser,
                                         http::request_serializer<http::buffer_body>& sr) {
    const relay_leg in{&down_.read_timer, timeout_kind::client_read, client_idle(), &live_.bytes_up, &live_.last_up_ms};
    const relay_leg out{&up_.write_timer(), timeout_kind::upstream_write, upstream_idle()};
    o_.upload = co_await relay_body(down_.stream, down_.buffer, parser, sr, up_.stream(), in, out, o_.upload_stopped, rule());
    upload_running_ = false;
    const relay_outcome& r = o_.upload;
    if (o_.upload_stopped) co_return;  // the response half ended the exchange and says why
    if (!r.ec) o_.request_sent = true;
    if (r.ec && (r.failed_reading || r.too_slow)) {
      up_.close();  // the client is gone, stalled or too slow: the response half must end too
    } else if (!o_.response_started) {
      // The server's think time starts now that it has the whole request (or has refused the rest of it).
      up_.read_timer().arm(t_.response_headers, timeout_kind::response_headers);
    }
  }

  // Ends the request half early: the response half has finished (or failed) before the body was sent.
  void stop_upload() {
    if (!upload_running_) return;
    o_.upload_stopped = true;
    down_.stream.cancel();
    up_.close();  // the rest of the body would be read as a new request: never reuse this connection
  }

  // The response is complete while the request body may still be on its way (or its last write has not been
  // noticed yet: the two halves run concurrently). An answer that closes (IIS's 413, an RPC 503) does not
  // want the rest of the body: stop relaying it. A keep-alive answer told the client the connection stays,
  // and HTTP/1.1 obliges the server to read the rest of the body: go on relaying it, so that both connections
  // stay usable. Closing here would fail the client's next request on a connection it was promised.
  void response_done(bool keep_alive) {
    o_.at = phase::done;
    o_.response_keep_alive = keep_alive;
    if (!keep_alive) stop_upload();
  }

  // The response half failed at `at`. `close`: the upstream connection is of no further use (a refused or
  // half-relayed response); after a failed header read it stays, so that the session's end still sends
  // close_notify when it can (the server's TLS session stays resumable).
  void response_failed(phase at, error_code ec, bool close) {
    o_.at = at;
    o_.ec = ec;
    stop_upload();
    if (close) up_.close();
  }

  // The response half: interim 1xx responses are passed on; the final one streams upstream -> client.
  net::awaitable<void> relay_response(bool head) {
    for (;;) {
      http::response_parser<http::buffer_body> parser;
      parser.body_limit(boost::none);
      parser.header_limit(max_header_bytes);
      parser.skip(head);
      if (o_.request_sent) up_.read_timer().arm(t_.response_headers, timeout_kind::response_headers);
      // Beast reads into the buffer's spare capacity (512 bytes after the shrink between requests).
      up_.buffer().reserve(response_read_size);
      auto [ec, n] = co_await http::async_read_header(up_.stream(), up_.buffer(), parser, use_tuple);
      up_.read_timer().disarm();
      if (ec) co_return response_failed(phase::response_headers, ec, false);
      auto& res = parser.get();
      if (rec_.t_response < 0) rec_.t_response = rec_.elapsed_ms();
      rec_.status = res.result_int();
      if (auto refused = check_response_header(res)) {
        o_.refused = std::move(*refused);
        co_return response_failed(phase::response_headers, {}, true);
      }
      const bool interim = is_interim(res);
      if (!interim) {
        o_.response_started = true;
        apply_response_headers(res, options_.response_headers);
        if (offers_connection_auth(res)) up_.pin();
      }
      http::response_serializer<http::buffer_body> sr{res};
      // Headers go at once (a client may wait on them: 100 Continue, an RPC OUT channel's 200) unless body
      // bytes are already here: then the relay's first write carries both (one TLS record). Not before a
      // chunked body: Beast would add its trailer fields to the waiting header.
      if (interim || parser.is_done() || up_.buffer().size() == 0 || header_goes_first(parser.chunked())) {
        auto armed = down_.write_timer.scoped(client_idle(), timeout_kind::client_write);
        auto [wec, wn] = co_await http::async_write_header(down_.stream, sr, use_tuple);
        rec_.bytes_to_client += wn;
        if (wec) co_return response_failed(phase::client_headers, wec, true);
      }
      if (interim) continue;
      if (response_has_no_body(res, head)) {
        // The header (written above: the parser is done) is the whole response. Relaying an empty body through
        // the serializer would add "0\r\n\r\n" after a HEAD/204/304 response that says chunked, and the client
        // would read those bytes as the next response.
        co_return response_done(parser.keep_alive());
      }
      const relay_leg in{&up_.read_timer(), timeout_kind::upstream_read, upstream_idle(), &live_.bytes_down,
                         &live_.last_down_ms};
      const relay_leg to_client{&down_.write_timer, timeout_kind::client_write, client_idle()};
      const bool never = false;
      o_.download = co_await relay_body(up_.stream(), up_.buffer(), parser, sr, down_.stream, in, to_client, never, rule());
      rec_.bytes_to_client += o_.download.wire_bytes;
      if (o_.download.ec) co_return response_failed(phase::response_body, o_.download.ec, true);
      co_return response_done(parser.keep_alive());  // false for a body that ended with the upstream's close
    }
  }

  // Both halves have ended: every timer stops, and the outcome records which of them fired.
  exchange_outcome finish(const http::request<http::buffer_body>& req) {
    for (auto* w : {&down_.read_timer, &down_.write_timer, &up_.read_timer(), &up_.write_timer()}) {
      w->disarm();
      o_.fired.add(w->fired());
    }
    o_.client_keep_alive = req.keep_alive();
    return std::move(o_);
  }

  downstream_side<Stream>& down_;
  upstream_connection<Stream, Connector>& up_;
  live_connection& live_;
  const bridge_options& options_;
  const struct timeouts& t_;
  request_record& rec_;
  exchange_outcome o_;
  bool upload_running_ = false;
};

}  // namespace exbridge::proxy
