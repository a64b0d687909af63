// NTLM (MS-NLMP) as HTTP "NTLM"/"Negotiate" authentication uses it with IIS and Exchange 2007: the three
// messages, NTLMv2 verification for fake-exchange, and an NTLMv2 client for rehearse. Byte strings are
// std::string holding raw bytes; names (user, domain, workstation) are UTF-8.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace exbridge {

/// NegotiateFlags bits (MS-NLMP 2.2.2.5) this module reads or writes.
namespace ntlm_flag {
inline constexpr std::uint32_t unicode = 0x00000001;
inline constexpr std::uint32_t oem = 0x00000002;
inline constexpr std::uint32_t request_target = 0x00000004;
inline constexpr std::uint32_t sign = 0x00000010;
inline constexpr std::uint32_t seal = 0x00000020;
inline constexpr std::uint32_t lm_key = 0x00000080;
inline constexpr std::uint32_t ntlm = 0x00000200;
inline constexpr std::uint32_t anonymous = 0x00000800;
inline constexpr std::uint32_t oem_domain_supplied = 0x00001000;
inline constexpr std::uint32_t oem_workstation_supplied = 0x00002000;
inline constexpr std::uint32_t always_sign = 0x00008000;
inline constexpr std::uint32_t target_type_domain = 0x00010000;
inline constexpr std::uint32_t target_type_server = 0x00020000;
inline constexpr std::uint32_t extended_sessionsecurity = 0x00080000;
inline constexpr std::uint32_t target_info = 0x00800000;
inline constexpr std::uint32_t version = 0x02000000;
inline constexpr std::uint32_t key_128 = 0x20000000;
inline constexpr std::uint32_t key_exch = 0x40000000;
inline constexpr std::uint32_t key_56 = 0x80000000;
}  // namespace ntlm_flag

/// AvId values of the TargetInfo AV_PAIR list (MS-NLMP 2.2.2.1).
enum class ntlm_av_id : std::uint16_t {
  eol = 0,
  nb_computer_name = 1,
  nb_domain_name = 2,
  dns_computer_name = 3,
  dns_domain_name = 4,
  dns_tree_name = 5,
  flags = 6,
  timestamp = 7,
  single_host = 8,
  target_name = 9,
  channel_bindings = 10,
};

struct ntlm_av_pair {
  ntlm_av_id id = ntlm_av_id::eol;
  std::string value;  ///< raw bytes (names are UTF-16LE on the wire)
};

/// NEGOTIATE_MESSAGE (Type 1).
struct ntlm_negotiate {
  std::uint32_t flags = 0;
  std::string domain;       ///< only when oem_domain_supplied; usually empty
  std::string workstation;  ///< only when oem_workstation_supplied; usually empty
};

/// The names a server's CHALLENGE_MESSAGE announces (TargetName is nb_domain).
struct ntlm_server_names {
  std::string nb_domain = "CONTOSO";
  std::string nb_computer = "EXCH2007";
  std::string dns_domain = "contoso.example";
  std::string dns_computer = "exch2007.contoso.example";
};

/// CHALLENGE_MESSAGE (Type 2), as the client reads it.
struct ntlm_challenge {
  std::uint32_t flags = 0;
  std::string target_name;
  std::array<std::uint8_t, 8> server_challenge{};
  std::string target_info;                 ///< the raw AV_PAIR list, copied into the NTLMv2 blob
  std::optional<std::uint64_t> timestamp;  ///< MsvAvTimestamp, if the server sent one
};

/// AUTHENTICATE_MESSAGE (Type 3).
struct ntlm_authenticate {
  std::uint32_t flags = 0;
  std::string domain;
  std::string user;
  std::string workstation;
  std::string lm_response;  ///< LmChallengeResponse, raw
  std::string nt_response;  ///< NtChallengeResponse, raw (NTLMv2: NTProofStr + blob; NTLMv1: 24 bytes)
  std::string session_key;  ///< EncryptedRandomSessionKey, raw, often empty
};

// --- primitives -------------------------------------------------------------------------------------------

/// HMAC-MD5, NTLM's keyed hash.
std::array<std::uint8_t, 16> hmac_md5(std::string_view key, std::string_view data);
/// NTOWFv2 = HMAC_MD5(MD4(UTF16LE(password)), UTF16LE(UPPERCASE(user) + domain)).
std::array<std::uint8_t, 16> ntowfv2(std::string_view password, std::string_view user, std::string_view domain);
/// Parses an AV_PAIR list up to MsvAvEOL (which is not returned); nullopt if it overruns or has no EOL.
std::optional<std::vector<ntlm_av_pair>> parse_av_pairs(std::string_view raw);
/// Now as a Windows FILETIME (100 ns ticks since 1601-01-01 UTC), the unit of MsvAvTimestamp.
std::uint64_t ntlm_filetime_now();
/// 8 random bytes (OpenSSL RAND_bytes) for a server or client challenge.
std::array<std::uint8_t, 8> ntlm_random_challenge();

// --- server side (fake-exchange) --------------------------------------------------------------------------

/// Parses a NEGOTIATE_MESSAGE; nullopt for anything malformed or out of bounds.
std::optional<ntlm_negotiate> parse_negotiate(std::string_view raw);
/// Builds the CHALLENGE_MESSAGE answering `negotiate`: flags mirror the client's (UNICODE or OEM, NTLM, SIGN,
/// SEAL, ALWAYS_SIGN, EXTENDED_SESSIONSECURITY, VERSION, 128, 56, KEY_EXCH) plus TARGET_INFO and TARGET_TYPE_DOMAIN;
/// TargetName is names.nb_domain; TargetInfo carries the four names, MsvAvTimestamp = `timestamp`
/// (a FILETIME) and MsvAvEOL.
std::string make_challenge(const ntlm_negotiate& negotiate, const std::array<std::uint8_t, 8>& server_challenge,
                           const ntlm_server_names& names, std::uint64_t timestamp);
/// Parses an AUTHENTICATE_MESSAGE; every offset and length is bounds-checked, strings are UTF-16LE
/// (UNICODE flag) or 8-bit OEM taken as Latin-1; nullopt for anything malformed.
std::optional<ntlm_authenticate> parse_authenticate(std::string_view raw);
/// The SessionBaseKey (MS-NLMP 3.3.2) if the NTLMv2 response proves knowledge of `password` for the user and
/// domain the client sent; nullopt otherwise (NTLMv1, anonymous, malformed, wrong password). Constant-time compare.
std::optional<std::array<std::uint8_t, 16>> ntlmv2_session_base_key(const ntlm_authenticate& authenticate,
                                                                     std::string_view password,
                                                                     const std::array<std::uint8_t, 8>& server_challenge);
/// True if the NTLMv2 response proves knowledge of `password` for the user and domain the client sent.
/// NTLMv1 (24-byte NT response), anonymous and malformed responses give false. Constant-time compare.
bool verify_ntlmv2(const ntlm_authenticate& authenticate, std::string_view password,
                   const std::array<std::uint8_t, 8>& server_challenge);

// --- client side (rehearse, playing Exchange Online) ------------------------------------------------------

/// A NEGOTIATE_MESSAGE asking for UNICODE, NTLM, ALWAYS_SIGN, EXTENDED_SESSIONSECURITY, 128/56, VERSION, and
/// `extra_flags` (SIGN | SEAL | KEY_EXCH for a context that protects messages, as DCE/RPC's).
std::string make_negotiate(std::uint32_t extra_flags = 0);
/// Parses a CHALLENGE_MESSAGE; nullopt for anything malformed (including a bad TargetInfo list).
std::optional<ntlm_challenge> parse_challenge(std::string_view raw);
/// Builds an NTLMv2 AUTHENTICATE_MESSAGE answering `challenge_raw`. The blob carries the server's
/// TargetInfo and its MsvAvTimestamp if present (then LmChallengeResponse is Z(24)), else `timestamp`.
/// Returns an empty string if `challenge_raw` is not a valid CHALLENGE_MESSAGE.
std::string make_authenticate(std::string_view challenge_raw, std::string_view user, std::string_view domain,
                              std::string_view password, std::string_view workstation,
                              const std::array<std::uint8_t, 8>& client_challenge, std::uint64_t timestamp);

/// An AUTHENTICATE_MESSAGE for a context that goes on to protect messages (DCE/RPC): as make_authenticate, but
/// SIGN, SEAL and KEY_EXCH are kept where the server granted them, and with KEY_EXCH `random_session_key` is sent
/// encrypted (MS-NLMP 3.1.5.1.2). Returns the message, the negotiated flags and the exported session key that
/// ntlm_session takes; nullopt if `challenge_raw` is not a valid CHALLENGE_MESSAGE.
struct ntlm_client_context {
  std::string message;
  std::uint32_t flags = 0;
  std::array<std::uint8_t, 16> exported_session_key{};
};
std::optional<ntlm_client_context> make_authenticate_for_session(
    std::string_view challenge_raw, std::string_view user, std::string_view domain, std::string_view password,
    std::string_view workstation, const std::array<std::uint8_t, 8>& client_challenge, std::uint64_t timestamp,
    const std::array<std::uint8_t, 16>& random_session_key);

// --- HTTP -------------------------------------------------------------------------------------------------

/// Decodes an Authorization / WWW-Authenticate value "NTLM <base64>" or "Negotiate <base64>" (scheme
/// case-insensitive) to the raw message; nullopt unless the token is a raw NTLMSSP message (SPNEGO-wrapped
/// Negotiate tokens are not supported).
std::optional<std::string> decode_http_token(std::string_view header_value);
/// "<scheme> <base64(raw)>", the header value carrying a message.
std::string http_token(std::string_view scheme, std::string_view raw);

}  // namespace exbridge
