// Malformed input corpus (issue 8, item 3): raw-byte requests from a client and raw-byte responses from an
// upstream, each with its expected outcome -- the statuses the client gets (or a bare close), the
// termination counter that moved, and for requests how many requests the upstream saw (a smuggled second
// request would be one more). Request smuggling, framing, oversize and TLS-record cases; the tables are
// data, one test per row.
#include <gtest/gtest.h>

#include "tests/support/bridge_fixture.hpp"

namespace exbridge::proxy {
namespace {

using namespace std::chrono_literals;
using namespace std::string_literals;
using test::BridgeTest;
using test::client;

/// What the client made of the bytes it received: the final statuses in order ("200 400"; interim 1xx
/// responses skipped; "" for none) and whether the last response was complete.
struct replies {
  std::string statuses;
  bool last_complete = false;
};

replies parse_replies(std::string_view bytes, bool head) {
  replies out;
  while (!bytes.empty()) {
    http::response_parser<http::string_body> p;
    p.body_limit(boost::none);
    p.header_limit(1 << 20);
    p.skip(head);
    p.eager(true);
    error_code ec;
    while (!p.is_done()) {
      const std::size_t n = p.put(net::buffer(bytes.data(), bytes.size()), ec);
      bytes.remove_prefix(n);
      if (ec == http::error::need_more && n > 0 && !bytes.empty()) continue;
      if (ec == http::error::need_more || (!ec && bytes.empty())) p.put_eof(ec);
      if (ec) break;
    }
    if (!p.is_header_done()) {
      out.last_complete = false;
      if (!out.statuses.empty() || !ec) break;
      out.statuses = "?";  // bytes that are not an HTTP response
      break;
    }
    const unsigned status = p.get().result_int();
    if (status / 100 == 1 && status != 101 && p.is_done()) continue;
    out.statuses += (out.statuses.empty() ? "" : " ") + std::to_string(status);
    out.last_complete = p.is_done() && !ec;
    if (!out.last_complete) break;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Requests: client -> exbridge. The upstream is the fixture's test_upstream (200 with the forwarding headers).

enum class send_as {
  tls,             ///< over TLS, then read until the bridge closes
  tls_then_close,  ///< over TLS, then close the sending side (TCP FIN, no close_notify) and read
  plain_tcp,       ///< raw TCP bytes on the TLS port (no handshake)
};

struct request_case {
  const char* name;
  send_as how;
  std::string bytes;
  const char* statuses;   ///< the final statuses the client gets, in order; "" = connection closed, no answer
  termination end;        ///< the termination counted for the (last) request or connection
  int upstream_requests;  ///< the most request headers the upstream may have read
};

/// gtest prints a row by its name (ctest's test names stay readable and stable).
void PrintTo(const request_case& c, std::ostream* os) { *os << c.name; }

std::string big_header(std::size_t n) { return "X-Big: " + std::string(n, 'a') + "\r\n"; }

std::string many_headers(int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out += "X-H" + std::to_string(i) + ": v\r\n";
  return out;
}

std::vector<request_case> request_cases() {
  const auto bad = termination::bad_request;
  const auto normal = termination::normal;
  const auto tls_failed = termination::downstream_handshake_failed;
  const std::string host = "Host: x\r\n";
  return {
      // Smuggling: two framings, or one the upstream could read differently.
      {"cl_te", send_as::tls, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nX", "400", bad, 0},
      {"te_cl", send_as::tls, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n1\r\nA\r\n0\r\n\r\n", "400", bad, 0},
      {"cl_te_smuggles_get", send_as::tls, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 44\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n", "400", bad, 0},
      {"te_cl_smuggles_get", send_as::tls, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n2c\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n\r\n0\r\n\r\n", "400", bad, 0},
      {"duplicate_cl", send_as::tls, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", "400", bad, 0},
      {"cl_list", send_as::tls, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3, 4\r\n\r\nabcd", "400", bad, 0},
      {"te_obfuscated", send_as::tls, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", "400", bad, 0},
      {"te_chunked_identity", send_as::tls, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n", "400", bad, 0},
      {"te_identity", send_as::tls, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\n\r\nabc", "400", bad, 0},
      {"te_twice", send_as::tls, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "400", bad, 0},
      {"te_space_before_colon", send_as::tls, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n", "400", bad, 0},
      {"te_http10", send_as::tls, "POST / HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "400", bad, 0},
      {"te_vertical_tab", send_as::tls, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\x0b" "chunked\r\n\r\n0\r\n\r\n", "400", bad, 0},
      {"cl_space_before_colon", send_as::tls, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length : 3\r\n\r\nabc", "400", bad, 0},
      {"obs_fold", send_as::tls, "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n", "400", bad, 0},
      {"obs_fold_tab_te", send_as::tls, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\n\tchunked\r\n\r\n0\r\n\r\n", "400", bad, 0},
      {"bare_lf", send_as::tls, "GET / HTTP/1.1\nHost: x\n\n", "400", bad, 0},
      {"bare_lf_in_header", send_as::tls, "GET / HTTP/1.1\r\nHost: x\nX-A: b\r\n\r\n", "400", bad, 0},
      {"bare_cr_in_header", send_as::tls, "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n", "400", bad, 0},
      {"nul_in_header", send_as::tls, "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n\r\n"s, "400", bad, 0},
      {"nul_in_target", send_as::tls, "GET /a\0b HTTP/1.1\r\nHost: x\r\n\r\n"s, "400", bad, 0},
      {"header_name_with_space", send_as::tls, "GET / HTTP/1.1\r\nHost: x\r\nX A: b\r\n\r\n", "400", bad, 0},
      {"header_without_colon", send_as::tls, "GET / HTTP/1.1\r\nHost: x\r\nGarbage\r\n\r\n", "400", bad, 0},
      {"empty_header_name", send_as::tls, "GET / HTTP/1.1\r\nHost: x\r\n: v\r\n\r\n", "400", bad, 0},
      // Content-Length values.
      {"negative_cl", send_as::tls, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", "400", bad, 0},
      {"cl_plus", send_as::tls, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +3\r\n\r\nabc", "400", bad, 0},
      {"cl_hex", send_as::tls, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0x3\r\n\r\nabc", "400", bad, 0},
      {"cl_not_a_number", send_as::tls, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", "400", bad, 0},
      {"cl_trailing_junk", send_as::tls, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3 x\r\n\r\nabc", "400", bad, 0},
      {"cl_overflow", send_as::tls, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\nabc", "400", bad, 0},
      // Chunked bodies: the header went upstream, the body is refused; the upstream never sees a second request.
      {"chunk_size_invalid", send_as::tls, "POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n", "400", bad, 1},
      {"chunk_size_negative", send_as::tls, "POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n-3\r\nabc\r\n0\r\n\r\n", "400", bad, 1},
      {"chunk_size_overflow", send_as::tls, "POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffffff\r\nabc\r\n0\r\n\r\n", "400", bad, 1},
      {"chunk_data_longer_than_size", send_as::tls, "POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcdef\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n", "400", bad, 1},
      {"missing_last_chunk_then_close", send_as::tls_then_close, "POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n", "", termination::client_closed_body, 1},
      {"short_body_then_close", send_as::tls_then_close, "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc", "", termination::client_closed_body, 1},
      // Size limits (64 KiB of headers, 100 fields).
      {"oversize_headers", send_as::tls, "GET / HTTP/1.1\r\nHost: x\r\n" + big_header(70 * 1024) + "\r\n", "431", bad, 0},
      {"oversize_target", send_as::tls, "GET /" + std::string(70 * 1024, 'a') + " HTTP/1.1\r\nHost: x\r\n\r\n", "431", bad, 0},
      {"too_many_headers", send_as::tls, "GET / HTTP/1.1\r\nHost: x\r\n" + many_headers(1000) + "\r\n", "431", bad, 0},
      {"headers_just_under_limits", send_as::tls, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + many_headers(90) + big_header(4 * 1024) + "\r\n", "200", normal, 1},
      // Request line.
      {"bad_method_token", send_as::tls, "G(T / HTTP/1.1\r\nHost: x\r\n\r\n", "400", bad, 0},
      {"control_char_in_method", send_as::tls, "GE\x01T / HTTP/1.1\r\nHost: x\r\n\r\n", "400", bad, 0},
      {"version_junk", send_as::tls, "GET / HTTP/1.x\r\nHost: x\r\n\r\n", "400", bad, 0},
      {"version_2_0", send_as::tls, "GET / HTTP/2.0\r\nHost: x\r\n\r\n", "400", bad, 0},
      {"version_0_9_line", send_as::tls, "GET /\r\n\r\n", "400", bad, 0},
      {"lowercase_http", send_as::tls, "GET / http/1.1\r\nHost: x\r\n\r\n", "400", bad, 0},
      {"double_space_in_request_line", send_as::tls, "GET  / HTTP/1.1\r\nHost: x\r\n\r\n", "400", bad, 0},
      {"trailing_space_in_request_line", send_as::tls, "GET / HTTP/1.1 \r\nHost: x\r\n\r\n", "400", bad, 0},
      {"tab_in_request_line", send_as::tls, "GET\t/ HTTP/1.1\r\nHost: x\r\n\r\n", "400", bad, 0},
      {"space_in_target", send_as::tls, "GET /a b HTTP/1.1\r\nHost: x\r\n\r\n", "400", bad, 0},
      {"duplicate_host", send_as::tls, "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "400", bad, 0},
      // Accepted as valid HTTP/1.1, forwarded once.
      {"absolute_form_target", send_as::tls, "GET http://mail.contoso.example/owa HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", "200", normal, 1},
      {"cl_leading_zeros", send_as::tls, "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 003\r\nConnection: close\r\n\r\nabc", "200", normal, 1},
      {"te_uppercase_chunked", send_as::tls, "POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: CHUNKED\r\nConnection: close\r\n\r\n0\r\n\r\n", "200", normal, 1},
      {"expect_continue_on_get", send_as::tls, "GET / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n", "200", normal, 1},
      {"expect_continue_body_at_once", send_as::tls, "POST /continue HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc", "200", normal, 1},
      {"expect_unknown", send_as::tls, "GET / HTTP/1.1\r\nHost: x\r\nExpect: something-else\r\nConnection: close\r\n\r\n", "200", normal, 1},
      {"chunked_body_holding_a_request", send_as::tls, "POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n23\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n\r\n0\r\n\r\n", "200", normal, 1},
      // Pipelining: a valid request is served, a malformed one after it is refused and ends the connection.
      {"pipelined_valid_pair", send_as::tls, "GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", "200 200", normal, 2},
      {"pipelined_valid_then_cl_te", send_as::tls, "GET / HTTP/1.1\r\nHost: x\r\n\r\nPOST / HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n", "200 400", bad, 1},
      {"pipelined_after_refusal", send_as::tls, "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n", "400", bad, 0},
      // Not TLS, or broken TLS, on the TLS port.
      {"plaintext_http_on_tls_port", send_as::plain_tcp, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", "", tls_failed, 0},
      {"tls_record_bad_version", send_as::plain_tcp, "\x16\x09\x09\x00\x05hello"s, "", tls_failed, 0},
      {"tls_record_oversize_length", send_as::plain_tcp, "\x16\x03\x01\xff\xff"s + std::string(64, 'A'), "", tls_failed, 0},
      {"tls_application_data_first", send_as::plain_tcp, "\x17\x03\x03\x00\x05hello"s, "", tls_failed, 0},
      {"tls_alert_first", send_as::plain_tcp, "\x15\x03\x03\x00\x02\x02\x28"s, "", tls_failed, 0},
      {"sslv2_client_hello", send_as::plain_tcp, "\x80\x2e\x01\x00\x02\x00\x15\x00\x00\x00\x10\x07\x00\xc0\x05\x00\x80\x03\x00\x80\x01\x00\x80\x08\x00\x80\x06\x00\x40\x04\x00\x80\x02\x00\x80\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f"s, "", tls_failed, 0},
      {"truncated_client_hello", send_as::plain_tcp, "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"s, "", termination::downstream_handshake_timeout, 0},
      {"connect_and_close", send_as::plain_tcp, "", "", tls_failed, 0},
  };
}

class RequestCorpus : public BridgeTest, public ::testing::WithParamInterface<request_case> {
 protected:
  /// Sends the case's bytes as it says and returns everything the bridge sent back until it closed.
  std::string exchange(const request_case& c) {
    return io_.run([&]() -> net::awaitable<std::string> {
      if (c.how == send_as::plain_tcp) {
        tcp::socket s(io_.context());
        co_await s.async_connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port()), use_tuple);
        if (c.bytes.empty()) co_return std::string();  // the socket closes here
        co_await net::async_write(s, net::buffer(c.bytes), use_tuple);
        std::string out;
        co_await net::async_read(s, net::dynamic_buffer(out), use_tuple);
        co_return out;
      }
      client tls(io_.context());
      if (auto ec = co_await tls.connect(port())) co_return "connect failed: " + ec.message();
      if (c.how == send_as::tls) co_return co_await tls.raw(c.bytes);
      co_await tls.send(c.bytes);
      tls.close_sending();
      co_return co_await tls.read_until_close();
    }());
  }
};

TEST_P(RequestCorpus, HasItsExpectedOutcome) {
  const request_case& c = GetParam();
  bridge_options o = options_for_upstream();
  // Short enough that a wrongly kept-open connection ends the test run quickly, and shows as a timeout.
  o.timeouts.keep_alive_idle = 2s;
  o.timeouts.request_headers = 5s;
  o.timeouts.downstream_handshake = 500ms;  // a ClientHello that never ends
  start_bridge(o);
  const std::string reply = exchange(c);
  // On the TLS port without TLS, what comes back (if anything) is a TLS alert record, not an HTTP answer.
  const bool http_answer = c.how != send_as::plain_tcp || reply.rfind("HTTP/", 0) == 0;
  const replies got = http_answer ? parse_replies(reply, false) : replies{};
  if (!http_answer) {
    EXPECT_TRUE(reply.empty() || reply[0] == '\x15') << c.name << ": not a TLS alert: " << reply.substr(0, 100);
  }
  EXPECT_EQ(got.statuses, c.statuses) << c.name << ": " << reply.substr(0, 600);
  if (!got.statuses.empty()) {
    EXPECT_TRUE(got.last_complete) << c.name << ": " << reply.substr(0, 600);
  }
  EXPECT_EQ(reply.find("/smuggled"), std::string::npos) << c.name;
  EXPECT_TRUE(wait_for_end(c.end)) << c.name << ": no " << info(c.end).reason;
  if (!is_timeout(c.end)) {
    EXPECT_EQ(stat(counter::timeouts_total), 0) << c.name << ": a timeout ended it, not the bridge's decision";
  }
  EXPECT_LE(upstream_.requests(), c.upstream_requests) << c.name << ": a smuggled request reached the upstream";
  if (c.end == termination::normal) {
    EXPECT_EQ(upstream_.requests(), c.upstream_requests) << c.name;
  }
  if (c.end == termination::bad_request) {
    EXPECT_GE(stat(counter::downstream_rq_rejected), 1) << c.name;
  }
}

INSTANTIATE_TEST_SUITE_P(Cases, RequestCorpus, ::testing::ValuesIn(request_cases()),
                         [](const auto& test_info) { return std::string(test_info.param.name); });

// ---------------------------------------------------------------------------------------------------------
// Responses: a raw TLS 1.0 upstream -> exbridge -> client.

enum class then {
  keep,   ///< keep serving: each request on the connection gets the same bytes
  close,  ///< close_notify and FIN after the bytes (as IIS closes)
  hold,   ///< say nothing more, keep the connection open until the bridge closes it
};

struct response_case {
  const char* name;
  std::string bytes;      ///< what the upstream sends after reading a request's headers
  then after;
  const char* statuses;   ///< final statuses the client gets ("" = none, the connection just closes)
  bool complete;          ///< the (last) response the client gets is complete
  termination end;        ///< the termination counted for the request
  bool kept_alive;        ///< the bridge keeps the client connection open after it (ends by keep-alive timeout)
  bool head = false;      ///< the client asks with HEAD
};

void PrintTo(const response_case& c, std::ostream* os) { *os << c.name; }

std::vector<response_case> response_cases() {
  const auto bad = termination::upstream_bad_response;
  const auto normal = termination::normal;
  const auto cut = termination::upstream_closed_body;
  std::string flood;
  for (int i = 0; i < 200; ++i) flood += "HTTP/1.1 100 Continue\r\n\r\n";
  return {
      {"control_content_length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", then::keep, "200", true, normal, true},
      {"control_chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", then::keep, "200", true, normal, true},
      {"duplicate_cl_different", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", then::keep, "502", true, bad, false},
      {"cl_list_different", "HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\nhello!", then::keep, "502", true, bad, false},
      {"cl_and_te", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", then::keep, "502", true, bad, false},
      {"te_and_cl", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n5\r\nhello\r\n0\r\n\r\n", then::keep, "502", true, bad, false},
      {"negative_cl", "HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\nhello", then::keep, "502", true, bad, false},
      {"cl_overflow", "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\nhello", then::keep, "502", true, bad, false},
      {"cl_space_before_colon", "HTTP/1.1 200 OK\r\nContent-Length : 5\r\n\r\nhello", then::keep, "502", true, bad, false},
      {"nul_in_header", "HTTP/1.1 200 OK\r\nX-A: a\0b\r\nContent-Length: 5\r\n\r\nhello"s, then::keep, "502", true, bad, false},
      {"cr_in_header", "HTTP/1.1 200 OK\r\nX-A: a\rb\r\nContent-Length: 5\r\n\r\nhello", then::keep, "502", true, bad, false},
      {"bad_status_code", "HTTP/1.1 2x0 OK\r\nContent-Length: 5\r\n\r\nhello", then::keep, "502", true, bad, false},
      {"not_http", "SSH-2.0-OpenSSH_9.2\r\n\r\n", then::keep, "502", true, bad, false},
      {"http09_body_only", "hello, no status line\r\n\r\n", then::close, "502", true, bad, false},
      {"close_without_answer", "", then::close, "502", true, termination::upstream_closed_before_response, false},
      {"oversize_headers", "HTTP/1.1 200 OK\r\n" + big_header(70 * 1024) + "Content-Length: 5\r\n\r\nhello", then::keep, "502", true, bad, false},
      {"te_not_chunked_until_close", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nhello", then::close, "200", true, normal, false},
      {"no_length_until_close", "HTTP/1.1 200 OK\r\n\r\nhello", then::close, "200", true, normal, false},
      {"http10_no_length_until_close", "HTTP/1.0 200 OK\r\n\r\nhello", then::close, "200", true, normal, false},
      {"body_shorter_than_cl_then_close", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello", then::close, "200", false, cut, false},
      {"body_longer_than_cl_smuggles_response", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloHTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nsmuggled", then::keep, "200", true, normal, true},
      // A chunked response's header goes out before its body is parsed (so that no trailer field can join it):
      // a body that breaks at once leaves the client with the header and a cut, never a complete response.
      {"chunk_size_invalid", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", then::keep, "200", false, bad, false},
      {"chunk_size_overflow", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffffff\r\nhello\r\n0\r\n\r\n", then::keep, "200", false, bad, false},
      {"chunk_size_invalid_after_a_chunk", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n", then::keep, "200", false, bad, false},
      {"truncated_mid_chunk", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\na\r\nhello", then::close, "200", false, cut, false},
      {"missing_last_chunk_then_close", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n", then::close, "200", false, cut, false},
      {"interim_flood_then_200", flood + "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", then::keep, "200", true, normal, true},
      {"continue_then_101", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", then::hold, "502", true, bad, false},
      {"interim_with_body", "HTTP/1.1 100 Continue\r\nContent-Length: 5\r\n\r\nhelloHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", then::keep, "502", true, bad, false},
      {"head_response_with_body", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", then::keep, "200", true, normal, true, true},
      {"status_204_with_body", "HTTP/1.1 204 No Content\r\n\r\nhello", then::keep, "204", true, normal, true},
      // Found by fuzz_http_response: a bodiless response that says chunked must reach the client without the
      // "0\r\n\r\n" a serializer adds, which the client would read as the start of the next response.
      {"head_response_chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", then::keep, "200", true, normal, true, true},
      {"status_204_chunked", "HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n", then::keep, "204", true, normal, true},
      // Found by fuzz_http_response: Beast joins Transfer-Encoding lines, its serializer reads only the first.
      {"te_twice_gzip_chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", then::keep, "502", true, bad, false},
      // Found by fuzz_http_request: trailer fields must not join a header still waiting for its first body piece.
      // Beast refuses a Content-Length among the trailer fields: the response is cut there, as malformed.
      {"chunked_trailer_content_length", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nContent-Length: 5\r\n\r\n", then::keep, "200", false, bad, false},
      {"status_304_chunked", "HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n", then::keep, "304", true, normal, true},
      // Beast unfolds it ("a b"): the client gets one clean header line.
      {"obs_fold_header", "HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 5\r\n\r\nhello", then::keep, "200", true, normal, true},
      {"bare_lf_headers", "HTTP/1.1 200 OK\nContent-Length: 5\n\nhello", then::keep, "502", true, bad, false},
  };
}

/// A TLS 1.0 server that answers every request with the same raw bytes and counts what it read.
class raw_upstream {
 public:
  raw_upstream(net::io_context& ioc, const response_case& c)
      : case_(c), listener_(ioc, [this](test::tls_stream s) { return serve(std::move(s)); }) {}
  unsigned short port() const { return listener_.port(); }
  int connections() const { return listener_.connections(); }

 private:
  net::awaitable<void> serve(test::tls_stream stream) {
    if (auto [ec] = co_await stream.async_handshake(ssl::stream_base::server, use_tuple); ec) co_return;
    std::string in;
    for (;;) {
      auto [ec, n] = co_await net::async_read_until(stream, net::dynamic_buffer(in), "\r\n\r\n", use_tuple);
      if (ec) co_return;
      in.erase(0, n);
      if (!case_.bytes.empty()) co_await net::async_write(stream, net::buffer(case_.bytes), use_tuple);
      if (case_.after == then::keep) continue;
      if (case_.after == then::close) {
        co_await stream.async_shutdown(use_tuple);  // close_notify, then (the socket closing) FIN
        co_return;
      }
      std::string rest;
      co_await net::async_read(stream, net::dynamic_buffer(rest), use_tuple);  // until the bridge closes
      co_return;
    }
  }

  const response_case& case_;
  proxy::test::tls10_listener listener_;
};

class ResponseCorpus : public BridgeTest, public ::testing::WithParamInterface<response_case> {
 protected:
  std::optional<raw_upstream> raw_;  // a member: TearDown stops the loop before it goes away
};

TEST_P(ResponseCorpus, HasItsExpectedOutcome) {
  const response_case& c = GetParam();
  auto& upstream = raw_.emplace(io_.context(), c);
  bridge_options o = options_for_upstream();
  o.upstream.address.port = upstream.port();
  o.timeouts.keep_alive_idle = 200ms;  // a kept-alive client connection ends quickly, counted as such
  o.timeouts.response_headers = 5s;
  o.timeouts.upstream_data = 5s;
  start_bridge(o);
  const std::string request = std::string(c.head ? "HEAD" : "GET") + " / HTTP/1.1\r\nHost: x\r\n\r\n";
  const std::string reply = io_.run([&]() -> net::awaitable<std::string> {
    client tls(io_.context());
    if (auto ec = co_await tls.connect(port())) co_return "connect failed: " + ec.message();
    co_return co_await tls.raw(request);
  }());
  const replies got = parse_replies(reply, c.head);
  EXPECT_EQ(got.statuses, c.statuses) << c.name << ": " << reply.substr(0, 600);
  EXPECT_EQ(got.last_complete, c.complete) << c.name << ": " << reply.substr(0, 600);
  EXPECT_EQ(reply.find("smuggled"), std::string::npos) << c.name << ": bytes beyond the response reached the client";
  if (c.head) {
    EXPECT_EQ(reply.find("hello"), std::string::npos) << c.name << ": a body after a HEAD response reached the client";
  }
  EXPECT_TRUE(wait_for_end(c.end)) << c.name << ": no " << info(c.end).reason;
  EXPECT_EQ(ended(termination::keep_alive_timeout), c.kept_alive ? 1 : 0)
      << c.name << (c.kept_alive ? ": the bridge did not keep the client connection"
                                 : ": the bridge kept a client connection whose response ended at the upstream's close");
  EXPECT_EQ(stat(counter::timeouts_total), c.kept_alive ? 1 : 0) << c.name;
  EXPECT_EQ(upstream.connections(), 1) << c.name;
}

INSTANTIATE_TEST_SUITE_P(Cases, ResponseCorpus, ::testing::ValuesIn(response_cases()),
                         [](const auto& test_info) { return std::string(test_info.param.name); });

}  // namespace
}  // namespace exbridge::proxy
