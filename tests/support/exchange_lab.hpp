// An in-process fake-exchange on port 0 (lab PKI, the test's io_context) and a raw TLS 1.0 client for it,
// for tests that look at fake-exchange's own wire behaviour: Outlook Anywhere channels, injected faults.
// Tests wait on request records (the server's per-request callback) and on data, never on sleeps.
#pragma once

#include <condition_variable>
#include <mutex>
#include <optional>

#include "common/base64.hpp"
#include "common/rts.hpp"
#include "common/tls_context.hpp"
#include "fake_exchange/server.hpp"
#include "tests/support/test_support.hpp"

namespace exbridge::test {

using tls_stream = ssl::stream<tcp::socket>;

class exchange_lab {
 public:
  explicit exchange_lab(fake_exchange::server_options options = {}) {
    const auto& pki = test_pki();
    options.identity = {.cert_file = pki.exchange_cert.string(), .key_file = pki.exchange_key.string()};
    options.on_request = [this](const fake_exchange::request_record& r) {
      std::lock_guard lock(mutex_);
      records_.push_back(r);
      changed_.notify_all();
    };
    server_.emplace(io_.context(), options);
    server_->start();
  }
  ~exchange_lab() { io_.stop(); }  // before the server: its coroutines refer to it

  /// Waits until `n` requests have been logged and returns the nth (1-based).
  fake_exchange::request_record wait_for_request(std::size_t n, std::chrono::seconds limit = std::chrono::seconds(30)) {
    std::unique_lock lock(mutex_);
    if (!changed_.wait_for(lock, limit, [&] { return records_.size() >= n; })) {
      ADD_FAILURE() << "request " << n << " was not logged within " << limit.count() << " s";
      throw std::runtime_error("timeout");
    }
    return records_[n - 1];
  }

  /// A TLS 1.0 client connection to the server, handshake done (runs on the io thread).
  net::awaitable<tls_stream> connect();

  io_thread& io() { return io_; }
  fake_exchange::server& server() { return *server_; }

 private:
  io_thread io_;
  ssl::context client_tls_ =
      make_tls_context(tls_profile::upstream_legacy, {.verify = tls_verify::ca_file, .ca_file = test_pki().ca_cert.string()});
  std::optional<fake_exchange::server> server_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<fake_exchange::request_record> records_;
};

/// Writes raw request text (header and any body) on `stream`.
net::awaitable<void> send_text(tls_stream& stream, std::string text);

/// Reads one whole response.
net::awaitable<http::response<http::string_body>> read_response(tls_stream& stream, beast::flat_buffer& buffer);

/// Reads the OUT channel's PDUs one at a time.
class out_reader {
 public:
  explicit out_reader(tls_stream& s) : stream_(s) { parser_.body_limit(boost::none); }

  net::awaitable<unsigned> read_header() {
    co_await http::async_read_header(stream_, buffer_, parser_, net::use_awaitable);
    co_return parser_.get().result_int();
  }
  std::uint64_t declared() const { return parser_.content_length().value_or(0); }

  /// The next whole PDU (data, not time, drives the tests: each read waits for the server's next PDU).
  net::awaitable<std::string> next() {
    for (;;) {
      if (auto p = split_.next()) co_return *p;
      std::array<char, 512> chunk;
      parser_.get().body().data = chunk.data();
      parser_.get().body().size = chunk.size();
      auto [ec, n] = co_await http::async_read_some(stream_, buffer_, parser_, use_tuple);
      split_.append(chunk.data(), chunk.size() - parser_.get().body().size);
      if (ec && ec != http::error::need_buffer) throw boost::system::system_error(ec);
    }
  }

 private:
  tls_stream& stream_;
  beast::flat_buffer buffer_;
  http::response_parser<http::buffer_body> parser_;
  rts::pdu_splitter split_;
};

/// "Basic ..." for the demo user.
inline std::string demo_basic_auth() {
  return "Basic " + base64_encode(std::string(fake_exchange::demo_email) + ":" + std::string(fake_exchange::demo_password));
}

}  // namespace exbridge::test
