// Little-endian byte writer and bounds-aware reader: the one pair every Outlook Anywhere codec (RTS,
// DCE/RPC, later NDR, ROP and FastTransfer) builds on. Every integer on those wires is little-endian
// ([MS-RPCH] 2.2.1, the DCE/RPC data representation 10 00 00 00 that all Windows peers send).
// The reader never reads past its span: callers ask has(n) first, and a decode error says what was cut short.
// The free functions read and write at an offset the caller has already checked (NTLM's offset tables).
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>

namespace exbridge {

inline std::uint16_t load_le16(std::string_view b, std::size_t at) {
  return static_cast<std::uint16_t>(static_cast<std::uint8_t>(b[at]) | static_cast<std::uint8_t>(b[at + 1]) << 8);
}
inline std::uint32_t load_le32(std::string_view b, std::size_t at) {
  return static_cast<std::uint32_t>(load_le16(b, at)) | static_cast<std::uint32_t>(load_le16(b, at + 2)) << 16;
}
inline std::uint64_t load_le64(std::string_view b, std::size_t at) {
  return static_cast<std::uint64_t>(load_le32(b, at)) | static_cast<std::uint64_t>(load_le32(b, at + 4)) << 32;
}
inline void append_le16(std::string& out, std::uint16_t v) {
  out += static_cast<char>(v & 0xff);
  out += static_cast<char>(v >> 8);
}
inline void append_le32(std::string& out, std::uint32_t v) {
  append_le16(out, static_cast<std::uint16_t>(v & 0xffff));
  append_le16(out, static_cast<std::uint16_t>(v >> 16));
}
inline void append_le64(std::string& out, std::uint64_t v) {
  append_le32(out, static_cast<std::uint32_t>(v & 0xffffffff));
  append_le32(out, static_cast<std::uint32_t>(v >> 32));
}
inline void store_le16(std::string& out, std::size_t at, std::uint16_t v) {
  out[at] = static_cast<char>(v & 0xff);
  out[at + 1] = static_cast<char>(v >> 8);
}
inline void store_le32(std::string& out, std::size_t at, std::uint32_t v) {
  store_le16(out, at, static_cast<std::uint16_t>(v & 0xffff));
  store_le16(out, at + 2, static_cast<std::uint16_t>(v >> 16));
}

class le_writer {
 public:
  void u8(std::uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void u16(std::uint16_t v) {
    u8(static_cast<std::uint8_t>(v));
    u8(static_cast<std::uint8_t>(v >> 8));
  }
  void u32(std::uint32_t v) {
    u16(static_cast<std::uint16_t>(v));
    u16(static_cast<std::uint16_t>(v >> 16));
  }
  void u64(std::uint64_t v) {
    u32(static_cast<std::uint32_t>(v));
    u32(static_cast<std::uint32_t>(v >> 32));
  }
  void bytes(const std::uint8_t* p, std::size_t n) { out_.append(reinterpret_cast<const char*>(p), n); }
  void bytes(std::string_view s) { out_.append(s); }
  void zeros(std::size_t n) { out_.append(n, '\0'); }
  /// Pads with zeros until the size is a multiple of `alignment`.
  void align(std::size_t alignment) { zeros((alignment - out_.size() % alignment) % alignment); }
  /// Overwrites a u16 written earlier (a length known only at the end).
  void patch_u16(std::size_t at, std::uint16_t v) { store_le16(out_, at, v); }
  std::size_t size() const { return out_.size(); }
  std::string& text() { return out_; }

 private:
  std::string out_;
};

class le_reader {
 public:
  explicit le_reader(std::span<const std::uint8_t> b) : b_(b) {}
  bool has(std::size_t n) const { return b_.size() - pos_ >= n; }
  std::size_t left() const { return b_.size() - pos_; }
  std::size_t position() const { return pos_; }
  std::uint8_t u8() { return b_[pos_++]; }
  std::uint16_t u16() {
    const std::uint16_t lo = u8();
    return static_cast<std::uint16_t>(lo | (u8() << 8));
  }
  std::uint32_t u32() {
    const std::uint32_t lo = u16();
    return lo | (static_cast<std::uint32_t>(u16()) << 16);
  }
  std::uint64_t u64() {
    const std::uint64_t lo = u32();
    return lo | (static_cast<std::uint64_t>(u32()) << 32);
  }
  void bytes(std::uint8_t* out, std::size_t n) {
    std::memcpy(out, b_.data() + pos_, n);
    pos_ += n;
  }
  std::string text(std::size_t n) {
    std::string s(reinterpret_cast<const char*>(b_.data() + pos_), n);
    pos_ += n;
    return s;
  }
  void skip(std::size_t n) { pos_ += n; }

 private:
  std::span<const std::uint8_t> b_;
  std::size_t pos_ = 0;
};

/// A string's bytes as the span the readers take.
inline std::span<const std::uint8_t> as_bytes(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

}  // namespace exbridge
