// The one clock every timeout goes through. Durations in configs and scenarios are *virtual*; with
// a time scale of 100 a 15-minute timeout fires after 9 real seconds, in every program alike.
#pragma once

#include <chrono>
#include <string>

#include "common/net.hpp"

namespace exbridge {

/// A steady clock whose time runs `scale` times faster than real time (scale is set once, at start).
struct scaled_clock {
  using duration = std::chrono::steady_clock::duration;
  using rep = duration::rep;
  using period = duration::period;
  using time_point = std::chrono::time_point<scaled_clock>;
  static constexpr bool is_steady = true;

  static time_point now() noexcept;

  /// Sets the time scale (>= 1 compresses time). Call once, before any timer is armed.
  static void set_scale(double scale);
  static double scale() noexcept;

  /// Converts a virtual duration to the real time it takes at the current scale.
  static duration to_real(duration virtual_duration) noexcept;
};

/// Asio's wait-traits hook (see asio's time_t_timer example): maps virtual durations to real waits.
struct scaled_wait_traits {
  static scaled_clock::duration to_wait_duration(const scaled_clock::duration& d) {
    return scaled_clock::to_real(d);
  }
  static scaled_clock::duration to_wait_duration(const scaled_clock::time_point& t) {
    return scaled_clock::to_real(t - scaled_clock::now());
  }
};

/// The timer type for every timeout in exbridge, fake-exchange and rehearse.
using timer = net::basic_waitable_timer<scaled_clock, scaled_wait_traits>;

/// Parses "90s", "15m", "1h", "250ms" or a bare number of seconds. Throws config_error on bad input.
scaled_clock::duration parse_duration(const std::string& text, const std::string& what);

/// Formats a duration for people: "900 s", "250 ms", "15 min".
std::string format_duration(scaled_clock::duration d);

}  // namespace exbridge
