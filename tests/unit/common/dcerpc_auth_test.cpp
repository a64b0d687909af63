// NTLM-protected DCE/RPC fragments (common/dcerpc_auth): what is signed and what is encrypted ([MS-RPCE]
// 2.2.2.11), the 16-byte padding before the sec_trailer, fragmentation that leaves room for the verifier, and
// what the receiving side refuses.
#include <gtest/gtest.h>

#include "common/dcerpc_auth.hpp"
#include "common/le_bytes.hpp"
#include "common/ntlm.hpp"

namespace exbridge {
namespace dcerpc_auth_test {

using namespace dcerpc;

ntlm_key session_key() {
  ntlm_key k{};
  for (std::size_t i = 0; i < k.size(); ++i) k[i] = static_cast<std::uint8_t>(i * 7 + 1);
  return k;
}

constexpr std::uint32_t flags = ntlm_flag::unicode | ntlm_flag::ntlm | ntlm_flag::sign | ntlm_flag::seal |
                                ntlm_flag::always_sign | ntlm_flag::extended_sessionsecurity | ntlm_flag::key_128 |
                                ntlm_flag::key_exch;

struct pair {
  ntlm_session client{session_key(), flags, ntlm_session::role::client};
  ntlm_session server{session_key(), flags, ntlm_session::role::server};
};

std::string stub_of(const std::string& fragment) {
  auto decoded = decode(fragment);
  if (auto* e = std::get_if<decode_error>(&decoded)) throw std::runtime_error(e->what);
  const auto& p = std::get<pdu>(decoded);
  if (p.type == ptype::request) return std::get<request_body>(p.content).stub;
  return std::get<response_body>(p.content).stub;
}

std::string test_stub(std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + i % 26);
  return s;
}

TEST(DcerpcAuth, PrivacyEncryptsTheStubAndSignsTheWholeFragment) {
  pair p;
  const security_context sec{authn::winnt, authn::level_privacy, 79231};
  const std::string stub = test_stub(37);
  auto fragments = encode_protected_call(ptype::request, 2, 1, 0, stub, 4280, sec, p.client);
  ASSERT_EQ(fragments.size(), 1u);
  std::string& f = fragments[0];
  // Header, 37 stub bytes padded to 48, sec_trailer, 16-byte signature.
  EXPECT_EQ(f.size(), 24u + 48 + 8 + 16);
  EXPECT_EQ(load_le16(f, 10), 16u);                      // auth_length
  EXPECT_EQ(static_cast<std::uint8_t>(f[24 + 48]), 10);  // auth_type NTLM
  EXPECT_EQ(static_cast<std::uint8_t>(f[24 + 48 + 1]), 6);
  EXPECT_EQ(static_cast<std::uint8_t>(f[24 + 48 + 2]), 11);  // auth_pad_length
  EXPECT_EQ(load_le32(f, 24 + 48 + 4), 79231u);
  EXPECT_EQ(f.find(stub), std::string::npos);  // the stub is not on the wire in the clear

  std::string opened = f;
  ASSERT_EQ(open_protected(opened, sec, p.server), std::nullopt);
  EXPECT_EQ(stub_of(opened), stub);  // decode() drops the padding by auth_pad_length
}

TEST(DcerpcAuth, IntegritySignsWithoutEncrypting) {
  pair p;
  const security_context sec{authn::winnt, authn::level_integrity, 1};
  const std::string stub = test_stub(100);
  auto fragments = encode_protected_call(ptype::response, 9, 0, 0, stub, 4280, sec, p.server);
  ASSERT_EQ(fragments.size(), 1u);
  EXPECT_NE(fragments[0].find(stub), std::string::npos);
  ASSERT_EQ(open_protected(fragments[0], sec, p.client), std::nullopt);
  EXPECT_EQ(stub_of(fragments[0]), stub);
}

TEST(DcerpcAuth, EveryFragmentFitsAndCarriesItsOwnSignature) {
  pair p;
  const security_context sec{authn::winnt, authn::level_privacy, 5};
  const std::string stub = test_stub(10000);
  auto fragments = encode_protected_call(ptype::response, 3, 0, 0, stub, 2048, sec, p.server);
  ASSERT_GT(fragments.size(), 4u);
  std::string joined;
  for (auto& f : fragments) {
    EXPECT_LE(f.size(), 2048u);
    ASSERT_EQ(open_protected(f, sec, p.client), std::nullopt);
    joined += stub_of(f);
  }
  EXPECT_EQ(joined, stub);
  EXPECT_EQ(p.server.sent(), fragments.size());
}

TEST(DcerpcAuth, WhatTheReceiverRefuses) {
  const security_context sec{authn::winnt, authn::level_privacy, 5};
  {
    pair p;  // a flipped bit in the encrypted stub
    auto f = encode_protected_call(ptype::request, 1, 0, 0, test_stub(64), 4280, sec, p.client)[0];
    f[30] = static_cast<char>(f[30] ^ 1);
    EXPECT_EQ(open_protected(f, sec, p.server), "a fragment whose NTLM signature does not verify");
  }
  {
    pair p;  // a flipped bit in the header's call_id: signed too, as Windows signs the header with NTLM
    auto f = encode_protected_call(ptype::request, 1, 0, 0, test_stub(64), 4280, sec, p.client)[0];
    f[12] = static_cast<char>(f[12] ^ 1);
    EXPECT_TRUE(open_protected(f, sec, p.server).has_value());
  }
  {
    pair p;  // no verifier at all
    security_context none = sec;
    none.level = authn::level_connect;
    auto f = encode_protected_call(ptype::request, 1, 0, 0, test_stub(64), 4280, none, p.client)[0];
    EXPECT_EQ(open_protected(f, sec, p.server),
              "a fragment without the verifier its association's authentication level requires");
  }
  {
    pair p;  // another security context id
    security_context other = sec;
    other.context_id = 6;
    auto f = encode_protected_call(ptype::request, 1, 0, 0, test_stub(64), 4280, other, p.client)[0];
    EXPECT_TRUE(open_protected(f, sec, p.server).has_value());
  }
  {
    pair p;  // cut short
    std::string f("\x05\x00\x00\x03\x10\x00\x00\x00\x10\x00\x10\x00\x01\x00\x00\x00", 16);
    EXPECT_TRUE(open_protected(f, sec, p.server).has_value());
  }
}

TEST(DcerpcAuth, ConnectLevelCarriesNoVerifier) {
  pair p;
  const security_context sec{authn::winnt, authn::level_connect, 5};
  auto fragments = encode_protected_call(ptype::response, 3, 0, 0, test_stub(50), 4280, sec, p.server);
  ASSERT_EQ(fragments.size(), 1u);
  EXPECT_EQ(load_le16(fragments[0], 10), 0u);
  EXPECT_EQ(open_protected(fragments[0], sec, p.client), std::nullopt);
  EXPECT_EQ(p.server.sent(), 0u);
}

}  // namespace dcerpc_auth_test
}  // namespace exbridge
