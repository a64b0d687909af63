// Upstream pools at run time: each pool's TLS context, its servers with their health, connection counts and
// queue, and server choice (round robin or by client address). Connecting is connector.hpp's, health checks
// are health_check.hpp's.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "common/clock.hpp"
#include "common/net.hpp"
#include "common/tls_context.hpp"
#include "proxy/config/options.hpp"
#include "proxy/upstream/health_check.hpp"

namespace exbridge::proxy {

class upstream_pool;

/// One Exchange server of a pool. Counters are atomics: sessions on every thread update them.
struct server_state {
  upstream_pool* pool = nullptr;
  host_port address;
  std::string name;  ///< "host:port"
  std::atomic<bool> up{true};
  std::atomic<std::int64_t> active{0};            ///< open upstream connections
  std::atomic<std::int64_t> connections{0};       ///< connections opened (total)
  std::atomic<std::int64_t> connect_failures{0};  ///< connect or TLS handshake failures (sessions)
  std::atomic<std::int64_t> checks{0};
  std::atomic<std::int64_t> checks_failed{0};
  std::atomic<std::int64_t> went_down{0};
  std::atomic<std::int64_t> bytes_in{0};   ///< response bytes from this server
  std::atomic<std::int64_t> bytes_out{0};  ///< request body bytes to this server
  tls_session_cache sessions;              ///< TLS resumption with this server

  /// The last health check's outcome and when the state last changed (guarded: text).
  std::string last_check() const;
  std::chrono::system_clock::time_point last_change() const;
  void set_check(std::string text, bool changed);

 private:
  mutable std::mutex mutex_;
  std::string last_check_ = "not checked";
  std::chrono::system_clock::time_point last_change_ = std::chrono::system_clock::now();
};

/// A server slot held by one upstream connection; releasing it (destruction) wakes a queued request.
class server_lease {
 public:
  server_lease() = default;
  explicit server_lease(server_state* s) : server_(s) {}
  server_lease(server_lease&& o) noexcept : server_(std::exchange(o.server_, nullptr)) {}
  server_lease& operator=(server_lease&& o) noexcept;
  ~server_lease() { release(); }
  server_state* get() const { return server_; }
  explicit operator bool() const { return server_ != nullptr; }
  void release();

 private:
  server_state* server_ = nullptr;
};

/// Why no server could be leased.
struct no_server {
  bool queue_timeout = false;  ///< every server was at its connection limit for the whole queue timeout
  std::string detail;
};

class upstream_pool : public std::enable_shared_from_this<upstream_pool> {
 public:
  /// Builds the pool's TLS context. Throws config_error with the cause and the fix.
  explicit upstream_pool(upstream_settings settings, state_observer observer = nullptr);
  upstream_pool(const upstream_pool&) = delete;
  upstream_pool& operator=(const upstream_pool&) = delete;

  const upstream_settings settings;
  ssl::context tls;
  std::vector<std::unique_ptr<server_state>> servers;

  /// A server for a new connection: the first healthy one with a free slot in the order `how` gives
  /// (`client_hash` for source persistence), skipping `tried`; `prefer` (an Outlook Anywhere channel's virtual
  /// connection lives there) first while it is healthy and untried, waiting for a slot on it if it is full.
  /// Waits in the pool's queue while every healthy server is at its limit, up to the queue timeout. Must be
  /// awaited on the caller's strand.
  net::awaitable<std::variant<server_lease, no_server>> acquire(persistence how, std::size_t client_hash,
                                                                const std::vector<server_state*>& tried,
                                                                server_state* prefer = nullptr);
  /// The server named `name` ("host:port"), or nullptr.
  server_state* find(std::string_view name) const;

  /// Starts one health-check loop per server (no-op when the pool has no health check).
  void start_health_checks(net::io_context& ioc) { checks_.start(ioc, shared_from_this()); }
  /// Stops the health checks.
  void stop() { checks_.stop(); }

  /// Called by server_lease when a slot frees.
  void released();

 private:
  struct waiter {
    explicit waiter(net::any_io_executor ex) : wake(std::move(ex)) {}
    exbridge::timer wake;
    bool woken = false;
  };
  server_state* pick(persistence how, std::size_t client_hash, const std::vector<server_state*>& tried,
                     server_state* prefer, bool& any_healthy_untried);

  std::mutex mutex_;
  std::list<std::shared_ptr<waiter>> waiters_;
  std::atomic<std::size_t> next_{0};
  health_checks checks_;
};

/// A hash of `bytes` that is the same on every thread and after a restart (server choice by persistence).
std::size_t stable_hash(std::string_view bytes);
/// Stable 64-bit hash of a client address (its IP, without the port): source persistence.
std::size_t client_address_hash(const std::string& client);


}  // namespace exbridge::proxy
