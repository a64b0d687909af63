// fake-exchange's network side: a TLS 1.0-only listener that behaves like IIS 7 in front of Exchange 2007
// (keep-alive, per-request log line), handing each request to the router.
#pragma once

#include <atomic>
#include <memory>

#include "common/cli.hpp"
#include "common/clock.hpp"
#include "common/tls_context.hpp"
#include "fake_exchange/router.hpp"

namespace exbridge::fake_exchange {

struct server_options {
  host_port listen{"127.0.0.1", 0};
  tls_identity identity;             ///< empty = a self-generated certificate
  exchange_config exchange;
  scaled_clock::duration handshake_timeout = std::chrono::seconds(30);
  scaled_clock::duration idle_timeout = std::chrono::seconds(120);  ///< IIS connectionTimeout default
};

class server {
 public:
  /// Builds the TLS context and binds. Throws config_error with the cause and the fix.
  server(net::io_context& ioc, server_options options);
  tcp::endpoint local_endpoint() const { return acceptor_.local_endpoint(); }
  void start();
  void stop();

 private:
  net::awaitable<void> serve(tcp::socket socket);

  server_options options_;
  ssl::context tls_;
  tcp::acceptor acceptor_;
};

}  // namespace exbridge::fake_exchange
