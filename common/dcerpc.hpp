// DCE/RPC connection-oriented PDUs (C706 chapter 12, with [MS-RPCE] 2.2.2's extensions): the PDUs that
// ride an Outlook Anywhere virtual connection once the RTS handshake is done -- bind, bind_ack, bind_nak,
// alter_context and its response, auth3, request, response, fault. A pure codec over bytes, used by
// fake-exchange's RPC endpoint and by clients; RTS PDUs (PTYPE 20) have their own codec in rts.hpp.
//
// Wire facts: a 16-byte common header (rpc_vers 5.0, PTYPE, pfc_flags, data representation, frag_length,
// auth_length, call_id), the PTYPE's body, and -- when auth_length is not 0 -- auth padding, an 8-byte
// sec_trailer and the token (MS-RPCE 2.2.2.11), which end the fragment. Only little-endian, ASCII, IEEE data
// representation (10 00 00 00) is accepted: every Windows peer sends it, and the RTS layer requires it.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace exbridge::dcerpc {

enum class ptype : std::uint8_t {
  request = 0,
  response = 2,
  fault = 3,
  bind = 11,
  bind_ack = 12,
  bind_nak = 13,
  alter_context = 14,
  alter_context_resp = 15,
  auth3 = 16,  ///< [MS-RPCE] 2.2.2.10: the third leg of a three-leg authentication (NTLM)
  shutdown = 17,
  co_cancel = 18,
  orphaned = 19,
};

/// pfc_flags (C706 12.6.3.1, [MS-RPCE] 2.2.2.3).
enum pfc : std::uint8_t {
  first_frag = 0x01,
  last_frag = 0x02,
  support_header_sign = 0x04,  ///< on bind-family PDUs; PFC_PENDING_CANCEL on the others
  conc_mpx = 0x10,
  did_not_execute = 0x20,
  maybe = 0x40,
  object_uuid = 0x80,
};

inline constexpr std::size_t header_size = 16;
/// request, response and fault: the common header plus alloc_hint, p_cont_id and opnum (or cancel_count).
inline constexpr std::size_t call_header_size = 24;
inline constexpr std::size_t sec_trailer_size = 8;

/// A UUID in its wire layout (the first three fields little-endian, as NDR sends them).
using uuid = std::array<std::uint8_t, 16>;
/// "a4f1db00-ca47-1067-b31f-00dd010662da" to wire layout; throws std::invalid_argument on bad text.
uuid parse_uuid(std::string_view text);
std::string to_string(const uuid& u);

/// An interface or transfer syntax: UUID and version (major in the low 16 bits of the u32 on the wire).
struct syntax_id {
  uuid id{};
  std::uint16_t major = 0;
  std::uint16_t minor = 0;
  bool operator==(const syntax_id&) const = default;
};

/// NDR 2.0, the transfer syntax of every call here (C706 14).
syntax_id ndr20();

struct context_element {
  std::uint16_t context_id = 0;
  syntax_id abstract;
  std::vector<syntax_id> transfer;
};

/// bind and alter_context (C706 12.6.4.3, 12.6.4.1).
struct bind_body {
  std::uint16_t max_xmit_frag = 0;
  std::uint16_t max_recv_frag = 0;
  std::uint32_t assoc_group_id = 0;
  std::vector<context_element> contexts;
};

/// p_cont_def_result_t and p_provider_reason_t (C706 12.6.3.1, [MS-RPCE] 2.2.2.4).
enum class result : std::uint16_t { acceptance = 0, user_rejection = 1, provider_rejection = 2, negotiate_ack = 3 };
enum class reason : std::uint16_t {
  not_specified = 0,
  abstract_syntax_not_supported = 1,
  proposed_transfer_syntaxes_not_supported = 2,
  local_limit_exceeded = 3,
};

struct context_result {
  result outcome = result::acceptance;
  std::uint16_t reason = 0;  ///< a `reason`, or the feature bits of a negotiate_ack
  syntax_id transfer;        ///< the accepted transfer syntax (zeros when rejected)
};

/// bind_ack and alter_context_resp (C706 12.6.4.4, 12.6.4.2).
struct bind_ack_body {
  std::uint16_t max_xmit_frag = 0;
  std::uint16_t max_recv_frag = 0;
  std::uint32_t assoc_group_id = 0;
  std::string secondary_address;  ///< without its NUL; alter_context_resp sends an empty one
  std::vector<context_result> results;
};

/// bind_nak (C706 12.6.4.5, [MS-RPCE] 2.2.2.5): why the association was refused and the versions spoken.
struct bind_nak_body {
  std::uint16_t reject_reason = 0;
  std::vector<std::pair<std::uint8_t, std::uint8_t>> versions;  ///< (major, minor)
};

struct request_body {
  std::uint32_t alloc_hint = 0;
  std::uint16_t context_id = 0;
  std::uint16_t opnum = 0;
  std::optional<uuid> object;  ///< present when pfc_flags has PFC_OBJECT_UUID
  std::string stub;
};

struct response_body {
  std::uint32_t alloc_hint = 0;
  std::uint16_t context_id = 0;
  std::uint8_t cancel_count = 0;
  std::string stub;
};

struct fault_body {
  std::uint32_t alloc_hint = 0;
  std::uint16_t context_id = 0;
  std::uint8_t cancel_count = 0;
  std::uint32_t status = 0;
};

/// PDUs without a body of their own (auth3 carries 4 pad bytes and its verifier; shutdown, co_cancel,
/// orphaned nothing that matters here).
struct no_body {};

using body = std::variant<no_body, bind_body, bind_ack_body, bind_nak_body, request_body, response_body, fault_body>;

/// The sec_trailer and token ([MS-RPCE] 2.2.2.11).
struct auth_verifier {
  std::uint8_t type = 0;   ///< RPC_C_AUTHN_*: 10 WINNT (NTLM), 9 GSS_NEGOTIATE, 16 KERBEROS
  std::uint8_t level = 0;  ///< RPC_C_AUTHN_LEVEL_*: 2 CONNECT .. 6 PKT_PRIVACY
  std::uint8_t pad_length = 0;
  std::uint32_t context_id = 0;
  std::string token;
};

struct pdu {
  ptype type = ptype::request;
  std::uint8_t flags = first_frag | last_frag;
  std::uint32_t call_id = 0;
  body content;
  std::optional<auth_verifier> auth;
};

/// The wire form. The auth padding is added so the sec_trailer starts 4-byte aligned (what Windows and
/// impacket both accept); throws std::length_error past 65,535 bytes.
std::string encode(const pdu& p);

struct decode_error {
  std::string what;
};

/// Parses one whole PDU (exactly frag_length bytes) of the PTYPEs above; RTS (20) and unknown PTYPEs are
/// refused, as are another version, another data representation, lengths that disagree and bodies cut short.
std::variant<pdu, decode_error> decode(std::span<const std::uint8_t> bytes);
std::variant<pdu, decode_error> decode(std::string_view bytes);

/// Cuts a call's stub (`type` request or response) into PDUs carrying at most `room` stub bytes each, with
/// FIRST_FRAG on the first, LAST_FRAG on the last and alloc_hint the stub bytes still to come (C706 12.6.2,
/// [MS-RPCE] 2.2.2.6); an empty stub is one PDU. Throws std::invalid_argument when room is 0.
std::vector<pdu> split_call(ptype type, std::uint32_t call_id, std::uint16_t context_id, std::uint16_t opnum,
                            std::string_view stub, std::size_t room);

/// Splits a response stub into fragments that each fit `max_frag` bytes (the peer's max_recv_frag), with
/// FIRST_FRAG on the first, LAST_FRAG on the last and alloc_hint the stub bytes still to come (C706 12.6.2,
/// [MS-RPCE] 2.2.2.6).
std::vector<std::string> fragment_response(std::uint32_t call_id, std::uint16_t context_id, std::string_view stub,
                                           std::uint16_t max_frag);

/// A fault PDU for `call_id` ([MS-RPCE] 2.2.2.8); `did_not_execute` sets PFC_DID_NOT_EXECUTE.
std::string encode_fault(std::uint32_t call_id, std::uint16_t context_id, std::uint32_t status, bool did_not_execute);

/// Fault and reject status codes (C706 appendix E, [MS-RPCE] 3.3.3.5.1 and [MS-ERREF]).
namespace status {
inline constexpr std::uint32_t access_denied = 0x00000005;        ///< ERROR_ACCESS_DENIED
inline constexpr std::uint32_t op_rng_error = 0x1C010002;         ///< nca_s_op_rng_error: opnum out of range
inline constexpr std::uint32_t unk_if = 0x1C010003;               ///< nca_s_unk_if: unknown interface / context
inline constexpr std::uint32_t proto_error = 0x1C01000B;          ///< nca_s_proto_error
inline constexpr std::uint32_t context_mismatch = 0x1C00001A;     ///< nca_s_fault_context_mismatch: unknown handle
inline constexpr std::uint32_t bad_stub_data = 0x000006F7;        ///< RPC_X_BAD_STUB_DATA
inline constexpr std::uint32_t invalid_bound = 0x000006C6;        ///< RPC_S_INVALID_BOUND: a [range] broken
inline constexpr std::uint32_t sec_pkg_error = 0x00000721;        ///< RPC_S_SEC_PKG_ERROR: a verifier that fails
}  // namespace status

/// bind_nak reject reasons ([MS-RPCE] 2.2.2.5).
namespace nak {
inline constexpr std::uint16_t reason_not_specified = 0;
inline constexpr std::uint16_t temporary_congestion = 1;
inline constexpr std::uint16_t local_limit_exceeded = 2;
inline constexpr std::uint16_t protocol_version_not_supported = 4;
inline constexpr std::uint16_t authentication_type_not_recognized = 8;
inline constexpr std::uint16_t invalid_checksum = 9;
}  // namespace nak

std::string_view ptype_name(ptype t);

}  // namespace exbridge::dcerpc
