// MD4 and RC4 from OpenSSL's legacy provider, in a library context of their own (see legacy_crypto.hpp).
#include "common/legacy_crypto.hpp"

#include <openssl/evp.h>
#include <openssl/provider.h>

#include <algorithm>
#include <stdexcept>
#include <string>

namespace exbridge {
namespace {

/// The library context holding the legacy provider, loaded once; OpenSSL's own default context is not touched.
struct legacy_context {
  OSSL_LIB_CTX* ctx = nullptr;
  EVP_MD* md4 = nullptr;
  EVP_CIPHER* rc4 = nullptr;
  std::string error;

  legacy_context() {
    ctx = OSSL_LIB_CTX_new();
    if (ctx == nullptr || OSSL_PROVIDER_load(ctx, "legacy") == nullptr || OSSL_PROVIDER_load(ctx, "default") == nullptr) {
      error = "OpenSSL's legacy provider (MD4 and RC4, which NTLM needs) could not be loaded: Debian's libssl3 ships it "
              "as ossl-modules/legacy.so; reinstall libssl3, or point OPENSSL_MODULES at the folder holding legacy.so";
      return;
    }
    md4 = EVP_MD_fetch(ctx, "MD4", nullptr);
    rc4 = EVP_CIPHER_fetch(ctx, "RC4", nullptr);
    if (md4 == nullptr || rc4 == nullptr) error = "OpenSSL's legacy provider loaded but offers no MD4 or RC4";
  }
};

const legacy_context& legacy() {
  static const legacy_context c;  // thread-safe initialisation; lives until exit
  if (!c.error.empty()) throw std::runtime_error(c.error);
  return c;
}

}  // namespace

std::array<std::uint8_t, 16> md4(std::string_view data) {
  std::array<std::uint8_t, 16> out{};
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), out.data(), &len, legacy().md4, nullptr) != 1 || len != out.size()) {
    throw std::runtime_error("OpenSSL's MD4 failed");
  }
  return out;
}

struct rc4_stream::state {
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  ~state() { EVP_CIPHER_CTX_free(ctx); }
};

rc4_stream::rc4_stream(std::span<const std::uint8_t> key) : state_(std::make_unique<state>()) {
  const auto& l = legacy();
  if (key.empty()) throw std::runtime_error("RC4 needs a key");
  if (state_->ctx == nullptr || EVP_EncryptInit_ex2(state_->ctx, l.rc4, nullptr, nullptr, nullptr) != 1 ||
      EVP_CIPHER_CTX_set_key_length(state_->ctx, static_cast<int>(key.size())) != 1 ||
      EVP_EncryptInit_ex2(state_->ctx, nullptr, key.data(), nullptr, nullptr) != 1) {
    throw std::runtime_error("OpenSSL's RC4 could not be keyed");
  }
}

rc4_stream::rc4_stream(rc4_stream&&) noexcept = default;
rc4_stream& rc4_stream::operator=(rc4_stream&&) noexcept = default;
rc4_stream::~rc4_stream() = default;

void rc4_stream::apply(std::span<std::uint8_t> data) {
  // A stream cipher: EVP_EncryptUpdate in place, in pieces that fit an int.
  std::size_t done = 0;
  while (done < data.size()) {
    const int n = static_cast<int>(std::min<std::size_t>(data.size() - done, 1 << 30));
    int out = 0;
    if (EVP_EncryptUpdate(state_->ctx, data.data() + done, &out, data.data() + done, n) != 1 || out != n) {
      throw std::runtime_error("OpenSSL's RC4 failed");
    }
    done += static_cast<std::size_t>(n);
  }
}

std::array<std::uint8_t, 16> rc4_once(std::span<const std::uint8_t> key, const std::array<std::uint8_t, 16>& data) {
  auto out = data;
  rc4_stream(key).apply(out);
  return out;
}

}  // namespace exbridge
