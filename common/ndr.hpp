// The NDR 2.0 pieces the Exchange RPC stubs use (C706 chapter 14, little-endian): alignment from the stub's
// start, conformant varying 8-bit strings ([string] char*) and unique pointers' referent ids. Header-only; the
// stubs themselves are laid out by hand where each call is served, in IDL parameter order.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/le_bytes.hpp"

namespace exbridge::ndr {

/// Any non-zero referent id marks a non-NULL unique pointer; MIDL numbers them from 0x20000.
inline constexpr std::uint32_t referent = 0x00020000;

/// Skips to the next multiple of `n` from the stub's start; false if the padding runs past the stub.
inline bool align(le_reader& r, std::size_t n) {
  const std::size_t pad = (n - r.position() % n) % n;
  if (!r.has(pad)) return false;
  r.skip(pad);
  return true;
}

/// A conformant varying string of 8-bit characters: max_count, offset (0), actual_count, the characters with
/// their NUL. Returns the text without the NUL; nullopt for counts that disagree, a missing NUL or a short stub.
inline std::optional<std::string> read_string(le_reader& r) {
  if (!align(r, 4) || !r.has(12)) return std::nullopt;
  const std::uint32_t max_count = r.u32(), offset = r.u32(), actual = r.u32();
  if (offset != 0 || actual == 0 || actual > max_count || !r.has(actual)) return std::nullopt;
  std::string s = r.text(actual);
  if (s.back() != '\0') return std::nullopt;
  s.pop_back();
  if (s.find('\0') != std::string::npos) return std::nullopt;
  return s;
}

/// Writes `s` as a conformant varying string, NUL included, 4-aligned first.
inline void write_string(le_writer& w, std::string_view s) {
  w.align(4);
  const auto count = static_cast<std::uint32_t>(s.size() + 1);
  w.u32(count), w.u32(0), w.u32(count);
  w.bytes(s);
  w.u8(0);
}

/// A unique pointer to a string: its referent id and the string, or 0 for NULL.
inline void write_unique_string(le_writer& w, const std::optional<std::string>& s) {
  w.align(4);
  if (!s) {
    w.u32(0);
    return;
  }
  w.u32(referent);
  write_string(w, *s);
}

}  // namespace exbridge::ndr
