// The one way the three programs end on a user's mistake: a single line "<program>: <cause and fix>" on
// stderr and a documented exit code, never an uncaught exception.
#pragma once

#include <iostream>

#include "common/errors.hpp"
#include "common/log.hpp"

namespace exbridge {

/// Runs `body` (which returns the exit code) with the program's name set for logs and errors.
template <class Body>
int guarded_main(const char* program, Body&& body) {
  set_log_program(program);
  try {
    const int code = body();
    flush_log();
    return code;
  } catch (const config_error& e) {
    flush_log();
    std::cerr << program << ": " << e.what() << '\n';
    return exit_usage;
  } catch (const std::exception& e) {
    flush_log();
    std::cerr << program << ": " << e.what() << '\n';
    return exit_startup;
  }
}

}  // namespace exbridge
