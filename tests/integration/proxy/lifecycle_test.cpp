// exbridge's life cycle in process: certificate reloads under load (no channel dropped, new handshakes see
// the new certificate), every listen address serving, configuration reloads for new connections only,
// and the drain at shutdown.
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

/// The bridge, started, reloaded and drained by the test.
class LifecycleTest : public BridgeTest {};

// --- certificate reloads -------------------------------------------------------------------------------------

std::string file_text(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

void install(const std::filesystem::path& from_cert, const std::filesystem::path& from_key,
             const std::filesystem::path& cert, const std::filesystem::path& key) {
  // As certbot does: new files, then renamed over the old names.
  for (const auto& [from, to] : {std::pair{from_cert, cert}, std::pair{from_key, key}}) {
    std::ofstream(to.string() + ".new", std::ios::binary) << file_text(from);
    std::filesystem::rename(to.string() + ".new", to);
  }
}

std::string sha256_of_pem_file(const std::filesystem::path& p) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_file(p.c_str(), "r"), BIO_free);
  std::unique_ptr<X509, decltype(&X509_free)> cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr), X509_free);
  unsigned char md[32];
  unsigned int len = 0;
  X509_digest(cert.get(), EVP_sha256(), md, &len);
  std::string hex;
  for (unsigned i = 0; i < len; ++i) hex += "0123456789abcdef"[md[i] >> 4], hex += "0123456789abcdef"[md[i] & 15];
  return hex;
}

TEST_F(LifecycleTest, CertificateReloadsUnderLoadDropNoChannelAndNewHandshakesSeeTheNewCertificate) {
  const int channels = static_cast<int>(env_knob("EXBRIDGE_RELOAD_CHANNELS", 50));
  const int reloads = static_cast<int>(env_knob("EXBRIDGE_RELOADS", 100));
  const auto& pki = test_pki();
  const auto dir = std::filesystem::temp_directory_path() / ("exbridge-reload-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto cert = dir / "fullchain.pem", key = dir / "privkey.pem";
  install(pki.bridge_cert, pki.bridge_key, cert, key);
  bridge_options o = options_for_upstream();
  bridge_.emplace(bridge_loop(), [&] {
    o.listen = {"127.0.0.1", 0};
    o.identity = {.cert_file = cert.string(), .key_file = key.string()};
    o.certificate_watch = std::chrono::seconds(0);  // reloads come from the test, like SIGHUP
    return o;
  }());
  bridge_->start();
  // Two valid certificates of the lab CA to alternate between (the second names another host, which is what
  // makes it recognisable; the handshakes below check the fingerprint, not the name).
  const std::array<std::pair<std::filesystem::path, std::filesystem::path>, 2> certs{
      std::pair{pki.bridge_cert, pki.bridge_key}, std::pair{pki.wrong_name_cert, pki.wrong_name_key}};

  int finished = 0, intact = 0;  // touched on the io thread only
  const std::uint64_t bytes = 256 * 1024;
  io_.run([&]() -> net::awaitable<void> {
    auto ex = co_await net::this_coro::executor;
    net::steady_timer all_finished(ex, std::chrono::minutes(2));  // the last channel cancels it
    // Long-lived channels: each streams `bytes` in 1 KiB pieces, one every 2 ms, for the whole reload run.
    for (int i = 0; i < channels; ++i) {
      net::co_spawn(ex, [&]() -> net::awaitable<void> {
        client c(io_.context());
        if (co_await c.connect(port())) co_return;
        const auto r = co_await c.request("/trickle/" + std::to_string(bytes) + "?every=2");
        if (!r.ec && r.status == 200 && r.body_bytes == bytes && r.pattern_ok) ++intact;
        if (++finished == channels) all_finished.cancel();
      }, net::detached);
    }
    auto verify_none = make_tls_context(tls_profile::exchange_online_client, {.verify = tls_verify::none});
    for (int i = 0; i < reloads; ++i) {
      const auto& [c, k] = certs[static_cast<std::size_t>(i % 2)];
      install(c, k, cert, key);
      EXPECT_FALSE(bridge_->reload_certificates()) << "reload " << i;
      tls_stream probe(ex, verify_none);
      co_await probe.next_layer().async_connect(bridge_->local_endpoint(), net::use_awaitable);
      co_await probe.async_handshake(ssl::stream_base::client, net::use_awaitable);
      EXPECT_EQ(peer_certificate_sha256(probe.native_handle()), sha256_of_pem_file(c)) << "after reload " << i;
    }
    // A renewal gone wrong is refused and the last good certificate keeps serving.
    const auto& [last_cert, last_key] = certs[static_cast<std::size_t>((reloads - 1) % 2)];
    install(pki.expired_cert, pki.expired_key, cert, key);
    const auto expired = bridge_->reload_certificates();
    EXPECT_TRUE(expired && expired->find("expired") != std::string::npos) << expired.value_or("accepted");
    install(pki.bridge_cert, pki.wrong_name_key, cert, key);
    EXPECT_TRUE(bridge_->reload_certificates()) << "a certificate with another certificate's key was accepted";
    tls_stream probe(ex, verify_none);
    co_await probe.next_layer().async_connect(bridge_->local_endpoint(), net::use_awaitable);
    co_await probe.async_handshake(ssl::stream_base::client, net::use_awaitable);
    EXPECT_EQ(peer_certificate_sha256(probe.native_handle()), sha256_of_pem_file(last_cert));
    (void)last_key;
    EXPECT_LT(finished, channels) << "the channels ended before the reloads did: raise their duration";
    if (finished < channels) co_await all_finished.async_wait(use_tuple);
  }());
  EXPECT_EQ(finished, channels);
  EXPECT_EQ(intact, channels) << "channels dropped or corrupted during certificate reloads";
  EXPECT_EQ(bridge_->stats().get(counter::certificate_reloads), reloads);
  EXPECT_EQ(bridge_->stats().get(counter::certificate_reload_failures), 2);
  std::cout << channels << " channels streamed " << bytes << " bytes each across " << reloads
            << " certificate reloads: " << intact << " intact\n";
  std::filesystem::remove_all(dir);
}

// --- configuration reloads and draining ------------------------------------------------------------------

TEST_F(LifecycleTest, EveryListenAddressServes) {
  bridge_options o = options_for_upstream();
  o.also_listen = {{"127.0.0.1", 0}, {"127.0.0.1", 0}};
  start_bridge(o);
  const auto endpoints = bridge_->local_endpoints();
  ASSERT_EQ(endpoints.size(), 3u);
  for (const auto& ep : endpoints) {
    const auto r = io_.run([&]() -> net::awaitable<client::reply> {
      client c(io_.context());
      if (auto ec = co_await c.connect(ep.port())) co_return client::reply{ec};
      co_return co_await c.request("/");
    }());
    EXPECT_EQ(r.status, 200u) << ep;
  }
  EXPECT_EQ(bridge_->stats().get(counter::downstream_rq_total), 3);
}

TEST_F(LifecycleTest, ReloadAppliesToNewConnectionsWhileOpenOnesFinishOnTheirSettings) {
  start_bridge(options_for_upstream());
  test_upstream second(io_.context());
  client before(io_.context());
  io_.run([&]() -> net::awaitable<void> {
    EXPECT_FALSE(co_await before.connect(port()));
    EXPECT_EQ((co_await before.request("/")).status, 200u);
  }());
  const int first_upstream_connections = upstream_.connections();

  // A reload that cannot work (its certificate is missing) changes nothing.
  const auto running = bridge_->context();
  bridge_options broken = running->options;
  broken.identity.cert_file = "/nonexistent/fullchain.pem";
  EXPECT_THROW(bridge_->reload(broken), config_error);
  EXPECT_EQ(bridge_->context(), running);

  bridge_options moved = running->options;
  moved.upstream.address.port = second.port();
  bridge_->reload(moved);
  EXPECT_NE(bridge_->context(), running);
  io_.run([&]() -> net::awaitable<void> {
    // The open connection keeps its upstream; a new one goes to the new upstream.
    EXPECT_EQ((co_await before.request("/")).status, 200u);
    EXPECT_EQ(upstream_.connections(), first_upstream_connections);
    client after(io_.context());
    EXPECT_FALSE(co_await after.connect(port()));
    EXPECT_EQ((co_await after.request("/")).status, 200u);
    EXPECT_EQ(second.connections(), 1);
  }());
  EXPECT_EQ(bridge_->stats().get(counter::config_reloads), 1);
}

TEST_F(LifecycleTest, DrainLetsAnOpenTransferFinishClosesIdleConnectionsAndAcceptsNoNewOne) {
  start_bridge(options_for_upstream());
  const unsigned short bridge_port = port();  // the listener is closed once the drain starts
  std::optional<std::int64_t> left;
  std::optional<client::reply> transfer;
  std::chrono::steady_clock::duration took{};
  io_.run([&]() -> net::awaitable<void> {
    auto ex = co_await net::this_coro::executor;
    client idle(io_.context()), streaming(io_.context());
    EXPECT_FALSE(co_await idle.connect(port()));
    EXPECT_EQ((co_await idle.request("/")).status, 200u);  // then idle on keep-alive
    EXPECT_FALSE(co_await streaming.connect(port()));
    // 64 KiB in 1 KiB pieces every 5 ms: about 0.3 s, still running when the drain starts.
    net::co_spawn(ex, [&]() -> net::awaitable<void> { transfer = co_await streaming.request("/trickle/65536?every=5"); },
                  net::detached);
    net::steady_timer drained(ex, std::chrono::minutes(1));
    const auto started = std::chrono::steady_clock::now();
    // `done` runs on the bridge's loop, which may be other threads (EXBRIDGE_TEST_THREADS): back to this one.
    bridge_->drain(std::chrono::seconds(30), [&, ex](std::int64_t open) {
      const auto elapsed = std::chrono::steady_clock::now() - started;
      net::post(ex, [&, open, elapsed] {
        left = open;
        took = elapsed;
        drained.cancel();
      });
    });
    co_await drained.async_wait(use_tuple);
    client late(io_.context());
    EXPECT_TRUE(co_await late.connect(bridge_port)) << "a draining bridge accepted a new connection";
  }());
  EXPECT_EQ(left, 0) << "connections left open after the drain";
  EXPECT_LT(took, std::chrono::seconds(10)) << "the idle connection held the drain up";
  ASSERT_TRUE(transfer);
  EXPECT_EQ(transfer->status, 200u);
  EXPECT_EQ(transfer->body_bytes, 65536u);
  EXPECT_TRUE(transfer->pattern_ok);
}

}  // namespace
}  // namespace exbridge::proxy::test
