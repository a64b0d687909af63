// LZ77 with DIRECT2 encoding, the compression of EcDoRpcExt2's extended buffers ([MS-OXCRPC] 3.1.4.1.1.2; the
// same format as [MS-XCA] 2.3-2.4 "Plain LZ77"): 32-bit indicators read from their top bit (0 a literal byte, 1 a
// match), a match's u16 holding offset-1 in its high 13 bits and length-3 in its low 3, longer lengths in a
// nibble shared by two matches, then a byte, then a u16 (then a u32). Pure functions over bytes, fuzzed.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace exbridge::lz77 {

/// Decompresses `compressed` into exactly `size_actual` bytes (RPC_HEADER_EXT's SizeActual). nullopt, with `why`
/// set, for input that does not decode to that size: a match before the start of the output, an extension cut
/// short, bytes left over, or fewer bytes than announced. Stops at `size_actual` (older encoders wrote a trailing
/// all-zero indicator instead of the end bit [MS-OXCRPC] asks for).
std::optional<std::string> decompress(std::string_view compressed, std::size_t size_actual, std::string* why = nullptr);

/// Compresses `input` (greedy, 8 KiB window), the end marked as [MS-OXCRPC] requires: a 1 bit after the last
/// element, in a further indicator if need be.
std::string compress(std::string_view input);

}  // namespace exbridge::lz77
