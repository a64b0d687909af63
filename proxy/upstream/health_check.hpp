// Active health checks of a pool's servers: L4 (TCP connect), L6 (the TLS handshake exactly as sessions make
// it, through connector.hpp) or L7 (an HTTP request over that TLS connection). A server goes down after `fall`
// failed checks in a row and comes back after `rise` good ones; new connections avoid it meanwhile.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/clock.hpp"
#include "common/net.hpp"
#include "proxy/config/options.hpp"

namespace exbridge::proxy {

class upstream_pool;
struct server_state;

/// Told when a health check marks a server up or down: (pool, server "host:port", up).
using state_observer = std::function<void(const std::string& pool, const std::string& server, bool up)>;

/// One check of `server`: "" when healthy, else why not (the classified failure and its fix).
net::awaitable<std::string> check_server(upstream_pool& pool, server_state& server);

std::string_view check_name(check_type t);  ///< "L4 TCP", "L6 TLS", "L7 HTTP"

/// The check loops of one pool, one per server.
class health_checks {
 public:
  health_checks(upstream_pool& pool, state_observer observer) : pool_(pool), observer_(std::move(observer)) {}
  health_checks(const health_checks&) = delete;
  health_checks& operator=(const health_checks&) = delete;
  /// Starts one loop per server, each on a strand of its own; `keep` keeps the pool alive while they run.
  /// A no-op when the pool has no health check.
  void start(net::io_context& ioc, std::shared_ptr<upstream_pool> keep);
  void stop();

 private:
  net::awaitable<void> loop(server_state& server);

  upstream_pool& pool_;
  state_observer observer_;
  std::mutex mutex_;
  std::vector<std::shared_ptr<exbridge::timer>> timers_;
  std::atomic<bool> stopping_{false};
};

}  // namespace exbridge::proxy
