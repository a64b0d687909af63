// LZ77 + DIRECT2 (see lz77_direct2.hpp). The length arithmetic follows [MS-XCA] 2.4.4's pseudocode.
#include "common/lz77_direct2.hpp"

#include <array>
#include <cstdint>
#include <vector>

namespace exbridge::lz77 {
namespace {

constexpr std::size_t window = 8192;  // 13 bits of offset - 1
constexpr std::size_t min_match = 3;

}  // namespace

std::optional<std::string> decompress(std::string_view in, std::size_t size_actual, std::string* why) {
  const auto fail = [&](const char* text) -> std::optional<std::string> {
    if (why != nullptr) *why = text;
    return std::nullopt;
  };
  std::string out;
  out.reserve(size_actual);
  std::size_t at = 0;
  std::size_t nibble_at = std::string_view::npos;  // a byte whose high nibble the next long match uses
  std::uint32_t indicator = 0;
  int bits = 0;
  const auto byte = [&](std::size_t i) { return static_cast<std::uint8_t>(in[i]); };
  while (out.size() < size_actual) {
    if (bits == 0) {
      if (in.size() - at < 4) return fail("the compressed data ends inside an indicator");
      indicator = static_cast<std::uint32_t>(byte(at)) | static_cast<std::uint32_t>(byte(at + 1)) << 8 |
                  static_cast<std::uint32_t>(byte(at + 2)) << 16 | static_cast<std::uint32_t>(byte(at + 3)) << 24;
      at += 4;
      bits = 32;
    }
    --bits;
    if ((indicator >> bits & 1) == 0) {
      if (at >= in.size()) return fail("the compressed data ends before the announced size");
      out.push_back(in[at++]);
      continue;
    }
    if (in.size() - at < 2) return fail("the compressed data ends inside a match");
    const std::uint32_t m = static_cast<std::uint32_t>(byte(at)) | static_cast<std::uint32_t>(byte(at + 1)) << 8;
    at += 2;
    const std::size_t offset = (m >> 3) + 1;
    std::size_t length = m & 7;
    if (length == 7) {
      if (nibble_at == std::string_view::npos) {
        if (at >= in.size()) return fail("the compressed data ends inside a match length");
        nibble_at = at++;
        length = byte(nibble_at) & 0x0F;
      } else {
        length = byte(nibble_at) >> 4;
        nibble_at = std::string_view::npos;
      }
      if (length == 15) {
        if (at >= in.size()) return fail("the compressed data ends inside a match length");
        length = byte(at++);
        if (length == 255) {
          if (in.size() - at < 2) return fail("the compressed data ends inside a match length");
          length = static_cast<std::size_t>(byte(at)) | static_cast<std::size_t>(byte(at + 1)) << 8;
          at += 2;
          if (length == 0) {
            if (in.size() - at < 4) return fail("the compressed data ends inside a match length");
            length = static_cast<std::size_t>(byte(at)) | static_cast<std::size_t>(byte(at + 1)) << 8 |
                     static_cast<std::size_t>(byte(at + 2)) << 16 | static_cast<std::size_t>(byte(at + 3)) << 24;
            at += 4;
          }
          if (length < 15 + 7) return fail("a match length below its own encoding's minimum");
          length -= 15 + 7;
        }
        length += 15;
      }
      length += 7;
    }
    length += min_match;
    if (offset > out.size()) return fail("a match reaches before the start of the data");
    if (length > size_actual - out.size()) return fail("the data decodes to more than the announced size");
    // Byte by byte: a match may overlap the bytes it produces (length > offset repeats them).
    for (std::size_t i = 0; i < length; ++i) out.push_back(out[out.size() - offset]);
  }
  // What may remain: the end bit's indicator, or an old encoder's trailing zero indicator. Nothing else.
  if (in.size() - at > 4) return fail("bytes after the announced size");
  return out;
}

std::string compress(std::string_view in) {
  std::string out;
  if (in.empty()) return out;
  std::size_t indicator_at = 0;
  std::uint32_t indicator = 0;
  int used = 0;
  std::size_t nibble_at = std::string::npos;
  const auto start_indicator = [&] {
    indicator_at = out.size();
    out.append(4, '\0');
    indicator = 0;
    used = 0;
  };
  const auto flush_indicator = [&] {
    for (int i = 0; i < 4; ++i) out[indicator_at + static_cast<std::size_t>(i)] = static_cast<char>(indicator >> (8 * i));
  };
  const auto element = [&](bool match) {
    if (used == 32) {
      flush_indicator();
      start_indicator();
    }
    if (match) indicator |= 1u << (31 - used);
    ++used;
  };
  // Candidate positions by their first three bytes.
  std::vector<std::int64_t> head(1 << 14, -1), prev(in.size(), -1);
  const auto hash3 = [&](std::size_t i) {
    return ((static_cast<std::uint32_t>(static_cast<std::uint8_t>(in[i])) << 10) ^
            (static_cast<std::uint32_t>(static_cast<std::uint8_t>(in[i + 1])) << 5) ^
            static_cast<std::uint32_t>(static_cast<std::uint8_t>(in[i + 2]))) & ((1 << 14) - 1);
  };
  const auto insert = [&](std::size_t i) {
    if (i + 2 >= in.size()) return;
    const auto h = hash3(i);
    prev[i] = head[h];
    head[h] = static_cast<std::int64_t>(i);
  };
  start_indicator();
  std::size_t i = 0;
  while (i < in.size()) {
    std::size_t best = 0, best_offset = 0;
    if (i + min_match <= in.size()) {
      int tries = 0;
      for (std::int64_t c = head[hash3(i)]; c >= 0 && i - static_cast<std::size_t>(c) <= window && tries < 64;
           c = prev[static_cast<std::size_t>(c)], ++tries) {
        std::size_t n = 0;
        while (i + n < in.size() && in[static_cast<std::size_t>(c) + n] == in[i + n]) ++n;
        if (n > best) best = n, best_offset = i - static_cast<std::size_t>(c);
      }
    }
    if (best < min_match) {
      element(false);
      out.push_back(in[i]);
      insert(i++);
      continue;
    }
    element(true);
    const std::size_t length = best - min_match;
    const auto put16 = [&](std::size_t v) {
      out.push_back(static_cast<char>(v & 0xFF));
      out.push_back(static_cast<char>(v >> 8 & 0xFF));
    };
    put16((best_offset - 1) << 3 | std::min<std::size_t>(length, 7));
    if (length >= 7) {
      const std::size_t rest = length - 7;
      const std::size_t nib = std::min<std::size_t>(rest, 15);
      if (nibble_at == std::string::npos) {
        nibble_at = out.size();
        out.push_back(static_cast<char>(nib));
      } else {
        out[nibble_at] = static_cast<char>(static_cast<std::uint8_t>(out[nibble_at]) | nib << 4);
        nibble_at = std::string::npos;
      }
      if (rest >= 15) {
        const std::size_t more = rest - 15;
        if (more < 255) {
          out.push_back(static_cast<char>(more));
        } else {
          out.push_back(static_cast<char>(0xFF));
          if (length < 0x10000) {
            put16(length);
          } else {
            put16(0);
            put16(length & 0xFFFF);
            put16(length >> 16);
          }
        }
      }
    }
    for (std::size_t k = 0; k < best; ++k) insert(i + k);
    i += best;
  }
  // The end: a 1 bit after the last element, in a further indicator when this one is full.
  if (used == 32) {
    flush_indicator();
    start_indicator();
  }
  indicator |= 0xFFFFFFFFu >> used;
  flush_indicator();
  return out;
}

}  // namespace exbridge::lz77
