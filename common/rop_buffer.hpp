// The framing around remote operations (ROPs) in EcDoRpcExt2: extended buffers ([MS-OXCRPC] 2.2.2.1: an
// RPC_HEADER_EXT -- Version 0, Flags, Size, SizeActual -- then the payload, possibly several chained, the last
// flagged Last; XorMagic means every payload byte XORed with 0xA5) and the ROP buffer inside ([MS-OXCROPS]
// 2.2.1: RopSize u16 counting itself and the ROPs, the ROPs back to back, then the server object handle table,
// u32 handles to the end). Pure functions over bytes, for fake-exchange's store and the clients alike.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace exbridge::rop {

/// RPC_HEADER_EXT Flags.
namespace ext_flag {
inline constexpr std::uint16_t compressed = 0x0001;
inline constexpr std::uint16_t xor_magic = 0x0002;
inline constexpr std::uint16_t last = 0x0004;
}  // namespace ext_flag

inline constexpr std::size_t ext_header_size = 8;
/// A payload of one extended buffer carries at most 32 KiB ([MS-OXCRPC] 3.1.4.2.1).
inline constexpr std::size_t max_ext_payload = 32 * 1024;

struct error {
  std::string what;
};

/// The payloads of a chain of extended buffers, un-XORed and decompressed (LZ77 DIRECT2, lz77_direct2.hpp: Outlook
/// compresses its requests whatever pulFlags says). Refused: a wrong version, sizes that disagree (or a compressed
/// Size not below SizeActual), a payload that does not decompress to SizeActual, bytes after the buffer flagged
/// Last, and a chain without one.
std::variant<std::vector<std::string>, error> read_extended(std::string_view bytes);

/// One extended buffer flagged Last around `payload` (never compressed; XORed when `xor_magic`).
std::string write_extended(std::string_view payload, bool xor_magic = false);

/// A ROP request buffer: the ROP bytes (after RopSize; a view into the payload read) and the handle table.
struct request_buffer {
  std::string_view rops;
  std::vector<std::uint32_t> handles;
};
std::variant<request_buffer, error> read_request_buffer(std::string_view payload);

/// A ROP response buffer: RopSize, the responses, the handle table.
std::string write_response_buffer(std::string_view responses, const std::vector<std::uint32_t>& handles);

}  // namespace exbridge::rop
