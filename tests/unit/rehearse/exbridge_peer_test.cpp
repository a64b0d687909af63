// The administrator's exbridge.toml in rehearse's lab: the rewrite points listener, certificate, upstream, name and
// CA at the lab, leaves out what needs the machine (user, admin listener), keeps everything else -- and exbridge's
// own config loader reads the result.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "common/errors.hpp"
#include "proxy/config/config_file.hpp"
#include "rehearse/peers/exbridge/exbridge_peer.hpp"
#include "tests/support/test_support.hpp"

namespace exbridge::rehearse {
namespace exbridge_peer_test {

TEST(ExbridgePeer, TheLabCopyOfAnAdministratorsConfigLoadsAndKeepsItsTimeouts) {
  lab_target lab;
  lab.cert = test::test_pki().bridge_cert.string();
  lab.key = test::test_pki().bridge_key.string();
  lab.upstream_addresses = {"127.0.0.1:9443"};
  lab.ca_file = test::test_pki().ca_cert.string();
  lab.upstream_name = "ex2007.contoso.example";
  const auto r = rewrite_exbridge_for_lab(EXBRIDGE_SOURCE_DIR "/scenarios/outlook-anywhere/own-exbridge-config.exbridge.toml",
                                          lab, "127.0.0.1:0");
  const auto file = std::filesystem::temp_directory_path() / ("exbridge-lab-" + std::to_string(::getpid()) + ".toml");
  std::ofstream(file) << r.text;
  const auto loaded = proxy::load_config_file(file.string());
  std::filesystem::remove(file);
  const auto& o = loaded.options;
  EXPECT_EQ(o.listen.host, "127.0.0.1");
  EXPECT_EQ(o.listen.port, 0);
  EXPECT_EQ(o.upstream.address.to_string(), "127.0.0.1:9443");
  EXPECT_EQ(o.upstream.sni, "ex2007.contoso.example");
  EXPECT_EQ(o.upstream.ca_file, lab.ca_file);
  EXPECT_EQ(o.user, "");  // left out: the lab does not drop privileges
  EXPECT_EQ(o.timeouts.rpc_idle, std::chrono::hours(1));  // as written
  bool admin_noted = false;
  for (const auto& c : r.changes) admin_noted = admin_noted || c.starts_with("line 23: admin left out");
  EXPECT_TRUE(admin_noted);
  // A file that is not TOML is named with its line.
  const auto bad = std::filesystem::temp_directory_path() / ("exbridge-bad-" + std::to_string(::getpid()) + ".toml");
  std::ofstream(bad) << "[listen]\naddress = \n";
  try {
    rewrite_exbridge_for_lab(bad, lab, "127.0.0.1:0");
    ADD_FAILURE() << "no error";
  } catch (const config_error& e) {
    EXPECT_NE(std::string(e.what()).find(bad.string() + ":2:"), std::string::npos) << e.what();
  }
  std::filesystem::remove(bad);
}

}  // namespace exbridge_peer_test
}  // namespace exbridge::rehearse
