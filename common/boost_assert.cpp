// Boost's assertion handler for builds that keep assertions (Debug, the sanitizer builds, the fuzz build):
// every BOOST_ASSERT failure prints where it failed and aborts, as assert() would, except one assertion of
// Boost 1.81's Beast that is known to be wrong. Release builds (NDEBUG) compile BOOST_ASSERT away and never
// call this. The whole project is built with BOOST_ENABLE_ASSERT_DEBUG_HANDLER (top-level CMakeLists.txt).
#include <boost/assert.hpp>

#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace {

// Beast's basic_parser::parse_chunk_header asserts `n >= 5` when it re-enters after the last chunk's size
// line ("0\r\n") with the final CRLF still missing, assuming at least two more bytes came since. A peer
// that sends "0\r\n", then "\r", then "\n" (one TCP segment or TLS record each) reaches it with n == 4; the
// code after the assertion handles that correctly (it searches for the end of the trailer and asks for
// more). Beast fixed the assertion in boostorg/beast#2861 (Boost 1.86). Found by fuzz_http_response.
bool known_wrong(std::string_view expr, std::string_view function, std::string_view file) {
  return expr == "n >= 5" && function.find("parse_chunk_header") != std::string_view::npos &&
         file.ends_with("beast/http/impl/basic_parser.ipp");
}

[[noreturn]] void fail(const char* expr, const char* msg, const char* function, const char* file, long line) {
  std::fprintf(stderr, "%s:%ld: %s: Boost assertion `%s' failed%s%s\n", file, line, function, expr, msg ? ": " : "",
               msg ? msg : "");
  std::abort();
}

}  // namespace

namespace boost {

void assertion_failed(char const* expr, char const* function, char const* file, long line) {
  if (known_wrong(expr, function, file)) return;
  fail(expr, nullptr, function, file, line);
}

void assertion_failed_msg(char const* expr, char const* msg, char const* function, char const* file, long line) {
  if (known_wrong(expr, function, file)) return;
  fail(expr, msg, function, file, line);
}

}  // namespace boost
