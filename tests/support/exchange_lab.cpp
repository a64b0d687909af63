// exchange_lab's client coroutines (see exchange_lab.hpp), compiled once for every test that uses them.
#include "tests/support/exchange_lab.hpp"

namespace exbridge::test {

net::awaitable<tls_stream> exchange_lab::connect() {
  auto stream = tls_stream(co_await net::this_coro::executor, client_tls_);
  co_await stream.next_layer().async_connect(server_->local_endpoint(), net::use_awaitable);
  prepare_client_tls(stream.native_handle(), "ex2007.contoso.example", true);
  co_await stream.async_handshake(ssl::stream_base::client, net::use_awaitable);
  co_return stream;
}

net::awaitable<void> send_text(tls_stream& stream, std::string text) {
  co_await net::async_write(stream, net::buffer(text), net::use_awaitable);
}

net::awaitable<http::response<http::string_body>> read_response(tls_stream& stream, beast::flat_buffer& buffer) {
  http::response_parser<http::string_body> parser;
  parser.body_limit(64 * 1024 * 1024);
  co_await http::async_read(stream, buffer, parser, net::use_awaitable);
  co_return parser.release();
}

}  // namespace exbridge::test
