// The termination classifier as a table: outcome values in, {termination, status, detail} out, one row per
// way a request or connection ends. The table must reach every termination code exbridge has.
#include "proxy/session/classify.hpp"

#include <gtest/gtest.h>

#include <set>

namespace exbridge::proxy {
namespace {

using phase = exchange_outcome::phase;
using std::chrono::minutes;
using std::chrono::seconds;

const struct timeouts& test_timeouts() {
  static const struct timeouts t = [] {
    struct timeouts x;
    x.response_headers = minutes(15);
    x.client_data = minutes(20);
    x.upstream_data = minutes(21);
    x.rpc_idle = minutes(60);
    x.min_throughput = 1000;
    x.throughput_window = minutes(1);
    return x;
  }();
  return t;
}

/// An exchange outcome with the test timeouts, shaped by `shape`.
exchange_outcome outcome_of(std::function<void(exchange_outcome&)> shape) {
  exchange_outcome o;
  o.timeouts = &test_timeouts();
  shape(o);
  return o;
}

relay_outcome failed_relay(error_code ec, bool reading) {
  relay_outcome r;
  r.ec = ec;
  r.failed_reading = reading;
  return r;
}

relay_outcome too_slow(bool blame_reader) {
  relay_outcome r;
  r.ec = net::error::timed_out;
  r.too_slow = true;
  r.blame_reader = blame_reader;
  return r;
}

connect_result connect_failure(connect_result::stage at, bool timed_out) {
  connect_result r;
  r.failed_at = at;
  r.timed_out = timed_out;
  r.message = "upstream ex1:443: what failed";
  r.fix = "the fix";
  return r;
}

struct row {
  const char* name;
  outcome in;
  termination why;
  unsigned status;
  const char* detail_has;  ///< a piece the detail must contain ("" = anything)
};

const error_code reset = net::error::connection_reset;
const error_code malformed = http::error::bad_chunk;

std::vector<row> table() {
  return {
      {"a completed exchange", outcome_of([](auto& o) { o.request_sent = true; }), termination::normal, 0, ""},
      {"an answer before the whole body", outcome_of([](auto&) {}), termination::normal, 0, "before the request body ended"},
      {"handshake refused", handshake_outcome{false, "TLS protocol version refused"},
       termination::downstream_handshake_failed, 0, "protocol version"},
      {"handshake too slow", handshake_outcome{true, "no answer"}, termination::downstream_handshake_timeout, 0, ""},
      {"no first request", idle_outcome{true, seconds(90)}, termination::client_idle_timeout, 0, "90 s"},
      {"no next request", idle_outcome{false, seconds(60)}, termination::keep_alive_timeout, 0, ""},
      {"client gone during headers", head_outcome{.ec = net::error::eof}, termination::client_closed_request, 0, ""},
      {"folded header", head_outcome{.folded = true}, termination::bad_request, 400, "folding"},
      {"unparsable header", head_outcome{.ec = http::error::bad_field}, termination::bad_request, 400, ""},
      {"header too large", head_outcome{.ec = http::error::header_limit}, termination::bad_request, 431, ""},
      {"framing refused",
       head_outcome{.rejected = request_rejection{http::status::bad_request, "more than one Host header"}},
       termination::bad_request, 400, "Host"},
      {"headers too slow", head_outcome{.ec = net::error::operation_aborted, .timed_out = true, .limit = seconds(90)},
       termination::request_headers_timeout, 408, "90 s"},
      {"every server down", no_server{.queue_timeout = false, .detail = "all 2 are down"},
       termination::upstream_unavailable, 503, "down"},
      {"every server full", no_server{.queue_timeout = true, .detail = "queue"}, termination::upstream_queue_timeout,
       503, ""},
      {"name not resolved", connect_failure(connect_result::resolve, false), termination::upstream_resolve_failed, 503,
       "the fix"},
      {"connection refused", connect_failure(connect_result::connect, false), termination::upstream_connect_failed, 503,
       ""},
      {"connect too slow", connect_failure(connect_result::connect, true), termination::upstream_connect_timeout, 504, ""},
      {"resolve too slow", connect_failure(connect_result::resolve, true), termination::upstream_connect_timeout, 504, ""},
      {"TLS refused", connect_failure(connect_result::handshake, false), termination::upstream_tls_failed, 502, ""},
      {"TLS too slow", connect_failure(connect_result::handshake, true), termination::upstream_handshake_timeout, 504,
       ""},
      {"request header not taken", outcome_of([](auto& o) {
         o.at = phase::request_header;
         o.ec = net::error::broken_pipe;
       }),
       termination::upstream_write_failed, 502, ""},
      {"upload: client gone", outcome_of([](auto& o) {
         o.at = phase::response_headers;
         o.upload = failed_relay(reset, true);
       }),
       termination::client_closed_body, 0, ""},
      {"upload: malformed chunk", outcome_of([](auto& o) {
         o.at = phase::response_headers;
         o.upload = failed_relay(malformed, true);
       }),
       termination::bad_request, 400, ""},
      {"upload: malformed chunk after the answer began", outcome_of([](auto& o) {
         o.at = phase::response_body;
         o.response_started = true;
         o.upload = failed_relay(malformed, true);
       }),
       termination::bad_request, 0, ""},
      {"upload: client silent", outcome_of([](auto& o) {
         o.at = phase::response_headers;
         o.upload = failed_relay(net::error::operation_aborted, true);
         o.fired.add(timeout_kind::client_read);
       }),
       termination::request_body_timeout, 0, "client moved no body byte for 20 min"},
      {"upload: RPC client silent", outcome_of([](auto& o) {
         o.at = phase::response_headers;
         o.rpc = true;
         o.upload = failed_relay(net::error::operation_aborted, true);
         o.fired.add(timeout_kind::client_read);
       }),
       termination::rpc_client_idle_timeout, 0, "60 min"},
      {"upload: client too slow", outcome_of([](auto& o) {
         o.at = phase::response_headers;
         o.upload = too_slow(true);
       }),
       termination::client_too_slow, 0, "fewer than 1000 bytes/s"},
      {"upload: server not reading", outcome_of([](auto& o) {
         o.at = phase::response_headers;
         o.upload = failed_relay(net::error::bad_descriptor, false);
         o.fired.add(timeout_kind::upstream_write);
       }),
       termination::upstream_write_timeout, 504, "took no request body byte for 21 min"},
      {"upload: RPC server not reading", outcome_of([](auto& o) {
         o.at = phase::response_headers;
         o.rpc = true;
         o.fired.add(timeout_kind::upstream_write);
       }),
       termination::rpc_upstream_idle_timeout, 504, "60 min"},
      {"upload: server gone", outcome_of([](auto& o) {
         o.at = phase::response_headers;
         o.ec = net::error::bad_descriptor;
         o.upload = failed_relay(net::error::broken_pipe, false);
       }),
       termination::upstream_write_failed, 502, ""},
      {"upload: server too slow to take it", outcome_of([](auto& o) {
         o.at = phase::response_headers;
         o.upload = too_slow(false);
       }),
       termination::upstream_too_slow, 504, "fewer than"},
      {"no answer", outcome_of([](auto& o) {
         o.at = phase::response_headers;
         o.request_sent = true;
         o.ec = net::error::operation_aborted;
         o.fired.add(timeout_kind::response_headers);
       }),
       termination::response_headers_timeout, 504, "15 min"},
      {"closed instead of answering", outcome_of([](auto& o) {
         o.at = phase::response_headers;
         o.request_sent = true;
         o.ec = ssl::error::stream_truncated;
       }),
       termination::upstream_closed_before_response, 502, ""},
      {"garbage instead of an answer", outcome_of([](auto& o) {
         o.at = phase::response_headers;
         o.request_sent = true;
         o.ec = http::error::bad_version;
       }),
       termination::upstream_bad_response, 502, ""},
      {"101 refused", outcome_of([](auto& o) {
         o.at = phase::response_headers;
         o.request_sent = true;
         o.refused = "101 Switching Protocols";
       }),
       termination::upstream_bad_response, 502, "101"},
      {"answer header not taken", outcome_of([](auto& o) {
         o.at = phase::client_headers;
         o.ec = net::error::broken_pipe;
       }),
       termination::client_closed_response, 0, ""},
      {"answer header not taken in time", outcome_of([](auto& o) {
         o.at = phase::client_headers;
         o.ec = net::error::operation_aborted;
         o.fired.add(timeout_kind::client_write);
       }),
       termination::client_write_timeout, 0, ""},
      {"download: client gone", outcome_of([](auto& o) {
         o.at = phase::response_body;
         o.download = failed_relay(net::error::broken_pipe, false);
       }),
       termination::client_closed_response, 0, ""},
      {"download: client not reading", outcome_of([](auto& o) {
         o.at = phase::response_body;
         o.download = failed_relay(net::error::operation_aborted, false);
         o.fired.add(timeout_kind::client_write);
       }),
       termination::client_write_timeout, 0, "20 min"},
      {"download: server gone", outcome_of([](auto& o) {
         o.at = phase::response_body;
         o.download = failed_relay(ssl::error::stream_truncated, true);
       }),
       termination::upstream_closed_body, 0, ""},
      {"download: server silent", outcome_of([](auto& o) {
         o.at = phase::response_body;
         o.download = failed_relay(net::error::bad_descriptor, true);
         o.fired.add(timeout_kind::upstream_read);
       }),
       termination::response_body_timeout, 0, "upstream moved no body byte for 21 min"},
      {"download: RPC server silent", outcome_of([](auto& o) {
         o.at = phase::response_body;
         o.rpc = true;
         o.download = failed_relay(net::error::bad_descriptor, true);
         o.fired.add(timeout_kind::upstream_read);
       }),
       termination::rpc_upstream_idle_timeout, 0, "60 min"},
      {"download: malformed body", outcome_of([](auto& o) {
         o.at = phase::response_body;
         o.download = failed_relay(malformed, true);
       }),
       termination::upstream_bad_response, 0, ""},
      {"download: server too slow", outcome_of([](auto& o) {
         o.at = phase::response_body;
         o.download = too_slow(true);
       }),
       termination::upstream_too_slow, 0, ""},
      {"download: client too slow to take it", outcome_of([](auto& o) {
         o.at = phase::response_body;
         o.download = too_slow(false);
       }),
       termination::client_too_slow, 0, ""},
      {"download: RPC client not reading", outcome_of([](auto& o) {
         o.at = phase::response_body;
         o.rpc = true;
         o.download = failed_relay(net::error::operation_aborted, false);
         o.fired.add(timeout_kind::client_write);
       }),
       termination::rpc_client_idle_timeout, 0, ""},
  };
}

TEST(Classify, EveryRowGivesItsTerminationStatusAndDetail) {
  for (const auto& r : table()) {
    const verdict v = classify(r.in);
    EXPECT_EQ(info(v.why).reason, info(r.why).reason) << r.name;
    EXPECT_EQ(v.status, r.status) << r.name;
    EXPECT_NE(v.detail.find(r.detail_has), std::string::npos) << r.name << ": " << v.detail;
  }
}

TEST(Classify, TheTableReachesEveryTerminationCode) {
  std::set<termination> reached;
  for (const auto& r : table()) reached.insert(classify(r.in).why);
  for (std::size_t i = 0; i < termination_count; ++i) {
    const auto t = static_cast<termination>(i);
    EXPECT_TRUE(reached.count(t)) << info(t).reason << " is not reached by any row";
  }
}

TEST(Classify, OnlyACompletedKeepAliveExchangeKeepsTheConnection) {
  const auto done = [](bool server, bool client) {
    return classify(outcome_of([&](auto& o) {
      o.request_sent = true;
      o.response_keep_alive = server;
      o.client_keep_alive = client;
    }));
  };
  EXPECT_TRUE(done(true, true).keep_alive);
  EXPECT_FALSE(done(false, true).keep_alive);
  EXPECT_FALSE(done(true, false).keep_alive);
  for (const auto& r : table()) {
    if (r.why != termination::normal) {
      EXPECT_FALSE(classify(r.in).keep_alive) << r.name;
    }
  }
}

TEST(Classify, AFailedUploadIsBlamedOnlyWhenTheResponseHalfDidNotStopIt) {
  // The response half ended first (the server answered and closed) and stopped the upload: the upload's
  // aborted read is not the client's fault.
  const auto v = classify(outcome_of([](auto& o) {
    o.at = phase::response_body;
    o.upload = failed_relay(net::error::operation_aborted, true);
    o.upload_stopped = true;
    o.download = failed_relay(ssl::error::stream_truncated, true);
  }));
  EXPECT_EQ(v.why, termination::upstream_closed_body);
}

}  // namespace
}  // namespace exbridge::proxy
