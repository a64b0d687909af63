// NTLM session security (MS-NLMP 3.4) with extended session security, as NTLMv2 always negotiates it: the
// exported session key, the four derived keys, and the signing and sealing of messages in one direction each.
// DCE/RPC at PKT_INTEGRITY and PKT_PRIVACY protects every fragment with it ([MS-RPCE] 3.3.1.5.2.2).
// Both roles: fake-exchange is the server, rehearse's Outlook Anywhere client the client.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "common/legacy_crypto.hpp"

namespace exbridge {

using ntlm_key = std::array<std::uint8_t, 16>;
/// NTLMSSP_MESSAGE_SIGNATURE with extended session security (MS-NLMP 2.2.2.9.2): Version 1, Checksum (8), SeqNum.
using ntlm_signature = std::array<std::uint8_t, 16>;

/// MS-NLMP 3.2.5.1.2 / 3.1.5.1.2: with NTLMSSP_NEGOTIATE_KEY_EXCH the client chose a random session key and sent
/// it RC4-encrypted under the KeyExchangeKey (for NTLMv2, the SessionBaseKey); without it the KeyExchangeKey
/// itself is the session key. nullopt when KEY_EXCH is set but the encrypted key is not 16 bytes.
std::optional<ntlm_key> ntlm_exported_session_key(const ntlm_key& session_base_key, std::uint32_t flags,
                                                  std::string_view encrypted_random_session_key);

/// SIGNKEY and SEALKEY (MS-NLMP 3.4.5.2, 3.4.5.3) for one direction.
ntlm_key ntlm_sign_key(const ntlm_key& exported, bool client_to_server);
/// The sealing key: MD5 of the key (all 16 bytes with NEGOTIATE_128, 7 with NEGOTIATE_56, else 5) and the magic.
ntlm_key ntlm_seal_key(const ntlm_key& exported, std::uint32_t flags, bool client_to_server);

class ntlm_session {
 public:
  enum class role { client, server };
  /// `flags` are the negotiated flags (the AUTHENTICATE_MESSAGE's). Extended session security must be among
  /// them: NTLMv1-style signatures (CRC32, RandomPad) are not offered (ntlm_session::supports says so first).
  ntlm_session(const ntlm_key& exported_session_key, std::uint32_t flags, role r);

  static bool supports(std::uint32_t flags);

  /// GSS_GetMIC (3.4.4.2) over `message` with the next outgoing sequence number.
  ntlm_signature sign(std::span<const std::uint8_t> message);
  /// GSS_WrapEx (3.4.6): encrypts `data` in place and signs `message`, the plaintext that contains it (for
  /// DCE/RPC the whole PDU up to the signature). `message` is read before `data` is encrypted.
  ntlm_signature seal(std::span<std::uint8_t> data, std::span<const std::uint8_t> message);

  /// Checks a signature the peer made with sign() over `message`, with the next incoming sequence number.
  bool verify(std::span<const std::uint8_t> message, const ntlm_signature& signature);
  /// Decrypts `data` in place, then checks `signature` over `message` -- which holds `data`, so it is read after
  /// the decryption (a PDU and its stub).
  bool unseal(std::span<std::uint8_t> data, std::span<const std::uint8_t> message, const ntlm_signature& signature);

  std::uint32_t sent() const { return send_seq_; }
  std::uint32_t received() const { return receive_seq_; }

 private:
  ntlm_signature finish(const std::array<std::uint8_t, 16>& mac, std::uint32_t seq, rc4_stream& rc4);

  std::uint32_t flags_;
  ntlm_key send_sign_, receive_sign_;
  rc4_stream send_seal_, receive_seal_;
  std::uint32_t send_seq_ = 0, receive_seq_ = 0;
};

}  // namespace exbridge
