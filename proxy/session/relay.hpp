// The body relay: streams one HTTP message body from one stream to another through Beast's buffer_body
// parser and serializer (Beast's relay example, ported to coroutines), with a fixed buffer -- never more than
// 64 KiB of a body in memory, whatever its size (an RPC_IN_DATA request declares 1 GB and more).
//
// Generic over the streams: the session relays between TLS sockets, the session's unit tests and the fuzz
// targets between in-memory streams, so what is tested and fuzzed is what runs. Each side may have a
// watchdog (its idle timeout) and live counters (the admin page's bytes and last activity).
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>

#include "common/clock.hpp"
#include "common/net.hpp"
#include "common/watchdog.hpp"
#include "proxy/session/termination.hpp"
#include "proxy/stats/live.hpp"

namespace exbridge::proxy {

/// The relay's largest piece: a body moves in pieces of at most this many bytes.
inline constexpr std::size_t relay_chunk_size = 64 * 1024;

/// One side of a body relay: its idle timeout (no watchdog = none) and, for the side read from, the live
/// view's byte count and last-activity time for this direction.
struct relay_leg {
  watchdog<timeout_kind>* watch = nullptr;
  timeout_kind kind{};
  scaled_clock::duration idle{};
  std::atomic<std::int64_t>* bytes = nullptr;
  std::atomic<std::int64_t>* last = nullptr;
};

/// The minimum-throughput rule: fewer than `min_rate` bytes/s over a whole `window` ends the relay (0 = off).
struct throughput_rule {
  std::uint64_t min_rate = 0;
  scaled_clock::duration window{};
};

/// How a relay ended.
struct relay_outcome {
  error_code ec;
  bool failed_reading = false;  ///< the error came from the side read from
  bool too_slow = false;        ///< the minimum-throughput rule ended it
  bool blame_reader = false;    ///< with too_slow: the side read from was the slow one
  std::uint64_t body_bytes = 0;
  std::uint64_t wire_bytes = 0;
};

/// Relays the body of the message whose header `parser` has read from `in` (with what `in_buffer` already
/// holds) to `out` through `sr`, whose header has been written or waits to go with the first piece.
/// `stop` is checked before each step (the other half of an exchange may end it). Each piece is whatever
/// has arrived: read_some, not read, so an Outlook Anywhere ping or a trickling response is never held back.
template <bool is_request, class In, class Out>
net::awaitable<relay_outcome> relay_body(In& in, beast::flat_buffer& in_buffer,
                                         http::parser<is_request, http::buffer_body>& parser,
                                         http::serializer<is_request, http::buffer_body>& sr, Out& out,
                                         const relay_leg& from, const relay_leg& to, const bool& stop,
                                         const throughput_rule& rule) {
  relay_outcome r;
  // Small bodies (most EWS answers) get a buffer of their size, large ones relay_chunk_size; the buffer
  // exists only while a body is relayed.
  const auto declared = parser.content_length_remaining();
  const std::size_t size =
      declared ? static_cast<std::size_t>(std::clamp<std::uint64_t>(*declared, 1, relay_chunk_size)) : relay_chunk_size;
  const std::unique_ptr<char[]> chunk(new char[size]);
  // Beast sizes each read by the buffer's spare capacity (at least 512 bytes): after shrink_to_fit an
  // unreserved buffer would move the body in 512-byte reads and 534-byte TLS records.
  in_buffer.reserve(size);
  auto& body = parser.get().body();
  auto window_start = scaled_clock::now();
  std::uint64_t window_bytes = 0;
  scaled_clock::duration read_wait{}, write_wait{};
  do {
    if (stop) {
      r.ec = net::error::operation_aborted;
      co_return r;
    }
    const bool final_write = parser.is_done();
    if (!final_write) {
      body.data = chunk.get();
      body.size = size;
      const auto t0 = scaled_clock::now();
      if (from.watch != nullptr) from.watch->arm(from.idle, from.kind);
      auto [ec, n] = co_await http::async_read_some(in, in_buffer, parser, use_tuple);
      if (from.watch != nullptr) from.watch->disarm();
      read_wait += scaled_clock::now() - t0;
      if (ec == http::error::need_buffer) ec = {};
      if (ec) {
        r.ec = ec;
        r.failed_reading = true;
        co_return r;
      }
      body.size = size - body.size;
      if (body.size == 0) {
        // Only framing was parsed (a chunk header). A zero-size piece must never reach the serializer: in
        // chunked output it would read as the last chunk.
        if (!parser.is_done()) continue;
        body.data = nullptr;
        body.more = false;
      } else {
        body.data = chunk.get();
        body.more = !parser.is_done();
      }
      r.body_bytes += body.size;
      window_bytes += body.size;
      if (from.bytes != nullptr) {
        from.bytes->fetch_add(static_cast<std::int64_t>(body.size), std::memory_order_relaxed);
        from.last->store(live_connection::now_ms(), std::memory_order_relaxed);
      }
    } else {
      body.data = nullptr;
      body.size = 0;
      body.more = false;
    }
    const auto t0 = scaled_clock::now();
    if (to.watch != nullptr) to.watch->arm(to.idle, to.kind);
    auto [ec, n] = co_await http::async_write(out, sr, use_tuple);
    if (to.watch != nullptr) to.watch->disarm();
    write_wait += scaled_clock::now() - t0;
    r.wire_bytes += n;
    if (ec == http::error::need_buffer) ec = {};
    if (ec) {
      r.ec = ec;
      co_return r;
    }
    if (final_write && !sr.is_done()) {
      r.ec = http::error::partial_message;  // the serializer cannot finish: never spin
      co_return r;
    }
    if (rule.min_rate > 0) {
      const auto now = scaled_clock::now();
      const std::chrono::duration<double> elapsed = now - window_start;
      if (elapsed >= rule.window) {
        if (static_cast<double>(window_bytes) < static_cast<double>(rule.min_rate) * elapsed.count()) {
          r.ec = net::error::timed_out;
          r.too_slow = true;
          r.blame_reader = read_wait >= write_wait;  // the side that was waited for is the slow one
          co_return r;
        }
        window_start = now;
        window_bytes = 0;
        read_wait = write_wait = {};
      }
    }
  } while (!parser.is_done() || !sr.is_done());
  co_return r;
}

}  // namespace exbridge::proxy
