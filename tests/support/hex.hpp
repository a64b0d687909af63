// Hex text and bytes for the codec tests, whose expected values are copied from the specifications' hex dumps.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace exbridge::test {

/// Lower-case hex of raw bytes.
inline std::string to_hex(std::string_view bytes) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  for (const unsigned char b : bytes) out += {digits[b >> 4], digits[b & 15]};
  return out;
}

template <std::size_t N>
std::string to_hex(const std::array<std::uint8_t, N>& a) {
  return to_hex(std::string_view(reinterpret_cast<const char*>(a.data()), N));
}

/// Bytes from hex text; anything that is not a lower- or upper-case hex digit (spaces, as the specs group
/// bytes) is skipped.
inline std::string from_hex(std::string_view hex) {
  std::string out;
  int pending = -1;
  for (const char c : hex) {
    int v = -1;
    if (c >= '0' && c <= '9') v = c - '0';
    if (c >= 'a' && c <= 'f') v = c - 'a' + 10;
    if (c >= 'A' && c <= 'F') v = c - 'A' + 10;
    if (v < 0) continue;
    if (pending < 0) {
      pending = v;
    } else {
      out += static_cast<char>(pending << 4 | v);
      pending = -1;
    }
  }
  return out;
}

}  // namespace exbridge::test
