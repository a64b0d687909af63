// Incremental SHA-256 (OpenSSL EVP) with a hex digest: how fake-exchange's manifest and rehearse's
// byte-for-byte verification agree on what an item contains.
#pragma once

#include <memory>
#include <string>
#include <string_view>

struct evp_md_ctx_st;

namespace exbridge {

class sha256 {
 public:
  sha256();
  ~sha256();
  sha256(sha256&&) noexcept;
  sha256& operator=(sha256&&) noexcept;
  void update(const void* data, std::size_t size);
  void update(std::string_view data) { update(data.data(), data.size()); }
  /// Lower-case hex of the digest; the object starts over afterwards.
  std::string hex_digest();

 private:
  evp_md_ctx_st* ctx_;
};

}  // namespace exbridge
