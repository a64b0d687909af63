// exbridge counters, declared once as data (Envoy style) and shared by logs, the admin endpoint and tests.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <string_view>

#include "proxy/session/termination.hpp"

namespace exbridge::proxy {

#define EXBRIDGE_COUNTERS(X)         \
  X(downstream_cx_total)             \
  X(downstream_cx_active)            \
  X(downstream_tls_handshake_fail)   \
  X(downstream_rq_total)             \
  X(downstream_rq_rejected)          \
  X(upstream_cx_total)               \
  X(upstream_cx_connect_fail)        \
  X(upstream_tls_handshake_fail)     \
  X(upstream_tls_resumed)            \
  X(upstream_rq_total)               \
  X(upstream_rq_pinned)              \
  X(rpc_channels_paired)             \
  X(rpc_pairing_conflicts)           \
  X(upstream_rq_failed)              \
  X(timeouts_total)                  \
  X(upstream_cx_redispatched)        \
  X(upstream_queue_timeouts)         \
  X(upstream_no_server)              \
  X(certificate_reloads)             \
  X(certificate_reload_failures)     \
  X(config_reloads)                  \
  X(config_reload_failures)

enum class counter : std::size_t {
#define EXBRIDGE_X(name) name,
  EXBRIDGE_COUNTERS(EXBRIDGE_X)
#undef EXBRIDGE_X
  count_
};

constexpr std::array<std::string_view, static_cast<std::size_t>(counter::count_)> counter_names{
#define EXBRIDGE_X(name) #name,
    EXBRIDGE_COUNTERS(EXBRIDGE_X)
#undef EXBRIDGE_X
};

/// Prometheus-style histograms of every timer of a request (seconds), fixed buckets from 1 ms to 1 h: the
/// access log's Th/TR/Tc/Ts/Tr/Tt as distributions.
#define EXBRIDGE_TIMERS(X)   \
  X(downstream_handshake)    \
  X(request_headers)         \
  X(upstream_connect)        \
  X(upstream_handshake)      \
  X(response_headers)        \
  X(total)

enum class timer_id : std::size_t {
#define EXBRIDGE_X(name) name,
  EXBRIDGE_TIMERS(EXBRIDGE_X)
#undef EXBRIDGE_X
  count_
};

constexpr std::array<std::string_view, static_cast<std::size_t>(timer_id::count_)> timer_names{
#define EXBRIDGE_X(name) #name,
    EXBRIDGE_TIMERS(EXBRIDGE_X)
#undef EXBRIDGE_X
};

constexpr std::array<double, 19> histogram_bounds{0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,   2.5,
                                                  5,     10,    30,   60,    120,  300, 900,  1800, 3600};

class bridge_histograms {
 public:
  struct snapshot {
    std::array<std::int64_t, histogram_bounds.size()> buckets{};  ///< cumulative, as Prometheus wants them
    std::int64_t count = 0;
    double sum_seconds = 0;
  };
  void observe(timer_id t, std::int64_t milliseconds) {
    if (milliseconds < 0) return;
    auto& h = timers_[static_cast<std::size_t>(t)];
    const double seconds = static_cast<double>(milliseconds) / 1000.0;
    for (std::size_t i = 0; i < histogram_bounds.size(); ++i) {
      if (seconds <= histogram_bounds[i]) {
        h.buckets[i].fetch_add(1, std::memory_order_relaxed);
        break;
      }
    }
    h.count.fetch_add(1, std::memory_order_relaxed);
    h.sum_ms.fetch_add(milliseconds, std::memory_order_relaxed);
  }
  snapshot get(timer_id t) const {
    const auto& h = timers_[static_cast<std::size_t>(t)];
    snapshot s;
    std::int64_t running = 0;
    for (std::size_t i = 0; i < histogram_bounds.size(); ++i) {
      running += h.buckets[i].load(std::memory_order_relaxed);
      s.buckets[i] = running;
    }
    s.count = std::max(h.count.load(std::memory_order_relaxed), running);  // +Inf >= every bucket
    s.sum_seconds = static_cast<double>(h.sum_ms.load(std::memory_order_relaxed)) / 1000.0;
    return s;
  }

 private:
  struct histogram {
    std::array<std::atomic<std::int64_t>, histogram_bounds.size()> buckets{};
    std::atomic<std::int64_t> count{0};
    std::atomic<std::int64_t> sum_ms{0};
  };
  std::array<histogram, static_cast<std::size_t>(timer_id::count_)> timers_{};
};

class bridge_stats {
 public:
  void add(counter c, std::int64_t n = 1) { values_[static_cast<std::size_t>(c)].fetch_add(n, std::memory_order_relaxed); }
  std::int64_t get(counter c) const { return values_[static_cast<std::size_t>(c)].load(std::memory_order_relaxed); }

  /// How many requests or connections ended for each reason (every termination is counted once).
  void add(termination t) { ends_[static_cast<std::size_t>(t)].fetch_add(1, std::memory_order_relaxed); }
  std::int64_t get(termination t) const { return ends_[static_cast<std::size_t>(t)].load(std::memory_order_relaxed); }

 private:
  std::array<std::atomic<std::int64_t>, static_cast<std::size_t>(counter::count_)> values_{};
  std::array<std::atomic<std::int64_t>, termination_count> ends_{};
};

}  // namespace exbridge::proxy
