// Synchronous stand-ins for the proxy's sockets, so that the fuzz targets drive Beast's parsers and
// serializers through the same read_header / read_some / write calls the session makes, without I/O:
// input_stream hands out the fuzz input in pieces of a chosen size (how TCP and TLS records may split it),
// output_stream collects what would have been sent.
#pragma once

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "common/net.hpp"

namespace exbridge::fuzz {

class input_stream {
 public:
  input_stream(std::string_view data, std::size_t piece) : data_(data), piece_(piece) {}

  template <class MutableBufferSequence>
  std::size_t read_some(const MutableBufferSequence& buffers, error_code& ec) {
    if (data_.empty()) {
      ec = net::error::eof;
      return 0;
    }
    ec = {};
    const std::size_t n = net::buffer_copy(buffers, net::buffer(data_.data(), std::min(piece_, data_.size())));
    data_.remove_prefix(n);
    return n;
  }
  template <class MutableBufferSequence>
  std::size_t read_some(const MutableBufferSequence& buffers) {
    error_code ec;
    const std::size_t n = read_some(buffers, ec);
    if (ec) throw boost::system::system_error(ec);
    return n;
  }

 private:
  std::string_view data_;
  std::size_t piece_;
};

class output_stream {
 public:
  template <class ConstBufferSequence>
  std::size_t write_some(const ConstBufferSequence& buffers, error_code& ec) {
    ec = {};
    std::size_t n = 0;
    for (auto it = net::buffer_sequence_begin(buffers); it != net::buffer_sequence_end(buffers); ++it) {
      const net::const_buffer b = *it;
      bytes.append(static_cast<const char*>(b.data()), b.size());
      n += b.size();
    }
    return n;
  }
  template <class ConstBufferSequence>
  std::size_t write_some(const ConstBufferSequence& buffers) {
    error_code ec;
    return write_some(buffers, ec);
  }
  std::string bytes;
};

/// The session's body relay (session.cpp, relay_body) without its timers: a fixed buffer of the declared
/// size (at most 64 KiB), read_some into it, write each piece through the serializer. `body` collects the
/// body bytes relayed. Returns the first error, as the session's relay_outcome would carry it.
template <bool is_request>
error_code relay_body(input_stream& in, beast::flat_buffer& in_buffer, http::parser<is_request, http::buffer_body>& parser,
                      http::serializer<is_request, http::buffer_body>& sr, output_stream& out, std::string& relayed) {
  constexpr std::size_t chunk_size = 64 * 1024;
  const auto declared = parser.content_length_remaining();
  const std::size_t size =
      declared ? static_cast<std::size_t>(std::clamp<std::uint64_t>(*declared, 1, chunk_size)) : chunk_size;
  const std::unique_ptr<char[]> chunk(new char[size]);
  in_buffer.reserve(size);
  auto& body = parser.get().body();
  do {
    const bool final_write = parser.is_done();
    if (!final_write) {
      body.data = chunk.get();
      body.size = size;
      error_code ec;
      http::read_some(in, in_buffer, parser, ec);
      if (ec == http::error::need_buffer) ec = {};
      if (ec) return ec;
      body.size = size - body.size;
      if (body.size == 0) {
        if (!parser.is_done()) continue;
        body.data = nullptr;
        body.more = false;
      } else {
        body.data = chunk.get();
        body.more = !parser.is_done();
        relayed.append(chunk.get(), body.size);
      }
    } else {
      body.data = nullptr;
      body.size = 0;
      body.more = false;
    }
    error_code ec;
    http::write(out, sr, ec);
    if (ec == http::error::need_buffer) ec = {};
    if (ec) return ec;
    if (final_write && !sr.is_done()) return http::error::partial_message;
  } while (!parser.is_done() || !sr.is_done());
  return {};
}

/// Parses the next message from `rest` into `p` (set up by the caller) as the receiving side would, eating
/// what it used; an end of input ends a message that runs until close. Returns the error, if any.
/// `p` should have a dynamic_body: string_body reserves a declared Content-Length (up to 2^63) up front.
template <class Parser>
error_code parse_next(Parser& p, std::string_view& rest) {
  p.body_limit(boost::none);
  p.eager(true);
  error_code ec;
  while (!p.is_done()) {
    const std::size_t n = p.put(net::buffer(rest.data(), rest.size()), ec);
    rest.remove_prefix(n);
    if (ec == http::error::need_more && n > 0 && !rest.empty()) continue;
    if (ec == http::error::need_more || (!ec && rest.empty() && !p.is_done())) p.put_eof(ec);
    if (ec) break;
  }
  if (!ec && !p.is_done()) ec = http::error::partial_message;
  return ec;
}

/// A broken invariant: print it and abort, so that libFuzzer keeps the input as a crash reproducer.
[[noreturn]] inline void invariant_failed(const char* what, std::string_view detail = {}) {
  std::fprintf(stderr, "fuzz invariant broken: %s %.*s\n", what, static_cast<int>(std::min<std::size_t>(detail.size(), 400)),
               detail.data());
  std::abort();
}

}  // namespace exbridge::fuzz
