// Unit tests for exbridge --config (every key maps to bridge_options, every mistake names FILE:LINE and the
// key) and --check's lints and exit codes.
#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <sstream>

#include "common/errors.hpp"
#include "common/lab_pki.hpp"
#include "proxy/config/config_check.hpp"
#include "proxy/config/config_file.hpp"
#include "tests/support/test_support.hpp"

namespace exbridge::proxy {
namespace {

using namespace std::chrono_literals;

/// Writes `text` to a fresh file named after the running test and returns its path.
std::string write_config(const std::string& text) {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  const auto path = std::filesystem::temp_directory_path() /
                    ("exbridge-config-" + std::to_string(::getpid()) + "-" + info->name() + ".toml");
  std::ofstream(path) << text;
  return path.string();
}

std::string load_error(const std::string& text, std::string* file = nullptr) {
  const std::string path = write_config(text);
  if (file != nullptr) *file = path;
  try {
    load_config_file(path);
  } catch (const config_error& e) {
    return e.what();
  }
  return "(no error)";
}

const std::string minimal_listen = "[listen]\naddress = \"127.0.0.1:0\"\n[[listen.certificate]]\ncert = \"c.pem\"\nkey = \"k.pem\"\n";
const std::string minimal_upstream = "[upstream]\naddress = \"owa.customer.example:443\"\nverify = \"none\"\n";

TEST(ExbridgeConfig, FullFileMapsToEveryOption) {
  const std::string file = write_config(R"(threads = 3
[listen]
address = "0.0.0.0:8443"
[[listen.certificate]]
cert = "/etc/a/fullchain.pem"
key = "/etc/a/privkey.pem"
[[listen.certificate]]
cert = "/etc/b/fullchain.pem"
key = "/etc/b/privkey.pem"
[listen.response_headers]
"X-Frame-Options" = "SAMEORIGIN"
"Strict-Transport-Security" = "max-age=63072000"
[upstream]
address = "owa.customer.example:4443"
sni = "legacy.customer.example"
tls_min = "1.1"
tls_max = "1.2"
ciphers = "AES128-SHA"
security_level = 1
verify = "ca:/etc/exbridge/ca.pem"
[timeouts]
downstream_handshake = "31s"
client_idle = "61s"
request_headers = "62s"
keep_alive = "21m"
upstream_connect = "32s"
upstream_handshake = "33s"
response_headers = "22m"
client_data = "23m"
upstream_data = "24m"
rpc_idle = "2h"
min_throughput = 1000
throughput_window = "2m"
[log]
format = "json"
)");
  const auto loaded = load_config_file(file);
  const auto& o = loaded.options;
  EXPECT_EQ(o.threads, 3u);
  EXPECT_EQ(o.listen.host, "0.0.0.0");
  EXPECT_EQ(o.listen.port, 8443);
  EXPECT_EQ(o.identity.cert_file, "/etc/a/fullchain.pem");
  EXPECT_EQ(o.identity.key_file, "/etc/a/privkey.pem");
  ASSERT_EQ(o.sni_identities.size(), 1u);
  EXPECT_EQ(o.sni_identities[0].cert_file, "/etc/b/fullchain.pem");
  EXPECT_EQ(o.sni_identities[0].key_file, "/etc/b/privkey.pem");
  ASSERT_EQ(o.response_headers.size(), 2u);
  // In the file's order (toml++ itself keeps keys sorted).
  EXPECT_EQ(o.response_headers[0], (std::pair<std::string, std::string>{"X-Frame-Options", "SAMEORIGIN"}));
  EXPECT_EQ(o.response_headers[1], (std::pair<std::string, std::string>{"Strict-Transport-Security", "max-age=63072000"}));
  EXPECT_EQ(o.upstream.address.host, "owa.customer.example");
  EXPECT_EQ(o.upstream.address.port, 4443);
  EXPECT_EQ(o.upstream.sni, "legacy.customer.example");
  EXPECT_EQ(o.upstream.min_tls, "1.1");
  EXPECT_EQ(o.upstream.max_tls, "1.2");
  EXPECT_EQ(o.upstream.ciphers, "AES128-SHA");
  EXPECT_EQ(o.upstream.security_level, 1);
  EXPECT_EQ(o.upstream.verify, tls_verify::ca_file);
  EXPECT_EQ(o.upstream.ca_file, "/etc/exbridge/ca.pem");
  const auto& t = o.timeouts;
  EXPECT_EQ(t.downstream_handshake, 31s);
  EXPECT_EQ(t.client_idle, 61s);
  EXPECT_EQ(t.request_headers, 62s);
  EXPECT_EQ(t.keep_alive_idle, 21min);
  EXPECT_EQ(t.upstream_connect, 32s);
  EXPECT_EQ(t.upstream_handshake, 33s);
  EXPECT_EQ(t.response_headers, 22min);
  EXPECT_EQ(t.client_data, 23min);
  EXPECT_EQ(t.upstream_data, 24min);
  EXPECT_EQ(t.rpc_idle, 2h);
  EXPECT_EQ(t.min_throughput, 1000u);
  EXPECT_EQ(t.throughput_window, 2min);
  EXPECT_EQ(o.access_log, log_format::json);
  // Where each setting came from, for --check's messages.
  EXPECT_EQ(loaded.origins.at("threads"), file + ":1");
  EXPECT_EQ(loaded.origins.at("listen.certificate.1"), file + ":7");
  EXPECT_EQ(loaded.origins.at("upstream.verify"), file + ":20");
  EXPECT_EQ(loaded.origins.at("timeouts.client_data"), file + ":29");
}

TEST(ExbridgeConfig, MinimalFileKeepsTheCommandLineDefaults) {
  const auto o = load_config_file(write_config(minimal_listen + minimal_upstream)).options;
  const bridge_options defaults;
  EXPECT_EQ(o.threads, 0u);
  EXPECT_EQ(o.upstream.min_tls, defaults.upstream.min_tls);
  EXPECT_EQ(o.upstream.security_level, 0);
  EXPECT_EQ(o.upstream.verify, tls_verify::none);
  EXPECT_EQ(o.timeouts.client_data, defaults.timeouts.client_data);
  EXPECT_EQ(o.timeouts.rpc_idle, defaults.timeouts.rpc_idle);
  EXPECT_TRUE(o.sni_identities.empty());
  EXPECT_EQ(o.access_log, log_format::text);
}

TEST(ExbridgeConfig, PinIsNormalizedAsOnTheCommandLine) {
  const std::string pin(64, 'A');
  const auto o = load_config_file(write_config(minimal_listen + "[upstream]\naddress = \"10.0.0.5:443\"\nverify = \"pin:" +
                                               pin + "\"\n"))
                     .options;
  EXPECT_EQ(o.upstream.verify, tls_verify::pin);
  EXPECT_EQ(o.upstream.pin_sha256, std::string(64, 'a'));
}

struct mistake {
  std::string text;      ///< the whole file
  std::string position;  ///< ":LINE:COLUMN" expected after the file name ("" = just the file)
  std::string fragment;  ///< names the key and the problem
};

TEST(ExbridgeConfig, EveryMistakeNamesFileLineAndKey) {
  const std::vector<mistake> mistakes{
      {minimal_listen + minimal_upstream + "[timeouts]\nclient_dta = \"20m\"\n", ":10:14",
       "unknown key 'client_dta' in [timeouts] (known: client_data, client_idle,"},
      {"treads = 2\n" + minimal_listen + minimal_upstream, ":1:10", "unknown key 'treads' in the configuration"},
      {"threads = \"4\"\n" + minimal_listen + minimal_upstream, ":1:11", "'threads' must be a whole number from 0 to 256"},
      {minimal_listen + minimal_upstream + "[timeouts]\nclient_data = \"15 minutes\"\n", ":10:15", "'timeouts.client_data'"},
      {minimal_listen + minimal_upstream + "[timeouts]\nrpc_idle = true\n", ":10:12", "'timeouts.rpc_idle' must be a duration"},
      {minimal_listen + "[upstream]\naddress = \"owa.customer.example:443\"\nverify = \"cert:/x.pem\"\n", ":8:10",
       "upstream.verify 'cert:/x.pem' is not understood; use 'ca:/path/to/ca.pem'"},
      {minimal_listen + "[upstream]\naddress = \"owa.customer.example:443\"\nverify = \"pin:1234\"\n", ":8:10",
       "upstream.verify pin"},
      {"[listen]\naddress = \"127.0.0.1:0\"\n[[listen.certificate]]\ncert = \"c.pem\"\n" + minimal_upstream, ":3:1",
       "'listen.certificate.key' is missing; add key = \"/path/to/privkey.pem\" (the private key of c.pem)"},
      {minimal_listen + "[listen.response_headers]\n\"Bad Name\" = \"x\"\n" + minimal_upstream, ":7:14",
       "listen.response_headers 'Bad Name: x' must be 'Name: value'"},
      {minimal_listen + "[upstream]\naddress = \"owa.customer.example:443\"\ntls_min = \"1.4\"\nverify = \"none\"\n",
       ":8:11", "upstream.tls_min"},
      {minimal_listen + minimal_upstream + "[log]\nformat = \"xml\"\n", ":10:10",
       "log.format 'xml' is not understood; use 'text' or 'json'"},
      {minimal_listen + minimal_upstream + "[log]\nformat = 1\n", ":10:10", "'log.format' must be a string"},
      {minimal_listen + "[upstream]\naddress = \"owa.customer.example\"\nverify = \"none\"\n", ":7:11",
       "upstream.address"},
      {"[listen]\n[[listen.certificate]]\ncert = \"c.pem\"\nkey = \"k.pem\"\n" + minimal_upstream, ":1:1",
       "'listen.address' is missing; add address = \"0.0.0.0:443\""},
      {"[listen]\naddress = \"127.0.0.1:0\"\n" + minimal_upstream, ":1:1", "[listen] has no certificate; add"},
      {minimal_listen + "[upstream]\naddress = \"owa.customer.example:443\"\n", ":6:1",
       "'upstream.verify' is missing; add verify = \"ca:/etc/exbridge/exchange2007-ca.pem\""},
      {minimal_listen, "", "[upstream] is missing; add [upstream] with address"},
      {minimal_listen + minimal_upstream + "[timeouts\n", ":9:10", ""},
  };
  for (const auto& m : mistakes) {
    std::string file;
    const std::string error = load_error(m.text, &file);
    EXPECT_EQ(error.rfind(file + m.position + ": ", 0), 0u) << "expected " << file + m.position << "\n" << error;
    EXPECT_NE(error.find(m.fragment), std::string::npos) << error;
    EXPECT_EQ(error.find(file, 1), std::string::npos) << "the position is given once: " << error;
  }
}

TEST(ExbridgeConfig, MissingFileSaysSo) {
  EXPECT_THROW(
      {
        try {
          load_config_file("/nonexistent/exbridge.toml");
        } catch (const config_error& e) {
          EXPECT_NE(std::string(e.what()).find("/nonexistent/exbridge.toml: no such file"), std::string::npos);
          throw;
        }
      },
      config_error);
}

std::optional<invocation> invoke(std::vector<std::string> args) {
  args.insert(args.begin(), "exbridge");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  return parse_invocation(static_cast<int>(argv.size()), argv.data());
}

std::string invoke_error(std::vector<std::string> args) {
  try {
    invoke(std::move(args));
  } catch (const config_error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(ExbridgeConfig, ConfigIsExclusiveWithDataPathFlagsButTakesThreadsAndTimeScale) {
  const std::string file = write_config("threads = 2\n" + minimal_listen + minimal_upstream);
  const std::string error = invoke_error({"--config", file, "--listen", "127.0.0.1:0", "--timeout-client-data", "30m"});
  EXPECT_NE(error.find("--config " + file + " cannot be combined with --listen, --timeout-client-data"), std::string::npos)
      << error;
  EXPECT_NE(error.find("only --threads and --time-scale"), std::string::npos) << error;

  auto inv = invoke({"--config", file, "--threads", "5", "--time-scale", "10", "--check"});
  ASSERT_TRUE(inv);
  EXPECT_TRUE(inv->check);
  const auto o = resolve_options(*inv);
  EXPECT_EQ(o.threads, 5u);  // the flag wins over the file's 2
  EXPECT_EQ(o.time_scale, 10);
  EXPECT_EQ(o.upstream.address.host, "owa.customer.example");
  EXPECT_EQ(inv->origins.at("threads"), "--threads");

  EXPECT_NE(invoke_error({"--config", file, "--probe-upstream"}).find("only with --check"), std::string::npos);
}

TEST(ExbridgeCheck, PingEdgeLintFiresAround720And900SecondsButNotAt20Minutes) {
  // keep_alive: the edge lint alone (below 720 s, the data timeouts get the stronger timeout-below-ping).
  const auto edge = [](scaled_clock::duration d) {
    timeouts t;
    t.keep_alive_idle = d;
    return lint_timeouts(t, {}, true);
  };
  for (const auto d : {900s, 810s, 990s, 720s, 648s, 792s}) {
    const auto f = edge(d);
    ASSERT_EQ(f.size(), 1u) << d.count();
    EXPECT_EQ(f[0].code, "timeout-at-ping-edge");
    EXPECT_EQ(f[0].level, severity::warning);
  }
  for (const auto d : {1200s, 991s, 800s, 809s, 600s}) EXPECT_TRUE(edge(d).empty()) << d.count();
  timeouts data;
  data.upstream_data = 900s;
  data.rpc_idle = 15min;
  const auto both = lint_timeouts(data, {}, true);
  ASSERT_EQ(both.size(), 2u);
  EXPECT_EQ(both[0].code, "timeout-at-ping-edge");
  EXPECT_EQ(both[1].code, "timeout-at-ping-edge");
  EXPECT_TRUE(lint_timeouts(timeouts{}, {}, true).empty()) << "the defaults are clean";

  timeouts keep_alive;
  keep_alive.keep_alive_idle = 15min;
  const auto f = lint_timeouts(keep_alive, {{"timeouts.keep_alive", "exbridge.toml:12"}}, true);
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].to_string(),
            "exbridge.toml:12: warning: timeout-at-ping-edge: timeouts.keep_alive = 15 min is within 10 % of Outlook "
            "Anywhere's 900 s server->client ping: an idle channel races the timer and drops at random; fix: keep it "
            "clear of 720 s and 900 s, e.g. 20 min (the default)");
}

TEST(ExbridgeCheck, DataTimeoutsBelowThePingAreErrors) {
  for (auto member : {&timeouts::rpc_idle, &timeouts::client_data, &timeouts::upstream_data}) {
    timeouts t;
    t.*member = 5min;
    const auto f = lint_timeouts(t, {}, false);
    ASSERT_EQ(f.size(), 1u);
    EXPECT_EQ(f[0].code, "timeout-below-ping");
    EXPECT_EQ(f[0].level, severity::error);
    EXPECT_EQ(f[0].message.rfind("--timeout-", 0), 0u) << "command-line names: " << f[0].message;
  }
  timeouts headers;
  headers.response_headers = 5min;  // not a data timeout: a short think time is a choice, not a ping race
  EXPECT_TRUE(lint_timeouts(headers, {}, true).empty());
}

TEST(ExbridgeCheck, VerifyNoneAndFdLimitWarn) {
  upstream_settings u;
  EXPECT_FALSE(lint_upstream_verify(u, {}));
  u.verify = tls_verify::none;
  const auto f = lint_upstream_verify(u, {{"upstream.verify", "x.toml:9"}});
  ASSERT_TRUE(f);
  EXPECT_EQ(f->code, "verify-none");
  EXPECT_EQ(f->where, "x.toml:9");
  EXPECT_NE(f->message.find("impersonate"), std::string::npos);
  const auto fd = lint_fd_limit(1024);
  ASSERT_TRUE(fd);
  EXPECT_EQ(fd->code, "fd-limit");
  EXPECT_NE(fd->message.find("two descriptors"), std::string::npos);
  EXPECT_FALSE(lint_fd_limit(4096));
}

TEST(ExbridgeCheck, CertificateExpiringWithinTwoWeeksWarns) {
  const auto soon = make_certificate({.common_name = "mail.contoso.example", .valid_to_days = 5}, nullptr);
  auto ctx = make_tls_context(tls_profile::downstream, {.identity = {.cert_pem = soon.cert_pem, .key_pem = soon.key_pem}});
  const auto facts = describe_certificate(SSL_CTX_get0_certificate(ctx.native_handle()));
  EXPECT_NE(facts.subject.find("CN=mail.contoso.example"), std::string::npos) << facts.subject;
  EXPECT_TRUE(facts.days_left == 4 || facts.days_left == 5) << facts.days_left;
  const auto f = lint_certificate_expiry(facts, "fullchain.pem", "x.toml:4");
  ASSERT_TRUE(f);
  EXPECT_EQ(f->code, "certificate-expires-soon");
  EXPECT_NE(f->message.find("fullchain.pem"), std::string::npos);
  const auto later = make_certificate({.common_name = "mail.contoso.example", .valid_to_days = 90}, nullptr);
  auto ctx90 =
      make_tls_context(tls_profile::downstream, {.identity = {.cert_pem = later.cert_pem, .key_pem = later.key_pem}});
  EXPECT_FALSE(lint_certificate_expiry(describe_certificate(SSL_CTX_get0_certificate(ctx90.native_handle())), "", ""));
}

TEST(ExbridgeCheck, ExitCodeAndSummary) {
  const finding warning{.level = severity::warning, .code = "verify-none"};
  const finding error{.level = severity::error, .code = "timeout-below-ping"};
  EXPECT_EQ(check_exit_code({}), 0);
  EXPECT_EQ(check_exit_code({warning}), 1);
  EXPECT_EQ(check_exit_code({warning, warning}), 1);
  EXPECT_EQ(check_exit_code({warning, error}), 2);
  EXPECT_EQ(check_summary({}, "x.toml"), "config OK: x.toml");
  EXPECT_EQ(check_summary({warning, warning}, "x.toml"), "config OK with 2 warnings: x.toml");
  EXPECT_EQ(check_summary({error, warning}, "x.toml"), "config has 1 error and 1 warning: x.toml");
}

TEST(ExbridgeCheck, StartupErrorsAreLocatedAtTheirCertificate) {
  bridge_options o;
  o.identity = {.cert_file = "/etc/a.pem", .key_file = "/etc/a.key"};
  o.sni_identities = {{.cert_file = "/etc/b.pem", .key_file = "/etc/b.key"}};
  const setting_origins origins{{"listen.certificate.0", "x.toml:3"}, {"listen.certificate.1", "x.toml:6"}};
  EXPECT_EQ(locate_startup_error("private key /etc/b.key does not match", o, origins, "x.toml"),
            "x.toml:6: private key /etc/b.key does not match");
  EXPECT_EQ(locate_startup_error("cannot listen", o, origins, "x.toml"), "x.toml: cannot listen");
  EXPECT_EQ(locate_startup_error("cannot listen", o, origins, ""), "cannot listen");
}

/// The shipped example, with its certificate and CA paths pointed at the lab PKI.
std::string example_with_lab_pki() {
  std::ifstream in(std::string(EXBRIDGE_SOURCE_DIR) + "/proxy/exbridge.example.toml");
  std::stringstream text;
  text << in.rdbuf();
  const auto& pki = test::test_pki();
  std::string s = text.str();
  s = std::regex_replace(s, std::regex("/etc/letsencrypt/live/mail.example.com/fullchain.pem"), pki.bridge_cert.string());
  s = std::regex_replace(s, std::regex("/etc/letsencrypt/live/mail.example.com/privkey.pem"), pki.bridge_key.string());
  s = std::regex_replace(s, std::regex("/etc/exbridge/exchange2007-ca.pem"), pki.ca_cert.string());
  return s;
}

TEST(ExbridgeCheck, ShippedExampleHoldsTheDefaultsAndChecksClean) {
  const auto loaded = load_config_file(std::string(EXBRIDGE_SOURCE_DIR) + "/proxy/exbridge.example.toml");
  const bridge_options defaults;
  const auto& t = loaded.options.timeouts;
  for (const auto& f : timeout_fields()) EXPECT_EQ(t.*f.member, defaults.timeouts.*f.member) << f.key;
  EXPECT_EQ(t.min_throughput, defaults.timeouts.min_throughput);
  EXPECT_EQ(loaded.options.upstream.min_tls, defaults.upstream.min_tls);
  EXPECT_EQ(loaded.options.upstream.max_tls, defaults.upstream.max_tls);
  EXPECT_EQ(loaded.options.upstream.security_level, defaults.upstream.security_level);
  EXPECT_EQ(loaded.options.threads, defaults.threads);

  test::raise_fd_limit(8192);
  invocation inv;
  inv.config_file = write_config(example_with_lab_pki());
  std::ostringstream out;
  EXPECT_EQ(run_check(inv, out), 0) << out.str();
  EXPECT_EQ(out.str(), "config OK: " + inv.config_file + "\n");
}

TEST(ExbridgeCheck, ConfigErrorsAreReportedAsFindings) {
  invocation inv;
  inv.config_file = write_config("threads = \"4\"\n" + minimal_listen + minimal_upstream);
  std::ostringstream out;
  EXPECT_EQ(run_check(inv, out), 2);
  EXPECT_EQ(out.str(), inv.config_file + ":1:11: error: config: 'threads' must be a whole number from 0 to 256\n" +
                           "config has 1 error and 0 warnings: " + inv.config_file + "\n");
}


// --- pools, routes, admin ----------------------------------------------------------------------------------

namespace pools {

TEST(ExbridgeConfig, PoolsRoutesHealthChecksAndAdminMapToOptions) {
  const std::string password = test::write_temp_file("admin-password", "pa55word\n").string();
  const auto loaded = load_config_file(write_config(minimal_listen + R"([upstream]
servers = ["cas1.customer.example:443", "cas2.customer.example:443"]
verify = "none"
persistence = "connection"
max_connections_per_server = 100
queue_timeout = "45s"
retries = 1
[upstream.health_check]
type = "http"
interval = "2s"
timeout = "1s"
rise = 3
fall = 4
path = "/owa/auth/logon.aspx"
expect_status = "200-302"
[[pool]]
name = "rpc"
address = "cas3.customer.example:443"
verify = "none"
[[route]]
prefix = "/rpc/"
pool = "rpc"
persistence = "source"
[route.timeouts]
rpc_idle = "2h"
[admin]
address = "127.0.0.1:8404"
user = "ops"
password_file = ")" + password + "\"\n"));
  const auto& o = loaded.options;
  ASSERT_EQ(o.upstream.servers.size(), 2u);
  EXPECT_EQ(o.upstream.servers[1].host, "cas2.customer.example");
  EXPECT_EQ(o.upstream.address.host, "cas1.customer.example");
  EXPECT_EQ(o.upstream.persistence, persistence::connection);
  EXPECT_EQ(o.upstream.max_connections_per_server, 100u);
  EXPECT_EQ(o.upstream.queue_timeout, 45s);
  EXPECT_EQ(o.upstream.retries, 1u);
  EXPECT_EQ(o.upstream.check.type, check_type::http);
  EXPECT_EQ(o.upstream.check.interval, 2s);
  EXPECT_EQ(o.upstream.check.rise, 3u);
  EXPECT_EQ(o.upstream.check.fall, 4u);
  EXPECT_EQ(o.upstream.check.path, "/owa/auth/logon.aspx");
  EXPECT_EQ(o.upstream.check.status_max, 302u);
  ASSERT_EQ(o.pools.size(), 1u);
  EXPECT_EQ(o.pools[0].name, "rpc");
  ASSERT_EQ(o.routes.size(), 1u);
  EXPECT_EQ(o.routes[0].timeouts.rpc_idle, 2h);
  EXPECT_EQ(o.routes[0].timeouts.client_data, o.timeouts.client_data);  // inherited
  const auto rpc = route_of(o, "/RPC/rpcproxy.dll");
  EXPECT_EQ(rpc.pool->name, "rpc");
  EXPECT_EQ(rpc.persistence, persistence::source);
  EXPECT_EQ(route_of(o, "/EWS/Exchange.asmx").pool->name, "default");
  EXPECT_EQ(o.admin.password, "pa55word");
  EXPECT_EQ(o.admin.address->port, 8404);
}

TEST(ExbridgeConfig, ListenTakesOneAddressOrSeveral) {
  const auto loaded = load_config_file(write_config(
      "[listen]\naddress = [\"0.0.0.0:443\", \"[::]:443\"]\n[[listen.certificate]]\ncert = \"c.pem\"\nkey = \"k.pem\"\n" +
      minimal_upstream));
  EXPECT_EQ(loaded.options.listen.to_string(), "0.0.0.0:443");
  ASSERT_EQ(loaded.options.also_listen.size(), 1u);
  EXPECT_EQ(loaded.options.also_listen[0].host, "::");
  EXPECT_NE(load_error("[listen]\naddress = []\n" + minimal_upstream).find("lists no address"), std::string::npos);
  EXPECT_NE(load_error("[listen]\naddress = [443]\n" + minimal_upstream).find("entries must be"), std::string::npos);
}

TEST(ExbridgeConfig, PoolAndRouteMistakesNameTheLine) {
  std::string file;
  const std::string unknown_pool =
      load_error(minimal_listen + minimal_upstream + "[[route]]\nprefix = \"/rpc/\"\npool = \"rpc\"\n", &file);
  EXPECT_EQ(unknown_pool, file + ":11:8: route '/rpc/' names pool 'rpc', which is not defined; add [[pool]] with name = \"rpc\" or "
                   "use \"default\" ([upstream])");
  EXPECT_NE(load_error(minimal_listen + "[upstream]\naddress = \"a:443\"\nservers = [\"b:443\"]\nverify = \"none\"\n")
                .find("'upstream.address' and 'upstream.servers' together"),
            std::string::npos);
  EXPECT_NE(load_error(minimal_listen + minimal_upstream + "persistence = \"sticky\"\n").find("must be \"cookie\""),
            std::string::npos);
  EXPECT_NE(load_error(minimal_listen + minimal_upstream + "[upstream.health_check]\ntype = \"icmp\"\n")
                .find("'upstream.health_check.type' must be"),
            std::string::npos);
  EXPECT_NE(load_error(minimal_listen + minimal_upstream + "[upstream.health_check]\ntype = \"http\"\nexpect_status = \"300-200\"\n")
                .find("expect_status' must be a status or a range"),
            std::string::npos);
  EXPECT_NE(load_error(minimal_listen + minimal_upstream + "[upstream.health_check]\ntype = \"tcp\"\nrise = 0\n").find("rise"),
            std::string::npos);
  EXPECT_NE(load_error(minimal_listen + minimal_upstream + "[admin]\naddress = \"127.0.0.1:8404\"\nuser = \"ops\"\n")
                .find("'admin.password' is missing"),
            std::string::npos);
  EXPECT_NE(load_error(minimal_listen + minimal_upstream + "[[pool]]\nname = \"default\"\naddress = \"x:443\"\nverify = \"none\"\n")
                .find("already used"),
            std::string::npos);
  EXPECT_NE(load_error(minimal_listen + minimal_upstream + "[[route]]\nprefix = \"/rpc/\"\n[route.timeouts]\nrpc_idl = \"1h\"\n")
                .find("rpc_idl"),
            std::string::npos);
}

std::vector<std::string> codes(const std::vector<finding>& findings) {
  std::vector<std::string> out;
  for (const auto& f : findings) out.push_back(f.code);
  return out;
}

TEST(ExbridgeCheck, PoolLintsCatchSplitRpcChannelsAndMissingHealthChecks) {
  bridge_options o;
  o.upstream.servers = {{"cas1", 443}, {"cas2", 443}};
  o.upstream.address = o.upstream.servers.front();
  EXPECT_EQ(codes(lint_pools(o, {})), std::vector<std::string>{"no-health-check"});
  o.upstream.check.type = check_type::tls;
  EXPECT_TRUE(lint_pools(o, {}).empty());  // cookie persistence by default: the channels meet
  o.upstream.persistence = persistence::connection;
  EXPECT_EQ(codes(lint_pools(o, {})), std::vector<std::string>{"rpc-channels-split"});
  o.routes.push_back({.prefix = "/rpc/", .pool = "default", .persistence = persistence::source});
  EXPECT_TRUE(lint_pools(o, {}).empty());  // the /rpc/ route fixes it
}

TEST(ExbridgeCheck, ConnectionLimitAboveTheDescriptorLimitIsAnError) {
  EXPECT_FALSE(lint_connection_limit(0, 1024, {}));
  EXPECT_FALSE(lint_connection_limit(400, 1024, {}));
  const auto f = lint_connection_limit(65000, 20000, {{"listen.max_connections", "x.toml:4"}});
  ASSERT_TRUE(f);
  EXPECT_EQ(f->level, severity::error);
  EXPECT_EQ(f->where, "x.toml:4");
  EXPECT_NE(f->message.find("needs 130064 file descriptors"), std::string::npos) << f->message;
}

TEST(ExbridgeCheck, AdminOffLoopbackWithoutTlsWarns) {
  admin_settings a{.address = host_port{"127.0.0.1", 8404}, .user = "u", .password = "p"};
  EXPECT_FALSE(lint_admin(a, {}));
  a.address = host_port{"0.0.0.0", 8404};
  EXPECT_EQ(lint_admin(a, {})->code, "admin-plaintext");
  a.identity.cert_file = "c.pem";
  EXPECT_FALSE(lint_admin(a, {}));
}

TEST(ExbridgeCheck, SeedEquivalentConfigChecksClean) {
  std::ifstream in(std::string(EXBRIDGE_SOURCE_DIR) + "/proxy/packaging/seed-equivalent.toml");
  std::stringstream text;
  text << in.rdbuf();
  const auto& pki = test::test_pki();
  std::string s = text.str();
  s = std::regex_replace(s, std::regex("/etc/letsencrypt/live/clientowa.ctlab.gr/fullchain.pem"), pki.bridge_cert.string());
  s = std::regex_replace(s, std::regex("/etc/letsencrypt/live/clientowa.ctlab.gr/privkey.pem"), pki.bridge_key.string());
  s = std::regex_replace(s, std::regex("/etc/exbridge/admin.password"),
                         test::write_temp_file("seed-admin-password", "admin-password\n").string());
  test::raise_fd_limit(16384);
  invocation inv;
  inv.config_file = write_config(s);
  std::ostringstream out;
  EXPECT_EQ(run_check(inv, out), 0) << out.str();
  const auto loaded = load_config_file(inv.config_file);
  EXPECT_EQ(loaded.options.upstream.max_connections_per_server, 5000u);
  EXPECT_EQ(loaded.options.upstream.check.type, check_type::tls);
  EXPECT_EQ(loaded.options.response_headers.size(), 2u);
}

}  // namespace pools

}  // namespace
}  // namespace exbridge::proxy
