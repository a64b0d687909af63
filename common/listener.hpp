// Listening sockets and the accept loop shared by exbridge and fake-exchange: bind with a clear error,
// announce readiness, and run one coroutine per connection on its own strand (no thread per connection).
#pragma once

#include <functional>
#include <string>

#include "common/cli.hpp"
#include "common/net.hpp"

namespace exbridge {

/// Binds and listens on `where` (port 0 = any free port). Throws config_error naming the cause and fix.
tcp::acceptor bind_listener(net::io_context& ioc, const host_port& where, const std::string& what);

using connection_handler = std::function<net::awaitable<void>(tcp::socket)>;

/// Accepts until the acceptor is closed; each connection runs `handler` on a fresh strand.
/// Per-connection exceptions are logged, never propagated (a peer must not be able to stop the server).
void start_accepting(tcp::acceptor& acceptor, connection_handler handler);

/// Logs a connection coroutine's exception (co_spawn's completion), if any.
void log_connection_failure(std::exception_ptr e);

/// Runs `ioc` on `threads` threads until SIGINT or SIGTERM, then calls `on_stop` and lets work drain.
void run_until_signalled(net::io_context& ioc, unsigned threads, const std::function<void()>& on_stop);

}  // namespace exbridge
