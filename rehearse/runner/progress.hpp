// Live progress of a long transfer (a mailbox migration): items, bytes, rate, ETA and counts such as channels
// recycled and retries. On a terminal the line is redrawn in place at most five times a second; in a log (CI) a
// line is written every 10 s, so a long run shows it is alive without flooding the log. Short transfers (under
// 2 s) print nothing.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

namespace exbridge::rehearse {

class progress_meter {
 public:
  progress_meter(std::string what, std::uint64_t total_items, std::uint64_t total_bytes, std::FILE* out = stderr);
  ~progress_meter();  ///< ends a redrawn terminal line
  progress_meter(const progress_meter&) = delete;
  progress_meter& operator=(const progress_meter&) = delete;

  void update(std::uint64_t items, std::uint64_t bytes);
  /// Adds to the running totals and redraws (several mailboxes migrating at once share one meter).
  void advance(std::uint64_t items, std::uint64_t bytes);
  /// Adds `delta` to a named count shown after the rate when not zero ("3 channels recycled").
  void count(const std::string& what, std::uint64_t delta);
  /// The line as it would be printed now (for tests).
  std::string line(std::uint64_t items, std::uint64_t bytes) const;

 private:
  using clock = std::chrono::steady_clock;
  std::string what_;
  std::uint64_t total_items_, total_bytes_;
  std::FILE* out_;
  bool terminal_;
  clock::time_point begin_ = clock::now();
  clock::time_point last_ = begin_;
  bool drawn_ = false;
  std::uint64_t items_ = 0, bytes_ = 0;  ///< advance()'s running totals
  std::vector<std::pair<std::string, std::uint64_t>> counts_;  ///< count()'s, in first-use order
};

}  // namespace exbridge::rehearse
