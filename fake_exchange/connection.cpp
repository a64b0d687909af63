// Reading a small request body (see connection.hpp).
#include "fake_exchange/connection.hpp"

#include <array>

namespace exbridge::fake_exchange {

net::awaitable<std::tuple<error_code, std::string>> read_small_body(connection& c,
                                                                    http::request_parser<http::buffer_body>& parser) {
  std::array<char, 16 * 1024> chunk;
  std::string body;
  while (!parser.is_done()) {
    parser.get().body().data = chunk.data();
    parser.get().body().size = chunk.size();
    auto [ec, n] = co_await http::async_read(c.stream, c.buffer, parser, use_tuple);
    body.append(chunk.data(), chunk.size() - parser.get().body().size);
    if (ec && ec != http::error::need_buffer) co_return std::make_tuple(ec, std::move(body));
  }
  co_return std::make_tuple(error_code{}, std::move(body));
}
}  // namespace exbridge::fake_exchange
