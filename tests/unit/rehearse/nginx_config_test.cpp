// nginx.conf as rehearse reads it: the parser (line numbers, quotes, errors with their line), nginx's time and size
// syntax, the lint of the shipped first-try and fixed configs (exact codes and lines), the traps it names one by
// one, and the lab rewrite -- which must parse again and pass `nginx -t` when nginx is installed.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "common/errors.hpp"
#include "rehearse/peers/nginx/nginx_config.hpp"
#include "tests/support/test_support.hpp"

namespace exbridge::rehearse {
namespace nginx_config_test {

std::string parse_error(const std::string& text) {
  try {
    parse_nginx_config(text, "t.conf");
  } catch (const config_error& e) {
    return e.what();
  }
  return "";
}

std::vector<std::string> codes(const std::vector<config_finding>& findings) {
  std::vector<std::string> out;
  for (const auto& f : findings) out.push_back(f.code);
  std::sort(out.begin(), out.end());
  return out;
}

const config_finding* code(const std::vector<config_finding>& findings, const std::string& c) {
  for (const auto& f : findings) {
    if (f.code == c) return &f;
  }
  return nullptr;
}

TEST(NginxConfig, ParsesDirectivesBlocksQuotesAndLines) {
  const auto cfg = parse_nginx_config("# comment\nevents { worker_connections 10; }\nhttp {\n  server {\n"
                                      "    proxy_set_header Connection \"\";  # cleared\n    return 301 'a b';\n  }\n}\n",
                                      "t.conf");
  ASSERT_EQ(cfg.main.size(), 2u);
  EXPECT_EQ(cfg.main[0].name, "events");
  EXPECT_EQ(cfg.main[0].line, 2);
  const auto& server = cfg.main[1].block.at(0);
  EXPECT_EQ(server.line, 4);
  ASSERT_EQ(server.block.size(), 2u);
  EXPECT_EQ(server.block[0].args, (std::vector<std::string>{"Connection", ""}));
  EXPECT_EQ(server.block[0].line, 5);
  EXPECT_EQ(server.block[1].args, (std::vector<std::string>{"301", "a b"}));
  EXPECT_NE(parse_error("http {\n  listen 443\n}\n").find("t.conf:2: directive 'listen' is not ended by ';'"),
            std::string::npos)
      << parse_error("http {\n  listen 443\n}\n");
  EXPECT_NE(parse_error("http {\n server {\n}\n").find("not closed"), std::string::npos);
  EXPECT_NE(parse_error("}\n").find("t.conf:1: '}' without a block"), std::string::npos);
  EXPECT_NE(parse_error("a \"b;\n").find("t.conf:1: a quoted string is not closed"), std::string::npos);
}

TEST(NginxConfig, TimesAndSizesAsNginxWritesThem) {
  EXPECT_EQ(nginx_time_ms("60"), 60'000);
  EXPECT_EQ(nginx_time_ms("60s"), 60'000);
  EXPECT_EQ(nginx_time_ms("1h"), 3'600'000);
  EXPECT_EQ(nginx_time_ms("1m30s"), 90'000);
  EXPECT_EQ(nginx_time_ms("500ms"), 500);
  EXPECT_FALSE(nginx_time_ms("1x"));
  EXPECT_FALSE(nginx_time_ms(""));
  EXPECT_EQ(nginx_size_bytes("0"), 0);
  EXPECT_EQ(nginx_size_bytes("1m"), 1 << 20);
  EXPECT_EQ(nginx_size_bytes("2G"), 2LL << 30);
  EXPECT_FALSE(nginx_size_bytes("big"));
}

TEST(NginxConfig, TheShippedFirstTryNamesEveryDefaultThatBreaksOutlookAnywhere) {
  const auto cfg = load_nginx_config(EXBRIDGE_SOURCE_DIR "/scenarios/nginx/nginx-first-try.nginx.conf");
  const auto findings = lint_nginx_config(cfg);
  EXPECT_EQ(codes(findings), (std::vector<std::string>{"body-size-limit", "body-timeout", "connection-header", "http-version",
                                                       "ntlm-not-bound", "read-timeout", "request-buffering",
                                                       "response-buffering", "upstream-not-verified"}));
  // Missing directives are reported at the location that serves /rpc/ (line 34), with the fix for it.
  const auto* body = code(findings, "body-size-limit");
  ASSERT_NE(body, nullptr);
  EXPECT_EQ(body->line, 34);
  EXPECT_EQ(body->severity, "error");
  EXPECT_NE(body->message.find("1m (the default)"), std::string::npos);
  EXPECT_NE(body->fix.find("client_max_body_size 0;  (in location /)"), std::string::npos);
  EXPECT_EQ(code(findings, "ntlm-not-bound")->line, 17);  // the upstream block
  EXPECT_NE(code(findings, "ntlm-not-bound")->message.find("no 'keepalive'"), std::string::npos);
  const auto fixed = lint_nginx_config(load_nginx_config(EXBRIDGE_SOURCE_DIR "/scenarios/nginx/nginx-fixed.nginx.conf"));
  EXPECT_EQ(codes(fixed), (std::vector<std::string>{"ntlm-not-bound"}));
}

TEST(NginxConfig, EachTrapIsNamedAtItsLine) {
  const std::string head =
      "http {\n upstream ex { server 10.0.0.1:443; keepalive 8; }\n server {\n  listen 443 ssl;\n"
      "  ssl_protocols TLSv1 TLSv1.2;\n  location /rpc/ {\n   proxy_pass https://ex;\n";
  const std::string tail = "  }\n }\n}\n";
  const auto lint = [&](const std::string& body) { return lint_nginx_config(parse_nginx_config(head + body + tail, "t.conf")); };
  const auto all = lint("   client_max_body_size 100m;\n   proxy_read_timeout 900s;\n   proxy_ssl_protocols TLSv1.2;\n");
  EXPECT_EQ(code(all, "body-size-limit")->line, 8);
  EXPECT_NE(code(all, "body-size-limit")->message.find("100m"), std::string::npos);
  EXPECT_EQ(code(all, "read-timeout")->line, 9);  // 900 s is the ping interval itself: the edge, refused
  EXPECT_EQ(code(all, "tls10-not-offered")->line, 10);
  EXPECT_EQ(code(all, "tls10-needs-seclevel0")->line, 6);  // no proxy_ssl_ciphers: at the location
  EXPECT_EQ(code(all, "public-old-tls")->line, 5);
  EXPECT_NE(code(all, "ntlm-not-bound")->message.find("shares its idle server connections"), std::string::npos);
  EXPECT_EQ(code(all, "ntlm-not-bound")->line, 2);
  // What the fixes look like when they are there: none of those findings.
  const auto good = lint("   client_max_body_size 0;\n   proxy_read_timeout 1h;\n   client_body_timeout 1h;\n"
                         "   proxy_request_buffering off;\n   proxy_buffering off;\n   proxy_http_version 1.1;\n"
                         "   proxy_set_header Connection \"\";\n   proxy_ssl_ciphers DEFAULT:@SECLEVEL=0;\n"
                         "   proxy_ssl_verify on;\n");
  EXPECT_EQ(codes(good), (std::vector<std::string>{"ntlm-not-bound", "public-old-tls"}));
  // nginx Plus's ntlm directive is an error in open-source nginx.
  const auto plus = lint_nginx_config(parse_nginx_config(
      "http {\n upstream ex { server a:443; ntlm; }\n server {\n  listen 443 ssl;\n  location / { proxy_pass https://ex; }\n }\n}\n",
      "t.conf"));
  EXPECT_EQ(code(plus, "ntlm-directive")->line, 2);
  EXPECT_EQ(code(plus, "ntlm-directive")->severity, "error");
  // No TLS listener, no proxy_pass.
  EXPECT_EQ(codes(lint_nginx_config(parse_nginx_config("http { server { listen 80; } }", "t.conf"))),
            (std::vector<std::string>{"no-tls-listener"}));
  EXPECT_EQ(codes(lint_nginx_config(parse_nginx_config("http { server { listen 443 ssl; location / { root /x; } } }", "t.conf"))),
            (std::vector<std::string>{"no-proxy-pass"}));
}

TEST(NginxConfig, TheLabRewriteKeepsMistakesAndPassesNginxTest) {
  const auto cfg = load_nginx_config(EXBRIDGE_SOURCE_DIR "/scenarios/nginx/nginx-fixed.nginx.conf");
  const auto dir = std::filesystem::temp_directory_path() / ("exbridge-nginx-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  nginx_lab lab;
  lab.listen_address = "127.0.0.1:18443";
  lab.cert = test::test_pki().bridge_cert.string();
  lab.key = test::test_pki().bridge_key.string();
  lab.upstream_addresses = {"127.0.0.1:9443"};
  lab.ca_file = test::test_pki().ca_cert.string();
  lab.upstream_name = "ex2007.contoso.example";
  lab.run_dir = dir;
  lab.time_scale = 100;
  lab.spare_address = [] { return std::string("127.0.0.1:18080"); };
  const auto r = rewrite_nginx_for_lab(cfg, lab);
  EXPECT_NO_THROW(parse_nginx_config(r.text, "lab.conf"));  // the lab copy is nginx syntax again
  const std::string& t = r.text;
  EXPECT_NE(t.find("listen 127.0.0.1:18443 ssl;  # line 29"), std::string::npos) << t;
  EXPECT_NE(t.find("listen 127.0.0.1:18080;  # line 23"), std::string::npos) << t;
  EXPECT_NE(t.find("server 127.0.0.1:9443;  # line 17"), std::string::npos) << t;
  EXPECT_NE(t.find("proxy_read_timeout 36000ms;"), std::string::npos) << t;  // 1h at time scale 100
  EXPECT_NE(t.find("proxy_ssl_name ex2007.contoso.example;"), std::string::npos);
  EXPECT_NE(t.find("proxy_request_buffering off;"), std::string::npos);  // the rest as written
  EXPECT_EQ(t.find("www-data"), std::string::npos);
  EXPECT_EQ(t.find("/var/log/nginx"), std::string::npos);
  EXPECT_NE(t.find("pid " + dir.string() + "/nginx.pid;"), std::string::npos);
  EXPECT_GE(r.changes.size(), 10u);
  if (std::filesystem::exists("/usr/sbin/nginx")) {
    // nginx's own check of the lab copy: every directive known, every file it names readable.
    const auto conf = dir / "lab.conf";
    std::ofstream(conf) << t;
    const std::string command = "/usr/sbin/nginx -t -p " + dir.string() + " -e " + (dir / "e.log").string() + " -c " +
                                conf.string() + " > " + (dir / "t.out").string() + " 2>&1";
    EXPECT_EQ(std::system(command.c_str()), 0);
    std::ifstream out(dir / "t.out");
    const std::string said((std::istreambuf_iterator<char>(out)), {});
    EXPECT_NE(said.find("test is successful"), std::string::npos) << said;
  }
  std::filesystem::remove_all(dir);
}

}  // namespace nginx_config_test
}  // namespace exbridge::rehearse
