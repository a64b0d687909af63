// Fault soak: a mailbox streamed through exbridge while fake-exchange resets, stalls and truncates GetItem
// answers. The client retries each broken batch on a new connection, as the migration service does, and
// checks every item's SHA-256 against the manifest; exbridge must give each client connection its own
// server connection, so no server connection is ever used again after a fault.
// Size knob: EXBRIDGE_SOAK_BYTES (default 256 MiB; the slow ctest entry streams 10 GiB).
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "common/lab_pki.hpp"
#include "fake_exchange/manifest.hpp"
#include "tests/support/bridge_lab.hpp"

namespace exbridge {
namespace {

using fake_exchange::fault_kind;
using fake_exchange::fault_rule;

constexpr std::uint64_t large_size = 20'000'000;
constexpr unsigned large_every = 4;
// Small items are at least this big, so that every GetItem answer is longer than every fault's
// `after_bytes`: then each fault that fires really breaks its answer, and can be counted.
constexpr std::uint64_t small_min = 200'000, small_max = 400'000;
constexpr std::uint64_t cut_after = 100'000;
// The client gives up on a silent connection after this long; a stall outlasts it.
constexpr auto client_read_timeout = std::chrono::seconds(3);
constexpr auto stall = std::chrono::seconds(4);

fault_rule rule(const std::string& name, fault_kind kind, std::uint64_t nth, double percent) {
  fault_rule r;
  r.name = name;
  r.path = "/EWS/";
  r.operation = "GetItem";
  r.nth = nth;
  r.times = nth == 0 ? 0 : 1;
  r.percent = percent;
  r.seed = 2007 + static_cast<std::uint64_t>(kind);
  r.action.kind = kind;
  r.action.after_bytes = cut_after;
  if (kind == fault_kind::stall) r.action.duration = stall;
  return r;
}

fake_exchange::server_options soak_exchange(std::uint64_t target_bytes) {
  fake_exchange::server_options fx;
  auto& m = fx.exchange.mailboxes;
  m.small_min = small_min;
  m.small_max = small_max;
  m.large_every = large_every;
  m.large_size = large_size;
  // An inbox item averages (large + (every-1) x small) / every; Sent and Deleted Items add a little.
  const std::uint64_t per_item = (large_size + (large_every - 1) * (small_min + small_max) / 2) / large_every;
  m.inbox_items = static_cast<unsigned>(target_bytes / per_item + 1);
  // One of each fault early on, whatever the size; then faults at random for the rest of the run.
  fx.faults = {rule("reset-3rd", fault_kind::reset, 3, 100), rule("truncate-5th", fault_kind::truncate, 5, 100),
               rule("stall-7th", fault_kind::stall, 7, 100), rule("reset-5pct", fault_kind::reset, 0, 5),
               rule("truncate-4pct", fault_kind::truncate, 0, 4), rule("stall-1pct", fault_kind::stall, 0, 1)};
  return fx;
}

TEST(FaultSoak, EveryItemSurvivesResetsStallsAndTruncations) {
  const std::uint64_t target = test::env_knob("EXBRIDGE_SOAK_BYTES", 256ull << 20);
  const auto fx = soak_exchange(target);
  test::bridge_lab lab(fx);
  const auto& o = lab.exchange_options().exchange;
  const auto manifest = fake_exchange::make_manifest(o.org, o.mailboxes);
  std::uint64_t manifest_items = 0;
  for (const auto& folder : manifest.at("users").at(0).at("folders").as_array()) {
    manifest_items += folder.at("items").as_array().size();
  }
  const auto file = std::filesystem::temp_directory_path() / ("exbridge-soak-" + std::to_string(::getpid()) + ".json");
  write_file(file, boost::json::serialize(manifest));

  auto cs = lab.client(o.org.users.front());
  cs.action = "migrate-mailbox";
  cs.transport = "ews";
  cs.manifest_file = file.string();
  cs.retries = 8;
  cs.backoff_base = std::chrono::milliseconds(10);
  cs.read_write_timeout = client_read_timeout;
  cs.show_progress = false;
  const auto begin = std::chrono::steady_clock::now();
  const auto r = lab.io().run(rehearse::run_migration_probe(cs), std::chrono::seconds(7200));
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
  std::filesystem::remove(file);

  // Every item arrived and matched its SHA-256 (the client reports data-corruption or data-missing else).
  ASSERT_EQ(r.outcome, "ok") << r.explanation;
  EXPECT_EQ(r.items, manifest_items);
  EXPECT_GE(r.bytes, target);

  const auto faults = lab.exchange().stats().snapshot();
  const auto fired = [&](const char* action) {
    const auto it = faults.faults_by_action.find(action);
    return it == faults.faults_by_action.end() ? std::uint64_t{0} : it->second;
  };
  EXPECT_GE(fired("reset"), 1u);
  EXPECT_GE(fired("truncate"), 1u);
  EXPECT_GE(fired("stall"), 1u);
  // Each fault broke one answer, and the client went on over a new connection: one connection at the start
  // plus one per fault. exbridge opened exactly one server connection per client connection, so none was
  // used again after its answer broke.
  const auto downstream = lab.bridge().stats().get(proxy::counter::downstream_cx_total);
  const auto upstream = lab.bridge().stats().get(proxy::counter::upstream_cx_total);
  EXPECT_EQ(static_cast<std::uint64_t>(downstream), 1 + faults.faults);
  EXPECT_EQ(upstream, downstream);
  std::cout << "fault soak: " << r.items << " items, " << r.bytes << " bytes (" << (r.bytes >> 20) << " MiB) in "
            << static_cast<int>(seconds) << " s through exbridge; faults injected: " << fired("reset") << " resets, "
            << fired("truncate") << " truncations, " << fired("stall") << " stalls; " << downstream
            << " client connections, " << upstream << " server connections; 0 corrupted, 0 missing\n";
}

}  // namespace
}  // namespace exbridge
