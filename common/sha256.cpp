// SHA-256 implementation on OpenSSL EVP.
#include "common/sha256.hpp"

#include <openssl/evp.h>

#include <utility>

namespace exbridge {

sha256::sha256() : ctx_(EVP_MD_CTX_new()) { EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr); }
sha256::~sha256() { EVP_MD_CTX_free(ctx_); }
sha256::sha256(sha256&& other) noexcept : ctx_(std::exchange(other.ctx_, nullptr)) {}
sha256& sha256::operator=(sha256&& other) noexcept {
  std::swap(ctx_, other.ctx_);
  return *this;
}

void sha256::update(const void* data, std::size_t size) { EVP_DigestUpdate(ctx_, data, size); }

std::string sha256::hex_digest() {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  EVP_DigestFinal_ex(ctx_, digest, &len);
  EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr);
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * len);
  for (unsigned i = 0; i < len; ++i) {
    out += hex[digest[i] >> 4];
    out += hex[digest[i] & 15];
  }
  return out;
}

}  // namespace exbridge
