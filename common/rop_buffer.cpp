// Extended buffers and ROP buffers (see rop_buffer.hpp).
#include "common/rop_buffer.hpp"

#include "common/le_bytes.hpp"
#include "common/lz77_direct2.hpp"

namespace exbridge::rop {

std::variant<std::vector<std::string>, error> read_extended(std::string_view bytes) {
  std::vector<std::string> payloads;
  std::size_t at = 0;
  while (true) {
    if (bytes.size() - at < ext_header_size) return error{"an extended buffer cut short before its RPC_HEADER_EXT"};
    const std::uint16_t version = load_le16(bytes, at), flags = load_le16(bytes, at + 2);
    const std::uint16_t size = load_le16(bytes, at + 4), actual = load_le16(bytes, at + 6);
    at += ext_header_size;
    if (version != 0) return error{"RPC_HEADER_EXT version " + std::to_string(version) + ", not 0"};
    if (bytes.size() - at < size) return error{"RPC_HEADER_EXT Size runs past the buffer"};
    const bool compressed = (flags & ext_flag::compressed) != 0;
    // [MS-OXCRPC] 2.2.2.1: compressed, Size MUST be less than SizeActual; otherwise equal to it.
    if (compressed && size >= actual) return error{"a compressed RPC_HEADER_EXT whose Size is not below SizeActual"};
    if (!compressed && actual != size) return error{"RPC_HEADER_EXT SizeActual differs from Size without compression"};
    if (actual > max_ext_payload) return error{"RPC_HEADER_EXT SizeActual above 32 KiB"};
    std::string payload(bytes.substr(at, size));
    // 3.1.4.1.1.1: the sender compresses, then obfuscates; so the receiver undoes the XOR first.
    if (flags & ext_flag::xor_magic) {
      for (auto& c : payload) c = static_cast<char>(c ^ 0xA5);
    }
    if (compressed) {
      std::string why;
      auto plain = lz77::decompress(payload, actual, &why);
      if (!plain) return error{"a compressed extended buffer that does not decompress: " + why};
      payload = std::move(*plain);
    }
    payloads.push_back(std::move(payload));
    at += size;
    if (flags & ext_flag::last) {
      if (at != bytes.size()) return error{"bytes after the extended buffer flagged Last"};
      return payloads;
    }
  }
}

std::string write_extended(std::string_view payload, bool xor_magic) {
  std::string out;
  append_le16(out, 0);
  append_le16(out, static_cast<std::uint16_t>(ext_flag::last | (xor_magic ? ext_flag::xor_magic : 0)));
  append_le16(out, static_cast<std::uint16_t>(payload.size()));
  append_le16(out, static_cast<std::uint16_t>(payload.size()));
  const std::size_t start = out.size();
  out += payload;
  if (xor_magic) {
    for (std::size_t i = start; i < out.size(); ++i) out[i] = static_cast<char>(out[i] ^ 0xA5);
  }
  return out;
}

std::variant<request_buffer, error> read_request_buffer(std::string_view payload) {
  if (payload.size() < 2) return error{"a ROP buffer without RopSize"};
  const std::uint16_t rop_size = load_le16(payload, 0);
  if (rop_size < 2 || rop_size > payload.size()) return error{"RopSize runs past the buffer"};
  if ((payload.size() - rop_size) % 4 != 0) return error{"the server object handle table is not whole u32 handles"};
  request_buffer b;
  b.rops = payload.substr(2, rop_size - 2);
  for (std::size_t at = rop_size; at < payload.size(); at += 4) b.handles.push_back(load_le32(payload, at));
  return b;
}

std::string write_response_buffer(std::string_view responses, const std::vector<std::uint32_t>& handles) {
  std::string out;
  append_le16(out, static_cast<std::uint16_t>(2 + responses.size()));
  out += responses;
  for (const auto h : handles) append_le32(out, h);
  return out;
}

}  // namespace exbridge::rop
