// fake-exchange's control API (loopback only, plain HTTP, cpp-httplib on its own thread): counters and the
// fault rules in force, which a rehearsal may replace while the server runs.
//   GET /stats     requests by operation, bytes, Outlook Anywhere traffic, faults injected by rule and action
//   GET /faults    the rules in force (JSON)
//   PUT /faults    replaces the rules: a TOML document of [[fault]] tables, or the same as JSON
//   GET /manifest  the mailbox manifest (every item's id, size and SHA-256)
#pragma once

#include <atomic>
#include <memory>
#include <thread>

#include "common/cli.hpp"
#include "fake_exchange/server.hpp"

namespace httplib {
class Server;
}

namespace exbridge::fake_exchange {

/// Throws config_error unless `where` is a loopback address (checked when the option is read).
void require_loopback(const host_port& where);

class control_api {
 public:
  /// Binds `where` (a loopback address; port 0 = any). Throws config_error for other addresses or a failed bind.
  control_api(const host_port& where, server& srv, exchange_config config);
  ~control_api();
  control_api(const control_api&) = delete;
  control_api& operator=(const control_api&) = delete;

  unsigned short port() const { return port_; }
  /// Serves on a thread of its own until destroyed.
  void start();

 private:
  std::unique_ptr<httplib::Server> http_;
  unsigned short port_ = 0;
  std::atomic<bool> finished_{false};
  std::thread thread_;
};

}  // namespace exbridge::fake_exchange
