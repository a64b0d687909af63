// Upstream pools in process: two fake-exchange servers behind one pool with health checks and redispatch,
// every server down, every server refusing, a full server queueing, and routes sending paths to pools.
#include <gtest/gtest.h>

#include <httplib.h>

#include <boost/json.hpp>

#include <condition_variable>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>

#include "common/base64.hpp"
#include "common/errors.hpp"
#include "fake_exchange/server.hpp"
#include "proxy/stats/admin.hpp"
#include "tests/support/bridge_fixture.hpp"

namespace exbridge::proxy::test {
namespace {

struct counted_exchange {
  explicit counted_exchange(net::io_context& ioc) {
    fake_exchange::server_options o;
    o.identity = {.cert_file = test_pki().exchange_cert.string(), .key_file = test_pki().exchange_key.string()};
    o.on_request = [this](const fake_exchange::request_record&) { ++requests; };
    server.emplace(ioc, o);
    server->start();
  }
  unsigned short port() const { return server->local_endpoint().port(); }
  std::atomic<int> requests{0};
  std::optional<fake_exchange::server> server;
};

class PoolTest : public BridgeTest {
 protected:
  /// A fake-exchange on the test's loop; a member, so that it outlives the loop (stopped in TearDown).
  counted_exchange& add_exchange() { return exchanges_.emplace_back(io_.context()); }
  std::deque<counted_exchange> exchanges_;
  /// Waits until a health check reports `server` in state `up`.
  void wait_for_state(const std::string& server, bool up) {
    std::unique_lock lock(state_mutex_);
    const bool seen = state_changed_.wait_for(lock, std::chrono::seconds(20), [&] {
      const auto it = states_.find(server);
      return it != states_.end() && it->second == up;
    });
    ASSERT_TRUE(seen) << server << " was not reported " << (up ? "up" : "down");
  }
  void observe(bridge_options& o) {
    o.on_server_state = [this](const std::string&, const std::string& server, bool up) {
      std::lock_guard lock(state_mutex_);
      states_[server] = up;
      state_changed_.notify_all();
    };
  }
  std::mutex state_mutex_;
  std::condition_variable state_changed_;
  std::map<std::string, bool> states_;
};

TEST_F(PoolTest, StoppingOneOfTwoServersMovesNewRequestsToTheOtherAndNoRequestFails) {
  counted_exchange& a = add_exchange();
  counted_exchange& b = add_exchange();
  bridge_options o = options_for_upstream();
  o.upstream.servers = {{"127.0.0.1", a.port()}, {"127.0.0.1", b.port()}};
  o.upstream.address = o.upstream.servers.front();
  o.upstream.persistence = persistence::connection;  // round robin: both servers get requests
  o.upstream.check = {.type = check_type::tls, .interval = std::chrono::milliseconds(100),
                      .timeout = std::chrono::seconds(2), .rise = 1, .fall = 2};
  observe(o);
  start_bridge(o);
  const std::string a_name = "127.0.0.1:" + std::to_string(a.port());

  // An idempotent request (Autodiscover's GET, answered by the server itself with 401) on a new connection each.
  const auto run_requests = [&](int n) {
    for (int i = 0; i < n; ++i) {
      const auto r = request_once("/autodiscover/autodiscover.xml");
      ASSERT_FALSE(r.ec) << r.ec.message();
      ASSERT_EQ(r.status, 401u) << "request " << i << " was not answered by a server: " << r.body;
    }
  };
  run_requests(10);
  EXPECT_GT(a.requests.load(), 0);
  EXPECT_GT(b.requests.load(), 0);
  EXPECT_EQ(a.requests + b.requests, 10);

  io_.run([&]() -> net::awaitable<void> {
    a.server->stop();
    co_return;
  }());
  // Before the health check notices, a refused connection is redispatched: still no failed request.
  run_requests(10);
  wait_for_state(a_name, false);
  const auto failures_when_down = bridge_->stats().get(counter::upstream_cx_connect_fail);
  const int a_before = a.requests, b_before = b.requests;
  run_requests(20);
  EXPECT_EQ(a.requests.load(), a_before);
  EXPECT_EQ(b.requests.load(), b_before + 20);
  EXPECT_EQ(bridge_->stats().get(counter::upstream_cx_connect_fail), failures_when_down)
      << "a server marked down must get no new connection";
  EXPECT_EQ(bridge_->stats().get(counter::upstream_rq_failed), 0);
  std::cout << "redispatched " << bridge_->stats().get(counter::upstream_cx_redispatched)
            << " connection(s) before the health check took the server out\n";
}

TEST_F(PoolTest, AllServersDownAnswers503NamingThePool) {
  tcp::acceptor closed(io_.context(), tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
  const unsigned short dead = closed.local_endpoint().port();
  closed.close();
  bridge_options o = options_for_upstream();
  o.upstream.address = {"127.0.0.1", dead};
  o.upstream.check = {.type = check_type::tcp, .interval = std::chrono::milliseconds(50), .rise = 1, .fall = 1};
  observe(o);
  start_bridge(o);
  wait_for_state("127.0.0.1:" + std::to_string(dead), false);
  const auto r = request_once("/");
  EXPECT_EQ(r.status, 503u);
  EXPECT_NE(r.body.find("no server of pool 'default' is available"), std::string::npos) << r.body;
  EXPECT_EQ(bridge_->stats().get(termination::upstream_unavailable), 1);
}

TEST_F(PoolTest, WhenEveryServerRefusesTheClientHearsTheLastFailure) {
  bridge_options o = options_for_upstream();
  for (int i = 0; i < 2; ++i) {
    tcp::acceptor closed(io_.context(), tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
    o.upstream.servers.push_back({"127.0.0.1", closed.local_endpoint().port()});
  }  // both closed again: connections are refused
  o.upstream.address = o.upstream.servers.front();
  start_bridge(o);
  const auto r = request_once("/");
  EXPECT_EQ(r.status, 503u);
  EXPECT_NE(r.body.find("upstream-connect-refused"), std::string::npos) << r.body;
  EXPECT_EQ(bridge_->stats().get(counter::upstream_cx_redispatched), 1);
  EXPECT_EQ(bridge_->stats().get(counter::upstream_cx_connect_fail), 2);
}

TEST_F(PoolTest, AFullServerQueuesTheNextConnectionAnd503sWhenTheQueueTimesOut) {
  bridge_options o = options_for_upstream();
  o.upstream.max_connections_per_server = 1;
  o.upstream.queue_timeout = std::chrono::milliseconds(300);
  start_bridge(o);
  io_.run([&]() -> net::awaitable<void> {
    client holder(io_.context()), waiter(io_.context());
    EXPECT_FALSE(co_await holder.connect(port()));
    const auto first = co_await holder.request("/");  // keep-alive: holds the server's only slot
    EXPECT_EQ(first.status, 200u);
    EXPECT_FALSE(co_await waiter.connect(port()));
    const auto queued = co_await waiter.request("/");
    EXPECT_EQ(queued.status, 503u);
    EXPECT_NE(queued.body.find("stayed at its limit of 1 connections"), std::string::npos) << queued.body;
  }());
  EXPECT_EQ(bridge_->stats().get(counter::upstream_queue_timeouts), 1);
  // Once the slot is free, the next connection gets it without waiting for the queue timeout.
  EXPECT_EQ(request_once("/").status, 200u);
}

TEST_F(PoolTest, RoutesSendPathsToTheirPool) {
  counted_exchange& rpc_server = add_exchange();
  bridge_options o = options_for_upstream();
  upstream_settings rpc = o.upstream;
  rpc.name = "rpc";
  rpc.address = {"127.0.0.1", rpc_server.port()};
  o.pools.push_back(rpc);
  o.routes.push_back({.prefix = "/autodiscover/", .pool = "rpc", .persistence = persistence::source,
                      .timeouts = o.timeouts});
  start_bridge(o);
  EXPECT_EQ(request_once("/AutoDiscover/autodiscover.xml").status, 401u);  // fake-exchange, case-insensitive prefix
  EXPECT_EQ(rpc_server.requests.load(), 1);
  EXPECT_EQ(request_once("/").status, 200u);  // the default pool: the test upstream
  EXPECT_EQ(rpc_server.requests.load(), 1);
}

}  // namespace
}  // namespace exbridge::proxy::test
