// Reading a request's header block from the client, as the session does and the fuzz targets replay it:
// the whole block is buffered and checked as raw bytes before Beast parses it, because Beast unfolds obsolete
// line folding silently, and a folded header is a classic way to make two HTTP parsers disagree.
#pragma once

#include <string_view>

#include "common/net.hpp"
#include "proxy/session/http_checks.hpp"

namespace exbridge::proxy {

/// A request is read 16 KiB at a time; a connection waiting for its next request reads into 1 KiB, so that
/// thousands of idle connections hold little.
inline constexpr std::size_t request_read_size = 16 * 1024;
inline constexpr std::size_t idle_read_size = 1024;

/// A request parser with the proxy's limits: no body limit (an RPC_IN_DATA request declares 1 GB and more),
/// max_header_bytes of header.
inline void limit_request_parser(http::request_parser<http::buffer_body>& parser) {
  parser.body_limit(boost::none);
  parser.header_limit(max_header_bytes);
}

/// What is buffered, as text.
inline std::string_view buffered_text(const beast::flat_buffer& buffer) {
  return {static_cast<const char*>(buffer.data().data()), buffer.size()};
}

/// How reading a request head ended: ec from the stream or the parser, or `folded` (nothing parsed).
struct head_read {
  error_code ec;
  bool folded = false;
};

/// Reads until `buffer` holds the whole header block (or max_header_bytes of it), refuses obsolete line
/// folding, then parses the header into `parser`. Reads `read_size` bytes at a time.
template <class Stream>
net::awaitable<head_read> read_request_head(Stream& stream, beast::flat_buffer& buffer,
                                            http::request_parser<http::buffer_body>& parser, std::size_t read_size) {
  while (!header_block_complete(buffered_text(buffer))) {
    auto [ec, n] = co_await stream.async_read_some(buffer.prepare(read_size), use_tuple);
    if (ec) co_return head_read{ec};
    buffer.commit(n);
  }
  if (has_obs_fold(buffered_text(buffer))) co_return head_read{.folded = true};
  auto [ec, n] = co_await http::async_read_header(stream, buffer, parser, use_tuple);
  co_return head_read{ec};
}

}  // namespace exbridge::proxy
