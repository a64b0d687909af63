// Logging implementation: lines are written under one mutex, so lines from threads never interleave; with
// batching on, info lines wait in a buffer for the end of the event loop's turn.
#include "common/log.hpp"

#include <chrono>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <mutex>

namespace exbridge {
namespace {

std::mutex g_mutex;
std::string g_program = "exbridge";
log_level g_min = log_level::info;
std::string g_waiting;                         // lines batching holds back (under g_mutex)
void (*g_schedule)(void (*)()) = nullptr;       // batching on when set
bool g_flush_scheduled = false;                 // a flush is on its way (under g_mutex)
constexpr std::size_t batch_limit = 64 * 1024;  // a batch this big is written at once

void write_waiting_locked() {
  if (g_waiting.empty()) return;
  std::fwrite(g_waiting.data(), 1, g_waiting.size(), stderr);
  std::fflush(stderr);
  g_waiting.clear();
}

const char* level_name(log_level l) {
  switch (l) {
    case log_level::debug: return "debug";
    case log_level::info: return "info";
    case log_level::warn: return "warn";
    case log_level::error: return "error";
  }
  return "?";
}

std::string utc_now() {
  const auto now = std::chrono::system_clock::now();
  const auto t = std::chrono::system_clock::to_time_t(now);
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  return buf;
}

}  // namespace

void set_log_program(std::string name) {
  std::lock_guard lock(g_mutex);
  g_program = std::move(name);
}

void set_log_min_level(log_level level) {
  std::lock_guard lock(g_mutex);
  g_min = level;
}

void log_line(log_level level, std::string_view message) {
  const std::string now = utc_now();
  std::lock_guard lock(g_mutex);
  if (level < g_min) return;
  g_waiting += now;  // the line goes straight into the buffer that write_waiting_locked writes
  g_waiting += ' ';
  g_waiting += g_program;
  g_waiting += ' ';
  g_waiting += level_name(level);
  g_waiting += ": ";
  g_waiting += message;
  g_waiting += '\n';
  if (g_schedule == nullptr || level > log_level::info || g_waiting.size() >= batch_limit) {
    write_waiting_locked();
    return;
  }
  if (g_flush_scheduled) return;
  g_flush_scheduled = true;
  try {
    g_schedule(&flush_log);  // never runs inline, so g_mutex is not taken twice
  } catch (...) {            // no flush could be scheduled (out of memory): write now rather than hold lines
    g_flush_scheduled = false;
    write_waiting_locked();
  }
}

void set_log_batching(void (*schedule)(void (*flush)())) {
  std::lock_guard lock(g_mutex);
  write_waiting_locked();
  g_schedule = schedule;
  g_flush_scheduled = false;  // a flush posted before is not counted on: the next line schedules its own
}

void flush_log() {
  std::lock_guard lock(g_mutex);
  g_flush_scheduled = false;
  write_waiting_locked();
}

void announce_listening(std::string_view name, std::string_view host, unsigned short port) {
  std::lock_guard lock(g_mutex);
  write_waiting_locked();  // the log lines before readiness come before it, where stdout and stderr meet
  std::cout << "listening " << name << ' ' << host << ':' << port << std::endl;
}

}  // namespace exbridge
