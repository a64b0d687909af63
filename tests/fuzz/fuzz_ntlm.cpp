// libFuzzer target: NTLM messages (common/ntlm.cpp) as both ends receive them. The input is one raw
// message, given to every parser: NEGOTIATE (Type 1) and AUTHENTICATE (Type 3) as fake-exchange reads a
// client's, CHALLENGE (Type 2) as rehearse's client reads a server's, the AV_PAIR list, and the HTTP header
// value form ("NTLM <base64>") as both read it.
//
// Invariants beyond "no crash, no UB": a CHALLENGE built for any parsed NEGOTIATE parses back with the
// server challenge it carries; an AUTHENTICATE built against any parsed CHALLENGE parses back and verifies
// with the right password (and not with a wrong one); a parsed AUTHENTICATE never verifies against a
// password other than the fixed one, which the input cannot know.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/ntlm.hpp"
#include "tests/fuzz/fuzz_streams.hpp"

namespace exbridge::fuzz {
namespace {

constexpr std::array<std::uint8_t, 8> server_challenge{0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef};
constexpr std::array<std::uint8_t, 8> client_challenge{0xaa, 0xbb, 0xcc, 0xdd, 0x11, 0x22, 0x33, 0x44};
constexpr std::uint64_t timestamp = 133'000'000'000'000'000ULL;

void server_side(std::string_view raw) {
  if (const auto negotiate = parse_negotiate(raw)) {
    const std::string challenge = make_challenge(*negotiate, server_challenge, ntlm_server_names{}, timestamp);
    const auto parsed = parse_challenge(challenge);
    if (!parsed) invariant_failed("make_challenge built a CHALLENGE that parse_challenge refuses");
    if (parsed->server_challenge != server_challenge) invariant_failed("the CHALLENGE lost its server challenge");
    if (!parse_av_pairs(parsed->target_info)) invariant_failed("the CHALLENGE's TargetInfo does not parse");
  }
  if (const auto authenticate = parse_authenticate(raw)) {
    // The password is not in the input, so no input can prove knowledge of it (a chance of 2^-128).
    if (verify_ntlmv2(*authenticate, "fuzz-password-never-in-input", server_challenge)) {
      invariant_failed("an AUTHENTICATE the fuzzer made up verified");
    }
    (void)verify_ntlmv2(*authenticate, "", server_challenge);
  }
  (void)parse_av_pairs(raw);
}

void client_side(std::string_view raw) {
  const auto challenge = parse_challenge(raw);
  const std::string answer = make_authenticate(raw, "Alex.Wilber", "CONTOSO", "Pa55w0rd!", "EXO-MIGRATION",
                                               client_challenge, timestamp);
  if (challenge.has_value() != !answer.empty()) invariant_failed("make_authenticate disagrees with parse_challenge");
  if (!challenge) return;
  const auto authenticate = parse_authenticate(answer);
  if (!authenticate) invariant_failed("make_authenticate built an AUTHENTICATE that parse_authenticate refuses");
  if (authenticate->user != "Alex.Wilber" || authenticate->domain != "CONTOSO") {
    invariant_failed("the AUTHENTICATE's names did not survive:", authenticate->user);
  }
  if (!verify_ntlmv2(*authenticate, "Pa55w0rd!", challenge->server_challenge)) {
    invariant_failed("an AUTHENTICATE built against this CHALLENGE does not verify with its password");
  }
  if (verify_ntlmv2(*authenticate, "wrong", challenge->server_challenge)) invariant_failed("a wrong password verified");
}

}  // namespace
}  // namespace exbridge::fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace exbridge;
  const std::string_view raw(reinterpret_cast<const char*>(data), size);
  fuzz::server_side(raw);
  fuzz::client_side(raw);
  // The same bytes as an Authorization / WWW-Authenticate value, and a valid token carrying them.
  if (const auto decoded = decode_http_token(raw)) {
    fuzz::server_side(*decoded);
    fuzz::client_side(*decoded);
  }
  const auto round_trip = decode_http_token(http_token("NTLM", raw));
  const bool decodable = raw.size() >= 12 && raw.substr(0, 8) == std::string_view("NTLMSSP\0", 8);
  if (decodable && raw.size() <= 12000 && (!round_trip || *round_trip != raw)) {
    fuzz::invariant_failed("http_token / decode_http_token do not round-trip a message");
  }
  return 0;
}
