// Line-oriented logging to stderr, shared by the three programs. stdout is reserved for the
// readiness line ("listening <name> <host>:<port>") so that supervisors can parse it.
#pragma once

#include <sstream>
#include <string>
#include <string_view>

namespace exbridge {

enum class log_level { debug, info, warn, error };

/// Names the program in every log line ("exbridge", "fake-exchange", "rehearse").
void set_log_program(std::string name);
void set_log_min_level(log_level level);

/// Writes one line: "<UTC time> <program> <level>: <message>". Thread-safe.
void log_line(log_level level, std::string_view message);

/// Lets info and debug lines wait for one turn of an event loop, so that a busy loop writes the lines of many
/// requests with one write(2) rather than one each (exbridge's access log is a line per request; nginx calls
/// this `access_log ... buffer=`). The first waiting line calls `schedule(flush_log)`, which must run it soon
/// and never inline (exbridge posts it to its loop). A warning or an error is written at once, after the lines
/// waiting before it, so the order holds; so is a batch reaching 64 KiB. Null turns it off (and flushes).
/// The readiness line (announce_listening) writes what waits first. What waits when the program dies of a
/// signal or an abort is lost: at most one loop turn's lines.
void set_log_batching(void (*schedule)(void (*flush)()));
/// Writes the waiting lines now (batching on exit; guarded_main calls it).
void flush_log();

/// Prints the readiness line on stdout and flushes it: "listening <name> <host>:<port>".
void announce_listening(std::string_view name, std::string_view host, unsigned short port);

/// Builds a message from streamable parts: log_line(log_level::info, cat("x=", 1)).
template <class... Parts>
std::string cat(const Parts&... parts) {
  std::ostringstream out;
  (out << ... << parts);
  return out.str();
}

inline void log_info(std::string_view m) { log_line(log_level::info, m); }
inline void log_warn(std::string_view m) { log_line(log_level::warn, m); }
inline void log_error(std::string_view m) { log_line(log_level::error, m); }

}  // namespace exbridge
