// What the fuzz targets share: running the proxy's shipped coroutines (read_request_head, relay_body) to the
// end on in-memory streams (tests/support/memory_stream.hpp), re-parsing what they wrote as the receiving side
// would, and reporting a broken invariant so that libFuzzer keeps the input.
#pragma once

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "common/net.hpp"
#include "tests/support/memory_stream.hpp"

namespace exbridge::fuzz {

/// A broken invariant: print it and abort, so that libFuzzer keeps the input as a crash reproducer.
[[noreturn]] inline void invariant_failed(const char* what, std::string_view detail = {}) {
  std::fprintf(stderr, "fuzz invariant broken: %s %.*s\n", what, static_cast<int>(std::min<std::size_t>(detail.size(), 400)),
               detail.data());
  std::abort();
}

/// The fuzz target's one event loop, reused for every input (making one costs system calls per input).
inline net::io_context& fuzz_loop() {
  static net::io_context ioc(1);
  return ioc;
}

/// Runs `work` (an awaitable) on fuzz_loop() until it and everything it started is done. An exception escaping
/// it is a bug of the harness or of the code under test: abort.
template <class Work>
void run_to_end(Work work) {
  net::io_context& ioc = fuzz_loop();
  ioc.restart();
  net::co_spawn(ioc, std::move(work), [](std::exception_ptr e) {
    if (e) invariant_failed("an exception escaped the relay");
  });
  ioc.run();
}

/// The streams a relay under fuzz works between, on fuzz_loop(): `source` delivers the fuzz input in
/// `piece`-byte reads (how TCP and TLS records may split it), then the end of the stream; what is written to
/// `destination` collects in `written()`.
struct fuzz_streams {
  fuzz_streams(std::string_view input, std::size_t piece)
      : source(fuzz_loop().get_executor()), destination(fuzz_loop().get_executor()), sink(fuzz_loop().get_executor()) {
    source.read_size(piece);
    source.feed(input);
    source.feed_eof();
    test::memory_stream::connect(destination, sink);
  }
  std::string written() const { return std::string(sink.unread()); }
  test::memory_stream source, destination;

 private:
  test::memory_stream sink;
};

/// Parses the next message from `rest` into `p` (set up by the caller) as the receiving side would, eating
/// what it used; an end of input ends a message that runs until close. Returns the error, if any.
/// `p` should have a dynamic_body: string_body reserves a declared Content-Length (up to 2^63) up front.
template <class Parser>
error_code parse_next(Parser& p, std::string_view& rest) {
  p.body_limit(boost::none);
  p.eager(true);
  error_code ec;
  while (!p.is_done()) {
    const std::size_t n = p.put(net::buffer(rest.data(), rest.size()), ec);
    rest.remove_prefix(n);
    if (ec == http::error::need_more && n > 0 && !rest.empty()) continue;
    if (ec == http::error::need_more || (!ec && rest.empty() && !p.is_done())) p.put_eof(ec);
    if (ec) break;
  }
  if (!ec && !p.is_done()) ec = http::error::partial_message;
  return ec;
}

}  // namespace exbridge::fuzz
