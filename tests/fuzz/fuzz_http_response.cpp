// libFuzzer target: an upstream's bytes as exbridge's session reads them (proxy/session/exchange.hpp,
// relay_response), on in-memory streams: Beast's response_parser with the proxy's limits, interim 1xx
// responses passed on, check_response_header (101 refused), the configured response headers and the
// NTLM/Negotiate pinning check on the final response, then its body relayed by the session's relay_body
// (proxy/session/relay.hpp). Run once as the answer to a GET and once to a HEAD (no body), and for the GET
// once in 16 KiB reads and once in 7-byte pieces.
//
// Invariants beyond "no crash, no UB": what reaches the client re-parses as the same responses (statuses,
// body bytes, nothing left over) and carries the configured headers; what is relayed (statuses, body bytes,
// the pinning decision) does not depend on how the bytes were split into reads.
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "proxy/session/http_checks.hpp"
#include "proxy/session/relay.hpp"
#include "tests/fuzz/fuzz_streams.hpp"

namespace exbridge::fuzz {
namespace {

using proxy::max_header_bytes;

const std::vector<std::pair<std::string, std::string>> configured{{"X-Frame-Options", "SAMEORIGIN"},
                                                                  {"Strict-Transport-Security", "max-age=63072000"}};

struct outcome {
  std::vector<unsigned> statuses;  ///< every response passed on (interim ones included)
  bool completed = false;          ///< the final response was relayed whole
  bool pinned = false;
  std::uint64_t body_bytes = 0;    ///< the final response's body bytes, as the relay counted them
  std::string body;                ///< the final response's body, as the client re-parses it
  std::string client_bytes;
};

// The session's response half (exchange::relay_response), minus its timers.
net::awaitable<void> relay_all(test::memory_stream& up, test::memory_stream& down, bool head, outcome& out) {
  beast::flat_buffer up_buf;
  for (;;) {
    http::response_parser<http::buffer_body> parser;
    parser.body_limit(boost::none);
    parser.header_limit(max_header_bytes);
    parser.skip(head);
    auto [ec, n] = co_await http::async_read_header(up, up_buf, parser, use_tuple);
    if (ec) co_return;
    auto& res = parser.get();
    if (proxy::check_response_header(res)) co_return;
    const bool interim = proxy::is_interim(res);
    if (!interim) {
      proxy::apply_response_headers(res, configured);
      out.pinned = proxy::offers_connection_auth(res);
    }
    http::response_serializer<http::buffer_body> sr{res};
    if (interim || parser.is_done() || up_buf.size() == 0 || proxy::header_goes_first(parser.chunked())) {
      auto [wec, wn] = co_await http::async_write_header(down, sr, use_tuple);
      if (wec) invariant_failed("writing a response header to memory failed:", wec.message());
    }
    out.statuses.push_back(res.result_int());
    if (interim) continue;
    if (proxy::response_has_no_body(res, head)) {  // as the session: the header is the whole response
      out.completed = true;
      co_return;
    }
    const bool never = false;
    const proxy::relay_outcome r = co_await proxy::relay_body(up, up_buf, parser, sr, down, {}, {}, never, {});
    out.completed = !r.ec;
    out.body_bytes = r.body_bytes;
    (void)proxy::is_malformed(r.ec);
    co_return;
  }
}

outcome relay(std::string_view data, std::size_t piece, bool head) {
  outcome out;
  fuzz_streams streams(data, piece);
  run_to_end(relay_all(streams.source, streams.destination, head, out));
  out.client_bytes = streams.written();
  return out;
}

/// Re-parses what the client received, as the client would.
void check_client_view(outcome& o, bool head) {
  if (!o.completed) return;
  std::string_view rest = o.client_bytes;
  for (std::size_t i = 0; i < o.statuses.size(); ++i) {
    const bool last = i + 1 == o.statuses.size();
    http::response_parser<http::dynamic_body> p;
    p.header_limit(4 * max_header_bytes);
    p.skip(head && last);
    const error_code ec = parse_next(p, rest);
    if (ec || !p.is_done()) invariant_failed("the client cannot parse what exbridge relayed:", ec.message());
    const auto& r = p.get();
    if (r.result_int() != o.statuses[i]) invariant_failed("relayed status differs");
    if (last) {
      o.body = beast::buffers_to_string(r.body().data());
      if (o.body.size() != o.body_bytes) invariant_failed("relayed body differs in size from what the relay counted");
      for (const auto& [name, value] : configured) {
        if (r[name] != value) invariant_failed("configured response header missing:", name);
      }
      if (proxy::offers_connection_auth(r) != o.pinned) invariant_failed("pinning decision differs on the client's side");
    }
  }
  if (!rest.empty()) invariant_failed("bytes left over after the relayed responses");
}

}  // namespace
}  // namespace exbridge::fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace exbridge::fuzz;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  outcome whole = relay(input, 16 * 1024, false);
  check_client_view(whole, false);
  outcome pieces = relay(input, 7, false);
  check_client_view(pieces, false);
  // The bytes may differ (a chunked body is re-chunked as its pieces arrive); what was relayed may not.
  if (whole.statuses != pieces.statuses || whole.completed != pieces.completed || whole.body != pieces.body ||
      whole.body_bytes != pieces.body_bytes || whole.pinned != pieces.pinned) {
    invariant_failed("the outcome depends on how the response was split into reads");
  }
  outcome head = relay(input, 16 * 1024, true);
  check_client_view(head, true);
  return 0;
}
