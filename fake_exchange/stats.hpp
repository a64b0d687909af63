// fake-exchange's counters, read by tests and by GET /stats on the control API: requests by operation,
// bytes served, Outlook Anywhere channel traffic and every fault injected (by rule and by action).
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>

namespace exbridge::fake_exchange {

struct stats_snapshot {
  std::uint64_t requests = 0;
  std::map<std::string, std::uint64_t> by_operation;  ///< "-" for requests without one (401s, 404s)
  std::uint64_t bytes_served = 0;     ///< response bytes written (headers and bodies)
  std::uint64_t bytes_received = 0;   ///< request body bytes read
  std::uint64_t rpc_in_bytes = 0;     ///< bytes consumed from IN channels
  std::uint64_t rpc_out_pings = 0;    ///< keep-alive PDUs sent on OUT channels
  std::uint64_t faults = 0;
  std::map<std::string, std::uint64_t> faults_by_rule;
  std::map<std::string, std::uint64_t> faults_by_action;

  std::string to_json() const;
};

class server_stats {
 public:
  void request(const std::string& operation) {
    std::lock_guard lock(mutex_);
    ++s_.requests;
    ++s_.by_operation[operation.empty() ? "-" : operation];
  }
  void served(std::uint64_t n) { add(&stats_snapshot::bytes_served, n); }
  void received(std::uint64_t n) { add(&stats_snapshot::bytes_received, n); }
  void rpc_in(std::uint64_t n) { add(&stats_snapshot::rpc_in_bytes, n); }
  void rpc_ping() { add(&stats_snapshot::rpc_out_pings, 1); }
  void fault(const std::string& rule, const std::string& action) {
    std::lock_guard lock(mutex_);
    ++s_.faults;
    ++s_.faults_by_rule[rule];
    ++s_.faults_by_action[action];
  }
  stats_snapshot snapshot() const {
    std::lock_guard lock(mutex_);
    return s_;
  }

 private:
  void add(std::uint64_t stats_snapshot::*field, std::uint64_t n) {
    std::lock_guard lock(mutex_);
    s_.*field += n;
  }
  mutable std::mutex mutex_;
  stats_snapshot s_;
};

}  // namespace exbridge::fake_exchange
