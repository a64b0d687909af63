// fake-exchange connection handling.
#include "fake_exchange/server.hpp"

#include <functional>

#include "common/lab_pki.hpp"
#include "common/listener.hpp"
#include "common/log.hpp"
#include "common/tls_diagnosis.hpp"
#include "common/watchdog.hpp"
#include "fake_exchange/streamed_body.hpp"

namespace exbridge::fake_exchange {
namespace {

tls_identity identity_or_generated(const server_options& o) {
  if (!o.identity.empty()) return o.identity;
  const std::string host = o.exchange.org.server_fqdn();
  const pem_pair pair = make_certificate({.common_name = host,
                                          .dns_names = {host, "autodiscover." + o.exchange.org.domain, "localhost"},
                                          .ip_addresses = {"127.0.0.1", "::1"}},
                                         nullptr);
  return {.cert_pem = pair.cert_pem, .key_pem = pair.key_pem};
}

enum class server_timeout { handshake, idle };

using tls_stream = ssl::stream<tcp::socket>;

net::awaitable<std::tuple<error_code, std::size_t>> write_whole(tls_stream& stream,
                                                                 http::response<http::string_body>& response) {
  co_return co_await http::async_write(stream, response, use_tuple);
}

// Writes the header of `head`, then the body as `body` produces it, in 64 KiB pieces; `progress` runs
// before each piece (it re-arms the idle timeout, so only a client that stops reading is cut off).
net::awaitable<std::tuple<error_code, std::size_t>> write_streamed(tls_stream& stream,
                                                                    const http::response<http::string_body>& head,
                                                                    streamed_body& body,
                                                                    const std::function<void()>& progress) {
  http::response<http::buffer_body> res{head.base()};
  http::response_serializer<http::buffer_body> sr{res};
  std::size_t total = 0;
  auto [ec, n] = co_await http::async_write_header(stream, sr, use_tuple);
  total += n;
  std::vector<char> chunk(64 * 1024);
  while (!ec && !sr.is_done()) {
    progress();
    const std::size_t got = body.read(chunk.data(), chunk.size());
    res.body().data = got > 0 ? chunk.data() : nullptr;
    res.body().size = got;
    res.body().more = got > 0;
    std::tie(ec, n) = co_await http::async_write(stream, sr, use_tuple);
    total += n;
    if (ec == http::error::need_buffer) ec = {};
    if (got == 0 && !sr.is_done() && !ec) ec = http::error::partial_message;  // the producer fell short
  }
  co_return std::make_tuple(ec, total);
}

}  // namespace

server::server(net::io_context& ioc, server_options options)
    : options_(std::move(options)),
      tls_(make_tls_context(tls_profile::exchange2007, {.identity = identity_or_generated(options_)})),
      acceptor_(bind_listener(ioc, options_.listen, "fake-exchange --listen")) {}

void server::start() {
  start_accepting(acceptor_, [this](tcp::socket s) { return serve(std::move(s)); });
}

void server::stop() {
  error_code ec;
  acceptor_.close(ec);
}

net::awaitable<void> server::serve(tcp::socket socket) {
  const std::string client = [&] {
    error_code ec;
    const auto ep = socket.remote_endpoint(ec);
    return ec ? std::string("?") : ep.address().to_string() + ":" + std::to_string(ep.port());
  }();
  ssl::stream<tcp::socket> stream(std::move(socket), tls_);
  watchdog<server_timeout> dog(stream.get_executor(), [&stream] {
    error_code ignored;
    stream.next_layer().close(ignored);
  });

  dog.arm(options_.handshake_timeout, server_timeout::handshake);
  if (auto [ec] = co_await stream.async_handshake(ssl::stream_base::server, use_tuple); ec) {
    const auto d = diagnose_tls_failure(dog.fired() ? net::error::timed_out : ec, stream.native_handle(), "the client");
    log_info(cat("tls handshake from ", client, " failed: ", d.to_string()));
    co_return;
  }

  beast::flat_buffer buffer;
  connection_auth auth;  // NTLM authenticates this TCP connection, not a request
  for (;;) {
    dog.arm(options_.idle_timeout, server_timeout::idle);
    http::request_parser<http::string_body> parser;
    parser.header_limit(16 * 1024);  // http.sys MaxRequestBytes default
    parser.body_limit(ews_max_request_bytes);
    const auto started = std::chrono::steady_clock::now();
    auto [ec, n] = co_await http::async_read(stream, buffer, parser, use_tuple);
    // A connection closed or reset before any byte of a request (health checks do this) is not a request.
    const bool closed = ec == http::error::end_of_stream || ec == ssl::error::stream_truncated ||
                        ec == net::error::eof || ec == net::error::connection_reset;
    if ((closed || dog.fired()) && !parser.got_some()) break;
    if (closed) break;  // mid-request: nobody is left to answer
    http::response<http::string_body> response;
    std::string user, operation;
    std::shared_ptr<streamed_body> body_stream;
    if (ec == http::error::body_limit) {
      response = content_too_large_response(parser.get().version());
    } else if (ec) {
      // http.sys answers unparsable requests with 400 and closes.
      response = http::response<http::string_body>{http::status::bad_request, 11};
      response.set(http::field::content_type, "text/html; charset=us-ascii");
      response.set(http::field::server, "Microsoft-HTTPAPI/2.0");
      response.body() = "<h2>Bad Request</h2>";
      response.keep_alive(false);
      response.prepare_payload();
    } else {
      auto routed = route_request(parser.get(), options_.exchange, auth);
      response = std::move(routed.response);
      user = std::move(routed.user);
      operation = std::move(routed.operation);
      body_stream = std::move(routed.stream);
      response.keep_alive(parser.get().keep_alive());
    }
    // (Two statements, not ?: around co_await: GCC 12 mis-handles temporaries there.)
    dog.arm(options_.idle_timeout, server_timeout::idle);  // a client that stops reading is cut off
    std::tuple<error_code, std::size_t> write_result;
    if (body_stream) {
      const auto progress = [&] { dog.arm(options_.idle_timeout, server_timeout::idle); };
      write_result = co_await write_streamed(stream, response, *body_stream, progress);
    } else {
      write_result = co_await write_whole(stream, response);
    }
    dog.disarm();
    const auto [wec, written] = write_result;
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
    const auto& req = parser.get();
    log_info(cat(client, " \"", req.method_string(), ' ', req.target(), "\" op=", operation.empty() ? "-" : operation,
                 " user=", user.empty() ? "-" : user, " status=", response.result_int(), " bytes=", written,
                 " ms=", ms.count(), ec ? " parse_error=" + ec.message() : std::string()));
    if (wec || !response.keep_alive()) break;
  }
  // A real IIS sends close_notify; an abrupt close is a fault to inject, not the default. The peer's
  // close_notify is awaited only briefly.
  dog.arm(std::chrono::seconds(5), server_timeout::handshake);
  co_await stream.async_shutdown(use_tuple);
}

}  // namespace exbridge::fake_exchange
