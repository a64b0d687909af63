// MD4 and RC4, the two primitives NTLM still needs (MS-NLMP 3.3.2 NTOWF, 3.4 sealing), from OpenSSL's legacy
// provider. OpenSSL 3 keeps both out of its default provider; a private library context loads "legacy" for them,
// so the rest of the process (TLS above all) keeps OpenSSL's defaults untouched.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

namespace exbridge {

/// MD4 (RFC 1320). Throws std::runtime_error, naming the fix, when OpenSSL's legacy provider cannot be loaded.
std::array<std::uint8_t, 16> md4(std::string_view data);

/// An RC4 key stream that continues across calls, as NTLM's sealing handles do (MS-NLMP 3.4.3: one handle per
/// direction for the whole session). Move-only.
class rc4_stream {
 public:
  /// Throws std::runtime_error when the legacy provider cannot be loaded or the key is empty.
  explicit rc4_stream(std::span<const std::uint8_t> key);
  rc4_stream(rc4_stream&&) noexcept;
  rc4_stream& operator=(rc4_stream&&) noexcept;
  ~rc4_stream();

  /// XORs the next key stream bytes into `data` (encryption and decryption are the same operation).
  void apply(std::span<std::uint8_t> data);

 private:
  struct state;
  std::unique_ptr<state> state_;
};

/// RC4 of `data` under `key` from a fresh key stream (MS-NLMP's RC4K, used for the exchanged session key).
std::array<std::uint8_t, 16> rc4_once(std::span<const std::uint8_t> key, const std::array<std::uint8_t, 16>& data);

}  // namespace exbridge
