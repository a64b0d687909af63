// One downstream connection: TLS 1.2/1.3 handshake, then a loop of HTTP/1.1 requests relayed to the
// upstream with streaming bodies (Beast's buffer_body relay, ported to coroutines), both directions at once.
//
// Connection model (why): NTLM and Negotiate authenticate the TCP connection, not the request
// (exchange-protocols.md §7). A downstream connection therefore owns its upstream connection for its
// whole life and never lends it to another client; when the upstream closes, the next request gets a
// fresh upstream connection and the server simply challenges again.
//
// Full duplex (why): the response is read while the request body is still being sent. An upstream may
// answer before the body ends (IIS refuses an EWS body over 30,000,000 bytes at once; a 401 can come
// first), and a client sending "Expect: 100-continue" (.NET, hence Exchange Online) waits for the interim
// 100 before it sends its body. A sequential relay would deadlock or turn such answers into 502s.
//
// Timers (why): each direction of each leg has its own watchdog, so a timeout names the side that went
// quiet. The response-headers timer starts only once the request is fully sent: HAProxy's `timeout
// server` firing during slow uploads (issues #949, #1681) blames the server for a slow client.
#include <sys/socket.h>

#include <boost/asio/experimental/awaitable_operators.hpp>

#include <algorithm>
#include <chrono>
#include <memory>
#include <optional>

#include "common/log.hpp"
#include "common/tls_diagnosis.hpp"
#include "common/tls_socket.hpp"
#include "common/watchdog.hpp"
#include "proxy/access_log.hpp"
#include "proxy/bridge.hpp"
#include "proxy/http_checks.hpp"
#include "proxy/termination.hpp"
#include "proxy/pool.hpp"
#include "proxy/upstream_tls.hpp"

namespace exbridge::proxy {
namespace {

using namespace net::experimental::awaitable_operators;

constexpr std::size_t chunk_size = 64 * 1024;
constexpr std::size_t read_size = 16 * 1024;
constexpr std::size_t idle_read_size = 1024;  // waiting for a request: a small buffer (thousands of idle connections)

// OpenSSL on the socket itself (common/tls_socket.hpp): no record buffers while a connection idles, no extra
// copies, and a response's header and the start of its body leave as one TLS record and one send().
using tls_stream = tls_socket;
using dog = watchdog<timeout_kind>;

std::string peer_of(const tcp::socket& s) {
  error_code ec;
  const auto ep = s.remote_endpoint(ec);
  return ec ? std::string("?") : ep.address().to_string() + ":" + std::to_string(ep.port());
}

bool is_peer_close(const error_code& ec) {
  return ec == http::error::end_of_stream || ec == net::error::eof || ec == ssl::error::stream_truncated ||
         ec == net::error::connection_reset || ec == net::error::broken_pipe || ec == net::error::operation_aborted ||
         ec == net::error::bad_descriptor;
}

/// One side of a body relay: the stream, its watchdog, and which timer runs for how long.
struct leg {
  dog& watch;
  timeout_kind kind;
  scaled_clock::duration idle;
  std::atomic<std::int64_t>* bytes = nullptr;  ///< reading leg: the live view's byte count for this direction
  std::atomic<std::int64_t>* last = nullptr;   ///< and its last-activity time
};

struct relay_outcome {
  error_code ec;
  bool failed_reading = false;   ///< the error came from the reading side
  bool too_slow = false;         ///< the minimum-throughput watchdog ended it
  bool blame_reader = false;     ///< with too_slow: the reading side was the slow one
  std::uint64_t body_bytes = 0;
  std::uint64_t wire_bytes = 0;
};

/// What the two halves of one request/response exchange tell each other (both run on the session's strand).
struct exchange_state {
  bool request_sent = false;       ///< the whole request, body included, reached the upstream
  bool response_started = false;   ///< the final response's headers arrived
  bool response_done = false;      ///< the final response was relayed completely
  bool upload_running = false;     ///< a request body is being relayed
  bool stop_upload = false;        ///< the response side ended the exchange; the upload must stop
  relay_outcome upload;
};

/// How the response half ended.
struct response_outcome {
  enum phase { headers, client_headers, body, done } at = headers;
  error_code ec;
  relay_outcome relay;
  bool keep_alive = false;
  std::string detail;  ///< why the response was refused, when not a read error
};

class downstream_session {
 public:
  downstream_session(std::shared_ptr<bridge_context> ctx, std::shared_ptr<const downstream_certs> certs,
                     tcp::socket socket)
      : ctx_(std::move(ctx)),
        certs_(std::move(certs)),
        options_(ctx_->options),
        t_(&options_.timeouts),
        client_(peer_of(socket)),
        client_hash_(client_address_hash(client_)),
        live_(ctx_->shared->live.add(client_)),
        listen_port_(socket.local_endpoint().port()),
        down_(std::move(socket), certs_->primary),
        down_read_dog_(down_.get_executor(), [this] { cancel_downstream(); }),
        down_write_dog_(down_.get_executor(), [this] { cancel_downstream(); }),
        up_read_dog_(down_.get_executor(), [this] { close_upstream(); }),
        up_write_dog_(down_.get_executor(), [this] { close_upstream(); }) {
    ctx_->stats.add(counter::downstream_cx_total);
    // Runs on the drain's thread: hop onto this connection's strand, where `alive` and `idle_` live.
    live_->set_drain_hook([ex = down_.get_executor(), alive = alive_, this] {
      net::post(ex, [alive, this] {
        if (*alive && idle_) cancel_downstream();
      });
    });
  }
  ~downstream_session() { *alive_ = false; }
  downstream_session(const downstream_session&) = delete;
  downstream_session& operator=(const downstream_session&) = delete;

  net::awaitable<void> run() {
    const auto started = std::chrono::steady_clock::now();
    down_read_dog_.arm(t_->downstream_handshake, timeout_kind::downstream_handshake);
    auto [hec] = co_await down_.async_handshake(ssl::stream_base::server, use_tuple);
    down_read_dog_.disarm();
    t_handshake_ = static_cast<long>(
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count());
    ctx_->shared->histograms.observe(timer_id::downstream_handshake, t_handshake_);
    if (hec) {
      const bool timed_out = down_read_dog_.fired() == timeout_kind::downstream_handshake;
      ctx_->stats.add(counter::downstream_tls_handshake_fail);
      count_end(timed_out ? termination::downstream_handshake_timeout : termination::downstream_handshake_failed);
      auto d = diagnose_tls_failure(timed_out ? net::error::timed_out : hec, down_.native_handle(), "the client");
      if (d.kind == tls_failure::protocol_version) {
        // On this side the old party is the client: nothing to fix in exbridge (Exchange Online speaks 1.2/1.3).
        d.hint = "exbridge accepts TLS 1.2 and 1.3 only, as Exchange Online uses; this client offered only older "
                 "versions (a scanner, or a client that should not use this endpoint)";
      }
      log_info(cat("downstream ", client_, " TLS handshake failed: ", d.to_string()));
      co_return;
    }
    down_tls_ = describe_session(down_.native_handle());
    error_code ignored;
    down_.next_layer().set_option(tcp::no_delay(true), ignored);

    for (bool first = true;; first = false) {
      if (!co_await wait_for_request(first)) break;
      const bool again = co_await serve_one_request();
      // Nothing of an idle connection stays allocated: the buffers grow again when the next request comes.
      if (down_buf_.size() == 0) down_buf_.shrink_to_fit();
      if (up_buf_.size() == 0) up_buf_.shrink_to_fit();
      if (!again) break;
    }
    co_await shut_upstream();
    if (down_.next_layer().is_open()) {
      // close_notify, and a short wait for the client's; shorter while draining, so that shutdown is not held
      // up by clients that never answer it.
      const auto bound = ctx_->shared->draining ? std::chrono::milliseconds(500) : std::chrono::milliseconds(5000);
      down_write_dog_.arm(bound, timeout_kind::client_write);
      co_await down_.async_shutdown(use_tuple);
    }
  }

 private:
  // Waits for the first bytes of the next request under the idle timer (client idle on a new connection,
  // keep-alive idle between requests). Not a wait on the socket: the TLS stream may already hold the
  // request's records, read during the handshake or behind the previous request.
  net::awaitable<bool> wait_for_request(bool first) {
    if (down_buf_.size() > 0) co_return true;  // pipelined
    if (ctx_->shared->draining && !first) co_return false;  // shutting down: no further request on this one
    const auto kind = first ? timeout_kind::client_idle : timeout_kind::keep_alive_idle;
    down_read_dog_.arm(first ? t_->client_idle : t_->keep_alive_idle, kind);
    idle_ = true;
    auto [ec, n] = co_await down_.async_read_some(down_buf_.prepare(idle_read_size), use_tuple);
    idle_ = false;
    down_buf_.commit(n);
    down_read_dog_.disarm();
    if (!ec || down_buf_.size() > 0) co_return true;
    // The client closed, or idled out, between requests: not a request failure, so no access-log line,
    // except for a connection that never sent anything (browser pre-connects, scanners).
    if (down_read_dog_.fired() == kind) {
      const auto why = first ? termination::client_idle_timeout : termination::keep_alive_timeout;
      if (first) {
        request_record rec = new_record();
        std::string detail = "no request within " + format_duration(t_->client_idle) + " of the TLS handshake";
        finish(rec, why, detail);
      } else {
        count_end(why);
      }
    }
    co_return false;
  }

  // Reads until the whole header block is buffered (or the header limit is reached), so that it can be
  // checked as raw bytes before Beast parses it: Beast unfolds obsolete line folding silently, and a
  // folded header is a classic way to make two HTTP parsers disagree.
  net::awaitable<error_code> buffer_header_block() {
    for (;;) {
      if (header_block_complete(buffered())) co_return error_code{};
      auto [ec, n] = co_await down_.async_read_some(down_buf_.prepare(read_size), use_tuple);
      if (ec) co_return ec;
      down_buf_.commit(n);
    }
  }

  std::string_view buffered() const {
    return {static_cast<const char*>(down_buf_.data().data()), down_buf_.size()};
  }

  request_record new_record() const {
    request_record rec;
    rec.client = client_;
    rec.down_tls = down_tls_;
    rec.t_handshake = t_handshake_;
    rec.started = std::chrono::steady_clock::now();
    return rec;
  }

  net::awaitable<bool> serve_one_request() {
    request_record rec = new_record();
    ctx_->stats.add(counter::downstream_rq_total);

    http::request_parser<http::buffer_body> parser;
    parser.body_limit(boost::none);  // no cap: an RPC_IN_DATA request declares 1 GB and more
    parser.header_limit(max_header_bytes);
    down_read_dog_.arm(t_->request_headers, timeout_kind::request_headers);
    error_code ec = co_await buffer_header_block();
    const bool folded = !ec && has_obs_fold(buffered());
    if (!ec && !folded) std::tie(ec, std::ignore) = co_await http::async_read_header(down_, down_buf_, parser, use_tuple);
    down_read_dog_.disarm();
    if (folded) {
      ctx_->stats.add(counter::downstream_rq_rejected);
      const std::string detail = "obsolete line folding in the request headers";
      co_await send_error(rec, http::status::bad_request, termination::bad_request, detail);
      co_return false;
    }
    auto& req = parser.get();
    rec.method = std::string(req.method_string());
    rec.target = std::string(req.target());
    if (ec) {
      if (down_read_dog_.fired() == timeout_kind::request_headers) {
        std::string detail = "the request headers did not arrive within " + format_duration(t_->request_headers);
        co_await send_error(rec, http::status::request_timeout, termination::request_headers_timeout, detail);
      } else if (is_peer_close(ec)) {
        finish(rec, termination::client_closed_request, ec.message());
      } else {
        ctx_->stats.add(counter::downstream_rq_rejected);
        const auto status = ec == http::error::header_limit ? http::status::request_header_fields_too_large
                                                            : http::status::bad_request;
        std::string detail = ec.message();
        co_await send_error(rec, status, termination::bad_request, detail);
      }
      co_return false;
    }
    if (const auto rejected = check_request_header(req)) {
      ctx_->stats.add(counter::downstream_rq_rejected);
      co_await send_error(rec, rejected->status, termination::bad_request, rejected->detail);
      co_return false;
    }
    rec.t_request = rec.elapsed_ms();
    rec.auth_scheme = auth_scheme_of(req);
    const auto route = ctx_->route_for(rec.target);
    t_ = route.timeouts;
    const bool rpc = is_rpc_target(rec.target);
    // Pinning is the only model here; the flag records that this pair must never be shared.
    if (rec.auth_scheme == "NTLM" || rec.auth_scheme == "Negotiate" || rpc) pinned_ = true;
    rec.pinned = pinned_;

    live_->requests.fetch_add(1, std::memory_order_relaxed);
    live_->pinned = pinned_;
    if (!co_await ensure_upstream(rec, route)) co_return false;
    live_->set_server(rec.server, rec.method + " " + rec.target);
    add_forwarding_headers(req, client_, listen_port_);
    rec.upstream_requests = ++upstream_requests_;
    ctx_->stats.add(counter::upstream_rq_total);
    if (pinned_) ctx_->stats.add(counter::upstream_rq_pinned);

    http::request_serializer<http::buffer_body> request_sr{req};
    // Headers go at once unless body bytes are already here: then they leave together (one record) --
    // except before a chunked body, whose trailer fields Beast would add to the waiting header.
    if (parser.is_done() || down_buf_.size() == 0 || header_goes_first(parser.chunked())) {
      up_write_dog_.arm(rpc ? t_->rpc_idle : t_->upstream_data, timeout_kind::upstream_write);
      auto [wec, wn] = co_await http::async_write_header(*up_, request_sr, use_tuple);
      if (!wec && parser.is_done() && !request_sr.is_done()) {  // the (empty) end of a bodiless request
        req.body().data = nullptr;
        req.body().more = false;
        std::tie(wec, wn) = co_await http::async_write(*up_, request_sr, use_tuple);
      }
      up_write_dog_.disarm();
      if (wec) {
        std::string detail = wec.message();
        co_await send_error(rec, http::status::bad_gateway, termination::upstream_write_failed, detail);
        co_return false;
      }
    }
    const bool head = req.method() == http::verb::head;
    exchange_state x;
    response_outcome response;
    if (parser.is_done()) {
      x.request_sent = true;
      response = co_await relay_response(rec, x, head, rpc);
    } else {
      x.upload_running = true;
      auto [upload, down] = co_await (send_request_body(parser, request_sr, x, rpc) && relay_response(rec, x, head, rpc));
      response = std::move(down);
    }
    for (dog* d : {&down_read_dog_, &down_write_dog_, &up_read_dog_, &up_write_dog_}) d->disarm();
    rec.bytes_from_client = x.upload.body_bytes;
    co_return co_await conclude(rec, x, response, req.keep_alive(), rpc);
  }

  // The request half: client body -> upstream.
  net::awaitable<relay_outcome> send_request_body(http::request_parser<http::buffer_body>& parser,
                                                  http::request_serializer<http::buffer_body>& sr, exchange_state& x,
                                                  bool rpc) {
    const leg in{down_read_dog_, timeout_kind::client_read, rpc ? t_->rpc_idle : t_->client_data, &live_->bytes_up,
                 &live_->last_up_ms};
    const leg out{up_write_dog_, timeout_kind::upstream_write, rpc ? t_->rpc_idle : t_->upstream_data};
    x.upload = co_await relay_body(down_, down_buf_, parser, sr, *up_, in, out, x.stop_upload);
    x.upload_running = false;
    const relay_outcome& r = x.upload;
    if (x.stop_upload) co_return r;  // the response half ended the exchange and says why
    if (!r.ec) x.request_sent = true;
    if (r.ec && (r.failed_reading || r.too_slow)) {
      close_upstream();  // the client is gone, stalled or too slow: the response half must end too
    } else if (!x.response_started) {
      // The server's think time starts now that it has the whole request (or has refused the rest of it).
      up_read_dog_.arm(t_->response_headers, timeout_kind::response_headers);
    }
    co_return r;
  }

  // Ends the request half early: the response half has finished (or failed) before the body was sent.
  void stop_upload(exchange_state& x) {
    if (!x.upload_running) return;
    x.stop_upload = true;
    cancel_downstream();
    close_upstream();  // the rest of the body would be read as a new request: never reuse this connection
  }

  // The response is complete while the request body may still be on its way (or its last write has not
  // been noticed yet: the two halves run concurrently). An answer that closes (IIS's 413, an RPC 503) does
  // not want the rest of the body: stop relaying it. A keep-alive answer told the client the connection
  // stays, and HTTP/1.1 obliges the server to read the rest of the body: go on relaying it, so that both
  // connections stay usable. Closing here would fail the client's next request on a connection it was
  // promised.
  void end_upload_early(exchange_state& x, bool response_keeps_alive) {
    if (!response_keeps_alive) stop_upload(x);
  }

  // The response half: interim 1xx responses are passed on; the final one streams upstream -> client.
  net::awaitable<response_outcome> relay_response(request_record& rec, exchange_state& x, bool head, bool rpc) {
    response_outcome out;
    for (;;) {
      http::response_parser<http::buffer_body> parser;
      parser.body_limit(boost::none);
      parser.header_limit(max_header_bytes);
      parser.skip(head);
      if (x.request_sent) up_read_dog_.arm(t_->response_headers, timeout_kind::response_headers);
      // Room for a whole small response: Beast reads into the buffer's spare capacity (512 bytes after the
      // shrink between requests), and a 1 KiB answer would reach the client as two TLS records.
      up_buf_.reserve(read_size);
      auto [ec, n] = co_await http::async_read_header(*up_, up_buf_, parser, use_tuple);
      up_read_dog_.disarm();
      if (ec) {
        out.at = response_outcome::headers;
        out.ec = ec;
        stop_upload(x);
        co_return out;
      }
      auto& res = parser.get();
      if (rec.t_response < 0) rec.t_response = rec.elapsed_ms();
      rec.status = res.result_int();
      if (auto refused = check_response_header(res)) {
        out.at = response_outcome::headers;
        out.detail = std::move(*refused);
        stop_upload(x);
        close_upstream();
        co_return out;
      }
      const bool interim = is_interim(res);
      if (!interim) {
        x.response_started = true;
        apply_response_headers(res, options_.response_headers);
        if (offers_connection_auth(res)) rec.pinned = pinned_ = true;
        live_->pinned = pinned_;
      }
      http::response_serializer<http::buffer_body> sr{res};
      // Headers go at once (a client may wait on them: 100 Continue, an RPC OUT channel's 200) unless body
      // bytes are already here: then the relay's first write carries both (one TLS record). Not before a
      // chunked body: Beast would add its trailer fields to the waiting header.
      if (interim || parser.is_done() || up_buf_.size() == 0 || header_goes_first(parser.chunked())) {
        down_write_dog_.arm(rpc ? t_->rpc_idle : t_->client_data, timeout_kind::client_write);
        auto [wec, wn] = co_await http::async_write_header(down_, sr, use_tuple);
        down_write_dog_.disarm();
        rec.bytes_to_client += wn;
        if (wec) {
          out.at = response_outcome::client_headers;
          out.ec = wec;
          stop_upload(x);
          close_upstream();
          co_return out;
        }
      }
      if (interim) continue;
      if (response_has_no_body(res, head)) {
        // The header (written above: the parser is done) is the whole response. Relaying an empty body
        // through the serializer would add "0\r\n\r\n" after a HEAD/204/304 response that says chunked,
        // and the client would read those bytes as the next response.
        out.at = response_outcome::done;
        out.keep_alive = parser.keep_alive();
        x.response_done = true;
        end_upload_early(x, out.keep_alive);
        co_return out;
      }

      const leg in{up_read_dog_, timeout_kind::upstream_read, rpc ? t_->rpc_idle : t_->upstream_data,
                   &live_->bytes_down, &live_->last_down_ms};
      const leg to_client{down_write_dog_, timeout_kind::client_write, rpc ? t_->rpc_idle : t_->client_data};
      const bool never = false;
      out.relay = co_await relay_body(*up_, up_buf_, parser, sr, down_, in, to_client, never);
      rec.bytes_to_client += out.relay.wire_bytes;
      if (out.relay.ec) {
        out.at = response_outcome::body;
        stop_upload(x);
        close_upstream();
        co_return out;
      }
      out.at = response_outcome::done;
      out.keep_alive = parser.keep_alive();  // false for a body that ended with the upstream's close
      x.response_done = true;
      end_upload_early(x, out.keep_alive);
      co_return out;
    }
  }

  // Streams one message body with a fixed buffer: never more than chunk_size bytes of it in memory. The
  // buffer exists only while a body is relayed.
  template <bool is_request, class In, class Out>
  net::awaitable<relay_outcome> relay_body(In& in, beast::flat_buffer& in_buffer,
                                           http::parser<is_request, http::buffer_body>& parser,
                                           http::serializer<is_request, http::buffer_body>& sr, Out& out,
                                           const leg& from, const leg& to, const bool& stop) {
    relay_outcome r;
    // Small bodies (most EWS answers) get a buffer of their size, large ones chunk_size.
    const auto declared = parser.content_length_remaining();
    const std::size_t size = declared ? static_cast<std::size_t>(std::clamp<std::uint64_t>(*declared, 1, chunk_size))
                                      : chunk_size;
    const std::unique_ptr<char[]> chunk(new char[size]);
    // Beast sizes each read by the buffer's spare capacity (at least 512 bytes): after shrink_to_fit an
    // unreserved buffer would move the body in 512-byte reads and 534-byte TLS records.
    in_buffer.reserve(size);
    auto& body = parser.get().body();
    // Minimum-throughput watchdog: bytes and time spent waiting on each side over the current window.
    const std::uint64_t min_rate = t_->min_throughput;
    auto window_start = scaled_clock::now();
    std::uint64_t window_bytes = 0;
    scaled_clock::duration read_wait{}, write_wait{};
    do {
      if (stop) {
        r.ec = net::error::operation_aborted;
        co_return r;
      }
      const bool final_write = parser.is_done();
      if (!final_write) {
        body.data = chunk.get();
        body.size = size;
        const auto t0 = scaled_clock::now();
        from.watch.arm(from.idle, from.kind);
        // read_some, not read: read would wait until the 64 KiB chunk is full, holding back an Outlook
        // Anywhere ping or a trickling response; each relay step forwards whatever has arrived.
        auto [ec, n] = co_await http::async_read_some(in, in_buffer, parser, use_tuple);
        from.watch.disarm();
        read_wait += scaled_clock::now() - t0;
        if (ec == http::error::need_buffer) ec = {};
        if (ec) {
          r.ec = ec;
          r.failed_reading = true;
          co_return r;
        }
        body.size = size - body.size;
        if (body.size == 0) {
          // Only framing was parsed (a chunk header). A zero-size piece must never reach the serializer:
          // in chunked output it would read as the last chunk.
          if (!parser.is_done()) continue;
          body.data = nullptr;
          body.more = false;
        } else {
          body.data = chunk.get();
          body.more = !parser.is_done();
        }
        r.body_bytes += body.size;
        window_bytes += body.size;
        if (from.bytes != nullptr) {
          from.bytes->fetch_add(static_cast<std::int64_t>(body.size), std::memory_order_relaxed);
          from.last->store(live_connection::now_ms(), std::memory_order_relaxed);
        }
      } else {
        body.data = nullptr;
        body.size = 0;
        body.more = false;
      }
      const auto t0 = scaled_clock::now();
      to.watch.arm(to.idle, to.kind);
      auto [ec, n] = co_await http::async_write(out, sr, use_tuple);
      to.watch.disarm();
      write_wait += scaled_clock::now() - t0;
      r.wire_bytes += n;
      if (ec == http::error::need_buffer) ec = {};
      if (ec) {
        r.ec = ec;
        co_return r;
      }
      if (final_write && !sr.is_done()) {
        r.ec = http::error::partial_message;  // the serializer cannot finish: never spin
        co_return r;
      }
      if (min_rate > 0) {
        const auto now = scaled_clock::now();
        const std::chrono::duration<double> elapsed = now - window_start;
        if (elapsed >= t_->throughput_window) {
          if (static_cast<double>(window_bytes) < static_cast<double>(min_rate) * elapsed.count()) {
            r.ec = net::error::timed_out;
            r.too_slow = true;
            r.blame_reader = read_wait >= write_wait;
            co_return r;
          }
          window_start = now;
          window_bytes = 0;
          read_wait = write_wait = {};
        }
      }
    } while (!parser.is_done() || !sr.is_done());
    co_return r;
  }

  /// The termination of a failed body relay. `reader_is_client` says which side the relay read from.
  termination relay_failure(const relay_outcome& r, bool reader_is_client, bool rpc) const {
    if (r.too_slow) {
      return r.blame_reader == reader_is_client ? termination::client_too_slow : termination::upstream_too_slow;
    }
    if (r.failed_reading && is_malformed(r.ec)) {
      return reader_is_client ? termination::bad_request : termination::upstream_bad_response;
    }
    const bool client_side = r.failed_reading == reader_is_client;
    if (client_side) {
      const auto fired = reader_is_client ? down_read_dog_.fired() : down_write_dog_.fired();
      const auto kind = reader_is_client ? timeout_kind::client_read : timeout_kind::client_write;
      if (fired == kind) {
        if (rpc) return termination::rpc_client_idle_timeout;
        return reader_is_client ? termination::request_body_timeout : termination::client_write_timeout;
      }
      return reader_is_client ? termination::client_closed_body : termination::client_closed_response;
    }
    const auto fired = reader_is_client ? up_write_dog_.fired() : up_read_dog_.fired();
    const auto kind = reader_is_client ? timeout_kind::upstream_write : timeout_kind::upstream_read;
    if (fired == kind) {
      if (rpc) return termination::rpc_upstream_idle_timeout;
      return reader_is_client ? termination::upstream_write_timeout : termination::response_body_timeout;
    }
    return reader_is_client ? termination::upstream_write_failed : termination::upstream_closed_body;
  }

  std::string relay_detail(const relay_outcome& r, termination why, bool rpc) const {
    if (r.too_slow) {
      return "fewer than " + std::to_string(t_->min_throughput) + " bytes/s over " + format_duration(t_->throughput_window);
    }
    if (!is_timeout(why)) return r.ec.message();
    const bool client = info(why).code[0] == 'c';
    const auto idle = rpc ? t_->rpc_idle : (client ? t_->client_data : t_->upstream_data);
    return std::string(client ? "the client" : "the upstream") + " moved no body byte for " + format_duration(idle);
  }

  // One decision per exchange, after both halves have ended: what the access log says, what the client
  // hears when nothing of the response was sent yet, and whether the connection carries another request.
  net::awaitable<bool> conclude(request_record& rec, exchange_state& x, const response_outcome& res,
                                bool client_keep_alive, bool rpc) {
    const relay_outcome& up = x.upload;
    if (res.at == response_outcome::done) {
      if (!x.request_sent) {
        finish(rec, termination::normal, "the upstream answered before the request body ended; connection closed");
        co_return false;
      }
      finish(rec, termination::normal, "");
      up_last_used_ = std::chrono::steady_clock::now();
      // The server ends the connection: answer with close_notify. OpenSSL marks a session closed without it
      // unresumable (RFC 2246), and that is the session offered to the next connections to this server.
      if (!res.keep_alive) co_await shut_upstream();
      // The upstream's "Connection: close" went to the client too, so the client expects the close: a
      // connection-bound (NTLM) session must end on both legs together.
      co_return res.keep_alive && client_keep_alive;
    }
    // The client failed (or stalled) first during its upload; the response half only followed.
    if (up.ec && !x.stop_upload && (up.failed_reading || (up.too_slow && up.blame_reader))) {
      const termination why = relay_failure(up, true, rpc);
      std::string detail = relay_detail(up, why, rpc);
      if (why == termination::bad_request && !x.response_started) {  // a malformed body: the client hears why
        ctx_->stats.add(counter::downstream_rq_rejected);
        co_await send_error(rec, http::status::bad_request, why, detail);
        co_return false;
      }
      finish(rec, why, detail);
      co_return false;
    }
    switch (res.at) {
      case response_outcome::headers: {
        auto status = http::status::bad_gateway;
        termination why = is_peer_close(res.ec) ? termination::upstream_closed_before_response
                                                : termination::upstream_bad_response;
        std::string detail = res.detail.empty() ? res.ec.message() : res.detail;
        if (up_read_dog_.fired() == timeout_kind::response_headers) {
          status = http::status::gateway_timeout;
          why = termination::response_headers_timeout;
          detail = "the upstream sent no response headers within " + format_duration(t_->response_headers);
        } else if (up_write_dog_.fired() == timeout_kind::upstream_write) {  // it stopped taking the body
          status = http::status::gateway_timeout;
          why = rpc ? termination::rpc_upstream_idle_timeout : termination::upstream_write_timeout;
          detail = "the upstream took no request body byte for " + format_duration(rpc ? t_->rpc_idle : t_->upstream_data);
        } else if (up.ec && !x.stop_upload) {  // the upstream stopped taking the request body
          why = relay_failure(up, true, rpc);
          detail = relay_detail(up, why, rpc);
          if (is_timeout(why)) status = http::status::gateway_timeout;
        }
        co_await send_error(rec, status, why, detail);
        co_return false;
      }
      case response_outcome::client_headers: {
        const bool timed_out = down_write_dog_.fired() == timeout_kind::client_write;
        std::string detail = res.ec.message();
        finish(rec, timed_out ? termination::client_write_timeout : termination::client_closed_response, detail);
        co_return false;
      }
      case response_outcome::body:
      case response_outcome::done:
        break;
    }
    const termination why = relay_failure(res.relay, false, rpc);
    std::string detail = relay_detail(res.relay, why, rpc);
    finish(rec, why, detail);
    co_return false;
  }

  // An idle upstream connection may have been closed by the server (IIS closes idle connections after
  // 120 s, with close_notify then FIN). Peek before reuse, so such a request goes on a fresh connection
  // instead of failing; leftover bytes (anything beyond the last response) also forbid reuse. A connection
  // that answered within the last second is not peeked: servers close idle connections after minutes, and
  // a busy keep-alive connection is spared a system call per request.
  bool upstream_reusable() {
    if (!up_ || !up_->next_layer().is_open()) return false;
    if (up_buf_.size() > 0 || SSL_has_pending(up_->native_handle()) == 1) return false;
    if (std::chrono::steady_clock::now() - up_last_used_ < std::chrono::seconds(1)) return true;
    char byte;
    const auto got = ::recv(up_->next_layer().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    return got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
  }

  // The upstream connection for this request: the pinned one while it lives and belongs to the route's pool,
  // else a new one to a server the pool picks. A server that cannot be reached or fails the TLS handshake is
  // skipped for the next one (redispatch, up to the pool's retries): nothing of the request was sent yet,
  // so retrying is safe. Once a request byte has left, nothing is ever retried.
  net::awaitable<bool> ensure_upstream(request_record& rec, const bridge_context::route_choice& route) {
    upstream_pool& pool = *route.pool;
    if (lease_ && lease_.get()->pool == &pool && upstream_reusable()) {
      rec.up_tls = up_tls_;
      rec.server = lease_.get()->pool->settings.name + "/" + lease_.get()->name;
      co_return true;
    }
    co_await shut_upstream();
    up_buf_.clear();
    upstream_requests_ = 0;
    std::vector<server_state*> tried;
    std::optional<upstream_failure> failed;  // the last attempt's, answered if no further server is left
    for (;;) {
      auto got = co_await pool.acquire(route.how, client_hash_, tried);
      if (auto* none = std::get_if<no_server>(&got)) {
        ctx_->stats.add(none->queue_timeout ? counter::upstream_queue_timeouts : counter::upstream_no_server);
        if (!failed) {
          const auto why = none->queue_timeout ? termination::upstream_queue_timeout : termination::upstream_unavailable;
          failed = upstream_failure{http::status::service_unavailable, why, none->detail};
        }
        co_await send_error(rec, failed->status, failed->why, failed->detail);
        co_return false;
      }
      lease_ = std::move(std::get<server_lease>(got));
      server_state& server = *lease_.get();
      rec.server = pool.settings.name + "/" + server.name;
      tried.push_back(&server);
      failed = co_await connect_upstream(rec, pool, server);
      if (!failed) co_return true;
      if (tried.size() > pool.settings.retries || tried.size() >= pool.servers.size()) {
        co_await send_error(rec, failed->status, failed->why, failed->detail);
        co_return false;
      }
      ctx_->stats.add(counter::upstream_cx_redispatched);
      log_warn(cat("upstream ", server.name, " (pool ", pool.settings.name, ") failed for ", client_, ": ",
                   failed->detail, "; trying another server"));
    }
  }

  /// How a connection attempt failed, as the client will be told if no other server takes over.
  struct upstream_failure {
    http::status status;
    termination why;
    std::string detail;
  };

  // One connection attempt: nullopt when connected (TCP and TLS), else why not.
  net::awaitable<std::optional<upstream_failure>> connect_upstream(request_record& rec, upstream_pool& pool,
                                                                   server_state& server) {
    ctx_->stats.add(counter::upstream_cx_total);
    up_.emplace(down_.get_executor(), pool.tls);
    const auto connect_started = rec.elapsed_ms();
    auto result = co_await connect_server(up_->next_layer(), server, t_->upstream_connect);
    rec.t_connect = rec.elapsed_ms();
    ctx_->shared->histograms.observe(timer_id::upstream_connect, rec.t_connect - connect_started);
    if (result.failed_at == connect_result::ok) {
      error_code ignored;
      up_->next_layer().set_option(tcp::no_delay(true), ignored);
      result = co_await handshake_server(*up_, server, pool.settings, t_->upstream_handshake);
      rec.t_upstream_tls = rec.elapsed_ms();
      ctx_->shared->histograms.observe(timer_id::upstream_handshake, rec.t_upstream_tls - rec.t_connect);
    }
    if (result.failed_at == connect_result::ok) {
      if (SSL_session_reused(up_->native_handle()) == 1) ctx_->stats.add(counter::upstream_tls_resumed);
      up_tls_ = describe_session(up_->native_handle());
      rec.up_tls = up_tls_;
      co_return std::nullopt;
    }
    server.connect_failures.fetch_add(1, std::memory_order_relaxed);
    close_upstream();  // a pinned certificate that does not match gets no request byte
    const bool handshake = result.failed_at == connect_result::handshake;
    ctx_->stats.add(handshake ? counter::upstream_tls_handshake_fail : counter::upstream_cx_connect_fail);
    upstream_failure f{http::status::service_unavailable, termination::upstream_connect_failed, result.to_string()};
    if (result.failed_at == connect_result::resolve) f.why = termination::upstream_resolve_failed;
    if (handshake) {
      f.why = termination::upstream_tls_failed;
      f.status = http::status::bad_gateway;
    }
    if (result.timed_out) {
      f.why = handshake ? termination::upstream_handshake_timeout : termination::upstream_connect_timeout;
      f.status = http::status::gateway_timeout;
    }
    co_return f;
  }

  // Answers the client with a short explanation (if nothing of the response was sent yet) and closes.
  // Callers pass a named string: GCC 12 mis-destroys string temporaries in co_await argument expressions.
  net::awaitable<void> send_error(request_record& rec, http::status status, termination why, const std::string& detail) {
    if (why != termination::bad_request && why != termination::request_headers_timeout) {
      ctx_->stats.add(counter::upstream_rq_failed);
    }
    http::response<http::string_body> res{status, 11};
    res.set(http::field::content_type, "text/plain; charset=utf-8");
    res.set(http::field::cache_control, "no-store");
    res.keep_alive(false);
    res.body() = "exbridge: " + std::string(info(why).reason) + ": " + detail + "\n";
    res.prepare_payload();
    rec.status = res.result_int();
    finish(rec, why, detail);
    if (!down_.next_layer().is_open()) co_return;
    down_write_dog_.arm(t_->client_data, timeout_kind::client_write);
    co_await http::async_write(down_, res, use_tuple);
    down_write_dog_.disarm();
  }

  void count_end(termination why) {
    ctx_->stats.add(why);
    if (is_timeout(why)) ctx_->stats.add(counter::timeouts_total);
    if (options_.on_end) options_.on_end(why);
  }

  void finish(request_record& rec, termination why, const std::string& detail) {
    rec.end = why;
    rec.detail = detail;
    rec.t_total = rec.elapsed_ms();
    count_end(why);
    auto& h = ctx_->shared->histograms;
    h.observe(timer_id::request_headers, rec.t_request);
    if (rec.t_response >= 0) h.observe(timer_id::response_headers, rec.t_response - rec.t_request);
    h.observe(timer_id::total, rec.t_total);
    if (lease_) {
      lease_.get()->bytes_out.fetch_add(static_cast<std::int64_t>(rec.bytes_from_client), std::memory_order_relaxed);
      lease_.get()->bytes_in.fetch_add(static_cast<std::int64_t>(rec.bytes_to_client), std::memory_order_relaxed);
    }
    log_access(rec, options_.access_log);
  }

  // A downstream timeout cancels the pending operations but keeps the socket, so that the client can still
  // be told why (408, 504); the session then ends and the socket closes with it.
  void cancel_downstream() {
    error_code ignored;
    down_.next_layer().cancel(ignored);
  }

  // Ends a healthy upstream connection with close_notify: a TLS session closed without it is dropped from
  // the server's session cache, and the next connection would pay a full handshake instead of resuming.
  net::awaitable<void> shut_upstream() {
    if (up_ && up_->next_layer().is_open()) {
      up_write_dog_.arm(std::chrono::seconds(2), timeout_kind::upstream_write);
      co_await up_->async_shutdown(use_tuple);
      up_write_dog_.disarm();
    }
    close_upstream();
  }

  void close_upstream() {
    error_code ignored;
    if (up_) up_->next_layer().close(ignored);
    lease_.release();  // the server slot frees with the connection
  }

  std::shared_ptr<bridge_context> ctx_;
  std::shared_ptr<const downstream_certs> certs_;  ///< the certificates this connection was accepted with
  const bridge_options& options_;
  const struct timeouts* t_;  ///< the current request's route's timeouts
  std::string client_;
  std::size_t client_hash_;
  std::shared_ptr<live_connection> live_;
  unsigned short listen_port_;
  tls_stream down_;
  std::optional<tls_stream> up_;
  server_lease lease_;  ///< the server slot of up_ (declared after up_: released before the stream goes)
  dog down_read_dog_;
  dog down_write_dog_;
  dog up_read_dog_;
  dog up_write_dog_;
  beast::flat_buffer down_buf_;
  beast::flat_buffer up_buf_;
  std::string down_tls_;
  std::string up_tls_;
  long t_handshake_ = -1;
  std::chrono::steady_clock::time_point up_last_used_{};
  std::uint64_t upstream_requests_ = 0;
  bool pinned_ = false;
  bool idle_ = false;  ///< waiting for the next request (a drain may close the connection now)
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);  ///< false once destroyed (for posted drain hooks)
};

}  // namespace

net::awaitable<void> run_downstream_session(std::shared_ptr<bridge_context> context,
                                            std::shared_ptr<const downstream_certs> certs, tcp::socket socket) {
  downstream_session session(std::move(context), std::move(certs), std::move(socket));
  co_await session.run();
}

}  // namespace exbridge::proxy
