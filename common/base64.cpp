// Base64 implementation.
#include "common/base64.hpp"

#include <openssl/evp.h>

#include <cstring>

namespace exbridge {

namespace {

constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Every 12-bit value as its two base64 characters: two lookups per 3 input bytes, about twice as fast as
/// OpenSSL's EVP_EncodeBlock, which matters where fake-exchange encodes every item's MIME as it is sent.
struct pair_table {
  char pairs[4096][2];
  constexpr pair_table() : pairs{} {
    for (int i = 0; i < 4096; ++i) {
      pairs[i][0] = alphabet[i >> 6];
      pairs[i][1] = alphabet[i & 63];
    }
  }
};
constexpr pair_table table;

}  // namespace

std::size_t base64_encode_into(std::string_view data, char* out) {
  const auto* in = reinterpret_cast<const unsigned char*>(data.data());
  const std::size_t n = data.size();
  char* o = out;
  std::size_t i = 0;
  for (; i + 3 <= n; i += 3, o += 4) {
    const unsigned v = static_cast<unsigned>(in[i]) << 16 | static_cast<unsigned>(in[i + 1]) << 8 | in[i + 2];
    std::memcpy(o, table.pairs[v >> 12], 2);
    std::memcpy(o + 2, table.pairs[v & 0xfff], 2);
  }
  if (const std::size_t rest = n - i; rest > 0) {
    const unsigned v = static_cast<unsigned>(in[i]) << 16 | (rest == 2 ? static_cast<unsigned>(in[i + 1]) << 8 : 0u);
    o[0] = alphabet[v >> 18];
    o[1] = alphabet[(v >> 12) & 63];
    o[2] = rest == 2 ? alphabet[(v >> 6) & 63] : '=';
    o[3] = '=';
    o += 4;
  }
  return static_cast<std::size_t>(o - out);
}

std::string base64_encode(std::string_view data) {
  std::string out(base64_size(data.size()), '\0');
  out.resize(base64_encode_into(data, out.data()));
  return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  std::string out(3 * text.size() / 4, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(text.data()), static_cast<int>(text.size()));
  if (n < 0) return std::nullopt;
  // EVP_DecodeBlock counts padding as zero bytes; drop them.
  std::size_t size = static_cast<std::size_t>(n);
  if (!text.empty() && text.back() == '=') --size;
  if (text.size() > 1 && text[text.size() - 2] == '=') --size;
  out.resize(size);
  return out;
}

}  // namespace exbridge
