// LZ77 with DIRECT2 encoding (common/lz77_direct2): the examples of [MS-XCA] 3.1 and Samba's test vectors for
// the same format, a request buffer Outlook 2007 compressed (from OpenChange's mapitest data), what a decoder must
// refuse, and round trips through every length encoding.
#include <gtest/gtest.h>

#include <random>

#include "common/lz77_direct2.hpp"
#include "common/sha256.hpp"
#include "tests/support/hex.hpp"

namespace exbridge {
namespace lz77_direct2_test {

using test::from_hex;

std::string repeat(std::string_view s, std::size_t n) {
  std::string out;
  for (std::size_t i = 0; i < n; ++i) out += s;
  return out;
}

std::string decompressed(const std::string& hex, std::size_t size) {
  std::string why;
  auto out = lz77::decompress(from_hex(hex), size, &why);
  EXPECT_TRUE(out) << why;
  return out.value_or("");
}

TEST(Lz77Direct2, DecodesThePublishedExamples) {
  // [MS-XCA] 3.1: 26 literals under one indicator whose remaining bits are the end mark.
  EXPECT_EQ(decompressed("3f000000 6162636465666768696a6b6c6d6e6f707172737475767778797a", 26),
            "abcdefghijklmnopqrstuvwxyz");
  // [MS-XCA] 3.1: "abc" and one match of 297 bytes at offset 3 (nibble 15, byte 255, u16 0x0126).
  EXPECT_EQ(decompressed("ffffff1f 616263 1700 0f ff 2601", 300), repeat("abc", 100));
  // Samba's vectors: two matches sharing one length nibble (0x21: 1 for the first, 2 for the second).
  EXPECT_EQ(decompressed("ffffff5f 61 0700 21 62 6700", 25), "aaaaaaaaaaaabaaaaaaaaaaaa");
  EXPECT_EQ(decompressed("ff210004 74686973 20 1000 6120746573742e20616e6420 9f00 04 20746f6f", 38),
            "this is a test. and this is a test too");
  // An indicator that overflows right after a match, and one that is all end mark.
  EXPECT_EQ(decompressed("01000000 6162636465666768696a6b6c6d6e6f707172737475767778797a3031323334 f000 ffffff7f 61", 35),
            "abcdefghijklmnopqrstuvwxyz01234abca");
  EXPECT_EQ(decompressed("01000000 6162636465666768696a6b6c6d6e6f707172737475767778797a3031323334 f000 ffffffff", 34),
            "abcdefghijklmnopqrstuvwxyz01234abc");
  // An older encoder's stream: no end bits, a trailing zero indicator; decoded up to SizeActual.
  EXPECT_EQ(decompressed("00200004 74686973 20 1000 6120746573742e20616e6420 9f00 04 20746f6f 00000000", 38),
            "this is a test. and this is a test too");
  EXPECT_EQ(decompressed("", 0), "");
}

TEST(Lz77Direct2, DecodesARequestOutlook2007Compressed) {
  // rgbIn of an EcDoRpcExt2 from Outlook 2007 (RPC_HEADER_EXT Flags Compressed|Last, Size 325, SizeActual 459):
  // a ROP buffer with RopSize 455 (c7 01).
  const std::string compressed = from_hex(
    "40000000c7010d0000010000000e00000c000300fe0f030000391f00ff1800fe390300713ac00410001f00003a0300ff5f03"
    "00de1800fd5f1f00f65f0201f75800df5fc101f001540151064500550000004a6b6572696875656c004a0075006c00690065"
    "006e0020004b380072680068a80065b800882a380400006a006b9f00c70c0000066a02f7009f00e840006f00701203639800"
    "613800676800320030080033002e1000a0af08016fc80061ea01af0205003906a7050f076b4a01dca740c8c042101ab4b908"
    "002b2fe1820b0800002f6f000200003d4669727374204f7267616e697a6174696f6e2f6f75ac0041646d696e697374726001"
    "0080b80076652047726f75702f636e3d526563697069656e747369006a0e0a01000a000016000f50110402001f003d60001f"
    "001d0e744804730074680032180007d5050201e26545000000");
  ASSERT_EQ(compressed.size(), 325u);
  std::string why;
  const auto plain = lz77::decompress(compressed, 459, &why);
  ASSERT_TRUE(plain) << why;
  sha256 h;
  h.update(*plain);
  EXPECT_EQ(h.hex_digest(), "e5198b79e17e37ca304dbf651d662bf064d57be8276e17d5b85cc7277921ec42");
  EXPECT_EQ(test::to_hex(plain->substr(0, 6)), "c7010d000001");
}

TEST(Lz77Direct2, RefusesWhatDoesNotDecodeToTheAnnouncedSize) {
  const auto refused = [](const std::string& hex, std::size_t size) {
    std::string why;
    EXPECT_FALSE(lz77::decompress(from_hex(hex), size, &why)) << hex;
    return why;
  };
  EXPECT_EQ(refused("ffffffff 0800", 4), "a match reaches before the start of the data");
  EXPECT_EQ(refused("ffffff1f 616263 1700 0f ff 2601", 299), "the data decodes to more than the announced size");
  EXPECT_EQ(refused("3f000000 616263", 26), "the compressed data ends before the announced size");
  EXPECT_EQ(refused("3f00", 1), "the compressed data ends inside an indicator");
  EXPECT_EQ(refused("ffffff7f 61 07", 30), "the compressed data ends inside a match");
  EXPECT_EQ(refused("ffffff7f 61 0700 0f ff 01", 300), "the compressed data ends inside a match length");
  EXPECT_EQ(refused("ffffff7f 61 0700 0f ff 1000", 30), "a match length below its own encoding's minimum");
  EXPECT_EQ(refused("3f000000 61 0000000000000000", 1), "bytes after the announced size");
}

TEST(Lz77Direct2, RoundTripsEveryLengthEncodingAndRandomData) {
  std::mt19937 rng(2007);
  std::vector<std::string> inputs{"a", "ab", "abc", repeat("a", 26), repeat("a", 281), repeat("a", 326),
                                  repeat("abc", 100), repeat("x", 32768), repeat("0123456789", 3000)};
  for (const std::size_t n : {1u, 31u, 32u, 33u, 64u, 1000u, 32768u}) {
    std::string random(n, '\0'), text(n, '\0');
    for (auto& c : random) c = static_cast<char>(rng());
    for (auto& c : text) c = "etaoin shrdlu"[rng() % 13];
    inputs.push_back(random);
    inputs.push_back(text);
  }
  for (const auto& in : inputs) {
    const std::string packed = lz77::compress(in);
    std::string why;
    const auto back = lz77::decompress(packed, in.size(), &why);
    ASSERT_TRUE(back) << in.size() << ": " << why;
    EXPECT_EQ(*back, in) << in.size();
  }
  EXPECT_EQ(lz77::compress(repeat("abc", 100)).size(), 13u);  // as compact as [MS-XCA]'s own example
  EXPECT_EQ(test::to_hex(lz77::compress("abcdefghijklmnopqrstuvwxyz")),
            "3f0000006162636465666768696a6b6c6d6e6f707172737475767778797a");
  EXPECT_LT(lz77::compress(repeat("0123456789", 3000)).size(), 200u);
}

}  // namespace lz77_direct2_test
}  // namespace exbridge
