// fake-exchange's network side: a TLS 1.0-only listener that behaves like IIS 7 in front of Exchange 2007
// (keep-alive, per-request log line), handing each request to the router -- or, under /rpc/, streaming
// Outlook Anywhere channels -- and applying the fault rules in force.
#pragma once

#include <atomic>
#include <functional>
#include <memory>

#include "common/cli.hpp"
#include "common/clock.hpp"
#include "common/tls_context.hpp"
#include "fake_exchange/faults.hpp"
#include "fake_exchange/router.hpp"
#include "fake_exchange/stats.hpp"
#include "fake_exchange/virtual_connection.hpp"

namespace exbridge::fake_exchange {

/// What one request was and how it ended: the fields of its log line.
struct request_record {
  std::string method, target, operation, user;
  unsigned status = 0;          ///< 0: no response (a healthy IN channel, a request the client abandoned)
  std::uint64_t bytes_in = 0;   ///< request body bytes read
  std::uint64_t bytes_out = 0;  ///< response bytes written
  std::chrono::milliseconds duration{};
  std::string fault;            ///< "rule:action" when a fault was injected
  std::string error;            ///< why it ended early, if it did
  std::string rpc;              ///< Outlook Anywhere channels: what the RPC association did (rpc_endpoint::summary)
};

struct server_options {
  host_port listen{"127.0.0.1", 0};
  tls_identity identity;             ///< empty = a self-generated certificate
  schannel_profile windows = schannel_profile::win2008;  ///< which Windows Server's TLS 1.0 suites to offer
  exchange_config exchange;
  scaled_clock::duration handshake_timeout = std::chrono::seconds(30);
  scaled_clock::duration idle_timeout = std::chrono::seconds(120);  ///< IIS connectionTimeout default
  scaled_clock::duration rpc_ping_interval = std::chrono::seconds(900);  ///< OA server->client keep-alive
  /// The Content-Length of each OUT channel's response: the server recycles the channel before it is used up
  /// (Windows: 1 GB; a lab can declare a few MiB so that recycling happens often).
  std::uint64_t rpc_out_channel_length = default_out_channel_length;
  std::vector<fault_rule> faults;    ///< the rules in force at start
  /// Called after each request's log line (tests wait on it); runs on the connection's strand.
  std::function<void(const request_record&)> on_request;
};

class server {
 public:
  /// Builds the TLS context and binds. Throws config_error with the cause and the fix.
  server(net::io_context& ioc, server_options options);
  tcp::endpoint local_endpoint() const { return acceptor_.local_endpoint(); }
  void start();
  void stop();

  server_stats& stats() { return stats_; }
  fault_injector& faults() { return faults_; }

 private:
  net::awaitable<void> serve(tcp::socket socket);

  server_options options_;
  ssl::context tls_;
  tcp::acceptor acceptor_;
  server_stats stats_;
  fault_injector faults_;
  /// Outlook Anywhere's virtual connections. Shared with the channel coroutines, whose frames may outlive the
  /// server when the io_context is destroyed after it. One io thread serves every connection: no lock.
  std::shared_ptr<vc_table> connections_ = std::make_shared<vc_table>();
};

}  // namespace exbridge::fake_exchange
