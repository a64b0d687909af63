// exbridge counters, declared once as data (Envoy style) and shared by logs, the admin endpoint and tests.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string_view>

#include "proxy/termination.hpp"

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
  X(upstream_rq_failed)              \
  X(timeouts_total)

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
