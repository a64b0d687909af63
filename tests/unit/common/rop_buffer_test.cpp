// Extended buffers and ROP buffers (common/rop_buffer): [MS-OXCROPS]'s example of two RopRelease requests, the
// RPC_HEADER_EXT fields and XorMagic, chains, and what is refused.
#include <gtest/gtest.h>

#include "common/lz77_direct2.hpp"
#include "common/rop_buffer.hpp"
#include "tests/support/hex.hpp"

namespace exbridge {
namespace rop_buffer_test {

using test::from_hex;
using test::to_hex;

TEST(RopBuffer, TwoReleasesAsTheSpecShowsThem) {
  // [MS-OXCROPS] 4.4: RopSize 8, two RopRelease (01 LogonId 00 InputHandleIndex 00 / 01), handles 0x6F and 0x6E.
  const std::string wire = from_hex("0800 010000 010001 6f000000 6e000000");
  const auto parsed = rop::read_request_buffer(wire);
  ASSERT_TRUE(std::holds_alternative<rop::request_buffer>(parsed));
  const auto& b = std::get<rop::request_buffer>(parsed);
  EXPECT_EQ(to_hex(b.rops), "010000010001");
  EXPECT_EQ(b.handles, (std::vector<std::uint32_t>{0x6f, 0x6e}));
  EXPECT_EQ(to_hex(rop::write_response_buffer("", {0x6f, 0x6e})), "02006f0000006e000000");
}

TEST(RopBuffer, ExtendedBuffersRoundTripWithAndWithoutXorMagic) {
  const std::string payload = from_hex("0800010000010001ffffffff");
  const std::string plain = rop::write_extended(payload);
  EXPECT_EQ(to_hex(plain.substr(0, 8)), "000004000c000c00");  // Version 0, Flags Last, Size 12, SizeActual 12
  const std::string obfuscated = rop::write_extended(payload, true);
  EXPECT_EQ(to_hex(obfuscated.substr(0, 8)), "000006000c000c00");
  EXPECT_EQ(static_cast<std::uint8_t>(obfuscated[8]), 0x08 ^ 0xA5);
  for (const auto& wire : {plain, obfuscated}) {
    const auto read = rop::read_extended(wire);
    ASSERT_TRUE(std::holds_alternative<std::vector<std::string>>(read));
    EXPECT_EQ(std::get<std::vector<std::string>>(read), std::vector<std::string>{payload});
  }
}

TEST(RopBuffer, AChainEndsAtTheBufferFlaggedLast) {
  // Two payloads: the first without Last, the second with it.
  const std::string chain = from_hex("0000 0000 0200 0200 abcd") + rop::write_extended("ef");
  const auto read = rop::read_extended(chain);
  ASSERT_TRUE(std::holds_alternative<std::vector<std::string>>(read));
  EXPECT_EQ(std::get<std::vector<std::string>>(read), (std::vector<std::string>{from_hex("abcd"), "ef"}));
}

TEST(RopBuffer, ACompressedAndObfuscatedPayloadIsRestored) {
  // The sender compresses, then XORs ([MS-OXCRPC] 3.1.4.1.1.1): so does this test.
  const std::string plain = from_hex("1000 fe00 0001 01000001 0000000000 00") + std::string(200, 'A');
  std::string packed = lz77::compress(plain);
  ASSERT_LT(packed.size(), plain.size());
  for (auto& c : packed) c = static_cast<char>(c ^ 0xA5);
  std::string wire;
  for (const std::uint16_t v : {std::uint16_t{0}, std::uint16_t{0x0007}, static_cast<std::uint16_t>(packed.size()),
                                static_cast<std::uint16_t>(plain.size())}) {
    wire += static_cast<char>(v & 0xFF);
    wire += static_cast<char>(v >> 8);
  }
  wire += packed;
  const auto read = rop::read_extended(wire);
  ASSERT_TRUE(std::holds_alternative<std::vector<std::string>>(read)) << std::get<rop::error>(read).what;
  EXPECT_EQ(std::get<std::vector<std::string>>(read), std::vector<std::string>{plain});
}

TEST(RopBuffer, WhatIsRefused) {
  const auto refused = [](const std::string& wire) { return std::get<rop::error>(rop::read_extended(wire)).what; };
  EXPECT_EQ(refused(from_hex("0000 0400 0200")), "an extended buffer cut short before its RPC_HEADER_EXT");
  EXPECT_EQ(refused(from_hex("0100 0400 0000 0000")), "RPC_HEADER_EXT version 1, not 0");
  EXPECT_EQ(refused(from_hex("0000 0400 0400 0400 ab")), "RPC_HEADER_EXT Size runs past the buffer");
  EXPECT_EQ(refused(from_hex("0000 0500 0200 0800 abcd")),
            "a compressed extended buffer that does not decompress: the compressed data ends inside an indicator");
  EXPECT_EQ(refused(from_hex("0000 0500 0200 0200 abcd")), "a compressed RPC_HEADER_EXT whose Size is not below SizeActual");
  EXPECT_EQ(refused(from_hex("0000 0400 0200 0300 abcd")), "RPC_HEADER_EXT SizeActual differs from Size without compression");
  EXPECT_EQ(refused(from_hex("0000 0400 0100 0100 ab cd")), "bytes after the extended buffer flagged Last");
  EXPECT_EQ(refused(from_hex("0000 0000 0100 0100 ab")), "an extended buffer cut short before its RPC_HEADER_EXT");
  const auto bad_rops = [](const std::string& payload) { return std::get<rop::error>(rop::read_request_buffer(payload)).what; };
  EXPECT_EQ(bad_rops(from_hex("08")), "a ROP buffer without RopSize");
  EXPECT_EQ(bad_rops(from_hex("0900 0100")), "RopSize runs past the buffer");
  EXPECT_EQ(bad_rops(from_hex("0200 ffff")), "the server object handle table is not whole u32 handles");
}

}  // namespace rop_buffer_test
}  // namespace exbridge
