// exbridge's command line (quick mode): what it parses, the Exchange-safe defaults, the mistakes it names;
// and the termination table's HAProxy conventions.
#include <gtest/gtest.h>

#include "common/errors.hpp"
#include "proxy/session/termination.hpp"
#include "proxy/config/options.hpp"

namespace exbridge::proxy {
namespace {

std::optional<bridge_options> parse(std::vector<std::string> args) {
  args.insert(args.begin(), "exbridge");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  return parse_command_line(static_cast<int>(argv.size()), argv.data());
}

std::string parse_error(std::vector<std::string> args) {
  try {
    parse(std::move(args));
  } catch (const config_error& e) {
    return e.what();
  }
  return "";
}

const std::vector<std::string> minimal{"--listen", "127.0.0.1:0", "--cert", "c.pem", "--key", "k.pem",
                                       "--upstream", "owa.customer.example:443", "--upstream-verify", "none"};

TEST(Options, QuickModeParses) {
  auto args = minimal;
  args.insert(args.end(), {"--upstream-tls", "1.0", "--timeout-response-headers", "30m", "--threads", "3"});
  const auto o = parse(args);
  ASSERT_TRUE(o);
  EXPECT_EQ(o->upstream.address.host, "owa.customer.example");
  EXPECT_EQ(o->upstream.verify, tls_verify::none);
  EXPECT_EQ(o->timeouts.response_headers, std::chrono::minutes(30));
  EXPECT_EQ(o->threads, 3u);
}

TEST(Options, ResponseHeadersAreParsedAndChecked) {
  auto args = minimal;
  args.insert(args.end(), {"--response-header", "X-Frame-Options: SAMEORIGIN", "--response-header",
                           "Strict-Transport-Security:max-age=63072000"});
  const auto o = parse(args);
  ASSERT_EQ(o->response_headers.size(), 2u);
  EXPECT_EQ(o->response_headers[0], (std::pair<std::string, std::string>{"X-Frame-Options", "SAMEORIGIN"}));
  EXPECT_EQ(o->response_headers[1].second, "max-age=63072000");
  for (const char* bad : {"NoColon", "Bad Name: x", "X-Empty:", ": value"}) {
    auto b = minimal;
    b.insert(b.end(), {"--response-header", bad});
    EXPECT_NE(parse_error(b).find("must be 'Name: value'"), std::string::npos) << bad;
  }
}

TEST(Options, DefaultsAreExchangeSafe) {
  const auto o = parse(minimal);
  // Nothing on the data path may fire at or below Outlook Anywhere's 900 s keep-alive ping.
  EXPECT_GT(o->timeouts.keep_alive_idle, std::chrono::seconds(900));
  EXPECT_GT(o->timeouts.response_headers, std::chrono::seconds(900));
  EXPECT_GT(o->timeouts.client_data, std::chrono::seconds(900));
  EXPECT_GT(o->timeouts.upstream_data, std::chrono::seconds(900));
  EXPECT_GT(o->timeouts.rpc_idle, std::chrono::seconds(900));
}

TEST(Options, MistakesNameTheFix) {
  EXPECT_NE(parse_error({"--listen", "127.0.0.1:0"}).find("--upstream is missing"), std::string::npos);
  auto no_verify = minimal;
  no_verify.resize(no_verify.size() - 2);
  EXPECT_NE(parse_error(no_verify).find("--upstream-verify is missing"), std::string::npos);
  auto bad_tls = minimal;
  bad_tls.insert(bad_tls.end(), {"--upstream-tls", "1.4"});
  EXPECT_NE(parse_error(bad_tls).find("not a TLS version"), std::string::npos);
  auto bad_verify = minimal;
  bad_verify.insert(bad_verify.end(), {"--upstream-verify", "maybe"});
  EXPECT_NE(parse_error(bad_verify).find("ca:/path"), std::string::npos);
}

TEST(Termination, CodesFollowHaproxyAndTimeoutsAreLowerCase) {
  EXPECT_EQ(info(termination::normal).code, "--");
  EXPECT_EQ(info(termination::response_headers_timeout).code, "sH");
  EXPECT_EQ(info(termination::upstream_connect_failed).code, "SC");
  EXPECT_TRUE(is_timeout(termination::request_headers_timeout));
  EXPECT_TRUE(is_timeout(termination::response_body_timeout));
  EXPECT_FALSE(is_timeout(termination::upstream_bad_response));
}

}  // namespace
}  // namespace exbridge::proxy
