// NTLM-protected DCE/RPC fragments (see dcerpc_auth.hpp).
#include "common/dcerpc_auth.hpp"

#include "common/le_bytes.hpp"

namespace exbridge::dcerpc {
namespace {

// The stub and its padding end 16-byte aligned before the sec_trailer ([MS-RPCE] 2.2.2.11), as Windows pads.
constexpr std::size_t pad_alignment = 16;

std::span<std::uint8_t> bytes_of(std::string& s, std::size_t from, std::size_t to) {
  return {reinterpret_cast<std::uint8_t*>(s.data()) + from, to - from};
}

/// Where the stub begins in a request or response fragment.
std::size_t stub_offset(std::string_view fragment) {
  const auto type = static_cast<ptype>(static_cast<std::uint8_t>(fragment[2]));
  const bool object = type == ptype::request && (static_cast<std::uint8_t>(fragment[3]) & pfc::object_uuid) != 0;
  return call_header_size + (object ? 16 : 0);
}

}  // namespace

std::vector<std::string> encode_protected_call(ptype type, std::uint32_t call_id, std::uint16_t context_id,
                                               std::uint16_t opnum, std::string_view stub, std::uint16_t max_frag,
                                               const security_context& sec, ntlm_session& session) {
  std::vector<std::string> out;
  if (!sec.signs()) {
    for (auto& p : split_call(type, call_id, context_id, opnum, stub, max_frag - call_header_size)) out.push_back(encode(p));
    return out;
  }
  const std::size_t overhead = call_header_size + sec_trailer_size + ntlm_verifier_size;
  if (max_frag < overhead + pad_alignment) throw std::invalid_argument("max_frag leaves no room for a protected stub");
  const std::size_t room = (max_frag - overhead) / pad_alignment * pad_alignment;
  for (auto& p : split_call(type, call_id, context_id, opnum, stub, room)) {
    std::string& data = type == ptype::request ? std::get<request_body>(p.content).stub : std::get<response_body>(p.content).stub;
    const std::size_t pad = (pad_alignment - data.size() % pad_alignment) % pad_alignment;
    data.append(pad, '\0');
    p.auth = auth_verifier{sec.type, sec.level, 0, sec.context_id, std::string(ntlm_verifier_size, '\0')};
    std::string bytes = encode(p);  // the body is 4-aligned already, so encode() adds no padding of its own
    const std::size_t trailer = bytes.size() - ntlm_verifier_size - sec_trailer_size;
    bytes[trailer + 2] = static_cast<char>(pad);  // auth_pad_length
    const std::size_t from = stub_offset(bytes);
    const auto message = std::span<const std::uint8_t>(as_bytes(bytes)).first(bytes.size() - ntlm_verifier_size);
    const auto signature = sec.seals() ? session.seal(bytes_of(bytes, from, trailer), message) : session.sign(message);
    bytes.replace(bytes.size() - ntlm_verifier_size, ntlm_verifier_size, reinterpret_cast<const char*>(signature.data()),
                  signature.size());
    out.push_back(std::move(bytes));
  }
  return out;
}

std::optional<std::string> open_protected(std::string& fragment, const security_context& sec, ntlm_session& session) {
  if (fragment.size() < header_size) return "shorter than a DCE/RPC header";
  const std::uint16_t auth_length = load_le16(fragment, 10);
  if (!sec.signs()) return std::nullopt;  // CONNECT: whatever verifier a client adds is not checked (as Samba)
  if (auth_length == 0) return "a fragment without the verifier its association's authentication level requires";
  if (auth_length != ntlm_verifier_size) return "an NTLM verifier of " + std::to_string(auth_length) + " bytes, not 16";
  const std::size_t from = stub_offset(fragment);
  if (fragment.size() < from + sec_trailer_size + ntlm_verifier_size) return "a verifier that runs past the fragment";
  const std::size_t trailer = fragment.size() - ntlm_verifier_size - sec_trailer_size;
  const auto type = static_cast<std::uint8_t>(fragment[trailer]), level = static_cast<std::uint8_t>(fragment[trailer + 1]);
  const std::uint8_t pad = static_cast<std::uint8_t>(fragment[trailer + 2]);
  if (type != sec.type || level != sec.level || load_le32(fragment, trailer + 4) != sec.context_id) {
    return "a verifier of another security context (auth_type " + std::to_string(type) + ", level " +
           std::to_string(level) + ") than the association's";
  }
  if (trailer < from + pad) return "auth_pad_length runs past the stub";
  ntlm_signature signature{};
  std::copy(fragment.end() - ntlm_verifier_size, fragment.end(), signature.begin());
  const auto message = std::span<const std::uint8_t>(as_bytes(fragment)).first(fragment.size() - ntlm_verifier_size);
  const bool ok = sec.seals() ? session.unseal(bytes_of(fragment, from, trailer), message, signature)
                              : session.verify(message, signature);
  if (!ok) return "a fragment whose NTLM signature does not verify";
  return std::nullopt;
}

}  // namespace exbridge::dcerpc
