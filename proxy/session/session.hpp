// One downstream connection: the TLS 1.2/1.3 handshake, then a loop of HTTP/1.1 requests, each read and
// checked here, given an upstream connection (upstream/connection.hpp) and relayed as one exchange
// (exchange.hpp); how each ended is decided by classify() and written to the access log and the counters.
//
// Generic over the stream and the upstream connector: exbridge runs it on tls_socket with tls_connector
// (session.cpp); the unit tests run it on in-memory streams with a scripted connector, so that every
// termination is reachable without a socket.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "common/le_bytes.hpp"
#include "common/log.hpp"
#include "common/rts.hpp"
#include "common/tls_context.hpp"
#include "common/tls_diagnosis.hpp"
#include "proxy/bridge.hpp"
#include "proxy/session/access_log.hpp"
#include "proxy/session/classify.hpp"
#include "proxy/session/exchange.hpp"
#include "proxy/session/http_checks.hpp"
#include "proxy/session/request_head.hpp"
#include "proxy/upstream/connection.hpp"

namespace exbridge::proxy {

template <class Stream, class Connector>
class downstream_session {
 public:
  /// `down`: the accepted client connection, before its handshake; `client` its "address:port", `listen_port`
  /// the port it came in on (X-Forwarded-Port). Both must outlive the session.
  downstream_session(std::shared_ptr<bridge_context> ctx, Stream& down, Connector& connector, std::string client,
                     unsigned short listen_port)
      : ctx_(std::move(ctx)),
        options_(ctx_->options),
        t_(&options_.timeouts),
        client_(std::move(client)),
        client_hash_(client_address_hash(client_)),
        live_(ctx_->shared->live.add(client_)),
        listen_port_(listen_port),
        down_(down),
        up_(down.get_executor(), connector, *ctx_, *live_) {
    ctx_->stats.add(counter::downstream_cx_total);
    // Runs on the drain's thread: hop onto this connection's executor, where `alive` and `idle_` live.
    live_->set_drain_hook([ex = down.get_executor(), alive = alive_, this] {
      net::post(ex, [alive, this] {
        if (*alive && idle_) down_.stream.cancel();
      });
    });
  }
  ~downstream_session() { *alive_ = false; }
  downstream_session(const downstream_session&) = delete;
  downstream_session& operator=(const downstream_session&) = delete;

  net::awaitable<void> run() {
    if (!co_await handshake()) co_return;
    for (bool first = true;; first = false) {
      if (!co_await wait_for_request(first)) break;
      const bool again = co_await serve_one_request();
      // Nothing of an idle connection stays allocated: the buffers grow again when the next request comes.
      if (down_.buffer.size() == 0) down_.buffer.shrink_to_fit();
      up_.shrink_buffer();
      if (!again) break;
    }
    co_await up_.shut();
    if (down_.stream.is_open()) {
      // close_notify, and a short wait for the client's; shorter while draining, so that shutdown is not held
      // up by clients that never answer it.
      const auto bound = ctx_->shared->draining ? std::chrono::milliseconds(500) : std::chrono::milliseconds(5000);
      auto armed = down_.write_timer.scoped(bound, timeout_kind::client_write);
      co_await down_.stream.async_shutdown(use_tuple);
    }
  }

 private:
  net::awaitable<bool> handshake() {
    const auto started = std::chrono::steady_clock::now();
    down_.read_timer.arm(t_->downstream_handshake, timeout_kind::downstream_handshake);
    auto [ec] = co_await down_.stream.async_handshake(ssl::stream_base::server, use_tuple);
    down_.read_timer.disarm();
    t_handshake_ = static_cast<long>(
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count());
    ctx_->shared->histograms.observe(timer_id::downstream_handshake, t_handshake_);
    if (!ec) {
      down_tls_ = describe_session(down_.stream.native_handle());
      down_.stream.set_no_delay();
      co_return true;
    }
    const bool timed_out = down_.read_timer.fired() == timeout_kind::downstream_handshake;
    ctx_->stats.add(counter::downstream_tls_handshake_fail);
    auto d = diagnose_tls_failure(timed_out ? net::error::timed_out : ec, down_.stream.native_handle(), "the client");
    if (d.kind == tls_failure::protocol_version) {
      // On this side the old party is the client: nothing to fix in exbridge (Exchange Online speaks 1.2/1.3).
      d.hint = "exbridge accepts TLS 1.2 and 1.3 only, as Exchange Online uses; this client offered only older "
               "versions (a scanner, or a client that should not use this endpoint)";
    }
    const verdict v = classify(handshake_outcome{timed_out, d.to_string()});
    count_end(v.why);
    log_info(cat("downstream ", client_, " TLS handshake failed: ", v.detail));
    co_return false;
  }

  // Waits for the first bytes of the next request under the idle timer (client idle on a new connection,
  // keep-alive idle between requests). Not a wait on the socket: the TLS stream may already hold the
  // request's records, read during the handshake or behind the previous request.
  net::awaitable<bool> wait_for_request(bool first) {
    if (down_.buffer.size() > 0) co_return true;  // pipelined
    if (ctx_->shared->draining && !first) co_return false;  // shutting down: no further request on this one
    const auto kind = first ? timeout_kind::client_idle : timeout_kind::keep_alive_idle;
    down_.read_timer.arm(first ? t_->client_idle : t_->keep_alive_idle, kind);
    idle_ = true;
    auto [ec, n] = co_await down_.stream.async_read_some(down_.buffer.prepare(idle_read_size), use_tuple);
    idle_ = false;
    down_.buffer.commit(n);
    down_.read_timer.disarm();
    if (!ec || down_.buffer.size() > 0) co_return true;
    // The client closed, or idled out, between requests: not a request failure, so no access-log line,
    // except for a connection that never sent anything (browser pre-connects, scanners).
    if (down_.read_timer.fired() == kind) {
      const verdict v = classify(idle_outcome{first, t_->client_idle});
      if (first) {
        request_record rec = new_record();
        finish(rec, v.why, v.detail);
      } else {
        count_end(v.why);
      }
    }
    co_return false;
  }

  net::awaitable<bool> serve_one_request() {
    request_record rec = new_record();
    ctx_->stats.add(counter::downstream_rq_total);
    http::request_parser<http::buffer_body> parser;
    limit_request_parser(parser);
    down_.read_timer.arm(t_->request_headers, timeout_kind::request_headers);
    const head_read head = co_await read_request_head(down_.stream, down_.buffer, parser, request_read_size);
    down_.read_timer.disarm();
    auto& req = parser.get();
    head_outcome h{.ec = head.ec, .folded = head.folded, .limit = t_->request_headers};
    if (!h.folded) {
      rec.method = std::string(req.method_string());
      rec.target = std::string(req.target());
      h.timed_out = down_.read_timer.fired() == timeout_kind::request_headers;
      if (!h.ec) h.rejected = check_request_header(req);
    }
    if (h.folded || h.ec || h.rejected) co_return co_await end_request(rec, classify(h));

    rec.t_request = rec.elapsed_ms();
    rec.auth_scheme = auth_scheme_of(req);
    const auto route = ctx_->route_for(rec.target);
    t_ = route.timeouts;
    const bool rpc = is_rpc_target(rec.target);
    if (rec.auth_scheme == "NTLM" || rec.auth_scheme == "Negotiate" || rpc) up_.pin();
    live_->requests.fetch_add(1, std::memory_order_relaxed);
    // An Outlook Anywhere channel goes to the server its virtual connection is on (vc_pairing.hpp).
    std::optional<rts::cookie> vc;
    std::string prefer;
    if (rpc && route.how == persistence::cookie && is_rpc_channel(parser)) {
      error_code ec;
      vc = co_await read_vc_cookie(parser, ec);
      if (ec) {
        exchange_outcome o{.at = exchange_outcome::phase::response_headers, .rpc = true, .timeouts = t_};
        o.fired.add(down_.read_timer.fired());
        o.upload = relay_outcome{.ec = ec, .failed_reading = true};
        co_return co_await end_request(rec, classify(o));
      }
      if (vc) {
        rec.vc = rts::to_hex(*vc).substr(0, 8);
        const auto placed = ctx_->shared->pairing.find(*vc, std::chrono::steady_clock::now());
        const bool here = placed && placed->pool == route.pool->settings.name;
        if (up_.holds(*route.pool)) {
          // The connection's server is already chosen (an NTLM-authenticated connection stays on its server):
          // the channel can only be checked against its virtual connection's server.
          const std::string current = up_.server_in_pool();
          rec.pairing = !here || placed->server == current ? "ntlm-bound" : "ntlm-conflict:" + placed->server;
        } else {
          if (here) prefer = placed->server;
          rec.pairing = here ? "cookie-joined" : "cookie";
        }
      } else {
        rec.pairing = "no-cookie";
      }
    } else if (rpc && is_rpc_channel(parser)) {
      rec.pairing = route.how == persistence::source ? "source" : "round-robin";
    }
    // A new virtual connection's channels choose by its cookie, as source persistence chooses by address: the
    // IN and OUT channels often arrive together, before either is placed, and must still meet.
    auto chosen = route;
    std::size_t hash = client_hash_;
    if (vc) {
      chosen.how = persistence::source;
      hash = stable_hash(std::string_view(reinterpret_cast<const char*>(vc->data()), vc->size()));
    }
    if (auto failure = co_await up_.acquire(chosen, hash, *t_, rec, prefer)) {
      co_return co_await end_request(rec, std::visit([](const auto& f) { return classify(f); }, *failure));
    }
    if (vc && !rec.pairing.starts_with("ntlm-conflict")) {
      if (!prefer.empty() && up_.server_in_pool() != prefer) rec.pairing = "cookie-moved:" + prefer;  // it was down
      ctx_->shared->pairing.place(*vc, {route.pool->settings.name, up_.server_in_pool()}, std::chrono::steady_clock::now());
      if (rec.pairing.starts_with("cookie")) ctx_->stats.add(counter::rpc_channels_paired);
    }
    if (rec.pairing.starts_with("ntlm-conflict") || rec.pairing.starts_with("cookie-moved")) {
      ctx_->stats.add(counter::rpc_pairing_conflicts);
      const std::string other = rec.pairing.substr(rec.pairing.find(':') + 1);
      log_warn(rec.pairing.starts_with("cookie-moved")
                   ? cat("Outlook Anywhere: ", rec.method, " of virtual connection ", rec.vc, "… from ", client_,
                         " went to ", rec.server, ": its virtual connection is on ", other,
                         ", which is down or failing; the client will have to open a new virtual connection")
                   : cat("Outlook Anywhere: ", rec.method, " of virtual connection ", rec.vc, "… from ", client_,
                         " went to ", rec.server, " but its virtual connection is on ", other,
                         ": NTLM had already bound this client connection to its server, so the RPC proxy cannot "
                         "join the channels; with Basic authentication exbridge places every channel by its cookie, "
                         "with NTLM a session's channels meet only when they come from one client address"));
    }
    live_->set_server(rec.server, rec.method + " " + rec.target);
    add_forwarding_headers(req, client_, listen_port_);
    rec.upstream_requests = up_.count_request();
    ctx_->stats.add(counter::upstream_rq_total);
    if (up_.pinned()) ctx_->stats.add(counter::upstream_rq_pinned);

    exchange<Stream, Connector> x(down_, up_, *live_, options_, *t_, rec, rpc);
    const exchange_outcome o = co_await x.run(parser);
    const bool again = co_await end_request(rec, classify(o));
    if (o.at == exchange_outcome::phase::done && o.request_sent) {
      up_.answered();
      // The server ends the connection: answer with close_notify. OpenSSL marks a session closed without it
      // unresumable (RFC 2246), and that is the session offered to the next connections to this server. Its
      // "Connection: close" went to the client too, so the client expects the close: a connection-bound
      // (NTLM) session ends on both legs together.
      if (!o.response_keep_alive) co_await up_.shut();
    }
    co_return again;
  }

  // True for an Outlook Anywhere channel request: RPC_IN_DATA or RPC_OUT_DATA with a body larger than an echo's
  // ([MS-RPCH] 2.1.2.1.1: echo requests carry at most 16 bytes).
  static bool is_rpc_channel(http::request_parser<http::buffer_body>& parser) {
    const auto method = parser.get().method_string();
    return (method == "RPC_IN_DATA" || method == "RPC_OUT_DATA") && parser.content_length().value_or(0) > 16;
  }

  // Reads a channel's first PDU from its body before the server is chosen, and returns the virtual connection's
  // cookie it names (nullopt for a PDU that names none: the server will refuse the channel itself). A client
  // that sent "Expect: 100-continue" waits for it before its body: exbridge answers it, and the request goes
  // upstream without it. The bytes stay in the buffer for the relay.
  net::awaitable<std::optional<rts::cookie>> read_vc_cookie(http::request_parser<http::buffer_body>& parser,
                                                            error_code& ec) {
    auto& req = parser.get();
    if (beast::iequals(req[http::field::expect], "100-continue")) {
      static constexpr std::string_view interim = "HTTP/1.1 100 Continue\r\n\r\n";
      auto armed = down_.write_timer.scoped(t_->rpc_idle, timeout_kind::client_write);
      auto [e, n] = co_await net::async_write(down_.stream, net::buffer(interim), use_tuple);
      if (e) {
        ec = e;
        co_return std::nullopt;
      }
      req.erase(http::field::expect);
    }
    // An opening PDU is at most 104 bytes (CONN/B1); a longer frag_length names no virtual connection.
    constexpr std::size_t most = 512;
    const std::uint64_t declared = *parser.content_length();
    down_.read_timer.arm(t_->rpc_idle, timeout_kind::client_read);
    for (;;) {
      const auto bytes = as_bytes(buffered_text(down_.buffer));
      const auto length = rts::pdu_length(bytes);
      if ((length && (bytes.size() >= *length || *length > most)) || bytes.size() >= declared) break;
      auto [e, n] = co_await down_.stream.async_read_some(down_.buffer.prepare(most), use_tuple);
      down_.buffer.commit(n);
      if (e) {
        down_.read_timer.disarm();
        ec = e;
        co_return std::nullopt;
      }
    }
    down_.read_timer.disarm();
    const auto bytes = as_bytes(buffered_text(down_.buffer));
    const auto length = rts::pdu_length(bytes);
    if (!length || *length > bytes.size() || *length > declared) co_return std::nullopt;  // not within the body
    const auto decoded = rts::decode(bytes.first(*length));
    const auto* p = std::get_if<rts::pdu>(&decoded);
    co_return p == nullptr ? std::nullopt : rts::virtual_connection_of(*p);
  }

  // Ends a request as `v` says: the client hears the error status if it has heard nothing yet (and the
  // connection closes), the access log and the counters get the termination. Returns whether the connection
  // carries another request.
  net::awaitable<bool> end_request(request_record& rec, const verdict& v) {
    if (v.why == termination::bad_request && v.status != 0) ctx_->stats.add(counter::downstream_rq_rejected);
    if (v.status == 0) {
      finish(rec, v.why, v.detail);
      co_return v.keep_alive;
    }
    if (v.why != termination::bad_request && v.why != termination::request_headers_timeout) {
      ctx_->stats.add(counter::upstream_rq_failed);
    }
    http::response<http::string_body> res{static_cast<http::status>(v.status), 11};
    res.set(http::field::content_type, "text/plain; charset=utf-8");
    res.set(http::field::cache_control, "no-store");
    res.keep_alive(false);
    res.body() = "exbridge: " + std::string(info(v.why).reason) + ": " + v.detail + "\n";
    res.prepare_payload();
    rec.status = res.result_int();
    finish(rec, v.why, v.detail);
    if (!down_.stream.is_open()) co_return false;
    auto armed = down_.write_timer.scoped(t_->client_data, timeout_kind::client_write);
    co_await http::async_write(down_.stream, res, use_tuple);
    co_return false;
  }

  request_record new_record() const {
    request_record rec;
    rec.client = client_;
    rec.down_tls = down_tls_;
    rec.t_handshake = t_handshake_;
    rec.started = std::chrono::steady_clock::now();
    return rec;
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
    rec.pinned = up_.pinned();
    count_end(why);
    auto& h = ctx_->shared->histograms;
    h.observe(timer_id::request_headers, rec.t_request);
    if (rec.t_response >= 0) h.observe(timer_id::response_headers, rec.t_response - rec.t_request);
    h.observe(timer_id::total, rec.t_total);
    up_.count_bytes(rec.bytes_from_client, rec.bytes_to_client);
    log_access(rec, options_.access_log);
  }

  std::shared_ptr<bridge_context> ctx_;
  const bridge_options& options_;
  const struct timeouts* t_;  ///< the current request's route's timeouts
  std::string client_;
  std::size_t client_hash_;
  std::shared_ptr<live_connection> live_;
  unsigned short listen_port_;
  downstream_side<Stream> down_;
  upstream_connection<Stream, Connector> up_;
  std::string down_tls_;
  long t_handshake_ = -1;
  bool idle_ = false;  ///< waiting for the next request (a drain may close the connection now)
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);  ///< false once destroyed (for posted drain hooks)
};

}  // namespace exbridge::proxy
