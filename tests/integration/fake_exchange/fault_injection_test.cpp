// Fault injection over real TLS 1.0: each action as a client sees it (delays measured on the scaled clock,
// resets, truncated bodies, error pages, slow handshakes, missing close_notify), rule matching by operation,
// user and Nth request, the control API (PUT /faults at run time, GET /stats counters). Also IIS's request
// body limit on EWS, the one refusal a migration meets without any fault injected.
#include <gtest/gtest.h>

#include <httplib.h>

#include <boost/json.hpp>

#include "fake_exchange/control_api.hpp"
#include "tests/support/exchange_lab.hpp"
#include "tests/support/rpc_over_http.hpp"

namespace exbridge {
namespace {

using fake_exchange::fault_kind;
using fake_exchange::fault_rule;

/// Runs virtual time `scale` times faster for one test (the clock is process-wide), then back to real time.
struct time_scale_guard {
  explicit time_scale_guard(double scale) { scaled_clock::set_scale(scale); }
  ~time_scale_guard() { scaled_clock::set_scale(1); }
};

std::string get_folder_request(const std::string& auth) {
  const std::string body = test::get_inbox_soap();
  std::string r = "POST /EWS/Exchange.asmx HTTP/1.1\r\nHost: mail.contoso.example\r\nContent-Type: text/xml\r\n";
  if (!auth.empty()) r += "Authorization: " + auth + "\r\n";
  return r + "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

/// What one client saw: the status (0 if no header came), the body bytes that arrived, how reading ended.
struct outcome {
  unsigned status = 0;
  std::string reason;
  std::string body;
  std::uint64_t declared = 0;
  error_code ec;
  scaled_clock::duration elapsed{};  ///< virtual time from sending the request to the end of reading
};

/// Sends `requests` one after another on one connection; stops at the first that does not complete.
std::vector<outcome> exchange(test::exchange_lab& lab, const std::vector<std::string>& requests) {
  return lab.io().run([&]() -> net::awaitable<std::vector<outcome>> {
    std::vector<outcome> out;
    auto stream = co_await lab.connect();
    beast::flat_buffer buffer;
    for (const auto& request : requests) {
      outcome o;
      const auto started = scaled_clock::now();
      auto [wec, written] = co_await net::async_write(stream, net::buffer(request), use_tuple);
      http::response_parser<http::string_body> parser;
      parser.body_limit(boost::none);  // an OUT channel declares 1 GB
      std::tie(o.ec, written) = co_await http::async_read(stream, buffer, parser, use_tuple);
      if (wec) o.ec = wec;
      o.elapsed = scaled_clock::now() - started;
      if (parser.is_header_done()) {
        o.status = parser.get().result_int();
        o.reason = std::string(parser.get().reason());
        o.declared = parser.content_length().value_or(0);
      }
      o.body = parser.get().body();
      const bool failed = static_cast<bool>(o.ec);
      out.push_back(std::move(o));
      if (failed) break;
    }
    co_return out;
  }());
}

outcome one(test::exchange_lab& lab, const std::string& request) { return exchange(lab, {request}).at(0); }

fake_exchange::server_options with_rules(std::vector<fault_rule> rules) {
  fake_exchange::server_options o;
  o.faults = std::move(rules);
  return o;
}

fault_rule rule(const std::string& name, fault_kind kind) {
  fault_rule r;
  r.name = name;
  r.action.kind = kind;
  return r;
}

std::uint64_t injected(test::exchange_lab& lab, const std::string& action) {
  const auto s = lab.server().stats().snapshot();
  const auto it = s.faults_by_action.find(action);
  return it == s.faults_by_action.end() ? 0 : it->second;
}

// IIS's request filtering (maxAllowedContentLength, 30,000,000 bytes on EWS) refuses a larger declared body
// with 404.13 before reading any of it; a body of exactly the limit is read and answered by EWS.
TEST(IisLimits, EwsBodiesOverThirtyMillionBytesGet404_13) {
  test::exchange_lab lab;
  const std::string head = "POST /EWS/Exchange.asmx HTTP/1.1\r\nHost: mail.contoso.example\r\nContent-Type: text/xml\r\n"
                           "Authorization: " + test::demo_basic_auth() + "\r\n";
  const auto over = one(lab, head + "Content-Length: 30000001\r\n\r\n");
  EXPECT_EQ(over.status, 404u);
  EXPECT_NE(over.body.find("404.13 - Content Length Too Large"), std::string::npos) << over.body;
  EXPECT_EQ(lab.wait_for_request(1).bytes_in, 0u);

  // At the limit: read whole (30 MB of text that is not XML), then answered as EWS answers malformed XML.
  const auto at_limit = one(lab, head + "Content-Length: 30000000\r\n\r\n" + std::string(30'000'000, 'x'));
  EXPECT_FALSE(at_limit.ec) << at_limit.ec.message();
  EXPECT_EQ(at_limit.status, 500u);
  EXPECT_NE(at_limit.body.find("ErrorSchemaValidation"), std::string::npos) << at_limit.body.substr(0, 300);
  EXPECT_EQ(lab.wait_for_request(2).bytes_in, 30'000'000u);
}

TEST(Faults, DelayHoldsTheResponseHeaderForVirtualTime) {
  auto r = rule("slow-ews", fault_kind::delay);
  r.path = "/EWS/";
  r.action.duration = std::chrono::seconds(30);
  test::exchange_lab lab(with_rules({r}));
  time_scale_guard fast(100);  // 30 s of virtual time pass in 0.3 s
  const auto real_start = std::chrono::steady_clock::now();
  const auto o = one(lab, get_folder_request(test::demo_basic_auth()));
  EXPECT_EQ(o.status, 200u);
  EXPECT_GE(o.elapsed, std::chrono::seconds(30));
  EXPECT_LT(std::chrono::steady_clock::now() - real_start, std::chrono::seconds(20));
  EXPECT_EQ(lab.wait_for_request(1).fault, "slow-ews:delay");
  EXPECT_EQ(injected(lab, "delay"), 1u);
  EXPECT_EQ(lab.server().stats().snapshot().faults_by_rule.at("slow-ews"), 1u);
}

TEST(Faults, ThrottleSendsTheBodyAtTheRate) {
  auto r = rule("slow-body", fault_kind::throttle);
  r.action.rate = 1000;  // bytes per virtual second
  test::exchange_lab lab(with_rules({r}));
  time_scale_guard fast(100);
  const auto o = one(lab, get_folder_request(test::demo_basic_auth()));
  ASSERT_FALSE(o.ec) << o.ec.message();
  EXPECT_EQ(o.status, 200u);
  EXPECT_EQ(o.body.size(), o.declared);
  ASSERT_GT(o.body.size(), 500u);
  // The first 1/20 s piece may go at once; everything after it waits for the rate.
  const auto floor = std::chrono::duration<double>((static_cast<double>(o.body.size()) - 50) / 1000);
  EXPECT_GE(o.elapsed, std::chrono::duration_cast<scaled_clock::duration>(floor));
  EXPECT_EQ(injected(lab, "throttle"), 1u);
}

TEST(Faults, StallPausesMidBodyThenCompletes) {
  auto r = rule("stall", fault_kind::stall);
  r.action.after_bytes = 100;
  r.action.duration = std::chrono::seconds(60);
  test::exchange_lab lab(with_rules({r}));
  time_scale_guard fast(200);
  const auto o = one(lab, get_folder_request(test::demo_basic_auth()));
  ASSERT_FALSE(o.ec) << o.ec.message();
  EXPECT_EQ(o.body.size(), o.declared);
  EXPECT_NE(o.body.find("GetFolderResponseMessage"), std::string::npos);
  EXPECT_GE(o.elapsed, std::chrono::seconds(60));
  EXPECT_EQ(injected(lab, "stall"), 1u);
}

TEST(Faults, CutsEndTheBodyAfterNBytesTheWayTheActionSays) {
  struct cut {
    fault_kind kind;
    std::string action;
    error_code expected;  ///< how the client's read ends
    bool exact;           ///< all N bytes arrive (an RST may overtake the last of them)
  };
  const std::vector<cut> cuts{
      {fault_kind::reset, "reset", net::error::connection_reset, false},
      // A clean TLS close in the middle of a Content-Length body: Beast's "partial message".
      {fault_kind::truncate, "truncate", http::error::partial_message, true},
      {fault_kind::no_close_notify, "no-close-notify", ssl::error::stream_truncated, true},
  };
  for (const auto& c : cuts) {
    auto r = rule("cut", c.kind);
    r.action.after_bytes = 250;
    test::exchange_lab lab(with_rules({r}));
    const auto o = one(lab, get_folder_request(test::demo_basic_auth()));
    EXPECT_EQ(o.status, 200u) << c.action;
    EXPECT_GT(o.declared, 250u) << c.action;
    EXPECT_EQ(o.ec, c.expected) << c.action << ": " << o.ec.message();
    if (c.exact) EXPECT_EQ(o.body.size(), 250u) << c.action;
    else EXPECT_LE(o.body.size(), 250u) << c.action;
    EXPECT_EQ(lab.wait_for_request(1).fault, "cut:" + c.action);
    EXPECT_EQ(injected(lab, c.action), 1u) << c.action;
  }
}

TEST(Faults, OutChannelsCanBeCutAndRpcRequestsRefusedWith503) {
  auto cut = rule("oa-reset", fault_kind::reset);
  cut.path = "/rpc/";
  cut.operation = "RPC_OUT_DATA";
  cut.action.after_bytes = 20;  // within CONN/A3, the channel's first PDU
  auto refuse = rule("oa-503", fault_kind::error503);
  refuse.operation = "RPC_IN_DATA";
  fake_exchange::server_options options = with_rules({cut, refuse});
  options.rpc_ping_interval = std::chrono::milliseconds(10);
  test::exchange_lab lab(options);
  const std::string head = "/rpc/rpcproxy.dll?ex2007.contoso.example:6001 HTTP/1.1\r\nHost: mail.contoso.example\r\n"
                           "Authorization: " + test::demo_basic_auth() + "\r\n";
  const auto out = one(lab, "RPC_OUT_DATA " + head + "Content-Length: 76\r\n\r\n" + test::conn_a1(test::vc_cookies()));
  EXPECT_EQ(out.status, 200u);
  EXPECT_EQ(out.ec, net::error::connection_reset) << out.ec.message();
  EXPECT_LE(out.body.size(), 20u);
  const auto in = one(lab, "RPC_IN_DATA " + head + "Content-Length: 1073741824\r\n\r\n");
  EXPECT_EQ(in.status, 503u);
  EXPECT_EQ(in.reason, "RPC Error: 6ba");
  EXPECT_EQ(injected(lab, "reset"), 1u);
  EXPECT_EQ(injected(lab, "error-503"), 1u);
}

TEST(Faults, InChannelIsResetAfterNBytesReceived) {
  auto r = rule("in-reset", fault_kind::reset);
  r.operation = "RPC_IN_DATA";
  r.action.after_bytes = 100'000;
  test::exchange_lab lab(with_rules({r}));
  const std::string request = "RPC_IN_DATA /rpc/rpcproxy.dll?EX2007:6001 HTTP/1.1\r\nHost: mail.contoso.example\r\n"
                              "Authorization: " + test::demo_basic_auth() + "\r\nContent-Length: 1073741824\r\n\r\n";
  const error_code seen = lab.io().run([&]() -> net::awaitable<error_code> {
    auto stream = co_await lab.connect();
    co_await test::send_text(stream, request);
    const std::string body = test::in_channel_body(test::vc_cookies(), 1024 * 1024);
    auto [wec, written] = co_await net::async_write(stream, net::buffer(body), use_tuple);
    if (wec) co_return wec;  // the RST may already have arrived
    std::array<char, 64> sink;
    auto [rec, n] = co_await stream.async_read_some(net::buffer(sink), use_tuple);
    co_return rec;
  }());
  EXPECT_TRUE(seen == net::error::connection_reset || seen == net::error::broken_pipe) << seen.message();
  const auto rec = lab.wait_for_request(1);
  EXPECT_EQ(rec.bytes_in, 100'000u);
  EXPECT_EQ(rec.status, 0u);
  EXPECT_EQ(rec.fault, "in-reset:reset");
}

TEST(Faults, ThrottledOrStalledInChannelsAreReadSlowly) {
  constexpr std::size_t sent = 1024 * 1024;
  auto stall = rule("in-stall", fault_kind::stall);
  stall.action.after_bytes = 64 * 1024;
  stall.action.duration = std::chrono::seconds(30);
  auto throttle = rule("in-throttle", fault_kind::throttle);
  throttle.action.rate = 4 * 1024 * 1024;  // bytes per virtual second: 1 MiB takes 0.25 s (virtual)
  const std::vector<std::pair<fault_rule, scaled_clock::duration>> cases{
      {stall, std::chrono::seconds(30)},
      {throttle, std::chrono::milliseconds(240)},  // less the first 1/20 s piece, which may move at once
  };
  for (const auto& [r, at_least] : cases) {
    test::exchange_lab lab(with_rules({r}));
    time_scale_guard fast(50);
    const std::string request = "RPC_IN_DATA /rpc/rpcproxy.dll?EX2007:6001 HTTP/1.1\r\nHost: mail.contoso.example\r\n"
                                "Authorization: " + test::demo_basic_auth() + "\r\nContent-Length: 1073741824\r\n\r\n";
    lab.io().run([&]() -> net::awaitable<void> {
      auto stream = co_await lab.connect();
      co_await test::send_text(stream, request);
      const std::string body = test::in_channel_body(test::vc_cookies(), sent);
      co_await net::async_write(stream, net::buffer(body), net::use_awaitable);
      stream.next_layer().close();
    }());
    const auto rec = lab.wait_for_request(1);
    EXPECT_EQ(rec.bytes_in, sent) << r.name;
    EXPECT_GE(rec.duration, std::chrono::duration_cast<std::chrono::milliseconds>(scaled_clock::to_real(at_least)))
        << r.name;
    EXPECT_EQ(rec.fault, r.name + ":" + std::string(fake_exchange::fault_kind_name(r.action.kind)));
  }
}

TEST(Faults, Error500IsTheAspNetServerErrorPage) {
  auto r = rule("boom", fault_kind::error500);
  r.operation = "GetFolder";
  test::exchange_lab lab(with_rules({r}));
  const auto o = one(lab, get_folder_request(test::demo_basic_auth()));
  EXPECT_EQ(o.status, 500u);
  EXPECT_NE(o.body.find("Server Error in '/EWS' Application."), std::string::npos) << o.body;
  EXPECT_EQ(injected(lab, "error-500"), 1u);
}

TEST(Faults, Error503IsHttpSysServiceUnavailable) {
  test::exchange_lab lab(with_rules({rule("down", fault_kind::error503)}));
  const auto o = one(lab, get_folder_request(test::demo_basic_auth()));
  EXPECT_EQ(o.status, 503u);
  EXPECT_EQ(o.reason, "Service Unavailable");
  EXPECT_NE(o.body.find("HTTP Error 503. The service is unavailable."), std::string::npos);
}

TEST(Faults, ExecutionTimeoutAnswersRequestTimedOutAfter110VirtualSeconds) {
  test::exchange_lab lab(with_rules({[] {
    auto r = rule("asp", fault_kind::execution_timeout);
    r.action.duration = std::chrono::seconds(110);
    return r;
  }()}));
  time_scale_guard fast(500);
  const auto o = one(lab, get_folder_request(test::demo_basic_auth()));
  EXPECT_EQ(o.status, 500u);
  EXPECT_NE(o.body.find("Request timed out."), std::string::npos);
  EXPECT_GE(o.elapsed, std::chrono::seconds(110));
}

TEST(Faults, SlowHandshakeDelaysTheServerHello) {
  auto r = rule("slow-tls", fault_kind::slow_handshake);
  r.action.duration = std::chrono::seconds(45);
  r.nth = 2;  // only the second connection
  test::exchange_lab lab(with_rules({r}));
  time_scale_guard fast(50);
  const auto connect_time = [&] {
    return lab.io().run([&]() -> net::awaitable<scaled_clock::duration> {
      const auto start = scaled_clock::now();
      auto stream = co_await lab.connect();
      co_return scaled_clock::now() - start;
    }());
  };
  EXPECT_LT(connect_time(), std::chrono::seconds(45));
  EXPECT_GE(connect_time(), std::chrono::seconds(45));
  EXPECT_LT(connect_time(), std::chrono::seconds(45));
  EXPECT_EQ(injected(lab, "slow-handshake"), 1u);
}

TEST(Faults, RulesMatchOperationUserAndTheNthRequest) {
  auto by_user = rule("other-user", fault_kind::error500);
  by_user.user = "somebody.else@contoso.example";
  auto by_op = rule("finditem-only", fault_kind::error500);
  by_op.operation = "FindItem";
  auto second = rule("second", fault_kind::error503);
  second.path = "/ews/";  // case-insensitive, as IIS paths are
  second.nth = 2;
  test::exchange_lab lab(with_rules({by_user, by_op, second}));
  const std::string req = get_folder_request(test::demo_basic_auth());
  const auto results = exchange(lab, {req, req});
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[0].status, 200u);
  EXPECT_EQ(results[1].status, 503u);
  const auto again = one(lab, req);  // the 3rd request: nth fired once, on the 2nd
  EXPECT_EQ(again.status, 200u);
  const auto s = lab.server().stats().snapshot();
  EXPECT_EQ(s.faults, 1u);
  EXPECT_EQ(s.faults_by_rule.at("second"), 1u);
  EXPECT_EQ(s.by_operation.at("GetFolder"), 3u);
}

TEST(Faults, ControlApiReplacesRulesAtRunTimeAndCountsThem) {
  test::exchange_lab lab;
  fake_exchange::control_api api({"127.0.0.1", 0}, lab.server(), {});
  api.start();
  httplib::Client control("127.0.0.1", api.port());
  EXPECT_EQ(one(lab, get_folder_request(test::demo_basic_auth())).status, 200u);

  const auto bad = control.Put("/faults", "[[fault]]\naction = \"error-500\"\nafter_bytes = 3\n", "application/toml");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);
  EXPECT_NE(bad->body.find("PUT /faults:3:"), std::string::npos) << bad->body;
  EXPECT_NE(bad->body.find("'after_bytes' does not apply to action 'error-500'"), std::string::npos) << bad->body;

  const auto put = control.Put("/faults", R"({"fault": [{"name": "ews-down", "path": "/EWS/", "action": "error-500"}]})",
                               "application/json");
  ASSERT_TRUE(put);
  EXPECT_EQ(put->status, 200);
  EXPECT_EQ(one(lab, get_folder_request(test::demo_basic_auth())).status, 500u);
  EXPECT_EQ(one(lab, get_folder_request("")).status, 500u);  // the rule has no user: it matches 401s too

  const auto faults = control.Get("/faults");
  ASSERT_TRUE(faults);
  EXPECT_EQ(boost::json::parse(faults->body).at("fault").at(0).at("name").as_string(), "ews-down");
  const auto stats = control.Get("/stats");
  ASSERT_TRUE(stats);
  const auto json = boost::json::parse(stats->body);
  const auto number = [&](std::initializer_list<const char*> path) {
    const boost::json::value* v = &json;
    for (const char* key : path) v = &v->at(key);
    return v->to_number<std::int64_t>();
  };
  EXPECT_EQ(number({"requests", "total"}), 3);
  EXPECT_EQ(number({"requests", "by_operation", "GetFolder"}), 2);
  EXPECT_EQ(number({"faults", "by_rule", "ews-down"}), 2);
  EXPECT_EQ(number({"faults", "by_action", "error-500"}), 2);
  EXPECT_GT(number({"bytes_served"}), 0);
  const auto manifest = control.Get("/manifest");
  ASSERT_TRUE(manifest);
  EXPECT_EQ(boost::json::parse(manifest->body).at("users").at(0).at("email").as_string(), fake_exchange::demo_email);
}

}  // namespace
}  // namespace exbridge
