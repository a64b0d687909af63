// libFuzzer target: calls on an association authenticated with RPC-level NTLM -- fake-exchange's RPC endpoint
// (fake_exchange/rpc_endpoint.cpp) behind NTLM-protected fragments (common/dcerpc_auth.cpp, ntlm_session.cpp).
// The harness logs on as the demo user at the level the first byte picks (CONNECT .. PKT_PRIVACY), to NSPI on
// 6004 or EMSMDB on 6001 (fake_exchange/nspi.cpp, emsmdb.cpp) as it also picks, then turns the rest into records
// [kind u8][opnum u8][length u16][bytes]: an odd kind sends the bytes as a call's stub in fragments the harness
// protects correctly (so the stub parsers see them), an even kind sends them raw as one fragment (so
// open_protected's refusals and decode() see them). With bit 1 of the kind set, the stub's first 20 bytes are
// replaced by the context handle the last EcDoConnectEx returned, so that EcDoRpcExt2 and the ROPs behind it
// (fake_exchange/store.cpp, common/rop_buffer.cpp) are reached.
//
// Invariants: every fragment the server answers opens at the client -- its signature verifies and the sequence
// numbers agree -- and fits the size agreed at bind; an association that refuses something says why and answers
// nothing afterwards.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "common/dcerpc_auth.hpp"
#include "common/le_bytes.hpp"
#include "common/ntlm.hpp"
#include "fake_exchange/rpc_endpoint.hpp"
#include "tests/fuzz/fuzz_streams.hpp"

namespace exbridge::fuzz {
namespace {

using namespace dcerpc;

const fake_exchange::exchange_config& server() {
  static const fake_exchange::exchange_config s;
  return s;
}

/// The three legs; returns the client's session, or nullopt if the endpoint refused a well-formed logon.
std::optional<ntlm_session> logon(fake_exchange::rpc_endpoint& e, const security_context& sec, const syntax_id& interface) {
  pdu bind;
  bind.type = ptype::bind;
  bind.call_id = 1;
  bind.content = bind_body{4280, 4280, 0, {{0, interface, {ndr20()}}}};
  bind.auth = auth_verifier{sec.type, sec.level, 0, sec.context_id,
                            make_negotiate(ntlm_flag::sign | ntlm_flag::seal | ntlm_flag::key_exch)};
  const auto ack = e.receive(as_bytes(encode(bind)));
  if (!ack || ack->size() != 1) return std::nullopt;
  const auto decoded = decode(ack->front());
  const auto* p = std::get_if<pdu>(&decoded);
  if (p == nullptr || p->type != ptype::bind_ack || !p->auth) return std::nullopt;
  std::array<std::uint8_t, 16> key{};
  key.fill(0x42);
  const auto context = make_authenticate_for_session(p->auth->token, "alex.wilber", "CONTOSO",
                                                     fake_exchange::demo_password, "FUZZ", {}, 0, key);
  if (!context) return std::nullopt;
  pdu auth3;
  auth3.type = ptype::auth3;
  auth3.call_id = 1;
  auth3.auth = auth_verifier{sec.type, sec.level, 0, sec.context_id, context->message};
  const auto none = e.receive(as_bytes(encode(auth3)));
  if (!none || !none->empty() || e.authenticated_user() == nullptr) return std::nullopt;
  return ntlm_session(context->exported_session_key, context->flags, ntlm_session::role::client);
}

}  // namespace
}  // namespace exbridge::fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace exbridge;
  using namespace exbridge::dcerpc;
  if (size == 0) return 0;
  const security_context sec{authn::winnt, static_cast<std::uint8_t>(authn::level_connect + data[0] % 5), 79231};
  const bool emsmdb = (data[0] / 5) % 2 == 1;
  const syntax_id interface = emsmdb ? syntax_id{parse_uuid("a4f1db00-ca47-1067-b31f-00dd010662da"), 0, 81}
                                     : syntax_id{parse_uuid("f5cc5a18-4264-101a-8c59-08002b2f8426"), 56, 0};
  fake_exchange::rpc_endpoint e(emsmdb ? 6001 : 6004, &fuzz::server());
  auto client = fuzz::logon(e, sec, interface);
  if (!client) fuzz::invariant_failed("a well-formed NTLM logon was refused:", e.auth_error());

  le_reader r({data + 1, size - 1});
  std::uint32_t call_id = 2;
  std::string session;  // the CXH of the last EcDoConnectEx answered
  while (r.has(4) && !e.closing()) {
    const std::uint8_t kind = r.u8();
    const std::uint16_t opnum = r.u8();
    const std::size_t n = std::min<std::size_t>(r.u16(), r.left());
    std::string bytes = r.text(n);
    if ((kind & 2) && session.size() == 20 && bytes.size() >= 20) bytes.replace(0, 20, session);
    std::vector<std::string> sent;
    std::string answer;  // the response stub, reassembled
    if (kind & 1) {
      const auto max_frag = static_cast<std::uint16_t>(std::max<unsigned>(256, std::min<unsigned>(4280, 256u * (kind >> 1))));
      sent = encode_protected_call(ptype::request, call_id++, 0, opnum, bytes, max_frag, sec, *client);
    } else {
      sent.push_back(bytes);
    }
    for (const auto& f : sent) {
      const auto replies = e.receive(as_bytes(f));
      if (!replies) {
        if (e.error().empty()) fuzz::invariant_failed("a refusal without a reason");
        return 0;
      }
      for (std::string reply : *replies) {
        if (reply.size() > e.max_xmit_frag()) fuzz::invariant_failed("a fragment larger than the size agreed at bind");
        if (reply.size() > 2 && reply[2] == static_cast<char>(ptype::response)) {
          if (auto why = open_protected(reply, sec, *client)) fuzz::invariant_failed("a response the client cannot open:", *why);
        }
        const auto decoded = decode(reply);
        if (!std::holds_alternative<pdu>(decoded)) fuzz::invariant_failed("a reply that does not decode");
        if (const auto* body = std::get_if<response_body>(&std::get<pdu>(decoded).content)) answer += body->stub;
      }
      if (e.closing() && e.error().empty()) fuzz::invariant_failed("an association closed without a reason");
    }
    if (emsmdb && opnum == 10 && answer.size() >= 20) session = answer.substr(0, 20);
  }
  return 0;
}
