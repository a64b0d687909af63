// libFuzzer target: LZ77 DIRECT2 (common/lz77_direct2.cpp), the compression of EcDoRpcExt2's extended buffers,
// which a client controls entirely. The first two input bytes are the announced SizeActual (little-endian, at
// most 32 KiB as [MS-OXCRPC] allows), the rest the compressed payload.
//
// Invariants beyond "no crash, no UB": a payload that decodes yields exactly SizeActual bytes; the encoder's
// output of any bytes decodes back to those bytes.
#include <cstddef>
#include <cstdint>
#include <string>

#include "common/lz77_direct2.hpp"
#include "tests/fuzz/fuzz_streams.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace exbridge;
  if (size < 2) return 0;
  const std::size_t actual = (static_cast<std::size_t>(data[0]) | static_cast<std::size_t>(data[1]) << 8) & 0x7FFF;
  const std::string_view payload(reinterpret_cast<const char*>(data + 2), size - 2);
  std::string why;
  if (const auto plain = lz77::decompress(payload, actual, &why)) {
    if (plain->size() != actual) fuzz::invariant_failed("a payload decoded to another size than announced");
  } else if (why.empty()) {
    fuzz::invariant_failed("a refusal without a reason");
  }
  const std::string packed = lz77::compress(payload);
  const auto back = lz77::decompress(packed, payload.size(), &why);
  if (!back || *back != payload) fuzz::invariant_failed("compress() output does not decode to its input:", why);
  return 0;
}
