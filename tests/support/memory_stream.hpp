// An in-memory, full-duplex byte stream with the members exbridge's session uses on its TLS streams, so that
// the session (proxy/session/session.hpp), its exchange and its body relay run without a socket: in the
// session's unit tests and in the fuzz targets.
//
// Two connected streams form a pipe pair. Knobs make the other end misbehave as a network peer can:
// read_size (how TCP and TLS records may split bytes), capacity (how much may wait unread before writes
// block: a peer that stops reading), fail_at (the Nth operation fails with a given error, for fault
// matrices in the style of Beast's fail_count) and the handshake (succeeds, fails, or never completes).
// Every completion is posted, never run inside the initiating call. Single-threaded use only.
#pragma once

#include <boost/asio/any_completion_handler.hpp>

#include <openssl/ssl.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/net.hpp"

namespace exbridge::test {

class memory_stream {
 public:
  using executor_type = net::any_io_executor;
  enum class handshake_mode { succeed, fail, hang };

  explicit memory_stream(executor_type ex) : ex_(std::move(ex)), in_(std::make_shared<pipe>()) {}
  memory_stream(const memory_stream&) = delete;
  memory_stream& operator=(const memory_stream&) = delete;
  ~memory_stream() { close(); }

  /// Connects two streams: what one writes, the other reads.
  static void connect(memory_stream& a, memory_stream& b) {
    a.out_ = b.in_;
    b.out_ = a.in_;
  }

  // --- knobs ---------------------------------------------------------------------------------------------
  /// At most `n` bytes per read.
  void read_size(std::size_t n) { read_max_ = std::max<std::size_t>(n, 1); }
  /// At most `n` bytes may wait unread in this stream's input; the writer waits beyond that.
  void capacity(std::size_t n) { in_->capacity = std::max<std::size_t>(n, 1); }
  /// The `n`th operation on this stream (reads, writes, handshake and shutdown counted from 1) fails with `ec`,
  /// and the stream closes with it, as a reset connection does.
  void fail_at(std::size_t n, error_code ec) {
    fail_at_ = n;
    fail_ec_ = ec;
  }
  void handshake(handshake_mode mode, error_code ec = net::error::connection_reset) {
    handshake_ = mode;
    handshake_ec_ = ec;
  }
  /// Operations started so far (for fault matrices: run once clean, then fail each of them in turn).
  std::size_t operations() const { return *ops_; }
  /// The same count, readable after the stream is gone (a stream the code under test owned).
  std::shared_ptr<const std::size_t> operation_count() const { return ops_; }

  // --- the test's end --------------------------------------------------------------------------------------
  /// Queues bytes as if the peer had written them (no peer stream needed).
  void feed(std::string_view bytes) {
    in_->data.append(bytes);
    wake_reader(*in_);
  }
  /// What was written to this stream and not read yet (a sink's view of everything it was sent).
  std::string_view unread() const { return in_->data; }
  /// Ends this stream's input as if the peer had closed after what was fed.
  void feed_eof() {
    in_->eof = true;
    wake_reader(*in_);
  }

  // --- what the session calls on a stream ---------------------------------------------------------------
  executor_type get_executor() noexcept { return ex_; }
  SSL* native_handle() noexcept { return nullptr; }
  void set_no_delay() noexcept {}
  bool session_reused() const noexcept { return false; }
  bool has_buffered_input() const noexcept { return false; }
  bool peer_sent_something() const noexcept { return !in_->data.empty() || in_->eof; }
  bool is_open() const noexcept { return open_; }

  /// Pending operations complete with operation_aborted; the stream stays usable.
  void cancel() {
    abort_reader(*in_, net::error::operation_aborted);
    if (out_) abort_writer(*out_, net::error::operation_aborted);
    if (pending_handshake_) post(std::move(*std::exchange(pending_handshake_, std::nullopt)), net::error::operation_aborted);
  }

  /// Closes this end: its pending operations are aborted, the peer reads the end of the stream after what
  /// it was sent, and the peer's writes fail (broken pipe).
  void close() {
    if (!open_) return;
    open_ = false;
    cancel();
    if (out_) {
      out_->eof = true;
      wake_reader(*out_);
    }
    in_->reader_gone = true;
    abort_writer(*in_, net::error::broken_pipe);
  }

  template <class Token>
  auto async_handshake(ssl::stream_base::handshake_type, Token&& token) {
    return net::async_initiate<Token, void(error_code)>(
        [this](auto handler) {
          if (auto ec = start_op()) return post(any_done(std::move(handler)), ec);
          if (handshake_ == handshake_mode::succeed) return post(any_done(std::move(handler)), {});
          if (handshake_ == handshake_mode::fail) return post(any_done(std::move(handler)), handshake_ec_);
          pending_handshake_.emplace(std::move(handler));
        },
        token);
  }

  /// Ends the writing direction (the peer reads the end of the stream), as close_notify does.
  template <class Token>
  auto async_shutdown(Token&& token) {
    return net::async_initiate<Token, void(error_code)>(
        [this](auto handler) {
          error_code ec = start_op();
          if (!ec && out_) {
            out_->eof = true;
            wake_reader(*out_);
          }
          post(any_done(std::move(handler)), ec);
        },
        token);
  }

  template <class MutableBuffers, class Token>
  auto async_read_some(const MutableBuffers& buffers, Token&& token) {
    return net::async_initiate<Token, void(error_code, std::size_t)>(
        [this](auto handler, std::vector<net::mutable_buffer> bufs) {
          if (auto ec = start_op()) return post(any_io(std::move(handler)), ec, 0);
          pipe& p = *in_;
          p.reader.emplace(op{std::move(handler), std::move(bufs), {}, read_max_});
          serve_reader(p);
        },
        token, std::vector<net::mutable_buffer>(net::buffer_sequence_begin(buffers), net::buffer_sequence_end(buffers)));
  }

  template <class ConstBuffers, class Token>
  auto async_write_some(const ConstBuffers& buffers, Token&& token) {
    return net::async_initiate<Token, void(error_code, std::size_t)>(
        [this](auto handler, std::vector<net::const_buffer> bufs) {
          if (auto ec = start_op()) return post(any_io(std::move(handler)), ec, 0);
          if (!out_) return post(any_io(std::move(handler)), net::error::not_connected, 0);
          pipe& p = *out_;
          p.writer.emplace(op{std::move(handler), {}, std::move(bufs), 0});
          p.writer_ex = ex_;
          serve_writer(p);
        },
        token, std::vector<net::const_buffer>(net::buffer_sequence_begin(buffers), net::buffer_sequence_end(buffers)));
  }

 private:
  using io_handler = net::any_completion_handler<void(error_code, std::size_t)>;
  using done_handler = net::any_completion_handler<void(error_code)>;
  template <class H>
  static io_handler any_io(H&& h) {
    return io_handler(std::forward<H>(h));
  }
  template <class H>
  static done_handler any_done(H&& h) {
    return done_handler(std::forward<H>(h));
  }

  struct op {
    io_handler handler;
    std::vector<net::mutable_buffer> into;   ///< a read's buffers
    std::vector<net::const_buffer> from;     ///< a write's buffers
    std::size_t max = 0;                     ///< a read's size limit
  };
  /// One direction: what was written and not yet read, and the operations waiting on it.
  struct pipe {
    std::string data;
    std::size_t capacity = std::size_t(1) << 40;
    bool eof = false;          ///< the writer closed or shut down: reads end after `data`
    bool reader_gone = false;  ///< the reader closed: writes fail
    std::optional<op> reader;
    std::optional<op> writer;
    executor_type reader_ex, writer_ex;
  };

  error_code start_op() {
    ++*ops_;
    if (!open_) return net::error::bad_descriptor;
    if (fail_at_ != 0 && *ops_ == fail_at_) {
      close();
      return fail_ec_;
    }
    return {};
  }

  void post(io_handler h, error_code ec, std::size_t n) {
    net::post(ex_, [h = std::move(h), ec, n]() mutable { std::move(h)(ec, n); });
  }
  void post(done_handler h, error_code ec) {
    net::post(ex_, [h = std::move(h), ec]() mutable { std::move(h)(ec); });
  }
  static void post_to(const executor_type& ex, io_handler h, error_code ec, std::size_t n) {
    net::post(ex, [h = std::move(h), ec, n]() mutable { std::move(h)(ec, n); });
  }

  void serve_reader(pipe& p) {
    p.reader_ex = ex_;
    wake_reader(p);
  }

  static void wake_reader(pipe& p) {
    if (!p.reader) return;
    if (!p.data.empty()) {
      op r = std::move(*p.reader);
      p.reader.reset();
      std::size_t n = 0;
      for (const auto& b : r.into) {
        const std::size_t take = std::min({b.size(), p.data.size() - n, r.max - n});
        std::copy_n(p.data.data() + n, take, static_cast<char*>(b.data()));
        n += take;
        if (n == p.data.size() || n == r.max) break;
      }
      p.data.erase(0, n);
      post_to(p.reader_ex, std::move(r.handler), {}, n);
      wake_writer(p);  // room again
      return;
    }
    if (p.eof) {
      op r = std::move(*p.reader);
      p.reader.reset();
      post_to(p.reader_ex, std::move(r.handler), net::error::eof, 0);
    }
  }

  void serve_writer(pipe& p) { wake_writer(p); }

  static void wake_writer(pipe& p) {
    if (!p.writer) return;
    if (p.reader_gone) return abort_writer(p, net::error::broken_pipe);
    if (p.data.size() >= p.capacity) return;  // waits for the reader
    op w = std::move(*p.writer);
    p.writer.reset();
    std::size_t n = 0;
    for (const auto& b : w.from) {
      const std::size_t take = std::min(b.size(), p.capacity - p.data.size());
      p.data.append(static_cast<const char*>(b.data()), take);
      n += take;
      if (take < b.size()) break;
    }
    post_to(p.writer_ex, std::move(w.handler), {}, n);
    wake_reader(p);
  }

  static void abort_reader(pipe& p, error_code ec) {
    if (!p.reader) return;
    op r = std::move(*p.reader);
    p.reader.reset();
    post_to(p.reader_ex, std::move(r.handler), ec, 0);
  }
  static void abort_writer(pipe& p, error_code ec) {
    if (!p.writer) return;
    op w = std::move(*p.writer);
    p.writer.reset();
    post_to(p.writer_ex, std::move(w.handler), ec, 0);
  }

  executor_type ex_;
  std::shared_ptr<pipe> in_;   ///< what this stream reads
  std::shared_ptr<pipe> out_;  ///< what it writes: the peer's input
  std::size_t read_max_ = std::size_t(1) << 40;
  std::shared_ptr<std::size_t> ops_ = std::make_shared<std::size_t>(0);
  std::size_t fail_at_ = 0;
  error_code fail_ec_;
  handshake_mode handshake_ = handshake_mode::succeed;
  error_code handshake_ec_;
  std::optional<done_handler> pending_handshake_;
  bool open_ = true;
};

}  // namespace exbridge::test
