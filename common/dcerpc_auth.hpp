// DCE/RPC calls protected by NTLM ([MS-RPCE] 2.2.2.11 and 3.3.1.5.2): where a fragment's verifier goes, what it
// signs and what it encrypts. With NTLM, Windows signs the whole fragment up to the signature -- header, body,
// padding and sec_trailer -- and at PKT_PRIVACY encrypts the stub and its padding only. Every fragment carries
// its own signature with the next sequence number. A pure codec over bytes; the NTLM state is the caller's.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/dcerpc.hpp"
#include "common/ntlm_session.hpp"

namespace exbridge::dcerpc {

/// RPC_C_AUTHN_* and RPC_C_AUTHN_LEVEL_* ([MS-RPCE] 2.2.1.1.7, 2.2.1.1.8).
namespace authn {
inline constexpr std::uint8_t winnt = 10;  ///< NTLM
inline constexpr std::uint8_t gss_negotiate = 9;
inline constexpr std::uint8_t gss_kerberos = 16;
inline constexpr std::uint8_t level_none = 1;
inline constexpr std::uint8_t level_connect = 2;
inline constexpr std::uint8_t level_call = 3;
inline constexpr std::uint8_t level_pkt = 4;
inline constexpr std::uint8_t level_integrity = 5;
inline constexpr std::uint8_t level_privacy = 6;
}  // namespace authn

/// The security context an association agreed at bind: its sec_trailer fields.
struct security_context {
  std::uint8_t type = authn::winnt;
  std::uint8_t level = authn::level_privacy;
  std::uint32_t context_id = 0;

  /// CALL, PKT and PKT_INTEGRITY sign every fragment (connection-oriented RPC treats CALL as PKT, and NTLM signs
  /// at PKT); PKT_PRIVACY also encrypts; CONNECT authenticates the association only.
  bool signs() const { return level >= authn::level_call; }
  bool seals() const { return level >= authn::level_privacy; }
};

/// The 16-byte NTLM signature every protected fragment ends with.
inline constexpr std::size_t ntlm_verifier_size = 16;

/// A call's request or response fragments (split_call), each protected as `sec` says and no larger than
/// max_frag. Without signing (CONNECT), plain fragments.
std::vector<std::string> encode_protected_call(ptype type, std::uint32_t call_id, std::uint16_t context_id,
                                               std::uint16_t opnum, std::string_view stub, std::uint16_t max_frag,
                                               const security_context& sec, ntlm_session& session);

/// Checks and, at PKT_PRIVACY, decrypts one request or response fragment in place; afterwards decode() reads
/// the plaintext. Returns why the fragment is refused: no verifier where one is needed, another security
/// context, a bad signature. A fragment of an association that does not sign passes unchanged.
std::optional<std::string> open_protected(std::string& fragment, const security_context& sec, ntlm_session& session);

}  // namespace exbridge::dcerpc
