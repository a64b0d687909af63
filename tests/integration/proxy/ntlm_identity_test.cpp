// NTLM through exbridge, many users at once: each client authenticates with its own account over NTLM
// (which binds the TCP connection, not the request) and then reads its inbox repeatedly; fake-exchange's
// folder ids name the mailbox owner, so any response delivered to the wrong user is caught.
// Size knobs: EXBRIDGE_NTLM_CLIENTS (default 50) and EXBRIDGE_NTLM_REQUESTS (default 10); the slow
// ctest entry runs 500 x 20. The second test adds random disconnects in the middle of handshakes
// (EXBRIDGE_NTLM_CLIENTS x EXBRIDGE_NTLM_ROUNDS connections, 7 in 8 of them NTLM handshakes; the slow entry
// runs 500 clients x 24 rounds, over 10,000 handshakes).
#include <gtest/gtest.h>

#include <cstdlib>
#include <random>

#include "common/ntlm.hpp"
#include "tests/support/bridge_lab.hpp"

namespace exbridge {
namespace {

unsigned knob(const char* name, unsigned fallback) { return static_cast<unsigned>(test::env_knob(name, fallback)); }

fake_exchange::server_options numbered_users(unsigned count) {
  fake_exchange::server_options fx;
  fx.exchange.org.users.clear();
  for (unsigned i = 0; i < count; ++i) {
    const std::string alias = "user" + std::to_string(i);
    fx.exchange.org.users.push_back({alias + "@contoso.example", "Pw-" + std::to_string(i * 7919), alias, alias});
  }
  return fx;
}

/// How a round of the disconnect test ends.
enum class round_kind { complete, after_challenge, after_authenticate, before_request };

/// One round on a new connection: the whole migration probe (Autodiscover and two GetFolder reads, each
/// checked to come from this user's mailbox), or an NTLM handshake the client abandons at a random point.
/// Returns "" or what went wrong.
net::awaitable<std::string> ntlm_round(rehearse::client_settings cs, round_kind kind) {
  if (kind == round_kind::complete) {
    cs.ews_requests = 2;
    const auto r = co_await rehearse::run_migration_probe(cs);
    co_return r.outcome == "ok" ? "" : r.outcome + ": " + r.explanation;
  }
  // A named options object: GCC 12 mis-handles a braced temporary holding strings inside a coroutine.
  tls_settings options;
  options.verify = cs.trust;
  options.ca_file = cs.ca_file;
  ssl::context tls = make_tls_context(tls_profile::exchange_online_client, options);
  rehearse::exo_connection conn(co_await net::this_coro::executor, tls, cs);
  if (auto f = co_await conn.ensure_connected()) co_return f->outcome + ": " + f->explanation;
  if (kind == round_kind::before_request) {
    conn.close();
    co_return "";
  }
  http::request<http::string_body> req{http::verb::post, "/EWS/Exchange.asmx", 11};
  req.set(http::field::host, cs.server_name);
  req.set(http::field::content_type, "text/xml; charset=utf-8");
  req.body() = test::get_inbox_soap();
  req.set(http::field::authorization, http_token("NTLM", make_negotiate()));
  req.prepare_payload();
  auto r1 = co_await conn.exchange(req);
  if (auto* f = std::get_if<rehearse::failure>(&r1)) co_return f->outcome + ": " + f->explanation;
  const auto& challenge = std::get<rehearse::response_t>(r1);
  const auto type2 = decode_http_token(challenge[http::field::www_authenticate]);
  if (challenge.result() != http::status::unauthorized || !type2) co_return "no NTLM challenge";
  if (kind == round_kind::after_challenge) {
    conn.close();
    co_return "";
  }
  // The Type 3 message goes out; the client leaves before the answer.
  const std::string user = cs.email.substr(0, cs.email.find('@'));
  req.set(http::field::authorization,
          http_token("NTLM", make_authenticate(*type2, user, "CONTOSO", cs.password, "EXO-MIGRATION",
                                               ntlm_random_challenge(), ntlm_filetime_now())));
  http::request<http::empty_body> head{req.method(), req.target(), 11};
  for (const auto& field : req) head.set(field.name_string(), field.value());
  if (auto f = co_await conn.send_header(head, req.body())) co_return f->outcome + ": " + f->explanation;
  conn.close();
  co_return "";
}

/// What the disconnect test's clients saw, shared by all of them.
struct disconnect_tally {
  std::mutex mutex;
  std::vector<std::string> problems;
  std::array<unsigned, 4> by_kind{};
};

/// One client of the disconnect test: `rounds` connections, each ended at a random point. A plain function
/// (not a capturing lambda) so that its coroutine frame owns its arguments.
net::awaitable<void> disconnect_worker(rehearse::client_settings cs, std::uint32_t seed, unsigned rounds,
                                       disconnect_tally& tally) {
  std::mt19937 random(seed);
  for (unsigned r = 0; r < rounds; ++r) {
    // Half the rounds complete; the rest leave after the challenge, after the Type 3 message, or before any
    // request (a TLS connection with nothing on it).
    const unsigned roll = random() % 8;
    const auto kind = roll < 4   ? round_kind::complete
                      : roll < 6 ? round_kind::after_challenge
                      : roll < 7 ? round_kind::after_authenticate
                                 : round_kind::before_request;
    const std::string problem = co_await ntlm_round(cs, kind);
    std::lock_guard lock(tally.mutex);
    ++tally.by_kind[static_cast<std::size_t>(kind)];
    if (!problem.empty()) tally.problems.push_back(cs.email + " round " + std::to_string(r) + ": " + problem);
  }
}

TEST(NtlmIdentity, ConcurrentNtlmClientsNeverSeeAnotherUsersMailbox) {
  const unsigned clients = knob("EXBRIDGE_NTLM_CLIENTS", 50);
  const unsigned requests = knob("EXBRIDGE_NTLM_REQUESTS", 10);
  const auto fx = numbered_users(clients);
  test::bridge_lab lab(fx);
  auto& io = lab.io();
  auto& bridge = lab.bridge();

  std::vector<rehearse::probe_result> outcomes(clients);
  std::atomic<unsigned> remaining{clients};
  std::promise<void> all_done;
  for (unsigned i = 0; i < clients; ++i) {
    rehearse::client_settings cs = lab.client(fx.exchange.org.users[i]);
    cs.auth = "ntlm";
    cs.ntlm_domain = i % 2 == 0 ? "CONTOSO" : "";  // half log on as DOMAIN\user, half by UPN
    cs.ews_requests = requests;
    // All clients share this test's single event loop with the bridge and the server (and run slower under
    // ASan): the test is about identity, not latency, so the client's own time limits are relaxed.
    cs.connect_timeout = std::chrono::minutes(10);
    cs.request_timeout = std::chrono::minutes(10);
    net::co_spawn(io.context(), rehearse::run_migration_probe(cs),
                  [&, i](std::exception_ptr e, rehearse::probe_result r) {
                    outcomes[i] = e ? rehearse::probe_result{"exception", "the probe threw"} : std::move(r);
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

TEST(NtlmIdentity, RandomDisconnectsInHandshakesNeverCrossIdentities) {
  const unsigned clients = knob("EXBRIDGE_NTLM_CLIENTS", 50);
  const unsigned rounds = knob("EXBRIDGE_NTLM_ROUNDS", 4);
  const std::uint32_t seed = knob("EXBRIDGE_NTLM_SEED", 2007);
  const auto fx = numbered_users(clients);
  test::bridge_lab lab(fx);
  auto& io = lab.io();
  auto& bridge = lab.bridge();

  disconnect_tally tally;
  auto& mutex = tally.mutex;
  auto& problems = tally.problems;
  auto& by_kind = tally.by_kind;
  std::atomic<unsigned> remaining{clients};
  std::promise<void> all_done;
  for (unsigned i = 0; i < clients; ++i) {
    rehearse::client_settings cs = lab.client(fx.exchange.org.users[i]);
    cs.auth = "ntlm";
    cs.ntlm_domain = "CONTOSO";
    cs.connect_timeout = std::chrono::minutes(10);
    cs.request_timeout = std::chrono::minutes(10);
    net::co_spawn(io.context(), disconnect_worker(cs, seed + i, rounds, tally), [&](std::exception_ptr e) {
      if (e) {
        std::string what = "unknown";
        try {
          std::rethrow_exception(e);
        } catch (const std::exception& ex) {
          what = ex.what();
        } catch (...) {
        }
        std::lock_guard lock(mutex);
        problems.push_back("a client threw: " + what);
      }
      if (--remaining == 0) all_done.set_value();
    });
  }
  ASSERT_EQ(all_done.get_future().wait_for(std::chrono::seconds(1800)), std::future_status::ready)
      << remaining.load() << " clients did not finish";

  std::lock_guard lock(mutex);
  for (const auto& p : problems) ADD_FAILURE() << p;
  const unsigned total = clients * rounds;
  const unsigned handshakes = total - by_kind[static_cast<std::size_t>(round_kind::before_request)];
  EXPECT_GT(by_kind[static_cast<std::size_t>(round_kind::after_challenge)], 0u);
  EXPECT_GT(by_kind[static_cast<std::size_t>(round_kind::after_authenticate)], 0u);
  // Every client connection had its own server connection, and none was used for a second client.
  const auto downstream = bridge.stats().get(proxy::counter::downstream_cx_total);
  EXPECT_EQ(downstream, static_cast<std::int64_t>(total));
  // A connection that never sent a request got no server connection; every other one got its own.
  EXPECT_EQ(bridge.stats().get(proxy::counter::upstream_cx_total), static_cast<std::int64_t>(handshakes));
  std::cout << "NTLM disconnects: " << clients << " clients x " << rounds << " rounds = " << total << " connections, "
            << handshakes << " NTLM handshakes started (" << by_kind[0] << " completed and checked, " << by_kind[1]
            << " abandoned after the challenge, " << by_kind[2] << " after the Type 3 message; " << by_kind[3]
            << " connections closed before any request), " << bridge.stats().get(proxy::counter::upstream_cx_total)
            << " server connections, " << problems.size() << " problems, 0 crossovers allowed\n";
}

}  // namespace
}  // namespace exbridge
