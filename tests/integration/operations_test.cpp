// exbridge operations, end to end in process: a pool of two fake-exchange servers with health checks and
// redispatch, the admin listener (authentication, strict Prometheus parsing of /metrics, the live view), and
// certificate reloads under load (no channel dropped, new handshakes see the new certificate).
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
#include "proxy/admin.hpp"
#include "tests/support/bridge_fixture.hpp"

namespace exbridge::proxy::test {
namespace {

// --- a strict Prometheus text-format (0.0.4) parser ---------------------------------------------------------

struct sample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};

/// Parses the exposition text or throws std::runtime_error naming the offending line: metric and label names by the
/// grammar, label values with only \\ \" \n escapes, a TYPE before a family's first sample and at most once,
/// no duplicate series, and for histograms cumulative buckets ending in +Inf equal to _count.
std::vector<sample> parse_prometheus(const std::string& text) {
  static const std::regex metric_name("[a-zA-Z_:][a-zA-Z0-9_:]*");
  static const std::regex label_name("[a-zA-Z_][a-zA-Z0-9_]*");
  std::vector<sample> out;
  std::map<std::string, std::string> types;
  std::set<std::string> series;
  std::istringstream in(text);
  std::string line;
  int number = 0;
  const auto fail = [&](const std::string& why) {
    throw std::runtime_error("line " + std::to_string(number) + ": " + why + ": " + line);
  };
  if (text.empty() || text.back() != '\n') fail("the text must end with a line feed");
  while (std::getline(in, line)) {
    ++number;
    if (line.empty()) continue;
    if (line[0] == '#') {
      std::istringstream words(line);
      std::string hash, kind, name;
      words >> hash >> kind >> name;
      if (kind != "HELP" && kind != "TYPE") continue;  // other comments are allowed
      if (!std::regex_match(name, metric_name)) fail("bad metric name in " + kind);
      if (kind == "TYPE") {
        std::string type;
        words >> type;
        static const std::set<std::string> known{"counter", "gauge", "histogram", "summary", "untyped"};
        if (!known.contains(type)) fail("unknown type");
        if (types.contains(name)) fail("TYPE given twice");
        types[name] = type;
      }
      continue;
    }
    sample s;
    std::size_t i = 0;
    while (i < line.size() && line[i] != '{' && line[i] != ' ') ++i;
    s.name = line.substr(0, i);
    if (!std::regex_match(s.name, metric_name)) fail("bad metric name");
    if (i < line.size() && line[i] == '{') {
      ++i;
      while (i < line.size() && line[i] != '}') {
        const std::size_t eq = line.find('=', i);
        if (eq == std::string::npos) fail("label without =");
        const std::string lname = line.substr(i, eq - i);
        if (!std::regex_match(lname, label_name)) fail("bad label name '" + lname + "'");
        if (eq + 1 >= line.size() || line[eq + 1] != '"') fail("label value not quoted");
        std::string value;
        std::size_t k = eq + 2;
        for (; k < line.size() && line[k] != '"'; ++k) {
          if (line[k] == '\\') {
            ++k;
            if (k >= line.size() || (line[k] != '\\' && line[k] != '"' && line[k] != 'n')) fail("bad escape");
            value += line[k] == 'n' ? '\n' : line[k];
          } else {
            value += line[k];
          }
        }
        if (k >= line.size()) fail("unterminated label value");
        if (s.labels.contains(lname)) fail("label given twice");
        s.labels[lname] = value;
        i = k + 1;
        if (i < line.size() && line[i] == ',') ++i;
      }
      if (i >= line.size()) fail("unterminated label set");
      ++i;
    }
    if (i >= line.size() || line[i] != ' ') fail("no value");
    const std::string value = line.substr(i + 1);
    if (value == "+Inf") s.value = INFINITY;
    else if (value == "-Inf") s.value = -INFINITY;
    else if (value == "NaN") s.value = NAN;
    else {
      std::size_t used = 0;
      try {
        s.value = std::stod(value, &used);
      } catch (const std::exception&) {
        fail("value is not a number");
      }
      if (used != value.size()) fail("trailing text after the value");
    }
    std::string family = s.name;
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
      const std::string base = s.name.substr(0, s.name.size() - std::min(s.name.size(), std::strlen(suffix)));
      if (s.name.ends_with(suffix) && types.contains(base) && types[base] == "histogram") family = base;
    }
    if (!types.contains(family)) fail("sample before its TYPE line");
    std::string key = s.name;
    for (const auto& [k, v] : s.labels) key += "|" + k + "=" + v;
    if (!series.insert(key).second) fail("duplicate series");
    out.push_back(std::move(s));
  }
  // Histograms: per label set (without le), buckets non-decreasing in le order, +Inf present and == _count.
  std::map<std::string, std::vector<std::pair<double, double>>> buckets;
  std::map<std::string, double> counts;
  for (const auto& s : out) {
    const auto strip = [&](const std::string& base) {
      std::string key = base;
      for (const auto& [k, v] : s.labels) {
        if (k != "le") key += "|" + k + "=" + v;
      }
      return key;
    };
    if (s.name.ends_with("_bucket")) {
      if (!s.labels.contains("le")) throw std::runtime_error(s.name + " without le");
      const std::string le = s.labels.at("le");
      buckets[strip(s.name.substr(0, s.name.size() - 7))].emplace_back(le == "+Inf" ? INFINITY : std::stod(le), s.value);
    } else if (s.name.ends_with("_count")) {
      counts[strip(s.name.substr(0, s.name.size() - 6))] = s.value;
    }
  }
  for (auto& [key, list] : buckets) {
    for (std::size_t k = 1; k < list.size(); ++k) {
      if (list[k - 1].first >= list[k].first) throw std::runtime_error(key + ": le not ascending");
      if (list[k - 1].second > list[k].second) throw std::runtime_error(key + ": buckets not cumulative");
    }
    if (!std::isinf(list.back().first)) throw std::runtime_error(key + ": no +Inf bucket");
    if (list.back().second != counts[key]) throw std::runtime_error(key + ": +Inf bucket differs from _count");
  }
  return out;
}

/// The parser's complaint about `text`, or "" when it parses.
std::string prometheus_error(const std::string& text) {
  try {
    parse_prometheus(text);
    return "";
  } catch (const std::runtime_error& e) {
    return e.what();
  }
}

double value_of(const std::vector<sample>& samples, const std::string& name,
                const std::map<std::string, std::string>& labels = {}) {
  for (const auto& s : samples) {
    if (s.name != name) continue;
    bool match = true;
    for (const auto& [k, v] : labels) match &= s.labels.contains(k) && s.labels.at(k) == v;
    if (match) return s.value;
  }
  ADD_FAILURE() << "no sample " << name;
  return -1;
}

TEST(PrometheusParser, RefusesWhatAStrictScraperRefuses) {
  EXPECT_EQ(prometheus_error("# TYPE a counter\na{x=\"1\\\"2\"} 3\n"), "");
  EXPECT_NE(prometheus_error("a 1\n").find("sample before its TYPE line"), std::string::npos);
  EXPECT_NE(prometheus_error("# TYPE a counter\na{x=\"1\"} 1\na{x=\"1\"} 2\n").find("duplicate series"),
            std::string::npos);
  EXPECT_NE(prometheus_error("# TYPE a counter\na{x=\"1\\q\"} 1\n").find("bad escape"), std::string::npos);
  EXPECT_NE(prometheus_error("# TYPE a counter\na{1x=\"1\"} 1\n").find("bad label name"), std::string::npos);
  EXPECT_NE(prometheus_error("# TYPE a counter\na 1x\n").find("trailing text"), std::string::npos);
  EXPECT_NE(prometheus_error("# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_count 1\nh_sum 0\n")
                .find("buckets not cumulative"),
            std::string::npos);
  EXPECT_NE(prometheus_error("# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_count 3\nh_sum 0\n")
                .find("differs from _count"),
            std::string::npos);
}

// --- pools ---------------------------------------------------------------------------------------------------

/// One fake-exchange whose requests are counted.
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

// --- admin ---------------------------------------------------------------------------------------------------

TEST_F(BridgeTest, AdminRefusesWithoutCredentialsAndServesParseableMetricsAndTheLiveView) {
  start_bridge(options_for_upstream());
  admin_settings a{.address = host_port{"127.0.0.1", 0}, .user = "ops", .password = "s3cret-admin"};
  admin_server admin(*bridge_, a);
  httplib::Client http("127.0.0.1", admin.port());
  for (const char* path : {"/", "/stats.json", "/metrics"}) {
    const auto anonymous = http.Get(path);
    ASSERT_TRUE(anonymous);
    EXPECT_EQ(anonymous->status, 401) << path;
    EXPECT_EQ(anonymous->get_header_value("WWW-Authenticate"), "Basic realm=\"exbridge admin\"");
    EXPECT_EQ(anonymous->body.find("exbridge_"), std::string::npos);
  }
  http.set_basic_auth("ops", "wrong");
  EXPECT_EQ(http.Get("/metrics")->status, 401);
  http.set_basic_auth("ops", "s3cret-admin");

  // One request done, one connection still open: the live view lists it with its bytes.
  io_.run([&]() -> net::awaitable<void> {
    client c(io_.context());
    EXPECT_FALSE(co_await c.connect(port()));
    EXPECT_EQ((co_await c.request("/big/5000")).status, 200u);
    const auto stats = http.Get("/stats.json");
    EXPECT_EQ(stats->status, 200);
    const auto json = boost::json::parse(stats->body).as_object();
    const auto& connections = json.at("connections").as_array();
    EXPECT_EQ(connections.size(), 1u);
    if (!connections.empty()) {
      const auto& c0 = connections[0].as_object();
      EXPECT_EQ(c0.at("requests").as_int64(), 1);
      EXPECT_EQ(c0.at("bytes_server_to_client").as_int64(), 5000);
      EXPECT_EQ(c0.at("last_request").as_string(), "GET /big/5000");
    }
    EXPECT_EQ(json.at("servers").as_array().size(), 1u);
  }());

  const auto metrics = http.Get("/metrics");
  ASSERT_EQ(metrics->status, 200);
  EXPECT_EQ(metrics->get_header_value("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(prometheus_error(metrics->body), "");
  const auto samples = parse_prometheus(metrics->body);
  EXPECT_EQ(value_of(samples, "exbridge_downstream_rq_total"), 1);
  EXPECT_EQ(value_of(samples, "exbridge_terminations_total", {{"reason", "completed"}}), 1);
  EXPECT_EQ(value_of(samples, "exbridge_timer_seconds_count", {{"timer", "total"}}), 1);
  EXPECT_EQ(value_of(samples, "exbridge_server_up", {{"pool", "default"}}), 1);
  EXPECT_EQ(value_of(samples, "exbridge_server_received_bytes_total", {{"pool", "default"}}) > 5000, true);
  const auto html = http.Get("/");
  EXPECT_EQ(html->status, 200);
  EXPECT_NE(html->body.find("<h2>Servers</h2>"), std::string::npos);
}

TEST(AdminAuth, ComparesWholeCredentials) {
  const auto basic = [](const std::string& s) { return "Basic " + base64_encode(s); };
  EXPECT_TRUE(basic_auth_matches(basic("ops:pw"), "ops", "pw"));
  EXPECT_FALSE(basic_auth_matches(basic("ops:pw2"), "ops", "pw"));
  EXPECT_FALSE(basic_auth_matches(basic("ops:p"), "ops", "pw"));
  EXPECT_FALSE(basic_auth_matches(basic("op:spw"), "ops", "pw"));
  EXPECT_FALSE(basic_auth_matches("Bearer x", "ops", "pw"));
  EXPECT_FALSE(basic_auth_matches("Basic !!!", "ops", "pw"));
}

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

TEST_F(BridgeTest, CertificateReloadsUnderLoadDropNoChannelAndNewHandshakesSeeTheNewCertificate) {
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

TEST_F(BridgeTest, EveryListenAddressServes) {
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

TEST_F(BridgeTest, ReloadAppliesToNewConnectionsWhileOpenOnesFinishOnTheirSettings) {
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

TEST_F(BridgeTest, DrainLetsAnOpenTransferFinishClosesIdleConnectionsAndAcceptsNoNewOne) {
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
