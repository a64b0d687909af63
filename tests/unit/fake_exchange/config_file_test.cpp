// Unit tests for fake-exchange's --config file: what it sets, and mistakes reported with file and line.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <unistd.h>

#include "common/errors.hpp"
#include "fake_exchange/config_file.hpp"

namespace exbridge::fake_exchange {
namespace {

std::string write_temp(const std::string& text) {
  static int n = 0;
  const auto path = std::filesystem::temp_directory_path() /
                    ("exbridge-fx-config-" + std::to_string(::getpid()) + "-" + std::to_string(++n) + ".toml");
  std::ofstream(path) << text;
  return path.string();
}

std::string config_error_of(const std::string& text) {
  server_options o;
  try {
    apply_config_file(write_temp(text), o);
  } catch (const config_error& e) {
    return e.what();
  }
  return "";
}

TEST(ConfigFile, SetsUsersOrganisationMailboxesAndFaults) {
  server_options o;
  apply_config_file(write_temp(R"(
version = "SP1"
public_host = "mail.fabrikam.example"
rpc_ping_interval = "120s"
rpc_out_channel_bytes = 8388608

[organisation]
name = "Fabrikam"
domain = "fabrikam.example"
netbios_domain = "FABRIKAM"

[[user]]
email = "dana@fabrikam.example"
password = "S3cret"
display_name = "Dana Park"

[[user]]
email = "lee@fabrikam.example"
password = "Pw2"

[[list]]
email = "team@fabrikam.example"
display_name = "Team"
members = ["dana@fabrikam.example", "lee@fabrikam.example"]

[mailboxes]
items = 600
large_every = 200
large_size = 3000000

[[fault]]
action = "error-503"
nth = 2
)"),
                    o);
  const auto& ex = o.exchange;
  EXPECT_EQ(ex.version->name, "SP1");
  EXPECT_EQ(ex.public_host, "mail.fabrikam.example");
  EXPECT_EQ(o.rpc_ping_interval, std::chrono::seconds(120));
  EXPECT_EQ(o.rpc_out_channel_length, 8u * 1024 * 1024);
  EXPECT_EQ(ex.org.domain, "fabrikam.example");
  ASSERT_EQ(ex.org.users.size(), 2u);
  EXPECT_EQ(ex.org.users[0].display_name, "Dana Park");
  EXPECT_EQ(ex.org.users[1].display_name, "lee");
  EXPECT_NE(ex.org.find_logon("FABRIKAM\\lee"), nullptr);
  ASSERT_EQ(ex.org.lists.size(), 1u);
  EXPECT_EQ(ex.org.lists[0].display_name, "Team");
  EXPECT_EQ(ex.org.lists[0].members, (std::vector<std::string>{"dana@fabrikam.example", "lee@fabrikam.example"}));
  EXPECT_EQ(ex.mailboxes.inbox_items, 600u);
  EXPECT_EQ(ex.mailboxes.large_every, 200u);
  ASSERT_EQ(o.faults.size(), 1u);
  EXPECT_EQ(o.faults[0].nth, 2u);
}

TEST(ConfigFile, MistakesNameTheLineAndTheProblem) {
  EXPECT_NE(config_error_of("[[user]]\nemail = \"a@b.example\"\npasword = \"x\"\n").find(":3:11: unknown key 'pasword'"),
            std::string::npos);
  EXPECT_NE(config_error_of("[[user]]\nemail = \"a@b.example\"\n").find(":1:1: [[user]] a@b.example needs 'password'"),
            std::string::npos)
      << config_error_of("[[user]]\nemail = \"a@b.example\"\n");
  EXPECT_NE(config_error_of("[[user]]\nemail = \"nobody\"\npassword = \"x\"\n").find(":2:"), std::string::npos);
  EXPECT_NE(config_error_of("rpc_out_channel_bytes = 4096\n").find(":1:25: 'rpc_out_channel_bytes' must be a whole number"),
            std::string::npos)
      << config_error_of("rpc_out_channel_bytes = 4096\n");
  EXPECT_NE(config_error_of("[mailboxes]\nitems = -3\n").find(":2:9: 'items' must be a whole number"), std::string::npos)
      << config_error_of("[mailboxes]\nitems = -3\n");
  EXPECT_NE(config_error_of("version = \"SP4\"\n").find(":1:"), std::string::npos);
  EXPECT_NE(config_error_of("[[fault]]\naction = \"delay\"\n").find("needs 'duration'"), std::string::npos);
  EXPECT_NE(config_error_of("users = 1\n").find("unknown key 'users'"), std::string::npos);
  EXPECT_NE(config_error_of("[[user]]\nemail = \"a@b.example\"\npassword = \"x\"\n[[user]]\nemail = \"a@b.example\"\n"
                            "password = \"y\"\n")
                .find("listed twice"),
            std::string::npos);
  EXPECT_NE(config_error_of("[organisation\n").find(":1:"), std::string::npos);
  EXPECT_NE(config_error_of("[[user]]\nemail = \"a@b.example\"\npassword = \"x\"\n[[list]]\nemail = \"l@b.example\"\n"
                            "members = [\"a@b.example\", \"z@b.example\"]\n")
                .find(":6:27: a member of l@b.example must be the e-mail address of a configured [[user]]"),
            std::string::npos)
      << config_error_of("[[user]]\nemail = \"a@b.example\"\npassword = \"x\"\n[[list]]\nemail = \"l@b.example\"\n"
                         "members = [\"a@b.example\", \"z@b.example\"]\n");
  server_options o;
  EXPECT_THROW(apply_config_file("/nonexistent/fx.toml", o), config_error);
}

}  // namespace
}  // namespace exbridge::fake_exchange

namespace exbridge::fake_exchange {
namespace {

TEST(ConfigFile, AutodiscoverRedirectsNeedOneHttpsUrlOrAddress) {
  server_options o;
  apply_config_file(write_temp("[[redirect]]\nemail = \"old@fabrikam.example\"\naddress = \"a@contoso.example\"\n"
                               "[[redirect]]\nemail = \"x@contoso.example\"\nhost = \"autodiscover.contoso.example\"\n"
                               "url = \"https://mail.contoso.example/autodiscover/autodiscover.xml\"\n"),
                    o);
  const auto& r = o.exchange.org.redirects;
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0].address, "a@contoso.example");
  EXPECT_EQ(r[1].url, "https://mail.contoso.example/autodiscover/autodiscover.xml");
  EXPECT_EQ(o.exchange.org.find_redirect("OLD@fabrikam.example", "anything:443"), &r[0]);
  EXPECT_EQ(o.exchange.org.find_redirect("x@contoso.example", "autodiscover.contoso.example:8443"), &r[1]);
  EXPECT_EQ(o.exchange.org.find_redirect("x@contoso.example", "mail.contoso.example"), nullptr);
  const std::string both = config_error_of("[[redirect]]\nemail = \"o@f.example\"\naddress = \"a@c.example\"\n"
                                           "url = \"https://h/\"\n");
  EXPECT_NE(both.find(":1:1: [[redirect]] o@f.example needs exactly one of 'address'"), std::string::npos) << both;
  const std::string plain = config_error_of("[[redirect]]\nemail = \"o@f.example\"\nurl = \"http://h/\"\n");
  EXPECT_NE(plain.find("must be an e-mail address (redirectAddr) or an https:// URL"), std::string::npos) << plain;
}

TEST(ConfigFile, WindowsProfileIsReadAndLegacyIsRefusedAtItsLine) {
  server_options o;
  apply_config_file(write_temp("windows = \"win2003-aes\"\n"), o);
  EXPECT_EQ(o.windows, schannel_profile::win2003_aes);
  const std::string legacy = config_error_of("version = \"SP3\"\nwindows = \"win2003-legacy\"\n");
  EXPECT_NE(legacy.find(":2:"), std::string::npos) << legacy;
  EXPECT_NE(legacy.find("RC4 and 3DES"), std::string::npos) << legacy;
  EXPECT_NE(config_error_of("windows = \"nt4\"\n").find("unknown"), std::string::npos);
}

}  // namespace
}  // namespace exbridge::fake_exchange
