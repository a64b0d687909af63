// A TLS stream straight on the socket (OpenSSL reads and writes the descriptor through the small socket BIO
// below) for the data paths of exbridge and fake-exchange.
// Asio's ssl::stream runs OpenSSL through a memory BIO pair and two 17 KiB record vectors of its own: 139 KiB
// of buffers for a bridged connection's two streams even while it idles, and two extra copies of every byte.
// Here OpenSSL reads and writes the non-blocking socket itself; when it would block, the operation waits for
// readiness (async_wait) and tries again, as HAProxy and nginx drive OpenSSL. With SSL_MODE_RELEASE_BUFFERS an
// idle connection holds no record buffer at all.
//
// Errors follow Asio's ssl::stream, so that callers classify them the same way: close_notify is
// net::error::eof, a TCP close without it ssl::error::stream_truncated, a protocol failure an error in the
// SSL category with OpenSSL's code. One read and one write may be outstanding at once (a full-duplex relay),
// on one strand.
//
// OpenSSL's own socket BIO writes with write(2): a peer that has reset the connection would raise SIGPIPE and
// kill the process (a library, a test binary). The BIO here sends with MSG_NOSIGNAL instead, so a reset is an
// EPIPE error code like any other.
#pragma once

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <utility>

#include "common/net.hpp"

namespace exbridge {

namespace detail {

inline int bio_fd(BIO* b) { return static_cast<int>(reinterpret_cast<std::intptr_t>(BIO_get_data(b))); }

// A socket BIO that never raises SIGPIPE: send(MSG_NOSIGNAL) / recv on the descriptor kept as the BIO's data.
inline BIO_METHOD* nosignal_socket_bio() {
  static BIO_METHOD* const method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK | BIO_TYPE_DESCRIPTOR, "exbridge socket");
    if (m == nullptr) throw std::bad_alloc();
    BIO_meth_set_write_ex(m, [](BIO* b, const char* data, std::size_t len, std::size_t* written) -> int {
      BIO_clear_retry_flags(b);
      const ssize_t r = ::send(bio_fd(b), data, len, MSG_NOSIGNAL);
      if (r > 0) {
        *written = static_cast<std::size_t>(r);
        return 1;
      }
      if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) BIO_set_retry_write(b);
      *written = 0;
      return 0;
    });
    BIO_meth_set_read_ex(m, [](BIO* b, char* data, std::size_t len, std::size_t* read) -> int {
      BIO_clear_retry_flags(b);
      const ssize_t r = ::recv(bio_fd(b), data, len, 0);
      if (r > 0) {
        *read = static_cast<std::size_t>(r);
        return 1;
      }
      if (r == 0) BIO_set_flags(b, BIO_FLAGS_IN_EOF);  // OpenSSL 3 asks BIO_eof() to tell a TCP close apart
      else if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) BIO_set_retry_read(b);
      *read = 0;
      return 0;
    });
    BIO_meth_set_ctrl(m, [](BIO* b, int cmd, long, void* ptr) -> long {
      switch (cmd) {
        case BIO_CTRL_FLUSH:
          return 1;
        case BIO_CTRL_EOF:
          return BIO_test_flags(b, BIO_FLAGS_IN_EOF) != 0 ? 1 : 0;
        case BIO_C_GET_FD: {
          const int fd = bio_fd(b);
          if (ptr != nullptr) *static_cast<int*>(ptr) = fd;
          return fd;
        }
        default:
          return 0;
      }
    });
    BIO_meth_set_create(m, [](BIO* b) -> int {
      BIO_set_data(b, reinterpret_cast<void*>(std::intptr_t{-1}));
      return 1;
    });
    return m;
  }();
  return method;
}

}  // namespace detail

class tls_socket {
 public:
  using executor_type = net::any_io_executor;
  using next_layer_type = tcp::socket;

  tls_socket(tcp::socket socket, ssl::context& ctx) : socket_(std::move(socket)), ssl_(SSL_new(ctx.native_handle())) {
    if (ssl_ == nullptr) throw std::bad_alloc();
  }
  tls_socket(const executor_type& ex, ssl::context& ctx) : socket_(ex), ssl_(SSL_new(ctx.native_handle())) {
    if (ssl_ == nullptr) throw std::bad_alloc();
  }
  ~tls_socket() {
    if (ssl_ != nullptr) SSL_free(ssl_);
  }
  tls_socket(const tls_socket&) = delete;
  tls_socket& operator=(const tls_socket&) = delete;

  executor_type get_executor() noexcept { return socket_.get_executor(); }
  tcp::socket& next_layer() noexcept { return socket_; }
  const tcp::socket& next_layer() const noexcept { return socket_; }
  SSL* native_handle() noexcept { return ssl_; }

  /// Cancels pending operations; the connection stays open (a timeout that still answers the peer).
  void cancel() noexcept {
    error_code ignored;
    socket_.cancel(ignored);
  }
  /// Closes the socket: pending operations complete with an error, OpenSSL is never called again.
  void close() noexcept {
    error_code ignored;
    socket_.close(ignored);
  }
  bool is_open() const noexcept { return socket_.is_open(); }
  /// TCP_NODELAY: what is written leaves at once (requests and answers are written whole, never byte-wise).
  void set_no_delay() noexcept {
    error_code ignored;
    socket_.set_option(tcp::no_delay(true), ignored);
  }
  /// Bytes already decrypted or read ahead and not yet delivered.
  bool has_buffered_input() const noexcept { return SSL_has_pending(ssl_) == 1; }
  /// For an idle connection, without waiting or reading: has the peer sent anything (a close_notify, a FIN,
  /// stray bytes) since the last read? One recv(MSG_PEEK) system call.
  bool peer_sent_something() {
    char byte;
    const auto got = ::recv(socket_.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    return !(got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
  }
  /// The handshake resumed an earlier session.
  bool session_reused() const noexcept { return SSL_session_reused(ssl_) == 1; }

  template <class Token>
  auto async_handshake(ssl::stream_base::handshake_type type, Token&& token) {
    return net::async_compose<Token, void(error_code)>(
        io_op<handshake_step, false>{*this, handshake_step{type}}, token, socket_);
  }

  template <class Token>
  auto async_shutdown(Token&& token) {
    return net::async_compose<Token, void(error_code)>(io_op<shutdown_step, false>{*this, shutdown_step{}}, token,
                                                       socket_);
  }

  template <class MutableBuffers, class Token>
  auto async_read_some(const MutableBuffers& buffers, Token&& token) {
    return net::async_compose<Token, void(error_code, std::size_t)>(
        io_op<read_step<MutableBuffers>, true>{*this, read_step<MutableBuffers>{buffers}}, token, socket_);
  }

  template <class ConstBuffers, class Token>
  auto async_write_some(const ConstBuffers& buffers, Token&& token) {
    return net::async_compose<Token, void(error_code, std::size_t)>(
        io_op<write_step<ConstBuffers>, true>{*this, write_step<ConstBuffers>{buffers}}, token, socket_);
  }

 private:
  // One attempt of an OpenSSL call: > 0 done (n set), else SSL_get_error's answer follows.
  struct handshake_step {
    ssl::stream_base::handshake_type type;
    int operator()(tls_socket& s, std::size_t& n) {
      n = 0;
      if (!s.bound_) s.bind(type == ssl::stream_base::client);
      return SSL_do_handshake(s.ssl_);
    }
  };
  struct shutdown_step {
    int operator()(tls_socket& s, std::size_t& n) {
      n = 0;
      if (!s.bound_) return 1;  // never handshaken: nothing to close
      const int r = SSL_shutdown(s.ssl_);
      // 0: our close_notify is out; wait for the peer's (as Asio's stream does).
      return r == 0 ? SSL_shutdown(s.ssl_) : r;
    }
  };
  template <class Buffers>
  struct read_step {
    Buffers buffers;
    int operator()(tls_socket& s, std::size_t& n) {
      n = 0;
      if (s.deferred_read_error_) return deferred;
      const net::mutable_buffer b = first_nonempty(buffers);
      if (b.size() == 0) return 1;
      const int r = SSL_read_ex(s.ssl_, b.data(), b.size(), &n);
      if (r <= 0) return r;
      // Go on while the read-ahead buffer holds further records, up to the buffer's end: one operation (and
      // one trip through the event loop) per 64 KiB burst of a bulk transfer, not one per 16 KiB record, and
      // no extra recv() for a small request. A failure after some bytes is kept for the next read, so that the
      // bytes before it are delivered first.
      while (n < b.size() && SSL_has_pending(s.ssl_) == 1) {
        std::size_t more = 0;
        ERR_clear_error();
        errno = 0;
        const int again = SSL_read_ex(s.ssl_, static_cast<char*>(b.data()) + n, b.size() - n, &more);
        if (again > 0) {
          n += more;
          continue;
        }
        const int err = SSL_get_error(s.ssl_, again);
        if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) s.deferred_read_error_ = s.failure(again);
        break;
      }
      return 1;
    }
  };
  template <class Buffers>
  struct write_step {
    Buffers buffers;
    int operator()(tls_socket& s, std::size_t& n) {
      n = 0;
      // Several small buffers (an HTTP header and a short body) go out as one record, as Beast's flat_stream
      // does: gathered into a per-thread scratch area (SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER allows a retry
      // from another address; the gathered bytes are the same on a retry).
      const net::const_buffer first = first_nonempty(buffers);
      if (first.size() == 0) return 1;
      const std::size_t total = net::buffer_size(buffers);
      if (first.size() >= scratch_size || first.size() == total) {
        return SSL_write_ex(s.ssl_, first.data(), first.size(), &n);
      }
      static thread_local char scratch[scratch_size];
      const std::size_t gathered = net::buffer_copy(net::buffer(scratch), buffers);
      return SSL_write_ex(s.ssl_, scratch, gathered, &n);
    }
  };

  static constexpr std::size_t scratch_size = 16 * 1024;
  static constexpr std::size_t read_ahead_size = 64 * 1024;
  static constexpr int deferred = -1000;  ///< a step's answer: the failure is deferred_read_error_

  template <class Buffers>
  static auto first_nonempty(const Buffers& buffers) {
    using buffer_type = std::conditional_t<net::is_mutable_buffer_sequence<Buffers>::value, net::mutable_buffer,
                                           net::const_buffer>;
    for (auto it = net::buffer_sequence_begin(buffers); it != net::buffer_sequence_end(buffers); ++it) {
      buffer_type b(*it);
      if (b.size() != 0) return b;
    }
    return buffer_type{};
  }

  void bind(bool client) {
    error_code ignored;
    socket_.non_blocking(true, ignored);
    BIO* bio = BIO_new(detail::nosignal_socket_bio());
    if (bio == nullptr) throw std::bad_alloc();
    BIO_set_data(bio, reinterpret_cast<void*>(static_cast<std::intptr_t>(socket_.native_handle())));
    BIO_set_init(bio, 1);
    SSL_set_bio(ssl_, bio, bio);  // the SSL owns the BIO; the socket stays ours to close
    SSL_set_mode(ssl_, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    // One read() per burst instead of two per record (header, then body); SSL_has_pending() covers the
    // bytes read ahead, which a MSG_PEEK on the socket no longer sees.
    SSL_set_read_ahead(ssl_, 1);
    // Read ahead into a 64 KiB buffer: up to four full records per recv() in a bulk transfer. (With
    // SSL_MODE_RELEASE_BUFFERS it exists only while records are in flight.)
    SSL_set_default_read_buffer_len(ssl_, read_ahead_size);
    if (client) SSL_set_connect_state(ssl_);
    else SSL_set_accept_state(ssl_);
    bound_ = true;
  }

  // Maps a failed OpenSSL call as Asio's ssl::stream does. Must run right after the call (errno, error queue).
  error_code failure(int ret) const {
    const int err = SSL_get_error(ssl_, ret);
    if (err == SSL_ERROR_ZERO_RETURN) return net::error::eof;
    const unsigned long queued = ERR_get_error();
    if (err == SSL_ERROR_SSL || queued != 0) {
      ERR_clear_error();
#ifdef SSL_R_UNEXPECTED_EOF_WHILE_READING
      // OpenSSL 3 reports a TCP close without close_notify as this protocol error; Asio (and every caller
      // here) calls it stream_truncated.
      if (ERR_GET_REASON(queued) == SSL_R_UNEXPECTED_EOF_WHILE_READING) return ssl::error::stream_truncated;
#endif
      return error_code(static_cast<int>(queued), net::error::get_ssl_category());
    }
    if (err == SSL_ERROR_SYSCALL) {
      if (errno != 0) return error_code(errno, boost::system::system_category());  // (errno is cleared before each call)
      return ssl::error::stream_truncated;  // the peer closed TCP without close_notify
    }
    return net::error::fault;
  }

  // Tries the step; waits for the socket when OpenSSL would block; completes once it is done or failed.
  // A step that finishes on the first try completes through a post, never inside the initiating call.
  template <class Step, bool Sized>
  struct io_op {
    tls_socket& s;
    Step step;
    bool waited = false;
    bool done = false;
    error_code result;
    std::size_t n = 0;

    template <class Self>
    void operator()(Self& self, error_code ec = {}) {
      if (done) return finish(self);
      if (ec) {
        result = ec;
        return finish(self);
      }
      for (;;) {
        // The BIO holds the descriptor's number: once the socket is closed (a timeout, the other relay half
        // giving up) that number may already belong to another connection. Never call OpenSSL then.
        if (!s.socket_.is_open()) {
          result = net::error::bad_descriptor;
          n = 0;
          break;
        }
        ERR_clear_error();
        errno = 0;
        const int r = step(s, n);
        if (r > 0) break;
        if (r == deferred) {
          result = std::exchange(s.deferred_read_error_, error_code{});
          n = 0;
          break;
        }
        const int err = SSL_get_error(s.ssl_, r);
        if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
          waited = true;
          s.socket_.async_wait(err == SSL_ERROR_WANT_READ ? tcp::socket::wait_read : tcp::socket::wait_write,
                               std::move(self));
          return;
        }
        result = s.failure(r);
        n = 0;
        break;
      }
      if (waited) return finish(self);
      done = true;
      net::post(s.socket_.get_executor(), std::move(self));
    }

    template <class Self>
    void finish(Self& self) {
      if constexpr (Sized) {
        self.complete(result, n);
      } else {
        self.complete(result);
      }
    }
  };

  tcp::socket socket_;
  SSL* ssl_;
  error_code deferred_read_error_;  ///< how the stream failed after the bytes the last read delivered
  bool bound_ = false;
};

}  // namespace exbridge
