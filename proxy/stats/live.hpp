// The live-connection registry behind the admin page: every open downstream connection with its client, the
// server it is pinned to, its age, and bytes and last activity per direction. Sessions update the atomics
// as bytes move; the admin listener reads snapshots from its own thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace exbridge::proxy {

struct live_connection {
  std::string client;
  std::chrono::system_clock::time_point opened = std::chrono::system_clock::now();
  std::atomic<bool> pinned{false};
  std::atomic<std::int64_t> requests{0};
  std::atomic<std::int64_t> bytes_up{0};    ///< request body bytes, client -> Exchange
  std::atomic<std::int64_t> bytes_down{0};  ///< response bytes, Exchange -> client
  std::atomic<std::int64_t> last_up_ms{0};    ///< system-clock ms of the last byte client -> Exchange (0 = none)
  std::atomic<std::int64_t> last_down_ms{0};  ///< system-clock ms of the last byte Exchange -> client

  void set_server(std::string name, std::string target) {
    std::lock_guard lock(mutex_);
    server_ = std::move(name);
    target_ = std::move(target);
  }
  std::pair<std::string, std::string> server_and_target() const {
    std::lock_guard lock(mutex_);
    return {server_, target_};
  }
  /// Draining: asks the connection to close if it is idle between requests (the session installs the hook).
  void set_drain_hook(std::function<void()> hook) {
    std::lock_guard lock(mutex_);
    drain_hook_ = std::move(hook);
  }
  void drain() {
    std::function<void()> hook;
    {
      std::lock_guard lock(mutex_);
      hook = drain_hook_;
    }
    if (hook) hook();
  }
  static std::int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
  }

 private:
  mutable std::mutex mutex_;
  std::string server_ = "-";  ///< "pool/host:port" of the current upstream connection
  std::string target_ = "-";  ///< the last request's method and path
  std::function<void()> drain_hook_;
};

class live_registry {
 public:
  /// Registers a connection; it is listed until the returned handle's last copy is gone (the registry must
  /// outlive the handles).
  std::shared_ptr<live_connection> add(std::string client) {
    std::lock_guard lock(mutex_);
    const auto it = entries_.emplace(entries_.end());
    std::shared_ptr<live_connection> c(new live_connection, [this, it](live_connection* p) {
      {
        std::lock_guard relock(mutex_);
        entries_.erase(it);
      }
      delete p;
    });
    c->client = std::move(client);
    *it = c;
    return c;
  }
  std::vector<std::shared_ptr<live_connection>> snapshot() const {
    std::vector<std::shared_ptr<live_connection>> out;
    std::lock_guard lock(mutex_);
    for (const auto& w : entries_) {
      if (auto c = w.lock()) out.push_back(std::move(c));
    }
    return out;
  }

 private:
  mutable std::mutex mutex_;
  std::list<std::weak_ptr<live_connection>> entries_;
};

}  // namespace exbridge::proxy
