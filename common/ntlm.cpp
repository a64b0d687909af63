// NTLM implementation: UTF-8/UTF-16LE, message encoding and bounds-checked decoding, NTLMv2 proofs.
// Hostile input never reads out of bounds: every field is checked against the message before it is copied.
#include "common/ntlm.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <stdexcept>

#include "common/base64.hpp"
#include "common/le_bytes.hpp"
#include "common/legacy_crypto.hpp"
#include "common/utf16.hpp"

namespace exbridge {
namespace {

constexpr std::string_view signature{"NTLMSSP\0", 8};
constexpr std::size_t max_http_token = 64 * 1024;  // base64 characters; real messages are a few hundred

using digest16 = std::array<std::uint8_t, 16>;

template <std::size_t N>
std::string_view bytes_of(const std::array<std::uint8_t, N>& a) {
  return {reinterpret_cast<const char*>(a.data()), N};
}

// --- text ---

/// 8-bit OEM text, taken as Latin-1 (exact for ASCII, which is what clients send in practice).
std::string from_latin1(std::string_view b) {
  std::string out;
  for (const char c : b) append_utf8(out, static_cast<std::uint8_t>(c));
  return out;
}

std::string to_latin1(std::string_view utf8) {
  std::string out;
  for (const auto cp : code_points(utf8)) out += cp < 0x100 ? static_cast<char>(cp) : '?';
  return out;
}

/// Upper case as Windows applies it to user names, for the scripts user names are written in: ASCII,
/// Latin-1, Latin Extended-A, Greek and Cyrillic. Other code points are left as they are.
std::uint32_t upcase(std::uint32_t c) {
  if (c >= 'a' && c <= 'z') return c - 0x20;
  if (c < 0x80) return c;
  if (c >= 0xe0 && c <= 0xfe && c != 0xf7) return c - 0x20;
  if (c == 0xff) return 0x178;
  if ((c >= 0x100 && c <= 0x137) || (c >= 0x14a && c <= 0x177)) return (c & 1) ? c - 1 : c;
  if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17e)) return (c & 1) ? c : c - 1;
  if (c == 0x3c2) return 0x3a3;
  if ((c >= 0x3b1 && c <= 0x3c1) || (c >= 0x3c3 && c <= 0x3cb)) return c - 0x20;
  if (c >= 0x430 && c <= 0x44f) return c - 0x20;
  if (c >= 0x450 && c <= 0x45f) return c - 0x50;
  return c;
}

std::string utf16le_upper(std::string_view utf8) {
  std::string out;
  for (const auto cp : code_points(utf8)) append_utf16le(out, upcase(cp));
  return out;
}

// --- crypto ---


// --- message fields ---

/// A (Len, MaxLen, Offset) field of a message header, checked against the message.
std::optional<std::string_view> field(std::string_view msg, std::size_t at) {
  const std::uint64_t len = load_le16(msg, at);
  const std::uint64_t offset = load_le32(msg, at + 4);
  if (len == 0) return std::string_view{};
  if (offset > msg.size() || len > msg.size() - offset) return std::nullopt;
  return msg.substr(static_cast<std::size_t>(offset), static_cast<std::size_t>(len));
}

std::optional<std::string> text_field(std::string_view msg, std::size_t at, bool unicode) {
  const auto raw = field(msg, at);
  if (!raw) return std::nullopt;
  if (unicode) return from_utf16le(*raw);
  return from_latin1(*raw);
}

bool has_header(std::string_view msg, std::size_t min_size, std::uint32_t type) {
  return msg.size() >= min_size && msg.substr(0, 8) == signature && load_le32(msg, 8) == type;
}

/// Lays out a message: a fixed header with (Len, MaxLen, Offset) slots, then the payloads in order.
struct message_builder {
  std::string out;
  explicit message_builder(std::size_t header_size) : out(header_size, '\0') {
    out.replace(0, 8, signature);
  }
  void payload(std::size_t slot, std::string_view data) {
    const auto len = static_cast<std::uint16_t>(std::min<std::size_t>(data.size(), 0xffff));
    store_le16(out, slot, len);
    store_le16(out, slot + 2, len);
    store_le32(out, slot + 4, static_cast<std::uint32_t>(out.size()));
    out.append(data.substr(0, len));
  }
};

void put_av(std::string& out, ntlm_av_id id, std::string_view value) {
  append_le16(out, static_cast<std::uint16_t>(id));
  append_le16(out, static_cast<std::uint16_t>(std::min<std::size_t>(value.size(), 0xffff)));
  out.append(value.substr(0, 0xffff));
}

// Windows Server 2008 R2 (6.1.7601) on the server, Windows Server 2022 (10.0.20348) on the client;
// NTLMSSP_REVISION_W2K3 = 15.
constexpr std::array<std::uint8_t, 8> server_version{6, 1, 0xc1, 0x1d, 0, 0, 0, 15};
constexpr std::array<std::uint8_t, 8> client_version{10, 0, 0x7c, 0x4f, 0, 0, 0, 15};

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

}  // namespace

// --- primitives -------------------------------------------------------------------------------------------

std::array<std::uint8_t, 16> hmac_md5(std::string_view key, std::string_view data) {
  digest16 out{};
  unsigned int len = 0;
  if (HMAC(EVP_md5(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
           data.size(), out.data(), &len) == nullptr ||
      len != out.size()) {
    throw std::runtime_error("HMAC-MD5 is not available from OpenSSL");
  }
  return out;
}

std::array<std::uint8_t, 16> ntowfv2(std::string_view password, std::string_view user, std::string_view domain) {
  const auto nt_hash = md4(utf16le(password));
  return hmac_md5(bytes_of(nt_hash), utf16le_upper(user) + utf16le(domain));
}

std::optional<std::vector<ntlm_av_pair>> parse_av_pairs(std::string_view raw) {
  std::vector<ntlm_av_pair> pairs;
  std::size_t at = 0;
  while (true) {
    if (raw.size() - at < 4) return std::nullopt;
    const auto id = static_cast<ntlm_av_id>(load_le16(raw, at));
    const std::size_t len = load_le16(raw, at + 2);
    at += 4;
    if (raw.size() - at < len) return std::nullopt;
    if (id == ntlm_av_id::eol) return pairs;
    pairs.push_back({id, std::string(raw.substr(at, len))});
    at += len;
  }
}

std::uint64_t ntlm_filetime_now() {
  using namespace std::chrono;
  constexpr std::uint64_t unix_epoch = 116444736000000000ULL;  // 1970-01-01 in FILETIME ticks
  const auto ticks = duration_cast<duration<std::int64_t, std::ratio<1, 10000000>>>(
      system_clock::now().time_since_epoch());
  return unix_epoch + static_cast<std::uint64_t>(ticks.count());
}

std::array<std::uint8_t, 8> ntlm_random_challenge() {
  std::array<std::uint8_t, 8> out{};
  if (RAND_bytes(out.data(), static_cast<int>(out.size())) != 1) {
    throw std::runtime_error("OpenSSL RAND_bytes failed");
  }
  return out;
}

// --- server side ------------------------------------------------------------------------------------------

std::optional<ntlm_negotiate> parse_negotiate(std::string_view raw) {
  if (!has_header(raw, 16, 1)) return std::nullopt;
  ntlm_negotiate n;
  n.flags = load_le32(raw, 12);
  const bool domain = n.flags & ntlm_flag::oem_domain_supplied;
  const bool workstation = n.flags & ntlm_flag::oem_workstation_supplied;
  if ((domain || workstation) && raw.size() < 32) return std::nullopt;
  if (domain) {
    auto d = text_field(raw, 16, false);
    if (!d) return std::nullopt;
    n.domain = std::move(*d);
  }
  if (workstation) {
    auto w = text_field(raw, 24, false);
    if (!w) return std::nullopt;
    n.workstation = std::move(*w);
  }
  return n;
}

std::string make_challenge(const ntlm_negotiate& negotiate, const std::array<std::uint8_t, 8>& server_challenge,
                           const ntlm_server_names& names, std::uint64_t timestamp) {
  using namespace ntlm_flag;
  std::uint32_t flags = ntlm | target_info | target_type_domain;
  const bool unicode_text = (negotiate.flags & unicode) || !(negotiate.flags & oem);
  flags |= unicode_text ? unicode : oem;
  // Windows grants what the client asks of these; SIGN, SEAL and KEY_EXCH matter where the context then protects
  // messages (DCE/RPC at PKT_INTEGRITY and PKT_PRIVACY), and are harmless on HTTP, which never uses them.
  flags |= negotiate.flags & (request_target | sign | seal | always_sign | extended_sessionsecurity | version | key_128 |
                              key_56 | key_exch);

  std::string info;
  put_av(info, ntlm_av_id::nb_domain_name, utf16le(names.nb_domain));
  put_av(info, ntlm_av_id::nb_computer_name, utf16le(names.nb_computer));
  put_av(info, ntlm_av_id::dns_domain_name, utf16le(names.dns_domain));
  put_av(info, ntlm_av_id::dns_computer_name, utf16le(names.dns_computer));
  std::string stamp;
  append_le64(stamp, timestamp);
  put_av(info, ntlm_av_id::timestamp, stamp);
  put_av(info, ntlm_av_id::eol, {});

  message_builder m(56);
  store_le32(m.out, 8, 2);
  store_le32(m.out, 20, flags);
  m.out.replace(24, 8, bytes_of(server_challenge));
  if (flags & version) m.out.replace(48, 8, bytes_of(server_version));
  m.payload(12, unicode_text ? utf16le(names.nb_domain) : to_latin1(names.nb_domain));
  m.payload(40, info);
  return m.out;
}

std::optional<ntlm_authenticate> parse_authenticate(std::string_view raw) {
  if (!has_header(raw, 64, 3)) return std::nullopt;
  ntlm_authenticate a;
  a.flags = load_le32(raw, 60);
  const bool unicode = a.flags & ntlm_flag::unicode;
  const auto lm = field(raw, 12);
  const auto nt = field(raw, 20);
  auto domain = text_field(raw, 28, unicode);
  auto user = text_field(raw, 36, unicode);
  auto workstation = text_field(raw, 44, unicode);
  const auto key = field(raw, 52);
  if (!lm || !nt || !domain || !user || !workstation || !key) return std::nullopt;
  a.lm_response = std::string(*lm);
  a.nt_response = std::string(*nt);
  a.domain = std::move(*domain);
  a.user = std::move(*user);
  a.workstation = std::move(*workstation);
  a.session_key = std::string(*key);
  return a;
}

std::optional<std::array<std::uint8_t, 16>> ntlmv2_session_base_key(const ntlm_authenticate& authenticate,
                                                                     std::string_view password,
                                                                     const std::array<std::uint8_t, 8>& server_challenge) {
  // NTProofStr (16) + blob: RespType, HiRespType, Z(6), Time (8), ClientChallenge (8), Z(4), AV pairs.
  constexpr std::size_t min_blob = 28;
  const std::string_view nt = authenticate.nt_response;
  if (authenticate.user.empty() || nt.size() < 16 + min_blob) return std::nullopt;
  const std::string_view blob = nt.substr(16);
  if (blob[0] != 1 || blob[1] != 1) return std::nullopt;
  const auto key = ntowfv2(password, authenticate.user, authenticate.domain);
  std::string input(bytes_of(server_challenge));
  input += blob;
  const auto proof = hmac_md5(bytes_of(key), input);
  if (CRYPTO_memcmp(proof.data(), nt.data(), proof.size()) != 0) return std::nullopt;
  // MS-NLMP 3.3.2: SessionBaseKey = HMAC_MD5(ResponseKeyNT, NTProofStr).
  return hmac_md5(bytes_of(key), bytes_of(proof));
}

bool verify_ntlmv2(const ntlm_authenticate& authenticate, std::string_view password,
                   const std::array<std::uint8_t, 8>& server_challenge) {
  return ntlmv2_session_base_key(authenticate, password, server_challenge).has_value();
}

// --- client side ------------------------------------------------------------------------------------------

std::string make_negotiate(std::uint32_t extra_flags) {
  using namespace ntlm_flag;
  message_builder m(40);
  store_le32(m.out, 8, 1);
  store_le32(m.out, 12,
          unicode | oem | request_target | ntlm | always_sign | extended_sessionsecurity | version | key_128 |
              key_56 | extra_flags);
  // DomainNameFields and WorkstationFields stay zero (nothing supplied); payload offsets point past the header.
  store_le32(m.out, 20, 40);
  store_le32(m.out, 28, 40);
  m.out.replace(32, 8, bytes_of(client_version));
  return m.out;
}

std::optional<ntlm_challenge> parse_challenge(std::string_view raw) {
  if (!has_header(raw, 32, 2)) return std::nullopt;
  ntlm_challenge c;
  c.flags = load_le32(raw, 20);
  auto name = text_field(raw, 12, c.flags & ntlm_flag::unicode);
  if (!name) return std::nullopt;
  c.target_name = std::move(*name);
  std::memcpy(c.server_challenge.data(), raw.data() + 24, 8);
  if ((c.flags & ntlm_flag::target_info) && raw.size() >= 48) {
    const auto info = field(raw, 40);
    if (!info) return std::nullopt;
    if (!info->empty()) {
      const auto pairs = parse_av_pairs(*info);
      if (!pairs) return std::nullopt;
      for (const auto& p : *pairs) {
        if (p.id == ntlm_av_id::timestamp && p.value.size() == 8) c.timestamp = load_le64(p.value, 0);
      }
    }
    c.target_info = std::string(*info);
  }
  return c;
}

namespace {

/// The AUTHENTICATE_MESSAGE both clients build; `protection` are the message-protection flags (SIGN, SEAL,
/// KEY_EXCH) the context may take from the server's offer -- none for HTTP.
std::optional<ntlm_client_context> authenticate_message(
    std::string_view challenge_raw, std::string_view user, std::string_view domain, std::string_view password,
    std::string_view workstation, const std::array<std::uint8_t, 8>& client_challenge, std::uint64_t timestamp,
    const std::array<std::uint8_t, 16>& random_session_key, std::uint32_t protection) {
  using namespace ntlm_flag;
  const auto challenge = parse_challenge(challenge_raw);
  if (!challenge) return std::nullopt;
  std::uint32_t flags = ntlm | (challenge->flags & ((unicode | request_target | always_sign | extended_sessionsecurity |
                                                     target_info | version | key_128 | key_56) | protection));
  if (!(flags & unicode)) flags |= oem;
  const bool unicode_text = flags & unicode;
  auto text = [&](std::string_view s) { return unicode_text ? utf16le(s) : to_latin1(s); };

  const auto key = ntowfv2(password, user, domain);
  const std::string_view server_challenge = bytes_of(challenge->server_challenge);
  std::string blob("\x01\x01\0\0\0\0\0\0", 8);
  append_le64(blob, challenge->timestamp.value_or(timestamp));
  blob += bytes_of(client_challenge);
  blob.append(4, '\0');
  blob += challenge->target_info;
  blob.append(4, '\0');
  const auto proof = hmac_md5(bytes_of(key), std::string(server_challenge) + blob);
  const std::string nt_response = std::string(bytes_of(proof)) + blob;
  std::string lm_response(24, '\0');
  if (!challenge->timestamp) {  // with MsvAvTimestamp the client sends Z(24) instead of LMv2 (MS-NLMP 3.1.5.1.2)
    const auto lm = hmac_md5(bytes_of(key), std::string(server_challenge) + std::string(bytes_of(client_challenge)));
    lm_response = std::string(bytes_of(lm)) + std::string(bytes_of(client_challenge));
  }
  // MS-NLMP 3.1.5.1.2: SessionBaseKey = HMAC_MD5(ResponseKeyNT, NTProofStr) is NTLMv2's KeyExchangeKey; with
  // KEY_EXCH the client picks the session key and sends it RC4-encrypted under that key.
  ntlm_client_context result;
  result.flags = flags;
  result.exported_session_key = hmac_md5(bytes_of(key), bytes_of(proof));
  std::string encrypted_key;
  if (flags & key_exch) {
    encrypted_key = std::string(bytes_of(rc4_once(result.exported_session_key, random_session_key)));
    result.exported_session_key = random_session_key;
  }

  message_builder m(72);
  store_le32(m.out, 8, 3);
  store_le32(m.out, 60, flags);
  if (flags & version) m.out.replace(64, 8, bytes_of(client_version));
  m.payload(28, text(domain));
  m.payload(36, text(user));
  m.payload(44, text(workstation));
  m.payload(12, lm_response);
  m.payload(20, nt_response);
  m.payload(52, encrypted_key);
  result.message = std::move(m.out);
  return result;
}

}  // namespace

std::optional<ntlm_client_context> make_authenticate_for_session(
    std::string_view challenge_raw, std::string_view user, std::string_view domain, std::string_view password,
    std::string_view workstation, const std::array<std::uint8_t, 8>& client_challenge, std::uint64_t timestamp,
    const std::array<std::uint8_t, 16>& random_session_key) {
  using namespace ntlm_flag;
  return authenticate_message(challenge_raw, user, domain, password, workstation, client_challenge, timestamp,
                              random_session_key, sign | seal | key_exch);
}

std::string make_authenticate(std::string_view challenge_raw, std::string_view user, std::string_view domain,
                              std::string_view password, std::string_view workstation,
                              const std::array<std::uint8_t, 8>& client_challenge, std::uint64_t timestamp) {
  // HTTP authentication protects no messages afterwards: no SIGN, SEAL or key exchange, whatever the server offers.
  auto context = authenticate_message(challenge_raw, user, domain, password, workstation, client_challenge, timestamp,
                                      {}, 0);
  return context ? std::move(context->message) : std::string{};
}

// --- HTTP -------------------------------------------------------------------------------------------------

std::optional<std::string> decode_http_token(std::string_view value) {
  auto is_space = [](char c) { return c == ' ' || c == '\t'; };
  while (!value.empty() && is_space(value.front())) value.remove_prefix(1);
  while (!value.empty() && is_space(value.back())) value.remove_suffix(1);
  std::size_t end = 0;
  while (end < value.size() && !is_space(value[end])) ++end;
  const std::string_view scheme = value.substr(0, end);
  if (!iequals(scheme, "NTLM") && !iequals(scheme, "Negotiate")) return std::nullopt;
  std::string_view token = value.substr(end);
  while (!token.empty() && is_space(token.front())) token.remove_prefix(1);
  if (token.empty() || token.size() > max_http_token) return std::nullopt;
  for (const char c : token) {
    if (is_space(c)) return std::nullopt;
  }
  std::string padded(token);
  if (padded.size() % 4 == 2) padded += "==";
  if (padded.size() % 4 == 3) padded += "=";
  auto raw = base64_decode(padded);
  if (!raw || raw->size() < 12 || std::string_view(*raw).substr(0, 8) != signature) return std::nullopt;
  return raw;
}

std::string http_token(std::string_view scheme, std::string_view raw) {
  std::string out(scheme);
  out += ' ';
  out += base64_encode(raw);
  return out;
}

}  // namespace exbridge
