// NTLM session security with extended session security (see ntlm_session.hpp).
#include "common/ntlm_session.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <optional>
#include <stdexcept>
#include <string>

#include "common/ntlm.hpp"

namespace exbridge {
namespace {

// MS-NLMP 3.4.5.2 and 3.4.5.3: the magic constants include their terminating NUL.
constexpr std::string_view client_sign_magic{"session key to client-to-server signing key magic constant\0", 59};
constexpr std::string_view server_sign_magic{"session key to server-to-client signing key magic constant\0", 59};
constexpr std::string_view client_seal_magic{"session key to client-to-server sealing key magic constant\0", 59};
constexpr std::string_view server_seal_magic{"session key to server-to-client sealing key magic constant\0", 59};

ntlm_key md5_of(std::span<const std::uint8_t> key, std::string_view magic) {
  std::string input(reinterpret_cast<const char*>(key.data()), key.size());
  input += magic;
  ntlm_key out{};
  unsigned int len = 0;
  if (EVP_Digest(input.data(), input.size(), out.data(), &len, EVP_md5(), nullptr) != 1 || len != out.size()) {
    throw std::runtime_error("MD5 is not available from OpenSSL");
  }
  return out;
}

/// HMAC_MD5(SigningKey, ConcatenationOf(SeqNum, Message)) (MS-NLMP 3.4.4.2).
std::array<std::uint8_t, 16> mac_of(const ntlm_key& key, std::uint32_t seq, std::span<const std::uint8_t> message) {
  std::string input;
  input.reserve(4 + message.size());
  for (int i = 0; i < 4; ++i) input += static_cast<char>(seq >> (8 * i));
  input.append(reinterpret_cast<const char*>(message.data()), message.size());
  return hmac_md5(std::string_view(reinterpret_cast<const char*>(key.data()), key.size()), input);
}

}  // namespace

std::optional<ntlm_key> ntlm_exported_session_key(const ntlm_key& session_base_key, std::uint32_t flags,
                                                  std::string_view encrypted_random_session_key) {
  if (!(flags & ntlm_flag::key_exch)) return session_base_key;
  if (encrypted_random_session_key.size() != 16) return std::nullopt;
  ntlm_key encrypted{};
  std::copy(encrypted_random_session_key.begin(), encrypted_random_session_key.end(), encrypted.begin());
  return rc4_once(session_base_key, encrypted);
}

ntlm_key ntlm_sign_key(const ntlm_key& exported, bool client_to_server) {
  return md5_of(exported, client_to_server ? client_sign_magic : server_sign_magic);
}

ntlm_key ntlm_seal_key(const ntlm_key& exported, std::uint32_t flags, bool client_to_server) {
  const std::size_t used = (flags & ntlm_flag::key_128) ? 16 : (flags & ntlm_flag::key_56) ? 7 : 5;
  return md5_of(std::span<const std::uint8_t>(exported).first(used), client_to_server ? client_seal_magic : server_seal_magic);
}

bool ntlm_session::supports(std::uint32_t flags) { return (flags & ntlm_flag::extended_sessionsecurity) != 0; }

ntlm_session::ntlm_session(const ntlm_key& exported, std::uint32_t flags, role r)
    : flags_(flags),
      send_sign_(ntlm_sign_key(exported, r == role::client)),
      receive_sign_(ntlm_sign_key(exported, r == role::server)),
      send_seal_(ntlm_seal_key(exported, flags, r == role::client)),
      receive_seal_(ntlm_seal_key(exported, flags, r == role::server)) {
  if (!supports(flags)) throw std::invalid_argument("NTLM session security without extended session security");
}

ntlm_signature ntlm_session::finish(const std::array<std::uint8_t, 16>& mac, std::uint32_t seq, rc4_stream& rc4) {
  // MS-NLMP 3.4.4.2: Version 1, the first 8 bytes of HMAC_MD5(SigningKey, SeqNum + Message) -- RC4-encrypted
  // with the sealing handle when KEY_EXCH was negotiated -- and SeqNum.
  ntlm_signature s{1, 0, 0, 0};
  std::copy(mac.begin(), mac.begin() + 8, s.begin() + 4);
  if (flags_ & ntlm_flag::key_exch) rc4.apply(std::span<std::uint8_t>(s).subspan(4, 8));
  for (int i = 0; i < 4; ++i) s[12 + i] = static_cast<std::uint8_t>(seq >> (8 * i));
  return s;
}

ntlm_signature ntlm_session::sign(std::span<const std::uint8_t> message) {
  const auto seq = send_seq_++;
  return finish(mac_of(send_sign_, seq, message), seq, send_seal_);
}

ntlm_signature ntlm_session::seal(std::span<std::uint8_t> data, std::span<const std::uint8_t> message) {
  // The checksum is over the plaintext, but the key stream encrypts the data before the checksum (3.4.3).
  const auto seq = send_seq_++;
  const auto mac = mac_of(send_sign_, seq, message);
  send_seal_.apply(data);
  return finish(mac, seq, send_seal_);
}

bool ntlm_session::verify(std::span<const std::uint8_t> message, const ntlm_signature& signature) {
  const auto seq = receive_seq_++;
  const auto expected = finish(mac_of(receive_sign_, seq, message), seq, receive_seal_);
  return CRYPTO_memcmp(expected.data(), signature.data(), expected.size()) == 0;
}

bool ntlm_session::unseal(std::span<std::uint8_t> data, std::span<const std::uint8_t> message,
                          const ntlm_signature& signature) {
  receive_seal_.apply(data);
  return verify(message, signature);
}

}  // namespace exbridge
