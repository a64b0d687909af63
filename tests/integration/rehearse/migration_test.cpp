// A mailbox migrated through exbridge and verified against fake-exchange's manifest, over EWS and over Outlook
// Anywhere (with both channels recycled many times); and the proof that the verification bites: a manifest that
// disagrees by one hash or one item fails the migration, on either transport.
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
    fx.rpc_out_channel_length = 1 << 20;  // Outlook Anywhere: OUT channels of 1 MiB, replaced dozens of times
    return fx;
  }

  /// The same over Outlook Anywhere, with IN channels of 64 KiB (Windows: 1 GB).
  rehearse::probe_result migrate_outlook_anywhere(const boost::json::value& manifest, const std::string& auth = "basic") {
    auto cs = migration_client(manifest, "outlook-anywhere");
    cs.in_channel_bytes = 65536;
    cs.auth = auth;
    cs.ntlm_domain = auth == "ntlm" ? "CONTOSO" : "";
    cs.show_progress = false;
    return lab_.io().run(rehearse::run_migration_probe(cs), std::chrono::seconds(300));
  }

  /// A migration of the first user's mailbox over `transport`, checked against `manifest` (written to a file).
  rehearse::client_settings migration_client(const boost::json::value& manifest, const std::string& transport) {
    const auto file = std::filesystem::temp_directory_path() /
                      ("exbridge-manifest-" + std::to_string(::getpid()) + "-" + std::to_string(++runs_) + ".json");
    write_file(file, boost::json::serialize(manifest));
    auto cs = lab_.client(lab_.exchange_options().exchange.org.users.front());
    cs.action = "migrate-mailbox";
    cs.transport = transport;
    cs.manifest_file = file.string();
    return cs;
  }

  rehearse::probe_result migrate(const boost::json::value& manifest, const std::string& listing = "find-item",
                                 unsigned page_size = 512) {
    auto cs = migration_client(manifest, "ews");
    cs.listing = listing;
    cs.page_size = page_size;
    return lab_.io().run(rehearse::run_migration_probe(cs), std::chrono::seconds(120));
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

TEST_F(MigrationTest, SyncFolderItemsListsEveryItemInPagesOfMaxChanges) {
  // 600 Inbox items in pages of at most 512 changes (two pages), and of 128 (five).
  for (const unsigned page : {512u, 128u}) {
    const auto r = migrate(true_manifest(), "sync-folder-items", page);
    EXPECT_EQ(r.outcome, "ok") << r.explanation;
    EXPECT_NE(r.explanation.find("migrated 810 items"), std::string::npos) << r.explanation;
  }
  // An item the server does not list is missed by SyncFolderItems as by FindItem.
  auto manifest = true_manifest();
  auto& items = manifest.at("users").at(0).at("folders").at(0).at("items").as_array();
  items.push_back(items.at(0));
  const auto missing = migrate(manifest, "sync-folder-items");
  EXPECT_EQ(missing.outcome, "data-missing") << missing.explanation;
  EXPECT_NE(missing.explanation.find("SyncFolderItems listed 600 items"), std::string::npos) << missing.explanation;
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

TEST_F(MigrationTest, OverOutlookAnywhereEveryItemArrivesByteExactWhileBothChannelsAreRecycled) {
  for (const std::string auth : {"basic", "ntlm"}) {
    const auto r = migrate_outlook_anywhere(true_manifest(), auth);
    ASSERT_EQ(r.outcome, "ok") << r.explanation;
    EXPECT_EQ(r.items, 810u);
    EXPECT_NE(r.explanation.find("migrated 810 items"), std::string::npos) << r.explanation;
    EXPECT_NE(r.explanation.find("Exchange 8.3.83.6"), std::string::npos) << r.explanation;
    // One virtual connection for the whole mailbox, its channels replaced as their lengths ran out: the IN
    // channel carries ~100 bytes per call, the OUT channel the FastTransfer streams (~2x the MIME, UTF-16).
    EXPECT_EQ(r.metrics.at("virtual_connections"), 1);
    EXPECT_EQ(r.metrics.at("retries"), 0);
    EXPECT_GE(r.metrics.at("in_channels_recycled"), 3);
    EXPECT_GE(r.metrics.at("out_channels_recycled"), 20);
    EXPECT_EQ(r.metrics.at("flow_control_stalls"), 0);
  }
  // exbridge paired every replacement channel with its session on the one server.
  EXPECT_GE(lab_.bridge().stats().get(proxy::counter::rpc_channels_paired), 48u);
}

TEST_F(MigrationTest, OverOutlookAnywhereAWrongHashOrAMissingItemFails) {
  auto manifest = true_manifest();
  auto& item = manifest.at("users").at(0).at("folders").at(0).at("items").at(199).as_object();  // a large item
  item["sha256"] = std::string(64, '0');
  const auto corrupt = migrate_outlook_anywhere(manifest);
  EXPECT_EQ(corrupt.outcome, "data-corruption") << corrupt.explanation;
  EXPECT_NE(corrupt.explanation.find("item 200 of \"Inbox\""), std::string::npos) << corrupt.explanation;
  EXPECT_EQ(corrupt.items, 199u);  // everything before it was verified
  auto more = true_manifest();
  auto& items = more.at("users").at(0).at("folders").at(1).at("items").as_array();
  items.push_back(items.at(0));
  const auto missing = migrate_outlook_anywhere(more);
  EXPECT_EQ(missing.outcome, "data-missing") << missing.explanation;
  EXPECT_NE(missing.explanation.find("\"Sent Items\" holds 150 items where the manifest has 151"), std::string::npos)
      << missing.explanation;
}

}  // namespace
}  // namespace exbridge

namespace exbridge {
namespace {

/// A plain-HTTP web server that answers every request with one redirect, as the http://autodiscover.<domain>
/// candidate is usually served; counts the requests.
class redirect_server {
 public:
  redirect_server(net::io_context& ioc, std::string location) : acceptor_(ioc, {net::ip::make_address("127.0.0.1"), 0}) {
    net::co_spawn(ioc, serve(std::move(location)), net::detached);
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(acceptor_.local_endpoint().port()); }
  unsigned requests() const { return requests_; }

 private:
  net::awaitable<void> serve(std::string location) {
    for (;;) {
      auto [ec, socket] = co_await acceptor_.async_accept(use_tuple);
      if (ec) co_return;
      beast::flat_buffer buffer;
      http::request<http::string_body> req;
      auto [rec, n] = co_await http::async_read(socket, buffer, req, use_tuple);
      if (rec) continue;
      ++requests_;
      http::response<http::string_body> res{http::status::found, 11};
      res.set(http::field::location, location);
      res.keep_alive(false);
      res.prepare_payload();
      co_await http::async_write(socket, res, use_tuple);
    }
  }
  tcp::acceptor acceptor_;
  std::atomic<unsigned> requests_{0};
};

TEST(AutodiscoverCandidates, FollowsTheHttpRedirectWhenNoHttpsCandidateAnswers) {
  test::bridge_lab lab;
  const auto user = lab.exchange_options().exchange.org.users.front();
  redirect_server web(lab.io().context(), "https://mail.contoso.example/autodiscover/autodiscover.xml");
  auto cs = lab.client(user);
  cs.autodiscover = "domain";
  // Neither https://contoso.example nor https://autodiscover.contoso.example answers (port 1 refuses);
  // http://autodiscover.contoso.example redirects to the bridge's public name.
  cs.resolve = {{"contoso.example", "127.0.0.1:1"},
                {"autodiscover.contoso.example", "127.0.0.1:1"},
                {"autodiscover.contoso.example:80", web.address()}};
  const auto r = lab.io().run(rehearse::run_migration_probe(cs));
  EXPECT_EQ(r.outcome, "ok") << r.explanation;
  EXPECT_EQ(web.requests(), 1u);
  EXPECT_NE(r.explanation.find("via https://contoso.example/autodiscover/autodiscover.xml: connect-failed"),
            std::string::npos)
      << r.explanation;

  // A redirect to plain http is not followed (it could hand the credentials to anyone): nothing is left.
  redirect_server insecure(lab.io().context(), "http://mail.contoso.example/autodiscover/autodiscover.xml");
  cs.resolve["autodiscover.contoso.example:80"] = insecure.address();
  const auto refused = lab.io().run(rehearse::run_migration_probe(cs));
  EXPECT_EQ(refused.outcome, "bad-response") << refused.explanation;
  EXPECT_EQ(insecure.requests(), 1u);
  // One connection in all: the first run discovered and read the mailbox on it; the second never got there.
  EXPECT_EQ(lab.bridge().stats().get(proxy::counter::downstream_cx_total), 1);
}

}  // namespace
}  // namespace exbridge

namespace exbridge {
namespace {

// A large mailbox over Outlook Anywhere through exbridge, with 35 MB items as real mailboxes have them and both
// channels replaced many times (OUT every 16 MiB, IN every 256 KiB). Size knob: EXBRIDGE_OA_BYTES (default 64 MB; slow.oa_migration_512mib runs 512 MB,
// and the full run, by hand, 4 GiB: EXBRIDGE_OA_BYTES=4294967296 build/tests/integration_tests
// --gtest_filter=OutlookAnywhereMigration.*).
TEST(OutlookAnywhereMigration, ALargeMailboxMovesThroughExbridgeWithChannelsRecycledManyTimes) {
  const std::uint64_t target = test::env_knob("EXBRIDGE_OA_BYTES", 64 << 20);
  fake_exchange::server_options fx;
  fx.exchange.mailboxes.large_every = 10;
  fx.exchange.mailboxes.large_size = 35'000'000;
  // Enough 35 MB (+-10 %) items that the mailbox holds at least `target` bytes: every tenth Inbox item is one.
  fx.exchange.mailboxes.inbox_items = static_cast<unsigned>((target + 31'499'999) / 31'500'000 * 10);
  fx.rpc_out_channel_length = 16 << 20;
  test::bridge_lab lab(fx);
  const auto manifest = fake_exchange::make_manifest(fx.exchange.org, fx.exchange.mailboxes);
  const auto file = std::filesystem::temp_directory_path() / ("exbridge-oa-large-" + std::to_string(::getpid()) + ".json");
  write_file(file, boost::json::serialize(manifest));
  auto cs = lab.client(fx.exchange.org.users.front());
  cs.action = "migrate-mailbox";
  cs.manifest_file = file.string();
  cs.in_channel_bytes = 256 << 10;
  cs.show_progress = false;
  const auto begin = std::chrono::steady_clock::now();
  const auto r = lab.io().run(rehearse::run_migration_probe(cs), std::chrono::seconds(3600));
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
  std::filesystem::remove(file);
  ASSERT_EQ(r.outcome, "ok") << r.explanation;
  EXPECT_GE(r.bytes, target);
  EXPECT_EQ(r.metrics.at("retries"), 0);
  // The FastTransfer streams are about twice the MIME (the body travels as UTF-16): one OUT channel per 16 MiB.
  EXPECT_GE(r.metrics.at("out_channels_recycled"), static_cast<double>(r.bytes / (16 << 20)));
  EXPECT_GE(r.metrics.at("in_channels_recycled"), 1);
  std::printf("%llu items, %.1f MB in %.1f s (%.1f MB/s); %g IN and %g OUT channels recycled\n",
              static_cast<unsigned long long>(r.items), static_cast<double>(r.bytes) / 1e6, seconds,
              static_cast<double>(r.bytes) / 1e6 / seconds, r.metrics.at("in_channels_recycled"),
              r.metrics.at("out_channels_recycled"));
}

}  // namespace
}  // namespace exbridge
