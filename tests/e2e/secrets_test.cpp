// Secrets (issue 8, item 8): a real rehearsal (rehearse, fake-exchange and exbridge as processes) logs on
// with Basic and NTLM, then every byte it produced -- its stdout and stderr, and every file of its output
// folder (process logs, report.json, report.html, junit.xml, ...) -- is searched for each password of the
// scenario, the password's NT hash (MD4 of UTF-16LE, hex) and the Basic credential (base64 of user:password).
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <regex>
#include <set>
#include <sstream>

#include "common/base64.hpp"
#include "common/legacy_crypto.hpp"
#include "common/ntlm.hpp"
#include "tests/support/test_support.hpp"

namespace exbridge {
namespace {

std::string read_all(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::string hex(const std::array<std::uint8_t, 16>& bytes, bool upper) {
  static constexpr char lower_digits[] = "0123456789abcdef";
  static constexpr char upper_digits[] = "0123456789ABCDEF";
  const char* digits = upper ? upper_digits : lower_digits;
  std::string out;
  for (const auto b : bytes) {
    out += digits[b >> 4];
    out += digits[b & 15];
  }
  return out;
}

std::string nt_hash_hex(const std::string& password, bool upper) {
  std::string utf16le;  // the scenario passwords are ASCII
  for (const char ch : password) {
    utf16le += ch;
    utf16le += '\0';
  }
  return hex(md4(utf16le), upper);
}

/// The secrets a scenario file holds: step passwords (`password = "..."`) and fake-exchange accounts
/// (`--user EMAIL:PASSWORD[:NAME]`), each with the user it belongs to (for the Basic credential).
std::set<std::pair<std::string, std::string>> credentials_in(const std::string& scenario_text) {
  std::set<std::pair<std::string, std::string>> out;
  const std::regex step(R"re(email\s*=\s*"([^"]+)"\s*\npassword\s*=\s*"([^"]+)")re");
  for (std::sregex_iterator it(scenario_text.begin(), scenario_text.end(), step), end; it != end; ++it) {
    out.emplace((*it)[1], (*it)[2]);
  }
  const std::regex account(R"re("--user",\s*"([^:"]+):([^:"]+))re");
  for (std::sregex_iterator it(scenario_text.begin(), scenario_text.end(), account), end; it != end; ++it) {
    out.emplace((*it)[1], (*it)[2]);
  }
  return out;
}

/// Every form a leaked secret could take: the password itself, its NT hash, the Basic credential.
std::vector<std::pair<std::string, std::string>> secret_forms(const std::set<std::pair<std::string, std::string>>& creds) {
  std::vector<std::pair<std::string, std::string>> out;  // (what, bytes)
  for (const auto& [user, password] : creds) {
    out.emplace_back("password of " + user, password);
    out.emplace_back("NT hash of " + user + "'s password", nt_hash_hex(password, false));
    out.emplace_back("NT hash of " + user + "'s password", nt_hash_hex(password, true));
    out.emplace_back("Basic credential of " + user, base64_encode(user + ":" + password));
  }
  return out;
}

class Secrets : public ::testing::TestWithParam<const char*> {};

TEST_P(Secrets, NeverAppearInAnyOutputOfARehearsal) {
  const std::string scenario = std::string(EXBRIDGE_SOURCE_DIR) + "/scenarios/" + GetParam();
  const auto creds = credentials_in(read_all(scenario));
  ASSERT_GE(creds.size(), 1u) << "no password found in " << scenario;
  const auto out_dir = std::filesystem::temp_directory_path() /
                       ("exbridge-secrets-" + std::to_string(::getpid()) + "-" + std::filesystem::path(GetParam()).stem().string());
  std::filesystem::remove_all(out_dir);
  const auto run = test::run_command(test::program_path("rehearse"), {"run", scenario, "--out", out_dir.string()});
  ASSERT_EQ(run.exit_code, 0) << run.output;  // the logons happened, so the secrets were really used

  std::vector<std::pair<std::string, std::string>> outputs{{"stdout and stderr", run.output}};
  for (const auto& entry : std::filesystem::recursive_directory_iterator(out_dir)) {
    if (entry.is_regular_file()) outputs.emplace_back(entry.path().string(), read_all(entry.path()));
  }
  std::set<std::string> names;
  for (const auto& [name, text] : outputs) names.insert(std::filesystem::path(name).filename().string());
  for (const char* expected : {"report.json", "report.html", "junit.xml"}) {
    EXPECT_TRUE(names.count(expected)) << expected << " was not among the outputs searched";
  }
  std::size_t bytes = 0, hits = 0;
  const auto forms = secret_forms(creds);
  for (const auto& [name, text] : outputs) {
    bytes += text.size();
    for (const auto& [what, secret] : forms) {
      if (const auto at = text.find(secret); at != std::string::npos) {
        ++hits;
        ADD_FAILURE() << what << " appears in " << name << ": ..." << text.substr(at > 80 ? at - 80 : 0, 200) << "...";
      }
    }
  }
  EXPECT_EQ(hits, 0u);
  // The search does see the outputs' text: each user's name is there (it is not a secret).
  for (const auto& [user, password] : creds) {
    const std::string name = user.substr(0, user.find('@'));
    EXPECT_TRUE(std::any_of(outputs.begin(), outputs.end(), [&](const auto& o) { return o.second.find(name) != std::string::npos; }))
        << name << " appears in no output: the search did not read what the rehearsal wrote";
  }
  std::cout << GetParam() << ": " << creds.size() << " credentials (" << forms.size() << " forms) searched in "
            << outputs.size() << " outputs, " << bytes << " bytes: " << hits << " hits\n";
  if (hits == 0) std::filesystem::remove_all(out_dir);
}

INSTANTIATE_TEST_SUITE_P(Scenarios, Secrets, ::testing::Values("migration/migrate-mailbox.toml", "ntlm/ntlm-through-exbridge.toml"),
                         [](const auto& test_info) {
                           std::string name = std::filesystem::path(test_info.param).stem().string();
                           for (char& ch : name) ch = std::isalnum(static_cast<unsigned char>(ch)) ? ch : '_';
                           return name;
                         });

}  // namespace
}  // namespace exbridge
