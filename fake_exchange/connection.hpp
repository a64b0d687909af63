// One fake-exchange TCP connection and the tools both its HTTP requests and its Outlook Anywhere channels
// use: the TLS stream with its idle watchdog, how a connection ends, and the fault-shaped pacing and writing
// of bodies (throttle, stall, cut after N bytes).
#pragma once

#include <cstdint>
#include <tuple>

#include "common/clock.hpp"
#include "common/net.hpp"
#include "common/tls_socket.hpp"
#include "common/watchdog.hpp"
#include "fake_exchange/faults.hpp"
#include "fake_exchange/router.hpp"

namespace exbridge::fake_exchange {

enum class server_timeout { handshake, idle };

/// How a connection goes on after a request.
enum class connection_end {
  keep_alive,  ///< read the next request
  graceful,    ///< close with TLS close_notify (IIS's normal close; also the truncate fault)
  reset,       ///< TCP RST: SO_LINGER 0, then close
  abrupt,      ///< TCP FIN without close_notify
};

using tls_stream = tls_socket;  // OpenSSL on the socket itself (common/tls_socket.hpp): two copies fewer per byte
using response_t = http::response<http::string_body>;

inline bool peer_closed(const error_code& ec) {
  return ec == http::error::end_of_stream || ec == ssl::error::stream_truncated || ec == net::error::eof ||
         ec == net::error::connection_reset;
}

inline bool cuts_body(fault_kind k) {
  return k == fault_kind::reset || k == fault_kind::truncate || k == fault_kind::no_close_notify;
}

inline connection_end end_for(fault_kind k) {
  if (k == fault_kind::reset) return connection_end::reset;
  if (k == fault_kind::no_close_notify) return connection_end::abrupt;
  return connection_end::graceful;
}

/// One TCP connection: the TLS stream, its idle watchdog, the read buffer and the NTLM state.
struct connection {
  connection(tcp::socket socket, ssl::context& tls)
      : stream(std::move(socket), tls), dog(stream.get_executor(), [this] {
          error_code ignored;
          stream.next_layer().close(ignored);
        }) {}

  /// Waits `d` of virtual time with the idle timeout off (a fault's own wait must not trip it).
  net::awaitable<void> pause(scaled_clock::duration d) {
    dog.disarm();
    exbridge::timer t(stream.get_executor());
    t.expires_after(d);
    co_await t.async_wait(use_tuple);
  }

  tls_stream stream;
  watchdog<server_timeout> dog;
  beast::flat_buffer buffer;
  connection_auth auth;  // NTLM authenticates this TCP connection, not a request
};

/// Paces a body in either direction by a throttle or stall fault (other faults pass through): before
/// `done` bytes have moved it waits as the fault says, then tells how many more may move now.
class pacer {
 public:
  pacer(connection& c, const fault_action* fault)
      : c_(c),
        fault_(fault != nullptr && (fault->kind == fault_kind::throttle || fault->kind == fault_kind::stall) ? fault
                                                                                                              : nullptr),
        start_(scaled_clock::now()) {}

  net::awaitable<std::size_t> next(std::uint64_t done, std::size_t wanted) {
    if (fault_ == nullptr || stalled_) co_return wanted;
    if (fault_->kind == fault_kind::stall) {
      const std::uint64_t after = fault_->after_bytes.value_or(0);
      if (done < after) co_return static_cast<std::size_t>(std::min<std::uint64_t>(wanted, after - done));
      co_await c_.pause(fault_->duration);
      stalled_ = true;
      co_return wanted;
    }
    // Throttle: pieces of 1/20 s at the rate, each moving when the rate allows it (virtual time).
    const auto piece = static_cast<std::size_t>(std::clamp(fault_->rate / 20, 1.0, 65536.0));
    const std::size_t take = std::min(wanted, piece);
    const auto due = start_ + std::chrono::duration_cast<scaled_clock::duration>(
                                  std::chrono::duration<double>(static_cast<double>(done + take) / fault_->rate));
    if (due > scaled_clock::now()) {
      c_.dog.disarm();
      exbridge::timer t(c_.stream.get_executor());
      t.expires_at(due);
      co_await t.async_wait(use_tuple);
    }
    co_return take;
  }

 private:
  connection& c_;
  const fault_action* fault_;
  scaled_clock::time_point start_;
  bool stalled_ = false;
};

/// Writes response body bytes, applying a body-shaping fault (throttle, stall, reset/truncate/no-close-notify
/// after N bytes). Each piece re-arms the idle timeout, so only a client that stops reading is cut off.
class body_writer {
 public:
  body_writer(connection& c, const fault_action* fault, scaled_clock::duration idle)
      : c_(c), fault_(fault), idle_(idle), pace_(c, fault) {}

  /// Writes `n` bytes, or fewer when the fault cuts the body (then `cut()` says how the connection ends).
  net::awaitable<error_code> write(const char* data, std::size_t n) {
    while (n > 0) {
      std::size_t take = n;
      if (fault_ != nullptr && cuts_body(fault_->kind) && fault_->after_bytes) {
        if (written_ >= *fault_->after_bytes) {
          cut_ = end_for(fault_->kind);
          co_return net::error::connection_aborted;
        }
        take = static_cast<std::size_t>(std::min<std::uint64_t>(take, *fault_->after_bytes - written_));
      }
      take = co_await pace_.next(written_, take);
      c_.dog.arm(idle_, server_timeout::idle);
      auto [ec, done] = co_await net::async_write(c_.stream, net::buffer(data, take), use_tuple);
      written_ += done;
      if (ec) co_return ec;
      data += take;
      n -= take;
    }
    co_return error_code{};
  }

  std::uint64_t written() const { return written_; }
  connection_end cut() const { return cut_; }

 private:
  connection& c_;
  const fault_action* fault_;
  scaled_clock::duration idle_;
  pacer pace_;
  std::uint64_t written_ = 0;
  connection_end cut_ = connection_end::keep_alive;
};

/// The largest request body read and discarded to keep a connection after an answer that did not need it
/// (an echo's, an OUT channel's opening PDUs, a body refused before it was sent); a larger one closes it.
constexpr std::uint64_t small_body_limit = 64 * 1024;

/// Reads a small request body to its end (an echo's, an OUT channel's opening PDUs, a body refused before it
/// was sent): callers bound it by small_body_limit first.
net::awaitable<std::tuple<error_code, std::string>> read_small_body(connection& c,
                                                                    http::request_parser<http::buffer_body>& parser);

}  // namespace exbridge::fake_exchange
