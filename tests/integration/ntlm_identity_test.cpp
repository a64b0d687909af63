// NTLM through exbridge, many users at once: each client authenticates with its own account over NTLM
// (which binds the TCP connection, not the request) and then reads its inbox repeatedly; fake-exchange's
// folder ids name the mailbox owner, so any response delivered to the wrong user is caught.
// Size knobs: EXBRIDGE_NTLM_CLIENTS (default 50) and EXBRIDGE_NTLM_REQUESTS (default 10); the slow
// ctest entry runs 500 x 20.
#include <gtest/gtest.h>

#include <cstdlib>

#include "tests/support/bridge_lab.hpp"

namespace exbridge {
namespace {

unsigned knob(const char* name, unsigned fallback) { return static_cast<unsigned>(test::env_knob(name, fallback)); }

TEST(NtlmIdentity, ConcurrentNtlmClientsNeverSeeAnotherUsersMailbox) {
  const unsigned clients = knob("EXBRIDGE_NTLM_CLIENTS", 50);
  const unsigned requests = knob("EXBRIDGE_NTLM_REQUESTS", 10);
  fake_exchange::server_options fx;
  fx.exchange.org.users.clear();
  for (unsigned i = 0; i < clients; ++i) {
    const std::string alias = "user" + std::to_string(i);
    fx.exchange.org.users.push_back({alias + "@contoso.example", "Pw-" + std::to_string(i * 7919), alias, alias});
  }
  test::bridge_lab lab(fx);
  auto& io = lab.io();
  auto& bridge = lab.bridge();

  std::vector<scenario::probe_result> outcomes(clients);
  std::atomic<unsigned> remaining{clients};
  std::promise<void> all_done;
  for (unsigned i = 0; i < clients; ++i) {
    scenario::client_settings cs = lab.client(fx.exchange.org.users[i]);
    cs.auth = "ntlm";
    cs.ntlm_domain = i % 2 == 0 ? "CONTOSO" : "";  // half log on as DOMAIN\user, half by UPN
    cs.ews_requests = requests;
    // All clients share this test's single event loop with the bridge and the server (and run slower under
    // ASan): the test is about identity, not latency, so the client's own time limits are relaxed.
    cs.connect_timeout = std::chrono::minutes(10);
    cs.request_timeout = std::chrono::minutes(10);
    net::co_spawn(io.context(), scenario::run_migration_probe(cs),
                  [&, i](std::exception_ptr e, scenario::probe_result r) {
                    outcomes[i] = e ? scenario::probe_result{"exception", "the probe threw"} : std::move(r);
                    if (--remaining == 0) all_done.set_value();
                  });
  }
  ASSERT_EQ(all_done.get_future().wait_for(std::chrono::seconds(600)), std::future_status::ready)
      << remaining.load() << " clients did not finish";

  unsigned ok = 0;
  for (unsigned i = 0; i < outcomes.size(); ++i) {
    EXPECT_EQ(outcomes[i].outcome, "ok") << "client " << i << ": " << outcomes[i].explanation;
    ok += outcomes[i].outcome == "ok" ? 1 : 0;
  }
  EXPECT_EQ(ok, clients);
  // Every request went on a pinned pair: one upstream connection per client connection.
  EXPECT_EQ(bridge.stats().get(proxy::counter::upstream_cx_total), clients);
  EXPECT_GE(bridge.stats().get(proxy::counter::upstream_rq_pinned), static_cast<std::int64_t>(clients * requests));
  std::cout << "NTLM identity: " << clients << " clients x " << requests << " EWS requests, " << ok
            << " without a single crossover\n";
}

}  // namespace
}  // namespace exbridge
