// UTF-8 <-> UTF-16LE (see utf16.hpp).
#include "common/utf16.hpp"

#include "common/le_bytes.hpp"

namespace exbridge {

void append_utf16le(std::string& out, std::uint32_t cp) {
  if (cp >= 0x10000) {
    cp -= 0x10000;
    append_le16(out, static_cast<std::uint16_t>(0xd800 + (cp >> 10)));
    append_le16(out, static_cast<std::uint16_t>(0xdc00 + (cp & 0x3ff)));
  } else {
    append_le16(out, static_cast<std::uint16_t>(cp));
  }
}

std::vector<std::uint32_t> code_points(std::string_view s) {
  std::vector<std::uint32_t> out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<std::uint8_t>(s[i]);
    int extra = 0;
    std::uint32_t cp = 0;
    std::uint32_t min = 0;
    if (c < 0x80) {
      cp = c;
    } else if ((c & 0xe0) == 0xc0) {
      extra = 1, cp = c & 0x1f, min = 0x80;
    } else if ((c & 0xf0) == 0xe0) {
      extra = 2, cp = c & 0x0f, min = 0x800;
    } else if ((c & 0xf8) == 0xf0) {
      extra = 3, cp = c & 0x07, min = 0x10000;
    } else {
      out.push_back(0xfffd);
      ++i;
      continue;
    }
    std::size_t j = i + 1;
    bool ok = true;
    for (int k = 0; k < extra; ++k, ++j) {
      if (j >= s.size() || (static_cast<std::uint8_t>(s[j]) & 0xc0) != 0x80) {
        ok = false;
        break;
      }
      cp = cp << 6 | (static_cast<std::uint8_t>(s[j]) & 0x3f);
    }
    if (!ok || cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
      out.push_back(0xfffd);
      i = j;  // resynchronise at the first byte that did not fit (j > i always)
      continue;
    }
    out.push_back(cp);
    i = j;
  }
  return out;
}

void append_utf8(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xc0 | cp >> 6);
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xe0 | cp >> 12);
    out += static_cast<char>(0x80 | (cp >> 6 & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else {
    out += static_cast<char>(0xf0 | cp >> 18);
    out += static_cast<char>(0x80 | (cp >> 12 & 0x3f));
    out += static_cast<char>(0x80 | (cp >> 6 & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  }
}

std::string utf16le(std::string_view utf8) {
  std::string out;
  for (const auto cp : code_points(utf8)) append_utf16le(out, cp);
  return out;
}

std::optional<std::string> from_utf16le(std::string_view b) {
  if (b.size() % 2 != 0) return std::nullopt;
  std::string out;
  out.reserve(b.size());
  for (std::size_t i = 0; i < b.size(); i += 2) {
    std::uint32_t u = load_le16(b, i);
    if (u >= 0xdc00 && u <= 0xdfff) return std::nullopt;
    if (u >= 0xd800 && u <= 0xdbff) {
      if (i + 4 > b.size()) return std::nullopt;
      const std::uint32_t lo = load_le16(b, i + 2);
      if (lo < 0xdc00 || lo > 0xdfff) return std::nullopt;
      u = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
      i += 2;
    }
    append_utf8(out, u);
  }
  return out;
}

}  // namespace exbridge
