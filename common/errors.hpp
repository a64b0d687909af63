// Control-plane errors: a user-caused problem (bad flag, bad file, bad certificate) carried to main(),
// which prints the one-line message (cause and fix) and exits non-zero. Never used on the data path.
#pragma once

#include <stdexcept>
#include <string>

namespace exbridge {

/// A mistake in configuration or command line: the message names the cause and the fix.
class config_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Exit codes shared by the three programs.
enum exit_code : int {
  exit_ok = 0,
  exit_failed = 1,   ///< rehearse: an expectation did not hold; servers: runtime failure
  exit_usage = 2,    ///< bad command line, config or scenario file
  exit_startup = 3,  ///< could not start (certificate, bind, ...)
};

}  // namespace exbridge
