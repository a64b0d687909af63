// What happened when, during one scenario run: processes started and stopped, steps, and every client
// connection and request with its result. The HTML report draws it as a timeline so that an
// administrator sees where a failure happened (which connection, which request, how long it waited).
// Recorded on the runner's single thread; times are real milliseconds since the scenario began.
#pragma once

#include <chrono>
#include <string>
#include <vector>

namespace exbridge::rehearse {

struct timeline_event {
  enum class kind { process, step_begin, step_end, connection, request, failure };
  kind what = kind::step_begin;
  double start_ms = 0;
  double end_ms = 0;        ///< requests and connections: when they ended (= start for instants)
  unsigned connection = 0;  ///< the client connection's number (requests, connections, failures)
  int status = 0;           ///< requests: the HTTP status (0 = none, the request failed)
  bool ok = true;           ///< steps: passed; requests: answered
  std::string text;         ///< "POST /EWS/Exchange.asmx", a step's name, a failure's outcome
};

class timeline {
 public:
  /// The timeline being recorded (one scenario at a time; the runner resets it).
  static timeline& current();
  void reset();
  double now_ms() const;

  void instant(timeline_event::kind what, std::string text, unsigned connection = 0, bool ok = true);
  /// Adds an event that began at `start_ms` and ends now; returns it for details.
  timeline_event& span(timeline_event::kind what, double start_ms, std::string text, unsigned connection = 0);
  /// A number for a new client connection (1, 2, ...).
  unsigned next_connection() { return ++connections_; }

  const std::vector<timeline_event>& events() const { return events_; }

 private:
  std::chrono::steady_clock::time_point origin_ = std::chrono::steady_clock::now();
  std::vector<timeline_event> events_;
  unsigned connections_ = 0;
};

}  // namespace exbridge::rehearse
