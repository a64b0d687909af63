// The scenario timeline recorder.
#include "rehearse/runner/timeline.hpp"

namespace exbridge::rehearse {

timeline& timeline::current() {
  static timeline t;
  return t;
}

void timeline::reset() {
  origin_ = std::chrono::steady_clock::now();
  events_.clear();
  connections_ = 0;
}

double timeline::now_ms() const {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - origin_).count();
}

void timeline::instant(timeline_event::kind what, std::string text, unsigned connection, bool ok) {
  const double t = now_ms();
  events_.push_back({what, t, t, connection, 0, ok, std::move(text)});
}

timeline_event& timeline::span(timeline_event::kind what, double start_ms, std::string text, unsigned connection) {
  events_.push_back({what, start_ms, now_ms(), connection, 0, true, std::move(text)});
  return events_.back();
}

}  // namespace exbridge::rehearse
