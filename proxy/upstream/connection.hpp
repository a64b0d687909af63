// A client connection's upstream side: the one upstream connection it owns, its read buffer, its two
// watchdogs (the server not answering, the server not taking bytes) and the pinning decision.
//
// Connection model (why): NTLM and Negotiate authenticate the TCP connection, not the request
// (exchange-protocols.md §7). A downstream connection therefore owns its upstream connection for its whole
// life and never lends it to another client; when the server closes it, the next request gets a fresh one
// and the server simply challenges again. A connection is opened on a server the route's pool picks; one
// that cannot be reached or fails the TLS handshake is skipped for the next (redispatch, up to the pool's
// retries): nothing of the request was sent yet, so retrying is safe. Once a request byte has left, nothing
// is ever retried.
//
// Generic over the stream and the connector: tls_socket and tls_connector in exbridge, in-memory streams and
// a scripted connector in the session's unit tests.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "common/log.hpp"
#include "common/net.hpp"
#include "common/watchdog.hpp"
#include "proxy/bridge.hpp"
#include "proxy/session/access_log.hpp"
#include "proxy/session/termination.hpp"
#include "proxy/stats/live.hpp"
#include "proxy/upstream/connector.hpp"
#include "proxy/upstream/pool.hpp"

namespace exbridge::proxy {

/// Why no upstream connection could be had: no server to try, or the last attempt's failure.
using upstream_failure = std::variant<no_server, connect_result>;

template <class Stream, class Connector>
class upstream_connection {
 public:
  /// `executor`: the client connection's (its strand, or its loop's one thread).
  upstream_connection(net::any_io_executor executor, Connector& connector, bridge_context& ctx, live_connection& live)
      : executor_(executor),
        connector_(connector),
        ctx_(ctx),
        live_(live),
        read_timer_(executor, [this] { close(); }),
        write_timer_(executor, [this] { close(); }) {}
  upstream_connection(const upstream_connection&) = delete;
  upstream_connection& operator=(const upstream_connection&) = delete;

  /// The connection for a request on `route`: the current one while it lives, belongs to the route's pool and
  /// holds nothing unread; else a new one. nullopt when ready (rec names the server, its TLS and the connect
  /// timers); else why not. May take a while: it queues when every server is at its connection limit.
  /// `prefer`: the name of the server an Outlook Anywhere channel's virtual connection is on ("" for none).
  net::awaitable<std::optional<upstream_failure>> acquire(const bridge_context::route_choice& route,
                                                          std::size_t client_hash, const struct timeouts& t,
                                                          request_record& rec, const std::string& prefer = {}) {
    upstream_pool& pool = *route.pool;
    if (lease_ && lease_.get()->pool == &pool && reusable()) {
      rec.up_tls = tls_;
      rec.server = server_name();
      co_return std::nullopt;
    }
    co_await shut();
    buffer_.clear();
    requests_ = 0;
    std::vector<server_state*> tried;
    std::optional<upstream_failure> failed;  // the last attempt's, answered if no further server is left
    for (;;) {
      auto got = co_await pool.acquire(route.how, client_hash, tried, prefer.empty() ? nullptr : pool.find(prefer));
      if (auto* none = std::get_if<no_server>(&got)) {
        ctx_.stats.add(none->queue_timeout ? counter::upstream_queue_timeouts : counter::upstream_no_server);
        if (!failed) failed = std::move(*none);
        co_return failed;
      }
      lease_ = std::move(std::get<server_lease>(got));
      server_state& server = *lease_.get();
      rec.server = server_name();
      tried.push_back(&server);
      auto result = co_await open(rec, pool, server, t);
      if (result.failed_at == connect_result::ok) co_return std::nullopt;
      const std::string detail = result.to_string();
      failed = std::move(result);
      if (tried.size() > pool.settings.retries || tried.size() >= pool.servers.size()) co_return failed;
      ctx_.stats.add(counter::upstream_cx_redispatched);
      log_warn(cat("upstream ", server.name, " (pool ", pool.settings.name, ") failed for ", live_.client, ": ", detail,
                   "; trying another server"));
    }
  }

  Stream& stream() { return *stream_; }
  beast::flat_buffer& buffer() { return buffer_; }
  /// Runs while the server is to answer (response headers, body bytes); expiry closes the connection.
  watchdog<timeout_kind>& read_timer() { return read_timer_; }
  /// Runs while the server is to take bytes; expiry closes the connection.
  watchdog<timeout_kind>& write_timer() { return write_timer_; }

  /// From now on this client connection and its upstream connection belong together: NTLM, Negotiate or an
  /// Outlook Anywhere channel. Never undone.
  void pin() {
    pinned_ = true;
    live_.pinned = true;
  }
  bool pinned() const { return pinned_; }

  /// True when the next acquire() keeps the current connection: the server is already chosen.
  bool holds(const upstream_pool& pool) { return lease_ && lease_.get()->pool == &pool && reusable(); }
  /// The current server's name in its pool ("host:port"); "" without one.
  std::string server_in_pool() const { return lease_ ? lease_.get()->name : std::string(); }

  /// Counts a request on this connection; returns how many it has carried.
  std::uint64_t count_request() { return ++requests_; }
  /// A response has just been received whole: the connection is known to be alive.
  void answered() { last_used_ = std::chrono::steady_clock::now(); }

  /// Ends the connection with close_notify (bounded by 2 s), then closes it. A TLS session closed without it
  /// is dropped from the server's session cache, and the next connection would pay a full handshake.
  net::awaitable<void> shut() {
    if (stream_ && stream_->is_open()) {
      auto bound = write_timer_.scoped(std::chrono::seconds(2), timeout_kind::upstream_write);
      co_await stream_->async_shutdown(use_tuple);
    }
    close();
  }

  /// Closes the connection at once; its server slot frees with it.
  void close() {
    if (stream_) stream_->close();
    lease_.release();
  }

  /// Between requests: nothing of an idle connection stays allocated.
  void shrink_buffer() {
    if (buffer_.size() == 0) buffer_.shrink_to_fit();
  }

  /// Adds a finished request's bytes to its server's counters.
  void count_bytes(std::uint64_t from_client, std::uint64_t to_client) {
    if (!lease_) return;
    lease_.get()->bytes_out.fetch_add(static_cast<std::int64_t>(from_client), std::memory_order_relaxed);
    lease_.get()->bytes_in.fetch_add(static_cast<std::int64_t>(to_client), std::memory_order_relaxed);
  }

 private:
  std::string server_name() const { return lease_.get()->pool->settings.name + "/" + lease_.get()->name; }

  // An idle upstream connection may have been closed by the server (IIS closes idle connections after
  // 120 s, with close_notify then FIN). Look before reuse, so such a request goes on a fresh connection
  // instead of failing; leftover bytes (anything beyond the last response) also forbid reuse. A connection
  // that answered within the last second is not looked at: servers close idle connections after minutes,
  // and a busy keep-alive connection is spared a system call per request.
  bool reusable() {
    if (!stream_ || !stream_->is_open()) return false;
    if (buffer_.size() > 0 || stream_->has_buffered_input()) return false;
    if (std::chrono::steady_clock::now() - last_used_ < std::chrono::seconds(1)) return true;
    return !stream_->peer_sent_something();
  }

  // One connection attempt through the connector, with its counters and timers.
  net::awaitable<connect_result> open(request_record& rec, upstream_pool& pool, server_state& server,
                                      const struct timeouts& t) {
    ctx_.stats.add(counter::upstream_cx_total);
    const auto started = std::chrono::steady_clock::now();
    connect_timing timing;
    auto result = co_await connector_.open(stream_, executor_, pool, server, t, timing);
    const auto ms = [](auto d) { return static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(d).count()); };
    rec.t_connect = ms(timing.connected - rec.started);
    ctx_.shared->histograms.observe(timer_id::upstream_connect, ms(timing.connected - started));
    if (timing.handshaken) {
      rec.t_upstream_tls = ms(*timing.handshaken - rec.started);
      ctx_.shared->histograms.observe(timer_id::upstream_handshake, ms(*timing.handshaken - timing.connected));
    }
    if (result.failed_at == connect_result::ok) {
      if (stream_->session_reused()) ctx_.stats.add(counter::upstream_tls_resumed);
      tls_ = describe_session(stream_->native_handle());
      rec.up_tls = tls_;
      co_return result;
    }
    server.connect_failures.fetch_add(1, std::memory_order_relaxed);
    close();  // a pinned certificate that does not match gets no request byte
    ctx_.stats.add(result.failed_at == connect_result::handshake ? counter::upstream_tls_handshake_fail
                                                                 : counter::upstream_cx_connect_fail);
    co_return result;
  }

  net::any_io_executor executor_;
  Connector& connector_;
  bridge_context& ctx_;
  live_connection& live_;
  std::optional<Stream> stream_;
  server_lease lease_;  ///< the server slot of stream_ (declared after it: released before the stream goes)
  watchdog<timeout_kind> read_timer_;
  watchdog<timeout_kind> write_timer_;
  beast::flat_buffer buffer_;
  std::string tls_;  ///< the connection's TLS version and cipher, for the access log
  std::chrono::steady_clock::time_point last_used_{};
  std::uint64_t requests_ = 0;
  bool pinned_ = false;
};

}  // namespace exbridge::proxy
