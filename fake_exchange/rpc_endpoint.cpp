// The mailbox server's DCE/RPC association (see rpc_endpoint.hpp).
#include "fake_exchange/rpc_endpoint.hpp"

#include <algorithm>
#include <atomic>

#include "common/le_bytes.hpp"

namespace exbridge::fake_exchange {
namespace {

using namespace exbridge::dcerpc;

struct known_interface {
  rpc_interface which;
  syntax_id syntax;
};

const std::vector<known_interface>& known_interfaces() {
  // [MS-OXCRPC] 1.9, [MS-NSPI] 1.9, [MS-OXABREF] 1.9.
  static const std::vector<known_interface> all = {
      {rpc_interface::emsmdb, {parse_uuid("a4f1db00-ca47-1067-b31f-00dd010662da"), 0, 81}},
      {rpc_interface::nspi, {parse_uuid("f5cc5a18-4264-101a-8c59-08002b2f8426"), 56, 0}},
      {rpc_interface::rfr, {parse_uuid("1544f5e0-613c-11d1-93df-00c04fd7bd09"), 1, 0}},
  };
  return all;
}

/// [MS-RPCE] 3.3.1.5.3: a transfer syntax whose UUID begins 6cb71c2c-9812-4540 is not a syntax but the client's
/// offer of bind time features; its last 8 bytes carry the feature bits.
bool is_bind_time_feature_negotiation(const syntax_id& s) {
  const uuid prefix = parse_uuid("6cb71c2c-9812-4540-0000-000000000000");
  return std::equal(prefix.begin(), prefix.begin() + 8, s.id.begin());
}

// Association group ids handed out by this process (Windows numbers them per server; any non-zero value will do).
std::atomic<std::uint32_t> next_assoc_group{0x0001e2a1};

/// The GUID NspiBind returns: stable for a server name, so every association of one server reports the same.
std::array<std::uint8_t, 16> server_guid(const exchange_config* server) {
  return stable_guid("exbridge fake-exchange server GUID " +
                     (server != nullptr ? server->org.server_fqdn() : std::string("no server")));
}

constexpr std::size_t max_call_stub = 4 * 1024 * 1024;  // far above EcDoRpcExt2's 256 KiB rgbIn (BIG_RANGE_ULONG)

}  // namespace

std::string_view interface_name(rpc_interface i) {
  switch (i) {
    case rpc_interface::emsmdb: return "EMSMDB";
    case rpc_interface::nspi: return "NSPI";
    case rpc_interface::rfr: return "RFR";
  }
  return "?";
}

std::vector<rpc_interface> interfaces_on_port(std::uint16_t port) {
  switch (port) {
    case 6001: return {rpc_interface::emsmdb};
    case 6002: return {rpc_interface::rfr};
    case 6004: return {rpc_interface::nspi, rpc_interface::rfr};
    default: return {};
  }
}

rpc_endpoint::rpc_endpoint(std::uint16_t port, const exchange_config* server)
    : port_(port), server_(server), nspi_(server_guid(server)), emsmdb_(server) {}

std::string rpc_endpoint::summary() const {
  static constexpr const char* levels[] = {"", "NONE", "CONNECT", "CALL", "PKT", "PKT_INTEGRITY", "PKT_PRIVACY"};
  std::string out;
  if (!bound_) {
    out = "no bind";
  } else if (user_ != nullptr) {
    out = std::string("NTLM ") + levels[std::min<std::uint8_t>(security_->level, 6)] + " " + user_->email;
  } else if (!auth_error_.empty()) {
    out = auth_error_;
  } else {
    out = "no RPC authentication";
  }
  out += ", " + std::to_string(calls_) + (calls_ == 1 ? " call" : " calls");
  if (closing_ && !error_.empty() && error_ != auth_error_) out += "; " + error_;
  return out;
}

std::optional<std::vector<std::string>> rpc_endpoint::fail(std::string why) {
  error_ = std::move(why);
  return std::nullopt;
}

std::optional<std::vector<std::string>> rpc_endpoint::nak_and_close(std::uint32_t call_id, std::uint16_t why,
                                                                    std::string error) {
  pdu nak;
  nak.type = ptype::bind_nak;
  nak.call_id = call_id;
  nak.content = bind_nak_body{why, {{5, 0}}};
  error_ = std::move(error);
  closing_ = true;
  return std::vector<std::string>{encode(nak)};
}

std::optional<std::vector<std::string>> rpc_endpoint::receive(std::span<const std::uint8_t> bytes) {
  if (closing_) return fail("a PDU after the association closed: " + error_);
  std::string opened;  // a protected request, checked and decrypted
  if (session_ && security_->signs() && bytes.size() >= header_size && bytes[2] == static_cast<std::uint8_t>(ptype::request)) {
    opened.assign(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    if (auto why = open_protected(opened, *security_, *session_)) {
      const bool unsigned_fragment = load_le16(opened, 10) == 0;
      return fault_and_close(load_le32(opened, 12), 0, unsigned_fragment ? status::access_denied : status::sec_pkg_error,
                             "RPC: " + *why);
    }
    bytes = as_bytes(opened);
  }
  auto decoded = decode(bytes);
  if (auto* e = std::get_if<decode_error>(&decoded)) return fail("not a DCE/RPC PDU: " + e->what);
  const pdu& p = std::get<pdu>(decoded);
  switch (p.type) {
    case ptype::bind:
      if (bound_) return nak_and_close(p.call_id, nak::reason_not_specified, "a second bind on one association");
      return bind(p);
    case ptype::alter_context:
      if (!bound_) return fail("alter_context before bind");
      return bind(p);
    case ptype::request:
      if (!bound_) return fail("a request before bind");
      return request(p);
    case ptype::auth3:
      if (!negotiate_) return fail("rpc_auth_3 without an authentication in progress");
      complete_authentication(p);
      return std::vector<std::string>{};  // rpc_auth_3 has no answer, whatever its outcome
    case ptype::co_cancel:
    case ptype::orphaned:
      return std::vector<std::string>{};  // calls here complete at once: nothing to cancel
    default:
      return fail(std::string(ptype_name(p.type)) + " is not sent by clients");
  }
}

std::optional<std::vector<std::string>> rpc_endpoint::bind(const pdu& p) {
  const auto& b = std::get<bind_body>(p.content);
  const bool first = p.type == ptype::bind;
  std::optional<auth_verifier> reply_auth;
  if (p.auth && first) {
    std::uint16_t reason = nak::reason_not_specified;
    auto challenge = start_authentication(*p.auth, reason);
    if (!challenge) return nak_and_close(p.call_id, reason, auth_error_);
    reply_auth = auth_verifier{p.auth->type, p.auth->level, 0, p.auth->context_id, std::move(*challenge)};
  } else if (p.auth && !(security_ && p.auth->context_id == security_->context_id)) {
    // NTLM completes in one round; an alter_context may only name the association's own security context.
    return fail("alter_context with another security context than the bind's");
  }
  if (first) {
    if (b.contexts.empty()) return nak_and_close(p.call_id, nak::reason_not_specified, "a bind without contexts");
    // Windows' rule, as Samba's tests against Windows record it (librpc/rpc/dcesrv_core.c): both sizes become
    // the smaller proposal, at least 2048, at most 5840, rounded down to a multiple of 8.
    const auto size = static_cast<std::uint16_t>(
        std::min<unsigned>(std::max<unsigned>(2048, std::min(b.max_xmit_frag, b.max_recv_frag)), max_fragment) & ~7u);
    max_xmit_frag_ = max_recv_frag_ = size;
    assoc_group_id_ = b.assoc_group_id != 0 ? b.assoc_group_id : next_assoc_group++;
  }
  const auto offered_here = interfaces_on_port(port_);
  bind_ack_body ack;
  ack.max_xmit_frag = max_xmit_frag_;
  ack.max_recv_frag = max_recv_frag_;
  ack.assoc_group_id = assoc_group_id_;
  if (first) ack.secondary_address = std::to_string(port_);
  for (const auto& c : b.contexts) {
    context_result r{result::provider_rejection, static_cast<std::uint16_t>(reason::abstract_syntax_not_supported), {}};
    if (!c.transfer.empty() && is_bind_time_feature_negotiation(c.transfer.front())) {
      // negotiate_ack with the offered bits this server supports -- security context multiplexing (0x1) and
      // keep connection on orphan (0x2), both, as Windows after 2003 answers ([MS-RPCE] 3.3.1.5.3, <99>).
      r = {result::negotiate_ack, static_cast<std::uint16_t>(c.transfer.front().id[8] & 0x03), {}};
      ack.results.push_back(r);
      continue;
    }
    const auto known = std::find_if(known_interfaces().begin(), known_interfaces().end(),
                                    [&](const known_interface& k) { return k.syntax == c.abstract; });
    const bool served = known != known_interfaces().end() &&
                        std::find(offered_here.begin(), offered_here.end(), known->which) != offered_here.end();
    if (served) {
      const auto ndr = std::find(c.transfer.begin(), c.transfer.end(), ndr20());
      if (ndr == c.transfer.end()) {
        r.reason = static_cast<std::uint16_t>(reason::proposed_transfer_syntaxes_not_supported);
      } else {
        r = {result::acceptance, 0, ndr20()};
        contexts_[c.context_id] = known->which;
      }
    }
    ack.results.push_back(r);
  }
  pdu out;
  out.type = first ? ptype::bind_ack : ptype::alter_context_resp;
  out.call_id = p.call_id;
  out.content = std::move(ack);
  out.auth = std::move(reply_auth);
  bound_ = true;
  return std::vector<std::string>{encode(out)};
}

std::optional<std::vector<std::string>> rpc_endpoint::request(const pdu& p) {
  const auto& r = std::get<request_body>(p.content);
  const bool first_fragment = (p.flags & first_frag) != 0, last_fragment = (p.flags & last_frag) != 0;
  if (first_fragment) {
    if (partial_call_) return fail("a new call began before call " + std::to_string(*partial_call_) + " ended");
    partial_call_ = p.call_id;
    partial_stub_.clear();
  } else if (partial_call_ != p.call_id) {
    return fail("a fragment of call " + std::to_string(p.call_id) + " that never began");
  }
  if (partial_stub_.size() + r.stub.size() > max_call_stub) return fail("a call's stub passes 4 MiB");
  partial_stub_ += r.stub;
  if (!last_fragment) return std::vector<std::string>{};
  partial_call_.reset();
  ++calls_;
  const auto context = contexts_.find(r.context_id);
  if (context == contexts_.end()) {
    // Windows answers an unknown context with context id 0; the association stays usable.
    return std::vector<std::string>{encode_fault(p.call_id, 0, status::unk_if, true)};
  }
  // Secure-only interfaces: the runtime refuses a call on an unauthenticated association before the server
  // sees it (RpcServerRegisterIf2 with RPC_IF_ALLOW_SECURE_ONLY), whatever its opnum.
  if (user_ == nullptr) return std::vector<std::string>{encode_fault(p.call_id, r.context_id, status::access_denied, true)};
  call_result result = rpc_fault{status::op_rng_error};
  if (context->second == rpc_interface::nspi) result = nspi_.call(r.opnum, partial_stub_);
  if (context->second == rpc_interface::emsmdb) result = emsmdb_.call(r.opnum, partial_stub_, *user_);
  partial_stub_.clear();
  if (auto* f = std::get_if<rpc_fault>(&result)) {
    // The runtime's own refusals (an opnum the server does not serve, a stub it cannot unmarshal) did not execute.
    return std::vector<std::string>{encode_fault(p.call_id, r.context_id, f->status, true)};
  }
  return answer(p, std::get<std::string>(result));
}

std::vector<std::string> rpc_endpoint::answer(const pdu& p, const std::string& stub) {
  const auto context_id = std::get<request_body>(p.content).context_id;
  if (session_ && security_->signs()) {
    return encode_protected_call(ptype::response, p.call_id, context_id, 0, stub, max_xmit_frag_, *security_, *session_);
  }
  return fragment_response(p.call_id, context_id, stub, max_xmit_frag_);
}

std::vector<std::string> rpc_endpoint::fault_and_close(std::uint32_t call_id, std::uint16_t context_id,
                                                       std::uint32_t status, std::string why) {
  error_ = std::move(why);
  closing_ = true;
  return {encode_fault(call_id, context_id, status, true)};
}

std::optional<std::string> rpc_endpoint::start_authentication(const auth_verifier& a, std::uint16_t& nak_reason) {
  if (a.type != authn::winnt) {
    nak_reason = nak::authentication_type_not_recognized;
    auth_error_ = "RPC-level authentication type " + std::to_string(a.type) + " is not offered; NTLM (10) is";
    return std::nullopt;
  }
  if (a.level < authn::level_connect || a.level > authn::level_privacy) {
    auth_error_ = "RPC authentication level " + std::to_string(a.level) + " is not one of 2 (CONNECT) to 6 (PKT_PRIVACY)";
    return std::nullopt;
  }
  negotiate_ = parse_negotiate(a.token);
  if (!negotiate_) {
    auth_error_ = "the bind's NTLM token is not a NEGOTIATE_MESSAGE";
    return std::nullopt;
  }
  security_ = security_context{a.type, a.level, a.context_id};
  challenge_ = ntlm_random_challenge();
  ntlm_server_names names;
  if (server_ != nullptr) {
    const auto& org = server_->org;
    names = {org.netbios_domain, org.server_name, org.domain, org.server_fqdn()};
  }
  return make_challenge(*negotiate_, challenge_, names, ntlm_filetime_now());
}

void rpc_endpoint::complete_authentication(const pdu& p) {
  negotiate_.reset();  // one AUTHENTICATE per challenge
  if (!p.auth || p.auth->context_id != security_->context_id) {
    auth_error_ = "rpc_auth_3 names another security context than the bind's";
    return;
  }
  const auto authenticate = parse_authenticate(p.auth->token);
  if (!authenticate) {
    auth_error_ = "rpc_auth_3 carries no valid NTLM AUTHENTICATE_MESSAGE";
    return;
  }
  const std::string logon = authenticate->domain.empty() ? authenticate->user : authenticate->domain + "\\" + authenticate->user;
  const user* u = server_ != nullptr ? server_->org.find_logon(logon) : nullptr;
  const auto base_key = u != nullptr ? ntlmv2_session_base_key(*authenticate, u->password, challenge_) : std::nullopt;
  if (!base_key) {
    auth_error_ = "RPC-level NTLM logon failed for " + logon + " (unknown user, wrong password, or not NTLMv2)";
    return;
  }
  const auto exported = ntlm_exported_session_key(*base_key, authenticate->flags, authenticate->session_key);
  if (!exported) {
    auth_error_ = "rpc_auth_3 asks for a key exchange without a 16-byte session key";
    return;
  }
  if (security_->signs()) {
    if (!ntlm_session::supports(authenticate->flags)) {
      auth_error_ = "signing without NTLM extended session security is not offered";
      return;
    }
    session_.emplace(*exported, authenticate->flags, ntlm_session::role::server);
  }
  user_ = u;
}

}  // namespace exbridge::fake_exchange
