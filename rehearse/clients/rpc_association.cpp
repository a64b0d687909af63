// DCE/RPC bind with NTLM and protected calls over a virtual connection (see rpc_association.hpp).
#include "rehearse/clients/rpc_association.hpp"

#include <cstdio>

#include "common/ntlm.hpp"

namespace exbridge::rehearse {
namespace {

/// Windows' fragment size for ncacn_http (what it offers in a bind).
constexpr std::uint16_t offered_frag = 5840;

failure protocol_failure(const std::string& what) {
  return {"bad-response", what + "; the RPC conversation through the proxy is not what Exchange sends"};
}

}  // namespace

std::string rpc_status_name(std::uint32_t status) {
  const char* name = nullptr;
  switch (status) {
    case dcerpc::status::access_denied: name = "rpc_s_access_denied"; break;
    case dcerpc::status::op_rng_error: name = "nca_s_op_rng_error"; break;
    case dcerpc::status::unk_if: name = "nca_s_unk_if"; break;
    case dcerpc::status::proto_error: name = "nca_s_proto_error"; break;
    case dcerpc::status::context_mismatch: name = "nca_s_fault_context_mismatch"; break;
    case dcerpc::status::bad_stub_data: name = "RPC_X_BAD_STUB_DATA"; break;
    case dcerpc::status::invalid_bound: name = "RPC_S_INVALID_BOUND"; break;
    case dcerpc::status::sec_pkg_error: name = "RPC_S_SEC_PKG_ERROR"; break;
    default: break;
  }
  char hex[16];
  std::snprintf(hex, sizeof hex, "0x%08X", status);
  return name == nullptr ? std::string(hex) : std::string(name) + " (" + hex + ")";
}

net::awaitable<std::optional<failure>> rpc_association::bind(const dcerpc::syntax_id& interface, std::uint8_t level) {
  sec_.level = level;
  dcerpc::pdu bind;
  bind.type = dcerpc::ptype::bind;
  bind.call_id = next_call_++;
  bind.content = dcerpc::bind_body{offered_frag, offered_frag, 0, {{0, interface, {dcerpc::ndr20()}}}};
  bind.auth = dcerpc::auth_verifier{sec_.type, sec_.level, 0, sec_.context_id,
                                    make_negotiate(ntlm_flag::sign | ntlm_flag::seal | ntlm_flag::key_exch)};
  if (auto f = co_await vc_.send(dcerpc::encode(bind))) co_return f;
  auto answer = co_await vc_.receive(s_.request_timeout);
  if (auto* f = std::get_if<failure>(&answer)) co_return *f;
  const auto decoded = dcerpc::decode(std::get<std::string>(answer));
  const auto* ack = std::get_if<dcerpc::pdu>(&decoded);
  if (ack == nullptr) co_return protocol_failure("the answer to the bind does not parse");
  if (ack->type == dcerpc::ptype::bind_nak) {
    co_return failure{"rpc-refused", "the server refused the bind to EMSMDB (bind_nak, reason " +
                                         std::to_string(std::get<dcerpc::bind_nak_body>(ack->content).reject_reason) + ")"};
  }
  const auto* body = std::get_if<dcerpc::bind_ack_body>(&ack->content);
  if (ack->type != dcerpc::ptype::bind_ack || body == nullptr || body->results.empty()) {
    co_return protocol_failure("the answer to the bind is not a bind_ack");
  }
  if (body->results.front().outcome != dcerpc::result::acceptance) {
    co_return failure{"rpc-refused", "the server rejected the EMSMDB interface (provider reason " +
                                         std::to_string(body->results.front().reason) + "): the port behind rpcproxy.dll "
                                         "is not the mailbox store's"};
  }
  max_xmit_ = std::min<std::uint16_t>(body->max_recv_frag, offered_frag);
  if (!ack->auth) co_return protocol_failure("the bind_ack carries no NTLM CHALLENGE");
  // "user@domain" logs on as a UPN with an empty domain, as on the HTTP side.
  const std::string user = s_.ntlm_domain.empty() ? s_.email : s_.email.substr(0, s_.email.find('@'));
  std::array<std::uint8_t, 16> random_key{};
  const auto a = ntlm_random_challenge(), b = ntlm_random_challenge();
  std::copy(a.begin(), a.end(), random_key.begin());
  std::copy(b.begin(), b.end(), random_key.begin() + 8);
  const auto context = make_authenticate_for_session(ack->auth->token, user, s_.ntlm_domain, s_.password, "EXO-MRS01",
                                                     ntlm_random_challenge(), ntlm_filetime_now(), random_key);
  if (!context) co_return protocol_failure("the bind_ack's NTLM CHALLENGE does not parse");
  if (!ntlm_session::supports(context->flags)) {
    co_return protocol_failure("the server's NTLM CHALLENGE does not offer extended session security");
  }
  dcerpc::pdu auth3;
  auth3.type = dcerpc::ptype::auth3;
  auth3.call_id = bind.call_id;
  auth3.auth = dcerpc::auth_verifier{sec_.type, sec_.level, 0, sec_.context_id, context->message};
  if (auto f = co_await vc_.send(dcerpc::encode(auth3))) co_return f;  // rpc_auth_3 is never answered
  session_.emplace(context->exported_session_key, context->flags, ntlm_session::role::client);
  co_return std::nullopt;
}

net::awaitable<std::variant<std::string, failure>> rpc_association::call(std::uint16_t opnum, std::string_view stub,
                                                                         scaled_clock::duration limit) {
  if (!session_) co_return protocol_failure("a call before the bind");
  const std::uint32_t id = next_call_++;
  for (auto& fragment : dcerpc::encode_protected_call(dcerpc::ptype::request, id, 0, opnum, stub, max_xmit_, sec_, *session_)) {
    if (auto f = co_await vc_.send(std::move(fragment))) co_return *f;
  }
  std::string joined;
  for (;;) {
    auto answer = co_await vc_.receive(limit);
    if (auto* f = std::get_if<failure>(&answer)) co_return *f;
    auto& bytes = std::get<std::string>(answer);
    if (bytes.size() > 2 && bytes[2] == static_cast<char>(dcerpc::ptype::fault)) {
      const auto decoded = dcerpc::decode(bytes);
      const auto* p = std::get_if<dcerpc::pdu>(&decoded);
      const auto* fault = p == nullptr ? nullptr : std::get_if<dcerpc::fault_body>(&p->content);
      if (fault == nullptr) co_return protocol_failure("a fault PDU that does not parse");
      co_return failure{"rpc-fault", "the server answered RPC call " + std::to_string(opnum) + " with the fault " +
                                         rpc_status_name(fault->status)};
    }
    if (auto why = dcerpc::open_protected(bytes, sec_, *session_)) {
      co_return protocol_failure("a response fragment failed its NTLM check (" + *why + ")");
    }
    const auto decoded = dcerpc::decode(bytes);
    const auto* p = std::get_if<dcerpc::pdu>(&decoded);
    const auto* body = p == nullptr ? nullptr : std::get_if<dcerpc::response_body>(&p->content);
    if (body == nullptr || p->call_id != id) {
      co_return protocol_failure("the answer to call " + std::to_string(id) + " is not its response");
    }
    joined += body->stub;
    if ((p->flags & dcerpc::last_frag) != 0) co_return joined;
  }
}

}  // namespace exbridge::rehearse
