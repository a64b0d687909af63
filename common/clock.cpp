// Scaled clock implementation and duration parsing.
#include "common/clock.hpp"

#include <atomic>
#include <cmath>
#include <sstream>

#include "common/errors.hpp"

namespace exbridge {
namespace {

std::atomic<double> g_scale{1.0};
const std::chrono::steady_clock::time_point g_start = std::chrono::steady_clock::now();

}  // namespace

scaled_clock::time_point scaled_clock::now() noexcept {
  const auto real = std::chrono::steady_clock::now() - g_start;
  const double s = g_scale.load(std::memory_order_relaxed);
  return time_point(duration(static_cast<rep>(static_cast<double>(real.count()) * s)));
}

void scaled_clock::set_scale(double scale) {
  if (!(scale >= 1.0) || !std::isfinite(scale)) {
    throw config_error("time scale must be a number >= 1 (got " + std::to_string(scale) +
                       "); use 1 for real time, 100 to run 15 minutes in 9 seconds");
  }
  g_scale.store(scale, std::memory_order_relaxed);
}

double scaled_clock::scale() noexcept { return g_scale.load(std::memory_order_relaxed); }

scaled_clock::duration scaled_clock::to_real(duration virtual_duration) noexcept {
  const double s = g_scale.load(std::memory_order_relaxed);
  if (s == 1.0) return virtual_duration;
  return duration(static_cast<rep>(static_cast<double>(virtual_duration.count()) / s));
}

scaled_clock::duration parse_duration(const std::string& text, const std::string& what) {
  std::size_t pos = 0;
  double value = 0;
  try {
    value = std::stod(text, &pos);
  } catch (const std::exception&) {
    pos = 0;
  }
  const std::string unit = text.substr(pos);
  double seconds = -1;
  if (pos > 0 && value >= 0 && std::isfinite(value)) {
    if (unit.empty() || unit == "s") seconds = value;
    else if (unit == "ms") seconds = value / 1000.0;
    else if (unit == "m" || unit == "min") seconds = value * 60.0;
    else if (unit == "h") seconds = value * 3600.0;
  }
  if (seconds < 0) {
    throw config_error(what + ": '" + text + "' is not a duration; write e.g. 250ms, 30s, 15m or 1h");
  }
  // Found by fuzz_config_exbridge: "inf" or 1e300 would overflow the nanosecond count (undefined behaviour).
  if (seconds > 360'000'000.0) throw config_error(what + ": '" + text + "' is too long; at most 100000h");
  return std::chrono::duration_cast<scaled_clock::duration>(std::chrono::duration<double>(seconds));
}

std::string format_duration(scaled_clock::duration d) {
  using namespace std::chrono;
  std::ostringstream out;
  const auto ms = duration_cast<milliseconds>(d).count();
  if (ms < 10'000) out << ms << " ms";
  else if (ms % 60'000 == 0) out << ms / 60'000 << " min";
  else out << ms / 1000 << " s";
  return out.str();
}

}  // namespace exbridge
