// exbridge's downstream session without a socket: the shipped session template on in-memory streams
// (tests/support/memory_stream.hpp), with a scripted connector in place of TCP and TLS towards the upstream.
// Every termination code is reached by a scripted client and upstream; fault matrices fail each stream
// operation of a clean exchange in turn and check that the request still ends once, on the right side,
// without a hang. The integration tests run the same session over real TLS.
#include "proxy/session/session.hpp"

#include <gtest/gtest.h>

#include <deque>
#include <functional>
#include <iostream>
#include <set>

#include "tests/support/memory_stream.hpp"

namespace exbridge::proxy {
namespace {

using test::memory_stream;
using namespace std::chrono_literals;
using script = std::function<net::awaitable<void>(memory_stream&)>;

/// Opens upstream connections as scripted: a failure from `failures` (in order), else a memory stream whose
/// other end runs `serve`.
struct scripted_connector {
  std::deque<connect_result> failures;
  script serve;
  std::size_t upstream_capacity = 0;  ///< > 0: the upstream takes at most this much unread (a server not reading)
  std::size_t fail_at = 0;            ///< > 0: this operation of the session's upstream stream fails
  int opened = 0;
  std::vector<std::unique_ptr<memory_stream>> servers;
  std::shared_ptr<const std::size_t> last_ops;  ///< operations on the session's side of the last connection

  net::awaitable<connect_result> open(std::optional<memory_stream>& stream, const net::any_io_executor& executor,
                                      upstream_pool&, server_state&, const struct timeouts&, connect_timing& timing) {
    timing.connected = std::chrono::steady_clock::now();
    if (!failures.empty()) {
      connect_result r = failures.front();
      failures.pop_front();
      co_return r;
    }
    ++opened;
    stream.emplace(executor);
    last_ops = stream->operation_count();
    auto& server = *servers.emplace_back(std::make_unique<memory_stream>(executor));
    memory_stream::connect(*stream, server);
    if (upstream_capacity > 0) server.capacity(upstream_capacity);
    if (fail_at > 0) stream->fail_at(fail_at, net::error::connection_reset);
    if (serve) net::co_spawn(executor, serve(server), net::detached);
    timing.handshaken = std::chrono::steady_clock::now();
    co_return connect_result{};
  }
};

/// One downstream connection: the session between a scripted client and scripted upstreams, on one loop.
struct lab {
  net::io_context ioc;
  bridge_options options;
  scripted_connector connector;
  memory_stream down{ioc.get_executor()};
  memory_stream client{ioc.get_executor()};
  std::vector<termination> ends;
  std::shared_ptr<bridge_context> ctx;

  lab() {
    memory_stream::connect(down, client);
    options.upstream.address = {"ex2007.contoso.example", 443};
    options.upstream.verify = tls_verify::none;
    options.on_end = [this](termination t) { ends.push_back(t); };
  }

  /// The context is built on first use; tests that change options do so before.
  bridge_context& context() {
    if (!ctx) ctx = std::make_shared<bridge_context>(options);
    return *ctx;
  }

  /// Runs the session with `client_script` until the session has ended (bounded: a hang fails the test).
  void run(script client_script) {
    context();
    bool done = false;
    {
      downstream_session<memory_stream, scripted_connector> session(ctx, down, connector, "192.0.2.7:50000", 443);
      net::co_spawn(ioc, session.run(), [&](std::exception_ptr e) {
        done = true;
        down.close();  // as the socket closes when exbridge's session ends
        if (e) std::rethrow_exception(e);
      });
      net::co_spawn(ioc, client_script(client), net::detached);
      const auto limit = std::chrono::steady_clock::now() + 10s;
      while (!done && std::chrono::steady_clock::now() < limit) ioc.run_one_for(100ms);
      ASSERT_TRUE(done) << "the session did not end";
    }
    ioc.run_for(1s);  // what the session's end set off (the scripts see the close)
  }

  std::int64_t stat(counter c) const { return ctx->stats.get(c); }
};

// --- scripted clients and upstreams -------------------------------------------------------------------------

/// The status of the response the client read (0 = none).
struct seen {
  unsigned status = 0;
  std::string body;
};

net::awaitable<void> read_response(memory_stream& s, beast::flat_buffer& buf, seen* out) {
  http::response<http::string_body> res;
  auto [ec, n] = co_await http::async_read(s, buf, res, use_tuple);
  if (!ec && out) *out = {res.result_int(), res.body()};
}

/// Sends `requests` (raw bytes, one write each) and reads one response after each, then closes.
script ask(std::vector<std::string> requests, seen* out = nullptr) {
  return [requests = std::move(requests), out](memory_stream& s) -> net::awaitable<void> {
    beast::flat_buffer buf;
    for (const auto& r : requests) {
      co_await net::async_write(s, net::buffer(r), use_tuple);
      co_await read_response(s, buf, out);
    }
    s.close();
  };
}

/// Sends `bytes` and then nothing more (the connection stays open).
script send_and_stall(std::string bytes, seen* out = nullptr) {
  return [bytes = std::move(bytes), out](memory_stream& s) -> net::awaitable<void> {
    co_await net::async_write(s, net::buffer(bytes), use_tuple);
    beast::flat_buffer buf;
    co_await read_response(s, buf, out);
  };
}

/// Sends `bytes`, then closes.
script send_and_close(std::string bytes) {
  return [bytes = std::move(bytes)](memory_stream& s) -> net::awaitable<void> {
    co_await net::async_write(s, net::buffer(bytes), use_tuple);
    s.close();
  };
}

/// Sends `head`, then `body` one byte every `every`.
script trickle(std::string head, std::string body, std::chrono::milliseconds every) {
  return [head = std::move(head), body = std::move(body), every](memory_stream& s) -> net::awaitable<void> {
    co_await net::async_write(s, net::buffer(head), use_tuple);
    exbridge::timer pause(s.get_executor());
    for (const char c : body) {
      pause.expires_after(every);
      co_await pause.async_wait(use_tuple);
      if (auto [ec, n] = co_await net::async_write(s, net::buffer(&c, 1), use_tuple); ec) co_return;
    }
  };
}

const std::string get = "GET /EWS/Exchange.asmx HTTP/1.1\r\nHost: mail.contoso.example\r\n\r\n";
std::string post(const std::string& target, std::size_t declared, std::size_t sent) {
  return "POST " + target + " HTTP/1.1\r\nHost: mail.contoso.example\r\nContent-Length: " + std::to_string(declared) +
         "\r\n\r\n" + std::string(sent, 'x');
}

/// An upstream that reads each whole request and answers 200 with `body`, keeping the connection.
script answer(std::string body = "hello") {
  return [body = std::move(body)](memory_stream& s) -> net::awaitable<void> {
    beast::flat_buffer buf;
    for (;;) {
      http::request<http::string_body> req;
      if (auto [ec, n] = co_await http::async_read(s, buf, req, use_tuple); ec) co_return;
      http::response<http::string_body> res{http::status::ok, 11};
      res.body() = body;
      res.prepare_payload();
      if (auto [ec, n] = co_await http::async_write(s, res, use_tuple); ec) co_return;
    }
  };
}

/// An upstream that reads a request header, writes `bytes`, then `then`: stays silent, or closes.
enum class then { stall, close };
script reply_raw(std::string bytes, then after) {
  return [bytes = std::move(bytes), after](memory_stream& s) -> net::awaitable<void> {
    beast::flat_buffer buf;
    http::request_parser<http::empty_body> p;
    p.skip(true);
    co_await http::async_read_header(s, buf, p, use_tuple);
    if (!bytes.empty()) co_await net::async_write(s, net::buffer(bytes), use_tuple);
    if (after == then::close) s.close();
    char c;
    co_await s.async_read_some(net::buffer(&c, 1), use_tuple);  // until the session lets go
  };
}

/// An upstream that answers 200 with a declared body of `size` bytes, trickled a byte every `every`.
script trickle_answer(std::size_t size, std::chrono::milliseconds every) {
  return [size, every](memory_stream& s) -> net::awaitable<void> {
    beast::flat_buffer buf;
    http::request<http::string_body> req;
    co_await http::async_read(s, buf, req, use_tuple);
    const std::string head = "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(size) + "\r\n\r\n";
    co_await net::async_write(s, net::buffer(head), use_tuple);
    exbridge::timer pause(s.get_executor());
    for (std::size_t i = 0; i < size; ++i) {
      pause.expires_after(every);
      co_await pause.async_wait(use_tuple);
      if (auto [ec, n] = co_await net::async_write(s, net::buffer("y", 1), use_tuple); ec) co_return;
    }
  };
}

// --- every termination ----------------------------------------------------------------------------------

struct session_case {
  const char* name;
  termination expect;
  unsigned status;  ///< the status the client must read (0 = none)
  std::function<void(lab&)> setup;
  std::function<script(seen*)> client;
  script upstream;
};

void PrintTo(const session_case& c, std::ostream* out) { *out << c.name; }

constexpr auto short_time = 30ms;

std::vector<session_case> cases() {
  const std::string big(1 << 20, 'z');
  return {
      {"normal", termination::normal, 200, [](lab&) {}, [](seen* s) { return ask({get}, s); }, answer()},
      {"downstream_handshake_failed", termination::downstream_handshake_failed, 0,
       [](lab& l) { l.down.handshake(memory_stream::handshake_mode::fail); }, [](seen*) { return send_and_stall(""); },
       answer()},
      {"downstream_handshake_timeout", termination::downstream_handshake_timeout, 0,
       [](lab& l) {
         l.down.handshake(memory_stream::handshake_mode::hang);
         l.options.timeouts.downstream_handshake = short_time;
       },
       [](seen*) { return send_and_stall(""); }, answer()},
      {"client_idle_timeout", termination::client_idle_timeout, 0,
       [](lab& l) { l.options.timeouts.client_idle = short_time; }, [](seen*) { return send_and_stall(""); }, answer()},
      {"keep_alive_timeout", termination::keep_alive_timeout, 200,
       [](lab& l) { l.options.timeouts.keep_alive_idle = short_time; },
       [](seen* s) { return send_and_stall(get, s); }, answer()},
      {"client_closed_request", termination::client_closed_request, 0, [](lab&) {},
       [](seen*) { return send_and_close("GET / HTTP/1.1\r\nHost: a\r\n"); }, answer()},
      {"client_closed_body", termination::client_closed_body, 0, [](lab&) {},
       [](seen*) { return send_and_close(post("/EWS/Exchange.asmx", 100, 10)); }, answer()},
      {"client_closed_response", termination::client_closed_response, 0, [](lab& l) { l.client.capacity(1024); },
       [](seen*) {
         return [](memory_stream& c) -> net::awaitable<void> {
           co_await net::async_write(c, net::buffer(get), use_tuple);
           char some[512];
           co_await c.async_read_some(net::buffer(some), use_tuple);
           c.close();
         };
       },
       answer(big)},
      {"bad_request", termination::bad_request, 400, [](lab&) {},
       [](seen* s) { return ask({"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"}, s); }, answer()},
      {"request_headers_timeout", termination::request_headers_timeout, 408,
       [](lab& l) { l.options.timeouts.request_headers = short_time; },
       [](seen* s) { return send_and_stall("GET / HTTP/1.1\r\n", s); }, answer()},
      {"request_body_timeout", termination::request_body_timeout, 0,
       [](lab& l) { l.options.timeouts.client_data = short_time; },
       [](seen* s) { return send_and_stall(post("/EWS/Exchange.asmx", 100, 10), s); }, reply_raw("", then::stall)},
      {"client_write_timeout", termination::client_write_timeout, 0,
       [](lab& l) {
         l.client.capacity(1024);
         l.options.timeouts.client_data = short_time;
       },
       [](seen*) {
         return [](memory_stream& c) -> net::awaitable<void> {
           co_await net::async_write(c, net::buffer(get), use_tuple);  // and never reads
         };
       },
       answer(big)},
      {"rpc_client_idle_timeout", termination::rpc_client_idle_timeout, 0,
       [](lab& l) { l.options.timeouts.rpc_idle = short_time; },
       [](seen* s) { return send_and_stall(post("/rpc/rpcproxy.dll?ex:6001", 100, 10), s); }, reply_raw("", then::stall)},
      {"client_too_slow", termination::client_too_slow, 0,
       [](lab& l) {
         l.options.timeouts.min_throughput = 1'000'000'000;
         l.options.timeouts.throughput_window = 1ms;
       },
       [](seen*) { return trickle(post("/EWS/Exchange.asmx", 50, 0), std::string(50, 'x'), 2ms); },
       reply_raw("", then::stall)},
      {"upstream_unavailable", termination::upstream_unavailable, 503,
       [](lab& l) { l.context().pools[0]->servers[0]->up = false; }, [](seen* s) { return ask({get}, s); }, answer()},
      {"upstream_queue_timeout", termination::upstream_queue_timeout, 503,
       [](lab& l) {
         l.options.upstream.max_connections_per_server = 1;
         l.options.upstream.queue_timeout = short_time;
         l.context().pools[0]->servers[0]->active = 1;  // another client holds the only slot
       },
       [](seen* s) { return ask({get}, s); }, answer()},
      {"upstream_resolve_failed", termination::upstream_resolve_failed, 503,
       [](lab& l) { l.connector.failures.push_back({.failed_at = connect_result::resolve}); },
       [](seen* s) { return ask({get}, s); }, answer()},
      {"upstream_connect_failed", termination::upstream_connect_failed, 503,
       [](lab& l) { l.connector.failures.push_back({.failed_at = connect_result::connect}); },
       [](seen* s) { return ask({get}, s); }, answer()},
      {"upstream_connect_timeout", termination::upstream_connect_timeout, 504,
       [](lab& l) { l.connector.failures.push_back({.failed_at = connect_result::connect, .timed_out = true}); },
       [](seen* s) { return ask({get}, s); }, answer()},
      {"upstream_tls_failed", termination::upstream_tls_failed, 502,
       [](lab& l) { l.connector.failures.push_back({.failed_at = connect_result::handshake}); },
       [](seen* s) { return ask({get}, s); }, answer()},
      {"upstream_handshake_timeout", termination::upstream_handshake_timeout, 504,
       [](lab& l) { l.connector.failures.push_back({.failed_at = connect_result::handshake, .timed_out = true}); },
       [](seen* s) { return ask({get}, s); }, answer()},
      {"upstream_closed_before_response", termination::upstream_closed_before_response, 502, [](lab&) {},
       [](seen* s) { return ask({get}, s); }, reply_raw("", then::close)},
      {"upstream_bad_response", termination::upstream_bad_response, 502, [](lab&) {},
       [](seen* s) { return ask({get}, s); }, reply_raw("HTTP/1.1 two hundred\r\n\r\n", then::stall)},
      {"response_headers_timeout", termination::response_headers_timeout, 504,
       [](lab& l) { l.options.timeouts.response_headers = short_time; }, [](seen* s) { return ask({get}, s); },
       reply_raw("", then::stall)},
      {"upstream_closed_body", termination::upstream_closed_body, 0, [](lab&) {},
       [](seen* s) { return ask({get}, s); },
       reply_raw("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789", then::close)},
      {"response_body_timeout", termination::response_body_timeout, 0,
       [](lab& l) { l.options.timeouts.upstream_data = short_time; }, [](seen* s) { return ask({get}, s); },
       reply_raw("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789", then::stall)},
      {"upstream_write_timeout", termination::upstream_write_timeout, 504,
       [](lab& l) {
         l.connector.upstream_capacity = 4096;
         l.options.timeouts.upstream_data = short_time;
       },
       [big](seen* s) { return ask({post("/EWS/Exchange.asmx", big.size(), big.size())}, s); },
       reply_raw("", then::stall)},
      {"rpc_upstream_idle_timeout", termination::rpc_upstream_idle_timeout, 0,
       [](lab& l) { l.options.timeouts.rpc_idle = short_time; },
       [](seen*) { return ask({"RPC_OUT_DATA /rpc/rpcproxy.dll?ex:6001 HTTP/1.1\r\nHost: a\r\n\r\n"}); },
       reply_raw("HTTP/1.1 200 Success\r\nContent-Length: 1073741824\r\n\r\nping", then::stall)},
      {"upstream_too_slow", termination::upstream_too_slow, 0,
       [](lab& l) {
         l.options.timeouts.min_throughput = 1'000'000'000;
         l.options.timeouts.throughput_window = 1ms;
       },
       [](seen*) { return ask({get}); }, trickle_answer(50, 2ms)},
      {"upstream_write_failed", termination::upstream_write_failed, 502, [](lab& l) { l.connector.fail_at = 1; },
       [](seen* s) { return ask({get}, s); }, answer()},
  };
}

class SessionEnds : public ::testing::TestWithParam<session_case> {};

TEST_P(SessionEnds, AsScripted) {
  const session_case& c = GetParam();
  lab l;
  c.setup(l);
  l.connector.serve = c.upstream;
  seen got;
  l.run(c.client(&got));
  ASSERT_FALSE(l.ends.empty());
  EXPECT_EQ(info(l.ends.back()).reason, info(c.expect).reason);
  EXPECT_EQ(got.status, c.status);
  if (c.status >= 400) {
    EXPECT_NE(got.body.find(std::string(info(c.expect).reason)), std::string::npos) << got.body;
  }
}

INSTANTIATE_TEST_SUITE_P(EveryTermination, SessionEnds, ::testing::ValuesIn(cases()),
                         [](const auto& param) { return std::string(param.param.name); });

TEST(SessionEnds, TheCasesCoverEveryTerminationCode) {
  std::set<termination> covered;
  for (const auto& c : cases()) covered.insert(c.expect);
  for (std::size_t i = 0; i < termination_count; ++i) {
    EXPECT_TRUE(covered.count(static_cast<termination>(i))) << info(static_cast<termination>(i)).reason;
  }
}

// --- behaviour ----------------------------------------------------------------------------------------------

TEST(Session, KeepAliveRequestsShareOneUpstreamConnectionAndCountOnce) {
  lab l;
  l.connector.serve = answer();
  seen got;
  l.run(ask({get, get, get}, &got));
  EXPECT_EQ(got.status, 200u);
  EXPECT_EQ(got.body, "hello");
  EXPECT_EQ(l.connector.opened, 1);
  EXPECT_EQ(l.ends, (std::vector<termination>{termination::normal, termination::normal, termination::normal}));
  EXPECT_EQ(l.stat(counter::downstream_rq_total), 3);
  EXPECT_EQ(l.stat(counter::upstream_rq_total), 3);
  EXPECT_EQ(l.stat(counter::upstream_cx_total), 1);
}

TEST(Session, AFailedServerIsSkippedForTheNextOneBeforeAnyRequestByteIsSent) {
  lab l;
  l.options.upstream.servers = {{"ex1.contoso.example", 443}, {"ex2.contoso.example", 443}};
  l.options.upstream.address = l.options.upstream.servers[0];
  l.connector.failures.push_back({.failed_at = connect_result::connect, .message = "refused"});
  l.connector.serve = answer();
  seen got;
  l.run(ask({get}, &got));
  EXPECT_EQ(got.status, 200u);
  EXPECT_EQ(l.stat(counter::upstream_cx_redispatched), 1);
  EXPECT_EQ(l.stat(counter::upstream_cx_connect_fail), 1);
}

TEST(Session, NtlmAndRpcPinTheConnection) {
  for (const std::string& request : {std::string("GET /EWS/Exchange.asmx HTTP/1.1\r\nHost: a\r\nAuthorization: NTLM "
                                                 "TlRMTVNTUAABAAAAB4IIogAAAAAAAAAAAAAAAAAAAAAGAbEdAAAADw==\r\n\r\n"),
                                     std::string("RPC_IN_DATA /rpc/rpcproxy.dll?ex:6001 HTTP/1.1\r\nHost: a\r\n"
                                                 "Content-Length: 0\r\n\r\n")}) {
    lab l;
    l.connector.serve = answer();
    l.run(ask({request}));
    EXPECT_EQ(l.stat(counter::upstream_rq_pinned), 1) << request;
  }
}

TEST(Session, ExpectContinueReachesTheClientBeforeItSendsTheBody) {
  lab l;
  l.connector.serve = [](memory_stream& s) -> net::awaitable<void> {
    beast::flat_buffer buf;
    http::request_parser<http::string_body> p;
    co_await http::async_read_header(s, buf, p, use_tuple);
    co_await net::async_write(s, net::buffer(std::string("HTTP/1.1 100 Continue\r\n\r\n")), use_tuple);
    co_await http::async_read(s, buf, p, use_tuple);
    http::response<http::string_body> res{http::status::ok, 11};
    res.body() = "got " + p.get().body();
    res.prepare_payload();
    co_await http::async_write(s, res, use_tuple);
  };
  seen got;
  l.run([&got](memory_stream& c) -> net::awaitable<void> {
    const std::string head = "POST /EWS/Exchange.asmx HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n";
    co_await net::async_write(c, net::buffer(head), use_tuple);
    beast::flat_buffer buf;
    http::response_parser<http::empty_body> interim;
    co_await http::async_read_header(c, buf, interim, use_tuple);
    if (interim.get().result_int() != 100) co_return;  // the body is sent only after the 100
    co_await net::async_write(c, net::buffer(std::string("body")), use_tuple);
    co_await read_response(c, buf, &got);
    c.close();
  });
  EXPECT_EQ(got.status, 200u);
  EXPECT_EQ(got.body, "got body");
}

// --- fault matrices -------------------------------------------------------------------------------------------

/// A POST with a body, answered with a body, then a second request on the same connection: every stream
/// operation of the session's two legs.
struct matrix_run {
  std::vector<termination> ends;
  std::size_t client_ops = 0, upstream_ops = 0;
};

matrix_run run_exchange(std::size_t fail_client_at, std::size_t fail_upstream_at) {
  lab l;
  l.connector.serve = answer(std::string(100'000, 'r'));
  l.connector.fail_at = fail_upstream_at;
  if (fail_client_at > 0) l.down.fail_at(fail_client_at, net::error::connection_reset);
  l.run(ask({post("/EWS/Exchange.asmx", 200'000, 200'000), get}));
  return {l.ends, l.down.operations(), l.connector.last_ops ? *l.connector.last_ops : 0};
}

bool client_side(termination t) { return info(t).code[0] == 'C' || info(t).code[0] == 'c'; }
bool server_side(termination t) { return info(t).code[0] == 'S' || info(t).code[0] == 's' || t == termination::upstream_bad_response; }

TEST(SessionFaults, EveryFailedClientOperationEndsTheRequestOnTheClientsSide) {
  const matrix_run clean = run_exchange(0, 0);
  ASSERT_EQ(clean.ends, (std::vector<termination>{termination::normal, termination::normal}));
  ASSERT_GT(clean.client_ops, 5u);
  std::cout << "failing each of " << clean.client_ops << " client-side operations in turn\n";
  for (std::size_t n = 1; n <= clean.client_ops; ++n) {
    const matrix_run r = run_exchange(n, 0);
    // Each request that started ends once; a failure ends the connection, so nothing follows it.
    ASSERT_LE(r.ends.size(), 2u) << "operation " << n;
    for (std::size_t i = 0; i < r.ends.size(); ++i) {
      const termination t = r.ends[i];
      const bool last = i + 1 == r.ends.size();
      EXPECT_TRUE(t == termination::normal || (last && client_side(t)))
          << "operation " << n << ": " << info(t).reason;
    }
  }
}

TEST(SessionFaults, EveryFailedUpstreamOperationEndsTheRequestOnTheServersSide) {
  const matrix_run clean = run_exchange(0, 0);
  ASSERT_GT(clean.upstream_ops, 3u);
  std::cout << "failing each of " << clean.upstream_ops << " upstream-side operations in turn\n";
  for (std::size_t n = 1; n <= clean.upstream_ops; ++n) {
    const matrix_run r = run_exchange(0, n);
    ASSERT_FALSE(r.ends.empty()) << "operation " << n;
    ASSERT_LE(r.ends.size(), 2u) << "operation " << n;
    for (std::size_t i = 0; i < r.ends.size(); ++i) {
      const termination t = r.ends[i];
      const bool last = i + 1 == r.ends.size();
      EXPECT_TRUE(t == termination::normal || (last && server_side(t)))
          << "operation " << n << ": " << info(t).reason;
    }
  }
}

}  // namespace
}  // namespace exbridge::proxy
