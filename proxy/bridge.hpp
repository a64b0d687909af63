// exbridge: accepts Exchange Online's TLS 1.2/1.3 connections and relays HTTP/1.1 to the TLS 1.0 upstream.
#pragma once

#include "common/net.hpp"
#include "proxy/options.hpp"
#include "proxy/stats.hpp"

namespace exbridge::proxy {

/// What every downstream session shares (read-only after start, except the atomic stats).
struct bridge_context {
  /// Builds the TLS contexts of both legs. Throws config_error with the cause and the fix.
  explicit bridge_context(bridge_options o);
  bridge_context(const bridge_context&) = delete;
  bridge_context& operator=(const bridge_context&) = delete;
  bridge_options options;
  std::vector<ssl::context> sni_tls;  ///< further certificates chosen by SNI (declared first: outlives the next)
  ssl::context downstream_tls;
  ssl::context upstream_tls;
  tls_session_cache upstream_sessions;  ///< resumption towards the Exchange server
  bridge_stats stats;
};

class bridge {
 public:
  /// Builds both TLS contexts and binds the listener. Throws config_error with the cause and the fix.
  bridge(net::io_context& ioc, bridge_options options);
  tcp::endpoint local_endpoint() const { return acceptor_.local_endpoint(); }
  void start();
  void stop();
  const bridge_stats& stats() const { return context_->stats; }

 private:
  std::shared_ptr<bridge_context> context_;
  tcp::acceptor acceptor_;
};

/// Serves one downstream connection until it closes (defined in session.cpp).
net::awaitable<void> run_downstream_session(std::shared_ptr<bridge_context> context, tcp::socket socket);

}  // namespace exbridge::proxy
