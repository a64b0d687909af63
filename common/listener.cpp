// Listener implementation.
#include "common/listener.hpp"

#include <thread>
#include <vector>

#include "common/errors.hpp"
#include "common/log.hpp"

namespace exbridge {

tcp::acceptor bind_listener(net::io_context& ioc, const host_port& where, const std::string& what) {
  error_code ec;
  const auto address = net::ip::make_address(where.host, ec);
  if (ec) {
    throw config_error(what + ": '" + where.host + "' is not an IP address; listen on an address such as 0.0.0.0, "
                       "127.0.0.1 or ::");
  }
  tcp::acceptor acceptor(ioc);
  const tcp::endpoint endpoint(address, where.port);
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    std::string hint = "choose another address or port";
    if (ec == net::error::address_in_use) hint = "another process listens there; stop it or choose another port";
    if (ec == net::error::access_denied) hint = "ports below 1024 need root or CAP_NET_BIND_SERVICE";
    if (ec == boost::system::errc::address_not_available) hint = "that address is not configured on this machine";
    throw config_error(what + ": cannot listen on " + where.to_string() + ": " + ec.message() + "; " + hint);
  }
  return acceptor;
}

namespace {

net::awaitable<void> accept_connections(tcp::acceptor& acceptor, connection_handler handler) {
  for (;;) {
    auto strand = net::make_strand(acceptor.get_executor());
    auto [ec, socket] = co_await acceptor.async_accept(strand, use_tuple);
    if (ec == net::error::operation_aborted || !acceptor.is_open()) co_return;
    if (ec) {
      // EMFILE and friends: say so and keep accepting; the condition usually clears as connections close.
      log_warn(cat("accept failed: ", ec.message(), " (raise the file-descriptor limit if this repeats)"));
      continue;
    }
    socket.set_option(tcp::no_delay(true), ec);
    net::co_spawn(strand, handler(std::move(socket)), log_connection_failure);
  }
}

}  // namespace

void log_connection_failure(std::exception_ptr e) {
  if (!e) return;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    log_error(cat("connection handler failed: ", ex.what()));
  }
}

void start_accepting(tcp::acceptor& acceptor, connection_handler handler) {
  net::co_spawn(acceptor.get_executor(), accept_connections(acceptor, std::move(handler)), net::detached);
}

void run_until_signalled(net::io_context& ioc, unsigned threads, const std::function<void()>& on_stop) {
  net::signal_set signals(ioc, SIGINT, SIGTERM);
  signals.async_wait([&](const error_code& ec, int signal) {
    if (ec) return;
    log_info(cat("signal ", signal, " received: stopping"));
    on_stop();
    ioc.stop();
  });
  std::vector<std::thread> pool;
  for (unsigned i = 1; i < threads; ++i) pool.emplace_back([&ioc] { ioc.run(); });
  ioc.run();
  for (auto& t : pool) t.join();
}

}  // namespace exbridge
