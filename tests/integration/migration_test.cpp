// A mailbox migrated through exbridge and verified against fake-exchange's manifest; and the proof that
// the verification bites: a manifest that disagrees by one hash or one item fails the migration.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "common/lab_pki.hpp"
#include "fake_exchange/manifest.hpp"
#include "tests/support/bridge_lab.hpp"

namespace exbridge {
namespace {

class MigrationTest : public ::testing::Test {
 protected:
  static fake_exchange::server_options exchange() {
    fake_exchange::server_options fx;
    fx.exchange.mailboxes.inbox_items = 600;  // two FindItem pages
    fx.exchange.mailboxes.large_every = 200;
    fx.exchange.mailboxes.large_size = 3'000'000;
    return fx;
  }

  scenario::probe_result migrate(const boost::json::value& manifest) {
    const auto file = std::filesystem::temp_directory_path() /
                      ("exbridge-manifest-" + std::to_string(::getpid()) + "-" + std::to_string(++runs_) + ".json");
    write_file(file, boost::json::serialize(manifest));
    auto cs = lab_.client(lab_.exchange_options().exchange.org.users.front());
    cs.action = "migrate-mailbox";
    cs.manifest_file = file.string();
    return lab_.io().run(scenario::run_migration_probe(cs), std::chrono::seconds(120));
  }

  boost::json::value true_manifest() const {
    const auto& o = lab_.exchange_options().exchange;
    return fake_exchange::make_manifest(o.org, o.mailboxes);
  }

  test::bridge_lab lab_{exchange()};
  int runs_ = 0;
};

TEST_F(MigrationTest, EveryItemArrivesByteExact) {
  const auto r = migrate(true_manifest());
  EXPECT_EQ(r.outcome, "ok") << r.explanation;
  EXPECT_NE(r.explanation.find("migrated 810 items"), std::string::npos) << r.explanation;
}

TEST_F(MigrationTest, OneWrongHashIsDataCorruption) {
  auto manifest = true_manifest();
  auto& item = manifest.at("users").at(0).at("folders").at(0).at("items").at(199).as_object();  // a large item
  item["sha256"] = std::string(64, '0');
  const auto r = migrate(manifest);
  EXPECT_EQ(r.outcome, "data-corruption") << r.explanation;
  EXPECT_NE(r.explanation.find(std::string(item["id"].as_string())), std::string::npos) << r.explanation;
}

TEST_F(MigrationTest, AnItemTheServerDoesNotListIsDataMissing) {
  auto manifest = true_manifest();
  auto& items = manifest.at("users").at(0).at("folders").at(1).at("items").as_array();
  items.push_back(items.at(0));
  const auto r = migrate(manifest);
  EXPECT_EQ(r.outcome, "data-missing") << r.explanation;
}

}  // namespace
}  // namespace exbridge
