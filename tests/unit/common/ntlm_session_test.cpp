// NTLM session security (common/ntlm_session) against MS-NLMP 4.2.4.4's GSS_WrapEx example -- its keys, sealed
// data and signature -- and both roles talking: sequence numbers, tampering, replay.
#include <gtest/gtest.h>

#include "common/ntlm.hpp"
#include "common/ntlm_session.hpp"
#include "tests/support/hex.hpp"

namespace exbridge {
namespace ntlm_session_test {

using test::from_hex;
using test::to_hex;

// MS-NLMP 4.2.4: the challenge flags of the NTLMv2 example (33 82 8a e2) and 4.2.1's RandomSessionKey.
constexpr std::uint32_t spec_flags = 0xe28a8233;
ntlm_key spec_session_key() {
  ntlm_key k{};
  k.fill(0x55);
  return k;
}

std::span<std::uint8_t> bytes(std::string& s) { return {reinterpret_cast<std::uint8_t*>(s.data()), s.size()}; }
std::span<const std::uint8_t> cbytes(const std::string& s) { return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()}; }
std::string text(const ntlm_signature& s) { return std::string(reinterpret_cast<const char*>(s.data()), s.size()); }

TEST(NtlmSession, SpecKeys) {
  EXPECT_EQ(to_hex(ntlm_seal_key(spec_session_key(), spec_flags, true)), "59f600973cc4960a25480a7c196e4c58");
  EXPECT_EQ(to_hex(ntlm_sign_key(spec_session_key(), true)), "4788dc861b4782f35d43fd98fe1a2d39");
}

TEST(NtlmSession, SpecWrapExample) {
  // 4.2.4.4: "Plaintext" in UTF-16LE sealed with SeqNum 0.
  ntlm_session client(spec_session_key(), spec_flags, ntlm_session::role::client);
  const std::string plaintext = from_hex("50006c00610069006e007400650078007400");
  std::string data = plaintext;
  const auto signature = client.seal(bytes(data), cbytes(plaintext));
  EXPECT_EQ(to_hex(data), "54e50165bf1936dc996020c1811b0f06fb5f");
  EXPECT_EQ(to_hex(signature), "010000007fb38ec5c55d497600000000");
  EXPECT_EQ(client.sent(), 1u);

  // The server opens it with its receiving keys (the client's sending keys).
  ntlm_session server(spec_session_key(), spec_flags, ntlm_session::role::server);
  EXPECT_TRUE(server.unseal(bytes(data), cbytes(data), signature));
  EXPECT_EQ(data, plaintext);
}

TEST(NtlmSession, BothRolesSignAndSealInTurn) {
  ntlm_session client(spec_session_key(), spec_flags, ntlm_session::role::client);
  ntlm_session server(spec_session_key(), spec_flags, ntlm_session::role::server);
  for (int i = 0; i < 5; ++i) {
    const std::string request = "request " + std::to_string(i);
    EXPECT_TRUE(server.verify(cbytes(request), client.sign(cbytes(request)))) << i;
    std::string response = "response " + std::to_string(i), wire = response;
    const auto signature = server.seal(bytes(wire), cbytes(response));
    EXPECT_NE(wire, response);
    EXPECT_TRUE(client.unseal(bytes(wire), cbytes(wire), signature)) << i;
    EXPECT_EQ(wire, response);
  }
  EXPECT_EQ(client.sent(), 5u);
  EXPECT_EQ(server.received(), 5u);
}

TEST(NtlmSession, TamperingAndReplayFail) {
  ntlm_session client(spec_session_key(), spec_flags, ntlm_session::role::client);
  ntlm_session server(spec_session_key(), spec_flags, ntlm_session::role::server);
  const std::string first = "first", second = "second";
  const auto s1 = client.sign(cbytes(first));
  const auto s2 = client.sign(cbytes(second));
  EXPECT_FALSE(server.verify(cbytes(second), s1));  // right bytes, wrong message
  // Every check consumes a sequence number, as a receiver does: after a failure the context is useless, which is
  // why a DCE/RPC server drops the association then.
  ntlm_session fresh(spec_session_key(), spec_flags, ntlm_session::role::server);
  EXPECT_FALSE(fresh.verify(cbytes(second), s2));  // out of order: SeqNum 1 where 0 is due
  ntlm_session other(spec_session_key(), spec_flags, ntlm_session::role::client);
  EXPECT_FALSE(other.verify(cbytes(first), s1));  // a client does not accept its own direction's signature
}

TEST(NtlmSession, WithoutKeyExchangeTheChecksumIsNotEncrypted) {
  const std::uint32_t flags = spec_flags & ~ntlm_flag::key_exch;
  ntlm_session client(spec_session_key(), flags, ntlm_session::role::client);
  const std::string message = "hello";
  const auto signature = client.sign(cbytes(message));
  // Checksum = HMAC_MD5(SigningKey, SeqNum + Message)[0..7], in the clear.
  const auto key = ntlm_sign_key(spec_session_key(), true);
  const auto mac = hmac_md5(std::string_view(reinterpret_cast<const char*>(key.data()), key.size()),
                            std::string(4, '\0') + message);
  EXPECT_EQ(text(signature).substr(4, 8), std::string(reinterpret_cast<const char*>(mac.data()), 8));
}

TEST(NtlmSession, WeakerKeysFollowTheNegotiatedLength) {
  // 3.4.5.3: 56-bit keys use 7 bytes of the session key, 40-bit ones 5; both differ from the 128-bit key.
  const auto k128 = ntlm_seal_key(spec_session_key(), ntlm_flag::key_128, true);
  const auto k56 = ntlm_seal_key(spec_session_key(), ntlm_flag::key_56, true);
  const auto k40 = ntlm_seal_key(spec_session_key(), 0, true);
  EXPECT_NE(k128, k56);
  EXPECT_NE(k56, k40);
}

TEST(NtlmSession, ExtendedSessionSecurityIsRequired) {
  EXPECT_FALSE(ntlm_session::supports(spec_flags & ~ntlm_flag::extended_sessionsecurity));
  EXPECT_THROW(ntlm_session(spec_session_key(), spec_flags & ~ntlm_flag::extended_sessionsecurity,
                            ntlm_session::role::server),
               std::invalid_argument);
}

}  // namespace ntlm_session_test
}  // namespace exbridge
