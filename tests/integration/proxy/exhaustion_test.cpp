// Slowloris and exhaustion (issue 8, item 4): many slow clients held open do not stop a normal client
// from being served; many connections leave no file descriptor behind (counted in /proc/self/fd) and
// no memory (RSS).
// Size knobs: EXBRIDGE_SLOWLORIS_CLIENTS (default 200; the slow ctest entry runs 2000) and
// EXBRIDGE_FD_CYCLES (default 2000; the slow ctest entry runs 100000).
#include <gtest/gtest.h>

#include <sys/resource.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <iostream>

#include "tests/support/bridge_fixture.hpp"

namespace exbridge::proxy {
namespace {

using namespace std::chrono_literals;
using test::BridgeTest;
using test::client;

std::uint64_t knob(const char* name, std::uint64_t fallback) {
  const char* v = std::getenv(name);
  return v != nullptr ? std::strtoull(v, nullptr, 10) : fallback;
}

std::size_t open_fds() {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) ++n;
  return n;
}

/// Every descriptor the test may need: each connection costs two in this process (client and bridge).
void raise_fd_limit_to_hard() {
  rlimit limit{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &limit), 0);
  test::raise_fd_limit(limit.rlim_max == RLIM_INFINITY ? 1u << 20 : limit.rlim_max);
}

class ExhaustionTest : public BridgeTest {
 protected:
  /// Waits on the io thread (at most `limit`) until `done()` holds; things released asynchronously (the
  /// last sessions' sockets) are awaited this way. Returns done().
  bool wait_until(const std::function<bool()>& done, std::chrono::seconds limit) {
    return io_.run(
        [&]() -> net::awaitable<bool> {
          net::steady_timer tick(io_.context());
          const auto deadline = std::chrono::steady_clock::now() + limit;
          while (!done() && std::chrono::steady_clock::now() < deadline) {
            tick.expires_after(20ms);
            co_await tick.async_wait(use_tuple);
          }
          co_return done();
        }(),
        limit + 5s);
  }
};

// Half the slow clients finish their handshake and say nothing; half trickle one header byte every
// 250 ms and never finish their headers. The bridge's own slowloris guards (request-headers and idle
// timers) are set far beyond the test's length, so every slow client is still held while the normal one
// is measured.
TEST_F(ExhaustionTest, SlowClientsDoNotDelayANormalClient) {
  raise_fd_limit_to_hard();
  const std::uint64_t slow = knob("EXBRIDGE_SLOWLORIS_CLIENTS", 200);
  bridge_options o = options_for_upstream();
  o.timeouts.request_headers = 1h;
  o.timeouts.client_idle = 1h;
  start_bridge(o);

  std::atomic<std::uint64_t> ready{0};
  std::atomic<std::uint64_t> failed{0};
  std::promise<void> all_ready;
  auto count_ready = [&] {
    if (++ready == slow) all_ready.set_value();
  };
  // Eight launchers connect the slow clients one after the other (no SYN flood on the listen backlog).
  constexpr std::uint64_t launchers = 8;
  for (std::uint64_t l = 0; l < launchers; ++l) {
    net::co_spawn(io_.context(), [&, l]() -> net::awaitable<void> {
      for (std::uint64_t i = l; i < slow; i += launchers) {
        auto c = std::make_shared<client>(io_.context());
        if (co_await c->connect(port())) {
          ++failed;
          count_ready();
          continue;
        }
        net::co_spawn(io_.context(), [&, c, trickle = i % 2 == 1]() -> net::awaitable<void> {
          net::steady_timer pace(io_.context());
          if (!trickle) {
            count_ready();
            pace.expires_after(1h);
            co_await pace.async_wait(use_tuple);
            co_return;
          }
          const std::string head = "GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ";
          for (std::size_t sent = 0;; ++sent) {
            const std::string byte(1, sent < head.size() ? head[sent] : 'a');
            if (co_await c->send(byte)) co_return;
            if (sent == 0) count_ready();
            pace.expires_after(250ms);
            co_await pace.async_wait(use_tuple);
          }
        }, net::detached);
      }
    }, net::detached);
  }
  ASSERT_EQ(all_ready.get_future().wait_for(std::chrono::seconds(60 + slow / 10)), std::future_status::ready)
      << ready.load() << " of " << slow << " slow clients connected";
  ASSERT_EQ(failed.load(), 0u) << "slow clients that could not connect";

  std::vector<double> latencies_ms;
  for (int i = 0; i < 5; ++i) {
    const auto started = std::chrono::steady_clock::now();
    const auto r = request_once("/");  // a new connection: TCP, TLS handshake, request, response
    latencies_ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count());
    ASSERT_FALSE(r.ec) << r.ec.message();
    EXPECT_EQ(r.status, 200u);
  }
  const double worst = *std::max_element(latencies_ms.begin(), latencies_ms.end());
  // Every slow client was still held while the normal ones were served.
  EXPECT_GE(stat(counter::downstream_cx_active), static_cast<std::int64_t>(slow));
  EXPECT_EQ(stat(counter::downstream_rq_rejected), 0);
  EXPECT_EQ(stat(counter::timeouts_total), 0);
  EXPECT_LT(worst, 5000.0) << "a normal client waited " << worst << " ms behind " << slow << " slow clients";
  std::cout << "slowloris: " << slow << " slow clients held (" << slow / 2 << " idle after the handshake, "
            << slow - slow / 2 << " trickling header bytes); 5 normal clients each served in";
  for (const double ms : latencies_ms) std::cout << " " << ms << " ms";
  std::cout << " (worst " << worst << " ms)\n";
}

// Each cycle: connect, TLS handshake, one request relayed to the upstream, client closes. Afterwards the
// process has as many descriptors open as before (client, bridge and upstream sockets all released), and
// its RSS has not grown by more than 32 MiB (a leak of 330 bytes per connection would show at 100,000).
TEST_F(ExhaustionTest, ConnectionsLeaveNoDescriptorBehind) {
  raise_fd_limit_to_hard();
  const std::uint64_t cycles = knob("EXBRIDGE_FD_CYCLES", 2000);
  start_bridge(options_for_upstream());
  ASSERT_EQ(request_once("/").status, 200u);  // warm-up: whatever is opened once (resolver, caches) is open now
  ASSERT_TRUE(wait_until([&] { return stat(counter::downstream_cx_active) == 0; }, 10s));
  const std::size_t fds_before = open_fds();
  const long rss_before = test::rss_kib();
  const auto started = std::chrono::steady_clock::now();

  std::atomic<std::uint64_t> next{0};
  std::atomic<std::uint64_t> ok{0};
  constexpr int workers = 8;
  std::vector<std::future<void>> done;
  for (int w = 0; w < workers; ++w) {
    done.push_back(net::co_spawn(io_.context(), [&]() -> net::awaitable<void> {
      while (next++ < cycles) {
        client c(io_.context());
        if (co_await c.connect(port())) continue;
        const auto r = co_await c.request("/");
        if (!r.ec && r.status == 200) ++ok;
      }  // the client's socket closes here, without close_notify, as a client that just goes away
    }, net::use_future));
  }
  for (auto& f : done) {
    ASSERT_EQ(f.wait_for(std::chrono::seconds(120 + cycles / 50)), std::future_status::ready);
    f.get();
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  EXPECT_EQ(ok.load(), cycles);
  // The last sessions end asynchronously (the bridge sees the close, shuts its upstream leg down).
  const bool released = wait_until([&] { return stat(counter::downstream_cx_active) == 0 && open_fds() <= fds_before; }, 10s);
  const std::size_t fds_after = open_fds();
  EXPECT_TRUE(released) << "descriptors: " << fds_before << " before, " << fds_after << " after " << cycles
                        << " connections; active sessions " << stat(counter::downstream_cx_active);
  EXPECT_EQ(stat(counter::downstream_cx_total), static_cast<std::int64_t>(cycles + 1));
  EXPECT_EQ(stat(counter::upstream_cx_total), static_cast<std::int64_t>(cycles + 1));
  EXPECT_EQ(upstream_.connections(), static_cast<int>(cycles + 1));
  const long rss_growth_kib = test::rss_kib() - rss_before;
  if (test::rss_is_meaningful) {
    EXPECT_LT(rss_growth_kib, 32 * 1024) << "RSS grew by " << rss_growth_kib << " KiB over " << cycles << " connections";
  }
  std::cout << "fd leak check: " << cycles << " connections (" << ok.load() << " requests answered 200) in " << seconds
            << " s; open descriptors " << fds_before << " before, " << fds_after << " after; RSS " << rss_before
            << " KiB before, growth " << rss_growth_kib << " KiB\n";
}

}  // namespace
}  // namespace exbridge::proxy
