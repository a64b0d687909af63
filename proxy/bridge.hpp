// exbridge: accepts Exchange Online's TLS 1.2/1.3 connections and relays HTTP/1.1 to the TLS 1.0 upstream
// pools. The bridge owns the listener, the current configuration (a bridge_context: replaced whole on a
// reload, while open connections finish on the one they started with), the certificates (replaced on
// SIGHUP or when their files change), and what outlives both: counters, histograms and the live connections.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <sys/stat.h>

#include "common/net.hpp"
#include "proxy/stats/live.hpp"
#include "proxy/config/options.hpp"
#include "proxy/upstream/pool.hpp"
#include "proxy/upstream/vc_pairing.hpp"
#include "proxy/stats/stats.hpp"

namespace exbridge::proxy {

/// The downstream certificates: the default context plus the SNI alternatives, and what their files looked
/// like when they were read (so a renewal on disk is noticed).
struct downstream_certs {
  /// Reads and checks every certificate (chain, key match, expiry). Throws config_error.
  explicit downstream_certs(const bridge_options& o);
  std::vector<ssl::context> sni_tls;  ///< declared first: outlives `primary`, whose SNI callback points here
  mutable ssl::context primary;  // mutable: streams take a non-const context (they only read it)
  std::vector<std::string> files;
  std::string stamp;  ///< inode, size and mtime of every file: a change means a renewal
};

/// The files' current stamp (what downstream_certs::stamp would be now).
std::string certificate_stamp(const std::vector<std::string>& files);

/// What outlives configurations: counters, timer histograms, the live-connection registry.
struct bridge_shared {
  std::atomic<bool> draining{false};  ///< connections close once idle, instead of waiting for the next request
  bridge_stats stats;
  bridge_histograms histograms;
  live_registry live;
  vc_pairing pairing;  ///< which server holds each Outlook Anywhere virtual connection
};

/// One configuration: options and the upstream pools built from them. Read-only once built.
struct bridge_context {
  /// Builds every pool's TLS context. Throws config_error with the cause and the fix.
  explicit bridge_context(bridge_options o, std::shared_ptr<bridge_shared> shared = nullptr);
  bridge_context(const bridge_context&) = delete;
  bridge_context& operator=(const bridge_context&) = delete;
  bridge_options options;
  std::shared_ptr<bridge_shared> shared;
  bridge_stats& stats;
  std::vector<std::shared_ptr<upstream_pool>> pools;  ///< [0] = default

  /// The route of a request target: pool, persistence and timeouts.
  struct route_choice {
    upstream_pool* pool;
    persistence how;
    const struct timeouts* timeouts;
    const route_settings* route;  ///< null = the default route
  };
  route_choice route_for(std::string_view target) const;
};

class bridge {
 public:
  /// Builds the contexts and binds the listener. Throws config_error with the cause and the fix.
  bridge(net::io_context& ioc, bridge_options options);
  ~bridge();
  /// The first listener's address (listen.address); local_endpoints() has every listener's.
  tcp::endpoint local_endpoint() const { return listeners_.front()->acceptor.local_endpoint(); }
  std::vector<tcp::endpoint> local_endpoints() const;
  void start();
  /// Stops accepting and the health checks; open connections continue (see drain).
  void stop();
  const bridge_stats& stats() const { return shared_->stats; }
  std::shared_ptr<bridge_shared> shared() const { return shared_; }

  std::shared_ptr<bridge_context> context() const;
  std::shared_ptr<const downstream_certs> certificates() const;

  /// Re-reads the certificate files. A certificate that fails (missing, mismatched key, expired) is refused
  /// and the running one keeps serving. Returns the error, or nullopt when the new ones are in use.
  std::optional<std::string> reload_certificates();
  /// Starts using `options` for new connections (listen address, user and threads excepted). Throws
  /// config_error, leaving the running configuration untouched.
  void reload(bridge_options options);
  /// Starts watching the certificate files (options.certificate_watch; 0 = off).
  void watch_certificates();
  /// Calls `done` once no downstream connection is open, or after `limit`, with the number still open.
  void drain(std::chrono::seconds limit, std::function<void(std::int64_t)> done);

 private:
  /// One listening address: its socket, its open-connection count and the timer its accept loop waits on
  /// while max_connections are open (more clients wait in the kernel's backlog).
  struct listener {
    listener(tcp::acceptor a, net::strand<net::io_context::executor_type>& strand) : acceptor(std::move(a)), gate(strand) {}
    tcp::acceptor acceptor;
    exbridge::timer gate;
    std::atomic<std::int64_t> open{0};
  };
  net::awaitable<void> accept_loop(listener& l);
  net::awaitable<void> watch_loop();
  net::io_context& ioc_;
  std::shared_ptr<bridge_shared> shared_;
  mutable std::mutex mutex_;
  std::shared_ptr<bridge_context> context_;
  std::shared_ptr<const downstream_certs> certs_;
  net::strand<net::io_context::executor_type> strand_;
  /// Set when options.threads is 1 at start (main resolves 0 to the core count): see accept_loop.
  const bool one_loop_thread_;
  std::vector<std::unique_ptr<listener>> listeners_;
  net::steady_timer watcher_;  ///< certificate file watch (real time: renewals are not scenario time)
  std::atomic<bool> stopped_{false};
};

/// Serves one downstream connection until it closes (proxy/session/session.cpp).
net::awaitable<void> run_downstream_session(std::shared_ptr<bridge_context> context,
                                            std::shared_ptr<const downstream_certs> certs, tcp::socket socket);

}  // namespace exbridge::proxy
