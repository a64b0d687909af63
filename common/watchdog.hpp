// The one timeout primitive of all three programs: a named, re-armable deadline on the scaled clock.
// Re-arming only moves the deadline (no timer syscall per chunk on a hot path); the timer wakes, sees a
// later deadline and sleeps again. On expiry it runs `on_expire` (which cancels or closes what the caller
// waits on, so pending I/O completes with an error) and remembers which timeout fired: `fired()` reports it
// as a value, so that the caller's outcome says which timer ended an operation instead of guessing.
// `scoped()` arms it for one operation and disarms it when the scope ends.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <utility>

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

  /// (Re)starts the timeout `tag` with `d` of virtual time from now. What fired before is forgotten:
  /// fired() speaks of the operation this arming guards.
  void arm(scaled_clock::duration d, Tag tag) {
    auto& s = *state_;
    s.deadline = scaled_clock::now() + d;
    s.tag = tag;
    s.armed = true;
    s.fired.reset();
    if (s.waiting && s.wake.expiry() <= s.deadline) return;  // it wakes first, then sleeps until the deadline
    ++s.generation;
    s.wake.expires_at(s.deadline);
    start_wait(state_);
  }

  void disarm() { state_->armed = false; }

  /// Armed for the lifetime of one operation: disarms when it goes out of scope.
  class scope {
   public:
    explicit scope(watchdog& w) : w_(&w) {}
    scope(scope&& o) noexcept : w_(std::exchange(o.w_, nullptr)) {}
    scope& operator=(scope&&) = delete;
    ~scope() {
      if (w_ != nullptr) w_->disarm();
    }

   private:
    watchdog* w_;
  };
  /// Arms `tag` for `d` and returns the scope that disarms it.
  [[nodiscard]] scope scoped(scaled_clock::duration d, Tag tag) {
    arm(d, tag);
    return scope(*this);
  }

  /// The timeout that expired since the last arm(), if one did.
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
