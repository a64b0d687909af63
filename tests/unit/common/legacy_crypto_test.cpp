// MD4 and RC4 from OpenSSL's legacy provider (common/legacy_crypto): RFC 1320's MD4 suite, RC4's published
// vectors, and a key stream that continues across calls as NTLM's sealing handles need.
#include <gtest/gtest.h>

#include <vector>

#include "common/legacy_crypto.hpp"
#include "tests/support/hex.hpp"

namespace exbridge {
namespace legacy_crypto_test {

using test::from_hex;
using test::to_hex;

std::span<const std::uint8_t> key_of(std::string_view s) { return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()}; }

std::string rc4(std::string_view key, std::string data) {
  rc4_stream(key_of(key)).apply({reinterpret_cast<std::uint8_t*>(data.data()), data.size()});
  return data;
}

TEST(Md4, Rfc1320TestSuite) {
  EXPECT_EQ(to_hex(md4("")), "31d6cfe0d16ae931b73c59d7e0c089c0");
  EXPECT_EQ(to_hex(md4("a")), "bde52cb31de33e46245e05fbdbd6fb24");
  EXPECT_EQ(to_hex(md4("abc")), "a448017aaf21d8525fc10ae87aa6729d");
  EXPECT_EQ(to_hex(md4("message digest")), "d9130a8164549fe818874806e1c7014b");
  EXPECT_EQ(to_hex(md4("abcdefghijklmnopqrstuvwxyz")), "d79e1c308aa5bbcdeea8ed63df412da9");
  EXPECT_EQ(to_hex(md4("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")),
            "043f8582f241db351ce627e153e7f0e4");
  EXPECT_EQ(to_hex(md4("12345678901234567890123456789012345678901234567890123456789012345678901234567890")),
            "e33b4ddc9c38f2199c3e7b164fcc0536");
}

TEST(Rc4, PublishedVectors) {
  EXPECT_EQ(to_hex(rc4("Key", "Plaintext")), "bbf316e8d940af0ad3");
  EXPECT_EQ(to_hex(rc4("Wiki", "pedia")), "1021bf0420");
  EXPECT_EQ(to_hex(rc4("Secret", "Attack at dawn")), "45a01f645fc35b383552544b9bf5");
  // RFC 6229, 40-bit key 0102030405, key stream offset 0.
  EXPECT_EQ(to_hex(rc4(from_hex("0102030405"), std::string(16, '\0'))), "b2396305f03dc027ccc3524a0a1118a8");
}

TEST(Rc4, TheKeyStreamContinuesAcrossCalls) {
  const std::string whole = rc4("Secret", "Attack at dawn");
  std::string piecewise = "Attack at dawn";
  rc4_stream stream(key_of("Secret"));
  auto* p = reinterpret_cast<std::uint8_t*>(piecewise.data());
  stream.apply({p, 3});
  stream.apply({p + 3, 0});
  stream.apply({p + 3, piecewise.size() - 3});
  EXPECT_EQ(piecewise, whole);
  // Decryption is the same operation from a fresh stream.
  EXPECT_EQ(rc4("Secret", whole), "Attack at dawn");
}

TEST(Rc4, OnceEncryptsSixteenBytes) {
  std::array<std::uint8_t, 16> data{};
  const auto out = rc4_once(key_of(from_hex("0102030405")), data);
  EXPECT_EQ(to_hex(out), "b2396305f03dc027ccc3524a0a1118a8");
}

TEST(Rc4, AnEmptyKeyIsRefused) { EXPECT_THROW(rc4_stream(key_of("")), std::runtime_error); }

}  // namespace legacy_crypto_test
}  // namespace exbridge
