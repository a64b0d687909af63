// Fixtures for exbridge integration tests over real TLS on loopback: exbridge (in process) between a
// TLS 1.2/1.3 client and a TLS 1.0 upstream. The upstream is a small programmable server so that tests
// can see exactly what arrived (forwarded headers, body bytes) and make it misbehave (stall, close, refuse).
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <optional>
#include <condition_variable>
#include <fstream>
#include <mutex>

#include "common/tls_context.hpp"
#include "proxy/bridge.hpp"
#include "tests/support/test_support.hpp"

namespace exbridge::proxy::test {

using namespace exbridge::test;
using tls_stream = ssl::stream<tcp::socket>;

/// Resident set size of this process, from /proc (kB).
inline long rss_kib() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

#if defined(__SANITIZE_ADDRESS__)
// AddressSanitizer keeps freed memory in quarantine (256 MB by default): RSS says nothing about buffering.
inline constexpr bool rss_is_meaningful = false;
#elif defined(__SANITIZE_THREAD__)
// ThreadSanitizer's shadow memory and per-thread access histories grow with every access, not with what
// the program keeps: RSS says nothing about buffering either.
inline constexpr bool rss_is_meaningful = false;
#else
inline constexpr bool rss_is_meaningful = true;
#endif

/// Deterministic body bytes, so that both ends can check every byte without storing the body.
inline char pattern_byte(std::uint64_t i) { return static_cast<char>((i * 2654435761u) >> 24); }

/// Writes `size` pattern bytes as the body of `msg`, whose header `sr` has already written.
template <bool is_request>
net::awaitable<error_code> write_pattern_body(tls_stream& stream, http::message<is_request, http::buffer_body>& msg,
                                             http::serializer<is_request, http::buffer_body>& sr, std::uint64_t size);

/// A TLS 1.0-only listener on 127.0.0.1, port 0 (exchange2007 profile, the lab's Exchange certificate): each
/// accepted connection runs `serve`. The base of every scripted upstream in the tests.
class tls10_listener {
 public:
  using handler = std::function<net::awaitable<void>(tls_stream)>;
  tls10_listener(net::io_context& ioc, handler serve);
  unsigned short port() const { return acceptor_.local_endpoint().port(); }
  int connections() const { return connections_.load(); }

 private:
  net::awaitable<void> accept_loop();
  ssl::context tls_;
  tcp::acceptor acceptor_;
  handler serve_;
  std::atomic<int> connections_{0};
};

/// A TLS 1.0-only HTTP/1.1 upstream (exchange2007 profile) with scripted behaviour per path:
///   /big/N            N pattern bytes (Content-Length); /big/N?chunked the same, chunked
///   /upload           reads the body in chunks, answers "bytes=N ok|corrupt"
///   /continue         as /upload, after sending "100 Continue" if the request expects it
///   /reject           answers 413 and closes at once, without reading the body (as IIS does)
///   /early            answers 200 (keep-alive) at once, then reads the body and serves the next request
///   /noread           reads the headers, then neither reads the body nor answers
///   .../partial/N     declares N body bytes, sends N/2 and goes silent (also under /rpc/)
///   /trickle/N?every=MS  N pattern bytes in 1 KiB pieces, one every MS milliseconds
///   /stall            reads the request and never answers
///   /close            closes the connection without answering
///   /last             200 with "Connection: close", then close_notify and close (as IIS ends a connection)
///   otherwise         200, body = the request's X-Forwarded-* and Via headers
class test_upstream {
 public:
  explicit test_upstream(net::io_context& ioc) : listener_(ioc, [this](tls_stream s) { return serve(std::move(s)); }) {}
  unsigned short port() const { return listener_.port(); }
  int connections() const { return listener_.connections(); }
  /// Request headers read so far (a request smuggled past the bridge would be counted here).
  int requests() const { return requests_.load(); }

 private:

  /// Holds the connection open, reading and discarding, until the peer gives up.
  static net::awaitable<void> hold(tls_stream& stream, std::vector<char>& chunk);
  net::awaitable<void> serve(tls_stream stream);

  std::atomic<int> requests_{0};
  tls10_listener listener_;  // last: it starts accepting at once, and serve() uses the members above
};

/// The Exchange Online side: a keep-alive TLS 1.2+ client that checks the bridge's lab certificate.
class client {
 public:
  explicit client(net::io_context& ioc);

  /// TCP connect and TLS handshake with SNI `name` (whose certificate must be valid), optionally resuming
  /// `session` (see session()).
  net::awaitable<error_code> connect(unsigned short port, std::string name = "mail.contoso.example",
                                     SSL_SESSION* resume = nullptr);
  /// The same from the loopback address `source` (127.0.0.2, …): a client on another machine.
  net::awaitable<error_code> connect_from(const std::string& source, unsigned short port);


  /// Sends a request (with an optional pattern body of `upload` bytes) and returns the response, whose
  /// body is kept only when small; `pattern_ok` says whether a large body matched the pattern.
  struct reply {
    error_code ec;
    unsigned status = 0;
    std::string body;
    std::uint64_t body_bytes = 0;
    bool pattern_ok = true;
    bool keep_alive = false;
  };
  net::awaitable<reply> request(const std::string& target, std::uint64_t upload = 0, bool chunked_upload = false,
                                std::vector<std::pair<std::string, std::string>> headers = {},
                                std::string method = "");


  /// Reads one whole response (its header and a body of the declared length).
  net::awaitable<http::response<http::string_body>> read_response();

  /// Reads whatever comes until the connection closes (or fails).
  net::awaitable<std::string> read_until_close();


  /// Reads what is available now (at least one byte) as text.
  net::awaitable<std::string> read_some_text();


  /// Writes bytes as they are.
  net::awaitable<error_code> send(const std::string& bytes);


  /// Closes the sending side with a bare TCP FIN (no close_notify), as a client that dies mid-request.
  void close_sending() {
    error_code ignored;
    stream_.next_layer().shutdown(tcp::socket::shutdown_send, ignored);
  }

  SSL* native() { return stream_.native_handle(); }
  bool resumed() { return SSL_session_reused(stream_.native_handle()) == 1; }

  /// Sends raw bytes (for malformed requests) and reads whatever comes back until the connection closes.
  net::awaitable<std::string> raw(const std::string& bytes);


 private:
  ssl::context tls_;
  tls_stream stream_;
  beast::flat_buffer buffer_;
};

class BridgeTest : public ::testing::Test {
 protected:
  /// Under EXBRIDGE_TEST_THREADS=N the bridge runs on its own loop with N threads (see bridge_test_threads);
  /// the clients and scripted upstreams stay on io_, single-threaded.
  BridgeTest() {
    if (const unsigned n = bridge_test_threads(); n > 0) bridge_io_.emplace(n);
  }
  // The loops stop before the bridge and the upstream fixture are destroyed: their coroutines refer to them.
  void TearDown() override {
    io_.stop();
    if (bridge_io_) bridge_io_->stop();
  }
  /// The loop the bridge runs on: io_, or its own.
  net::io_context& bridge_loop() { return bridge_io_ ? bridge_io_->context() : io_.context(); }

  void start_bridge(bridge_options o) {
    o.listen = {"127.0.0.1", 0};
    o.identity = {.cert_file = test_pki().bridge_cert.string(), .key_file = test_pki().bridge_key.string()};
    o.threads = (bridge_io_ ? *bridge_io_ : io_).threads();  // one: connections run without strands, as in main
    o.on_end = [this](termination) {
      std::lock_guard lock(ends_mutex_);
      ends_signal_.notify_all();
    };
    o.on_connection_closed = [this] {
      std::lock_guard lock(ends_mutex_);
      ++closed_;
      ends_signal_.notify_all();
    };
    bridge_.emplace(bridge_loop(), o);
    bridge_->start();
  }
  bridge_options options_for_upstream() {
    bridge_options o;
    o.upstream.address = {"127.0.0.1", upstream_.port()};
    o.upstream.verify = tls_verify::ca_file;
    o.upstream.ca_file = test_pki().ca_cert.string();
    o.upstream.sni = "ex2007.contoso.example";
    return o;
  }
  unsigned short port() const { return bridge_->local_endpoint().port(); }

  /// One request on a fresh client connection.
  client::reply request_once(const std::string& target) {
    return io_.run([&]() -> net::awaitable<client::reply> {
      client c(io_.context());
      if (auto ec = co_await c.connect(port())) co_return client::reply{ec};
      co_return co_await c.request(target);
    }());
  }

  /// Connects over TLS, sends `bytes` (if any) and reads until the bridge closes the connection.
  std::string send_and_wait_close(const std::string& bytes) {
    return io_.run([&]() -> net::awaitable<std::string> {
      client c(io_.context());
      if (co_await c.connect(port())) co_return std::string("connect failed");
      if (!bytes.empty()) co_await c.send(bytes);
      co_return co_await c.read_until_close();
    }());
  }

  /// Raw bytes on a fresh client connection; returns all the bridge sent back until it closed.
  std::string raw_once(const std::string& bytes) {
    return io_.run([&]() -> net::awaitable<std::string> {
      client c(io_.context());
      co_await c.connect(port());
      co_return co_await c.raw(bytes);
    }());
  }
  std::int64_t stat(counter c) const { return bridge_->stats().get(c); }
  std::int64_t ended(termination t) const { return bridge_->stats().get(t); }

  /// Waits (up to `limit`) until the bridge has counted `t` at least once; true when it has. Woken by the
  /// bridge's on_end hook (start_bridge installs it).
  bool wait_for_end(termination t, std::chrono::milliseconds limit = std::chrono::seconds(10)) {
    std::unique_lock lock(ends_mutex_);
    return ends_signal_.wait_for(lock, limit, [&] { return ended(t) > 0; });
  }

  /// Waits (up to `limit`) until `n` client connections have ended on the bridge, both legs closed.
  bool wait_for_closed(int n, std::chrono::milliseconds limit = std::chrono::seconds(10)) {
    std::unique_lock lock(ends_mutex_);
    return ends_signal_.wait_for(lock, limit, [&] { return closed_ >= n; });
  }

  io_thread io_;
  std::optional<io_thread> bridge_io_;
  test_upstream upstream_{io_.context()};
  std::optional<bridge> bridge_;
  std::mutex ends_mutex_;
  std::condition_variable ends_signal_;
  int closed_ = 0;  ///< client connections the bridge has ended (guarded by ends_mutex_)
};


}  // namespace exbridge::proxy::test
