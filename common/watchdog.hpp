// A named, re-armable timeout for one connection, on the scaled clock. Re-arming only moves the
// deadline (no timer syscall per chunk on a hot path); the timer wakes, sees a later deadline and sleeps
// again. On expiry it runs `on_expire` (which closes the socket, so pending I/O completes with an error)
// and remembers which timeout fired, so the caller can report a precise termination reason.
#pragma once

#include <functional>
#include <memory>
#include <optional>

#include "common/clock.hpp"

namespace exbridge {

template <class Tag>
class watchdog {
 public:
  /// `executor` must be the connection's strand, so that `on_expire` never races the connection's I/O.
  watchdog(net::any_io_executor executor, std::function<void()> on_expire)
      : state_(std::make_shared<state>(std::move(executor), std::move(on_expire))) {}
  ~watchdog() {
    state_->alive = false;
    state_->wake.cancel();
  }
  watchdog(const watchdog&) = delete;
  watchdog& operator=(const watchdog&) = delete;

  /// (Re)starts the timeout `tag` with `d` of virtual time from now.
  void arm(scaled_clock::duration d, Tag tag) {
    auto& s = *state_;
    s.deadline = scaled_clock::now() + d;
    s.tag = tag;
    s.armed = true;
    if (s.waiting && s.wake.expiry() <= s.deadline) return;  // it wakes first, then sleeps until the deadline
    ++s.generation;
    s.wake.expires_at(s.deadline);
    start_wait(state_);
  }

  void disarm() { state_->armed = false; }

  /// The timeout that expired, if one did.
  std::optional<Tag> fired() const { return state_->fired; }

 private:
  struct state {
    state(net::any_io_executor ex, std::function<void()> f) : wake(std::move(ex)), on_expire(std::move(f)) {}
    exbridge::timer wake;
    std::function<void()> on_expire;
    scaled_clock::time_point deadline{};
    Tag tag{};
    std::optional<Tag> fired;
    unsigned generation = 0;
    bool armed = false;
    bool waiting = false;
    bool alive = true;
  };

  static void start_wait(const std::shared_ptr<state>& s) {
    s->waiting = true;
    s->wake.async_wait([s, gen = s->generation](error_code) {
      if (!s->alive || gen != s->generation) return;
      s->waiting = false;
      if (!s->armed) return;
      if (scaled_clock::now() < s->deadline) {
        s->wake.expires_at(s->deadline);
        start_wait(s);
        return;
      }
      s->armed = false;
      s->fired = s->tag;
      s->on_expire();
    });
  }

  std::shared_ptr<state> state_;
};

}  // namespace exbridge
