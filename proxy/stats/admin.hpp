// The admin listener: what an operator looks at during the weeks of a migration. Separate from the data
// path (its own thread, cpp-httplib), loopback by default, always behind Basic auth (constant-time compare),
// TLS optional. Pages:
//   /              HTML: pools and servers with health, open connections (pinned pairs) with age, bytes and
//                  last activity per direction, counters, terminations
//   /stats.json    the same as JSON
//   /metrics       Prometheus text format 0.0.4: counters, terminations, per-server gauges and counters, and a
//                  histogram of every request timer
#pragma once

#include <memory>
#include <string>
#include <thread>

#include "proxy/bridge.hpp"

namespace httplib {
class Server;
}

namespace exbridge::proxy {

std::string render_metrics(const bridge& b);
std::string render_json(const bridge& b);
std::string render_html(const bridge& b);

/// True when `authorization` (the header's value) carries `user`:`password` in Basic. Compares digests in
/// constant time, so the response time says nothing about how much of a guess was right.
bool basic_auth_matches(const std::string& authorization, const std::string& user, const std::string& password);

class admin_server {
 public:
  /// Binds settings.address (port 0 = any). Throws config_error (no credentials, bad address, bind failure,
  /// unreadable TLS files).
  admin_server(const bridge& b, const admin_settings& settings);
  ~admin_server();
  admin_server(const admin_server&) = delete;
  admin_server& operator=(const admin_server&) = delete;
  unsigned short port() const { return port_; }
  std::string scheme() const { return tls_ ? "https" : "http"; }

 private:
  std::unique_ptr<httplib::Server> http_;
  std::thread thread_;
  unsigned short port_ = 0;
  bool tls_ = false;
};

}  // namespace exbridge::proxy
