// libFuzzer target: a downstream client's bytes as exbridge's session reads them (proxy/session.cpp,
// serve_one_request): the header block buffered and checked for obsolete line folding, Beast's
// request_parser with the proxy's limits, check_request_header (smuggling and framing rules, field count),
// the forwarding headers, then the body relayed through the serializer -- for every pipelined request.
//
// Beyond "no crash, no UB", two invariants that a request-smuggling bug would break:
//  - what exbridge forwards re-parses, with a fresh strict parser, as exactly the requests it accepted:
//    same count, same method and target, same body bytes, nothing left over, and each one passes
//    check_request_header itself;
//  - which requests are accepted, and their bodies, do not depend on how the bytes were split into reads
//    (16 KiB records vs 7-byte pieces).
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "proxy/http_checks.hpp"
#include "tests/fuzz/fuzz_streams.hpp"

namespace exbridge::fuzz {
namespace {

using proxy::max_header_bytes;

struct forwarded {
  std::string method, target, body;
};

struct outcome {
  std::vector<forwarded> accepted;  ///< requests whose header went upstream and whose body relayed completely
  bool body_failed = false;  ///< the last request's header went upstream, its body failed
  std::string upstream_bytes;       ///< everything written towards the upstream
};

outcome serve(std::string_view data, std::size_t piece) {
  outcome out;
  input_stream down(data, piece);
  beast::flat_buffer down_buf;
  output_stream up;
  const std::string client = "203.0.113.7:50123";
  for (;;) {
    // wait_for_request: some bytes of the next request, or the end of the connection.
    if (down_buf.size() == 0) {
      error_code ec;
      const std::size_t n = down.read_some(down_buf.prepare(16 * 1024), ec);
      down_buf.commit(n);
      if (down_buf.size() == 0) break;
    }
    http::request_parser<http::buffer_body> parser;
    parser.body_limit(boost::none);
    parser.header_limit(max_header_bytes);
    // buffer_header_block
    error_code ec;
    for (;;) {
      const std::string_view buffered(static_cast<const char*>(down_buf.data().data()), down_buf.size());
      if (proxy::header_block_complete(buffered)) break;
      const std::size_t n = down.read_some(down_buf.prepare(16 * 1024), ec);
      if (ec) break;
      down_buf.commit(n);
    }
    const std::string_view buffered(static_cast<const char*>(down_buf.data().data()), down_buf.size());
    const bool folded = !ec && proxy::has_obs_fold(buffered);
    if (folded) break;
    if (!ec) http::read_header(down, down_buf, parser, ec);
    if (ec) break;
    auto& req = parser.get();
    if (proxy::check_request_header(req)) break;
    (void)proxy::auth_scheme_of(req);
    (void)proxy::is_rpc_target(req.target());
    proxy::add_forwarding_headers(req, client, 443);

    http::request_serializer<http::buffer_body> sr{req};
    if (parser.is_done() || down_buf.size() == 0 || proxy::header_goes_first(parser.chunked())) {
      http::write_header(up, sr, ec);
      if (!ec && parser.is_done() && !sr.is_done()) {
        req.body().data = nullptr;
        req.body().more = false;
        http::write(up, sr, ec);
      }
      if (ec) invariant_failed("writing a request header to a string failed:", ec.message());
    }
    forwarded f{std::string(req.method_string()), std::string(req.target()), {}};
    if (!parser.is_done()) {
      ec = relay_body(down, down_buf, parser, sr, up, f.body);
      if (ec) {
        out.body_failed = true;
        break;
      }
    }
    out.accepted.push_back(std::move(f));
    if (!req.keep_alive()) break;
  }
  out.upstream_bytes = std::move(up.bytes);
  return out;
}

/// Re-parses what went upstream as a server would, and checks it is exactly what was accepted.
void check_upstream_view(const outcome& o) {
  std::string_view rest = o.upstream_bytes;
  std::size_t index = 0;
  while (!rest.empty()) {
    http::request_parser<http::dynamic_body> p;
    p.header_limit(4 * max_header_bytes);  // the forwarding headers may take it past the client's limit
    const error_code ec = parse_next(p, rest);
    if (ec || !p.is_done()) {
      // The last request's body may have been cut off by the client going away; anything else is a bug.
      if (o.body_failed && index == o.accepted.size()) return;
      invariant_failed("the upstream cannot parse what exbridge forwarded:", ec.message());
    }
    if (index >= o.accepted.size()) {
      invariant_failed("the upstream sees more requests than exbridge accepted:", std::string(p.get().target()));
    }
    const forwarded& f = o.accepted[index];
    const auto& r = p.get();
    if (r.method_string() != f.method || r.target() != f.target) invariant_failed("forwarded request line differs", f.target);
    if (beast::buffers_to_string(r.body().data()) != f.body) invariant_failed("forwarded body differs from the relayed one", f.target);
    if (auto why = proxy::check_request_header(r)) invariant_failed("forwarded request fails the proxy's own checks:", why->detail);
    if (r["X-Forwarded-Proto"] != "https") invariant_failed("X-Forwarded-Proto missing");
    ++index;
  }
  if (index < o.accepted.size()) invariant_failed("the upstream sees fewer requests than exbridge accepted");
}

}  // namespace
}  // namespace exbridge::fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace exbridge::fuzz;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const outcome whole = serve(input, 16 * 1024);
  check_upstream_view(whole);
  const outcome pieces = serve(input, 7);
  // The bytes themselves may differ: a chunked body is re-chunked as its pieces arrive, and a header whose body
  // then fails goes upstream alone or not at all (it waits for the first body piece when one is buffered).
  // What was accepted, and each body, must not differ.
  bool same = whole.accepted.size() == pieces.accepted.size() && whole.body_failed == pieces.body_failed;
  for (std::size_t i = 0; same && i < whole.accepted.size(); ++i) {
    same = whole.accepted[i].method == pieces.accepted[i].method && whole.accepted[i].target == pieces.accepted[i].target &&
           whole.accepted[i].body == pieces.accepted[i].body;
  }
  if (!same) invariant_failed("the outcome depends on how the request was split into reads");
  return 0;
}
