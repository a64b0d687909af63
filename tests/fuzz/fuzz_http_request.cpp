// libFuzzer target: a downstream client's bytes as exbridge's session reads them, through the session's own
// code on in-memory streams: read_request_head (the header block buffered and checked for obsolete line
// folding, Beast's request_parser with the proxy's limits), check_request_header (smuggling and framing
// rules, field count), the forwarding headers, then relay_body (proxy/session/relay.hpp) through the
// serializer -- for every pipelined request.
//
// Beyond "no crash, no UB", two invariants that a request-smuggling bug would break:
//  - what exbridge forwards re-parses, with a fresh strict parser, as exactly the requests it accepted:
//    same count, same method and target, as many body bytes as the relay counted, nothing left over, and
//    each one passes check_request_header itself;
//  - which requests are accepted, and their bodies, do not depend on how the bytes were split into reads
//    (16 KiB records vs 7-byte pieces).
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "proxy/session/http_checks.hpp"
#include "proxy/session/relay.hpp"
#include "proxy/session/request_head.hpp"
#include "tests/fuzz/fuzz_streams.hpp"

namespace exbridge::fuzz {
namespace {

using proxy::max_header_bytes;

struct forwarded {
  std::string method, target;
  std::uint64_t body_bytes = 0;  ///< as the relay counted them
  std::string body;              ///< as the upstream re-parses them (check_upstream_view fills it)
};

struct outcome {
  std::vector<forwarded> accepted;  ///< requests whose header went upstream and whose body relayed completely
  bool body_failed = false;  ///< the last request's header went upstream, its body failed
  std::string upstream_bytes;       ///< everything written towards the upstream
};

// The session's request loop (proxy/session/session.hpp, serve_one_request and exchange::run), minus the
// upstream's answers: what it reads, checks and forwards.
net::awaitable<void> serve_all(test::memory_stream& down, test::memory_stream& up, outcome& out) {
  beast::flat_buffer down_buf;
  const std::string client = "203.0.113.7:50123";
  for (;;) {
    if (down_buf.size() == 0) {  // wait_for_request: some bytes of the next request, or the end of the connection
      auto [ec, n] = co_await down.async_read_some(down_buf.prepare(proxy::idle_read_size), use_tuple);
      down_buf.commit(n);
      if (down_buf.size() == 0) break;
    }
    http::request_parser<http::buffer_body> parser;
    proxy::limit_request_parser(parser);
    const proxy::head_read head = co_await proxy::read_request_head(down, down_buf, parser, proxy::request_read_size);
    if (head.folded || head.ec) break;
    auto& req = parser.get();
    if (proxy::check_request_header(req)) break;
    (void)proxy::auth_scheme_of(req);
    (void)proxy::is_rpc_target(req.target());
    proxy::add_forwarding_headers(req, client, 443);

    http::request_serializer<http::buffer_body> sr{req};
    if (parser.is_done() || down_buf.size() == 0 || proxy::header_goes_first(parser.chunked())) {
      auto [ec, n] = co_await http::async_write_header(up, sr, use_tuple);
      if (!ec && parser.is_done() && !sr.is_done()) {
        req.body().data = nullptr;
        req.body().more = false;
        std::tie(ec, n) = co_await http::async_write(up, sr, use_tuple);
      }
      if (ec) invariant_failed("writing a request header to memory failed:", ec.message());
    }
    forwarded f{std::string(req.method_string()), std::string(req.target())};
    if (!parser.is_done()) {
      const bool never = false;
      const proxy::relay_outcome r = co_await proxy::relay_body(down, down_buf, parser, sr, up, {}, {}, never, {});
      if (r.ec) {
        out.body_failed = true;
        break;
      }
      f.body_bytes = r.body_bytes;
    }
    out.accepted.push_back(std::move(f));
    if (!req.keep_alive()) break;
  }
}

outcome serve(std::string_view data, std::size_t piece) {
  outcome out;
  fuzz_streams streams(data, piece);
  run_to_end(serve_all(streams.source, streams.destination, out));
  out.upstream_bytes = streams.written();
  return out;
}

/// Re-parses what went upstream as a server would, and checks it is exactly what was accepted.
void check_upstream_view(outcome& o) {
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
    forwarded& f = o.accepted[index];
    const auto& r = p.get();
    if (r.method_string() != f.method || r.target() != f.target) invariant_failed("forwarded request line differs", f.target);
    f.body = beast::buffers_to_string(r.body().data());
    if (f.body.size() != f.body_bytes) invariant_failed("forwarded body differs in size from the relayed one", f.target);
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
  outcome whole = serve(input, 16 * 1024);
  check_upstream_view(whole);
  outcome pieces = serve(input, 7);
  check_upstream_view(pieces);
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
