// The mailbox server's DCE/RPC association, PDU in, PDUs out: which interfaces each port serves, how
// rejections and feature negotiation are answered, the fragment size rule, calls refused without RPC
// authentication, fragment reassembly, the bind_nak cases after which Windows closes the connection, and
// RPC-level NTLM at each level: the three legs, protected calls both ways, and what breaks an association.
#include <gtest/gtest.h>

#include "common/dcerpc_auth.hpp"
#include "common/le_bytes.hpp"
#include "common/ntlm.hpp"
#include "fake_exchange/nspi.hpp"
#include "fake_exchange/rpc_endpoint.hpp"
#include "tests/support/rpc_over_http.hpp"

namespace exbridge {
namespace {

using namespace dcerpc;
using fake_exchange::rpc_endpoint;

pdu only_reply(rpc_endpoint& e, const std::string& in) {
  const auto out = e.receive(as_bytes(in));
  if (!out) throw std::runtime_error("protocol error: " + e.error());
  if (out->size() != 1) throw std::runtime_error(std::to_string(out->size()) + " replies");
  auto decoded = decode(out->front());
  if (auto* err = std::get_if<decode_error>(&decoded)) throw std::runtime_error(err->what);
  return std::get<pdu>(std::move(decoded));
}

std::string bind_with(const std::vector<context_element>& contexts, std::uint16_t xmit = 4280, std::uint16_t recv = 4280) {
  pdu p;
  p.type = ptype::bind;
  p.call_id = 1;
  p.content = bind_body{xmit, recv, 0, contexts};
  return encode(p);
}

std::string request(std::uint32_t call_id, std::uint16_t context, std::uint16_t opnum, std::string stub,
                    std::uint8_t flags = first_frag | last_frag) {
  pdu p;
  p.type = ptype::request;
  p.flags = flags;
  p.call_id = call_id;
  p.content = request_body{static_cast<std::uint32_t>(stub.size()), context, opnum, std::nullopt, std::move(stub)};
  return encode(p);
}

TEST(RpcEndpoint, EachPortServesItsInterfacesAndRejectsTheOthers) {
  const struct {
    std::uint16_t port;
    syntax_id interface;
    bool accepted;
  } cases[] = {
      {6001, test::emsmdb_interface(), true},  {6001, test::nspi_interface(), false},
      {6004, test::nspi_interface(), true},    {6004, test::emsmdb_interface(), false},
      {6002, test::emsmdb_interface(), false}, {6001, {parse_uuid("12345778-1234-abcd-ef00-0123456789ac"), 1, 0}, false},
  };
  for (const auto& c : cases) {
    rpc_endpoint e(c.port, nullptr);
    const pdu ack = only_reply(e, test::bind_pdu(1, c.interface));
    ASSERT_EQ(ack.type, ptype::bind_ack) << c.port;
    const auto& body = std::get<bind_ack_body>(ack.content);
    ASSERT_EQ(body.results.size(), 1u);
    if (c.accepted) {
      EXPECT_EQ(body.results[0].outcome, result::acceptance) << c.port;
      EXPECT_EQ(body.results[0].transfer, ndr20());
    } else {
      // [MS-RPCE] 3.3.1.5.6: a bind_ack whose context is rejected, never a bind_nak.
      EXPECT_EQ(body.results[0].outcome, result::provider_rejection) << c.port;
      EXPECT_EQ(body.results[0].reason, static_cast<std::uint16_t>(reason::abstract_syntax_not_supported));
      EXPECT_EQ(body.results[0].transfer, syntax_id{});
    }
    EXPECT_EQ(body.secondary_address, std::to_string(c.port));
    EXPECT_NE(body.assoc_group_id, 0u);
  }
}

TEST(RpcEndpoint, Ndr64OnlyAndFeatureNegotiationAreAnsweredPerContext) {
  rpc_endpoint e(6001, nullptr);
  const syntax_id ndr64{parse_uuid("71710533-beba-4937-8319-b5dbef9ccc36"), 1, 0};
  const syntax_id features{parse_uuid("6cb71c2c-9812-4540-0300-000000000000"), 1, 0};
  const pdu ack = only_reply(e, bind_with({{0, test::emsmdb_interface(), {ndr64}},
                                           {1, test::emsmdb_interface(), {ndr20()}},
                                           {2, test::emsmdb_interface(), {features}}}));
  const auto& results = std::get<bind_ack_body>(ack.content).results;
  ASSERT_EQ(results.size(), 3u);
  EXPECT_EQ(results[0].outcome, result::provider_rejection);
  EXPECT_EQ(results[0].reason, static_cast<std::uint16_t>(reason::proposed_transfer_syntaxes_not_supported));
  EXPECT_EQ(results[1].outcome, result::acceptance);
  EXPECT_EQ(results[2].outcome, result::negotiate_ack);
  EXPECT_EQ(results[2].reason, 0x3);  // both features offered, both supported
}

TEST(RpcEndpoint, FragmentSizesFollowWindowsRule) {
  const struct {
    std::uint16_t xmit, recv, agreed;
  } cases[] = {{4280, 4280, 4280}, {5840, 5840, 5840}, {0xffff, 0xffff, 5840}, {3199, 0xffff, 3192}, {0, 4280, 2048}};
  for (const auto& c : cases) {
    rpc_endpoint e(6001, nullptr);
    const pdu ack = only_reply(e, bind_with({{0, test::emsmdb_interface(), {ndr20()}}}, c.xmit, c.recv));
    const auto& body = std::get<bind_ack_body>(ack.content);
    EXPECT_EQ(body.max_xmit_frag, c.agreed) << c.xmit << "/" << c.recv;
    EXPECT_EQ(body.max_recv_frag, c.agreed) << c.xmit << "/" << c.recv;
    EXPECT_EQ(e.max_xmit_frag(), c.agreed);
  }
}

TEST(RpcEndpoint, CallsWithoutRpcAuthenticationAreRefusedBeforeTheyRun) {
  rpc_endpoint e(6001, nullptr);
  only_reply(e, test::bind_pdu(1, test::emsmdb_interface()));
  const pdu fault = only_reply(e, request(2, 0, 10, std::string(40, '\0')));  // EcDoConnectEx
  ASSERT_EQ(fault.type, ptype::fault);
  EXPECT_EQ(fault.call_id, 2u);
  EXPECT_EQ(std::get<fault_body>(fault.content).status, status::access_denied);
  EXPECT_NE(fault.flags & did_not_execute, 0);
  // An unknown presentation context: nca_s_unk_if with context 0, and the association goes on.
  const pdu unknown = only_reply(e, request(3, 7, 10, ""));
  EXPECT_EQ(std::get<fault_body>(unknown.content).status, status::unk_if);
  EXPECT_EQ(std::get<fault_body>(unknown.content).context_id, 0);
  EXPECT_FALSE(e.closing());
  EXPECT_EQ(e.calls(), 2u);
}

TEST(RpcEndpoint, FragmentedRequestsAreAnsweredOnceWhole) {
  rpc_endpoint e(6001, nullptr);
  only_reply(e, test::bind_pdu(1, test::emsmdb_interface()));
  auto first = e.receive(as_bytes(request(2, 0, 11, std::string(100, 'a'), first_frag)));
  ASSERT_TRUE(first);
  EXPECT_TRUE(first->empty());
  auto middle = e.receive(as_bytes(request(2, 0, 11, std::string(100, 'b'), 0)));
  ASSERT_TRUE(middle);
  EXPECT_TRUE(middle->empty());
  const pdu fault = only_reply(e, request(2, 0, 11, "c", last_frag));
  EXPECT_EQ(fault.call_id, 2u);
  EXPECT_EQ(e.calls(), 1u);
  // A fragment of a call that never began, or a new call inside another, breaks the association.
  rpc_endpoint other(6001, nullptr);
  only_reply(other, test::bind_pdu(1, test::emsmdb_interface()));
  EXPECT_FALSE(other.receive(as_bytes(request(5, 0, 11, "x", last_frag))));
  EXPECT_EQ(other.error(), "a fragment of call 5 that never began");
}

TEST(RpcEndpoint, WhatWindowsRefusesWithBindNakClosesTheAssociation) {
  {
    rpc_endpoint e(6001, nullptr);
    pdu p;
    p.type = ptype::bind;
    p.call_id = 1;
    p.content = bind_body{4280, 4280, 0, {{0, test::emsmdb_interface(), {ndr20()}}}};
    p.auth = auth_verifier{16, 6, 0, 79231, std::string(32, 'K')};  // Kerberos at PKT_PRIVACY
    const pdu nak = only_reply(e, encode(p));
    ASSERT_EQ(nak.type, ptype::bind_nak);
    EXPECT_EQ(std::get<bind_nak_body>(nak.content).reject_reason, nak::authentication_type_not_recognized);
    EXPECT_EQ(e.auth_error(), "RPC-level authentication type 16 is not offered; NTLM (10) is");
    EXPECT_TRUE(e.closing());
    EXPECT_FALSE(e.receive(as_bytes(test::bind_pdu(2, test::emsmdb_interface()))));
  }
  for (const auto& [level, token] : {std::pair<std::uint8_t, std::string>{1, make_negotiate()}, {7, make_negotiate()},
                                     {6, std::string(32, 'N')}}) {
    // NTLM, but at a level outside CONNECT..PKT_PRIVACY or with a token that is no NEGOTIATE_MESSAGE.
    rpc_endpoint e(6001, nullptr);
    pdu p;
    p.type = ptype::bind;
    p.call_id = 1;
    p.content = bind_body{4280, 4280, 0, {{0, test::emsmdb_interface(), {ndr20()}}}};
    p.auth = auth_verifier{10, level, 0, 1, token};
    const pdu nak = only_reply(e, encode(p));
    ASSERT_EQ(nak.type, ptype::bind_nak);
    EXPECT_EQ(std::get<bind_nak_body>(nak.content).reject_reason, nak::reason_not_specified) << e.auth_error();
  }
  {
    rpc_endpoint e(6001, nullptr);
    only_reply(e, test::bind_pdu(1, test::emsmdb_interface()));
    const pdu nak = only_reply(e, test::bind_pdu(2, test::emsmdb_interface()));
    ASSERT_EQ(nak.type, ptype::bind_nak);
    EXPECT_EQ(std::get<bind_nak_body>(nak.content).reject_reason, nak::reason_not_specified);
    EXPECT_EQ(e.error(), "a second bind on one association");
  }
  {
    rpc_endpoint e(6001, nullptr);
    const pdu nak = only_reply(e, bind_with({}));
    EXPECT_EQ(nak.type, ptype::bind_nak);
  }
  {
    rpc_endpoint e(6001, nullptr);
    EXPECT_FALSE(e.receive(as_bytes(request(1, 0, 0, ""))));
    EXPECT_EQ(e.error(), "a request before bind");
  }
}

TEST(RpcEndpoint, AlterContextAddsAContextOnTheAssociation) {
  rpc_endpoint e(6004, nullptr);
  only_reply(e, test::bind_pdu(1, test::nspi_interface()));
  pdu alter;
  alter.type = ptype::alter_context;
  alter.call_id = 2;
  alter.content = bind_body{4280, 4280, 0, {{1, {parse_uuid("1544f5e0-613c-11d1-93df-00c04fd7bd09"), 1, 0}, {ndr20()}}}};
  const pdu resp = only_reply(e, encode(alter));
  ASSERT_EQ(resp.type, ptype::alter_context_resp);
  const auto& body = std::get<bind_ack_body>(resp.content);
  EXPECT_EQ(body.secondary_address, "");
  EXPECT_EQ(body.results.at(0).outcome, result::acceptance);  // RFR is served on 6004 too
  const pdu fault = only_reply(e, request(3, 1, 0, ""));
  EXPECT_EQ(std::get<fault_body>(fault.content).status, status::access_denied);  // context 1 exists
}

// --- RPC-level NTLM ---

/// The client side of an association authenticated with NTLM, as Outlook or impacket runs it.
struct ntlm_client {
  rpc_endpoint& e;
  security_context sec;
  std::optional<ntlm_session> session;
  std::uint32_t call_id = 1;

  /// bind (NEGOTIATE) -> bind_ack (CHALLENGE) -> rpc_auth_3 (AUTHENTICATE).
  void logon(std::string_view user, std::string_view password, const syntax_id& interface = test::nspi_interface()) {
    pdu bind;
    bind.type = ptype::bind;
    bind.call_id = call_id++;
    bind.content = bind_body{4280, 4280, 0, {{0, interface, {ndr20()}}}};
    bind.auth = auth_verifier{sec.type, sec.level, 0, sec.context_id,
                              make_negotiate(ntlm_flag::sign | ntlm_flag::seal | ntlm_flag::key_exch)};
    const pdu ack = only_reply(e, encode(bind));
    ASSERT_EQ(ack.type, ptype::bind_ack);
    ASSERT_TRUE(ack.auth);
    EXPECT_EQ(ack.auth->context_id, sec.context_id);
    EXPECT_EQ(ack.auth->level, sec.level);
    const auto challenge = parse_challenge(ack.auth->token);
    ASSERT_TRUE(challenge);
    EXPECT_EQ(challenge->target_name, "CONTOSO");
    std::array<std::uint8_t, 16> random_key{};
    random_key.fill(0x42);
    const auto context = make_authenticate_for_session(ack.auth->token, user, "CONTOSO", password, "EXO-MRS01",
                                                       ntlm_random_challenge(), ntlm_filetime_now(), random_key);
    ASSERT_TRUE(context);
    pdu auth3;
    auth3.type = ptype::auth3;
    auth3.call_id = bind.call_id;
    auth3.auth = auth_verifier{sec.type, sec.level, 0, sec.context_id, context->message};
    const auto none = e.receive(as_bytes(encode(auth3)));
    ASSERT_TRUE(none);
    EXPECT_TRUE(none->empty());  // rpc_auth_3 is never answered
    session.emplace(context->exported_session_key, context->flags, ntlm_session::role::client);
  }

  /// One call; returns the response stub, or throws with the fault's status.
  std::string call(std::uint16_t opnum, std::string_view stub, std::uint16_t max_frag = 4280) {
    const auto id = call_id++;
    std::vector<std::string> replies;
    for (const auto& f : encode_protected_call(ptype::request, id, 0, opnum, stub, max_frag, sec, *session)) {
      auto out = e.receive(as_bytes(f));
      if (!out) throw std::runtime_error("protocol error: " + e.error());
      for (auto& r : *out) replies.push_back(std::move(r));
    }
    std::string joined;
    for (auto& r : replies) {
      if (r[2] == static_cast<char>(ptype::fault)) {
        throw std::runtime_error("fault " + std::to_string(std::get<fault_body>(std::get<pdu>(decode(r)).content).status));
      }
      if (auto why = open_protected(r, sec, *session)) throw std::runtime_error(*why);
      joined += std::get<response_body>(std::get<pdu>(decode(r)).content).stub;
    }
    return joined;
  }
};

/// NspiBind's request stub: dwFlags, a STAT with `code_page`, and a non-NULL pServerGuid.
std::string nspi_bind_stub(std::uint32_t code_page = 1252) {
  le_writer w;
  w.u32(0);
  for (int i = 0; i < 9; ++i) w.u32(i == 6 ? code_page : 0);
  w.u32(0x20000);
  w.zeros(16);
  return std::move(w.text());
}

TEST(RpcEndpointNtlm, EveryLevelAuthenticatesAndAnswersNspiBind) {
  const fake_exchange::exchange_config server;
  for (const std::uint8_t level : {authn::level_connect, authn::level_call, authn::level_pkt, authn::level_integrity,
                                   authn::level_privacy}) {
    rpc_endpoint e(6004, &server);
    ntlm_client client{e, {authn::winnt, level, 79231}};
    client.logon("alex.wilber", "Exbridge-Demo-2007");
    ASSERT_NE(e.authenticated_user(), nullptr) << int(level) << ": " << e.auth_error();
    EXPECT_EQ(e.authenticated_user()->email, "alex.wilber@contoso.example");
    EXPECT_EQ(e.auth_level(), level);
    const std::string out = client.call(0, nspi_bind_stub());
    ASSERT_EQ(out.size(), 4u + 16 + 20 + 4) << int(level);
    EXPECT_EQ(load_le32(out, 0), 0x20000u);          // the GUID pointer, filled in
    EXPECT_EQ(load_le32(out, out.size() - 4), 0u);  // Success
    // NspiUnbind with that handle, then again: UnbindSuccess, then the runtime's context mismatch (0x1C00001A).
    const std::string handle = out.substr(20, 20);
    EXPECT_EQ(load_le32(client.call(1, handle + std::string(4, '\0')), 20), fake_exchange::nspi_ec::unbind_success);
    EXPECT_THROW(client.call(1, handle + std::string(4, '\0')), std::runtime_error);
    EXPECT_FALSE(e.closing());
    if (level == authn::level_privacy) {
      EXPECT_EQ(e.summary(), "NTLM PKT_PRIVACY alex.wilber@contoso.example, 3 calls");
    }
  }
}

TEST(RpcEndpointNtlm, LargeCallsAreFragmentedAndEachFragmentProtected) {
  // A request cut into many protected fragments is reassembled; the opnum NSPI does not serve is then refused
  // by the runtime, after every fragment verified.
  const fake_exchange::exchange_config server;
  rpc_endpoint e(6004, &server);
  ntlm_client client{e, {authn::winnt, authn::level_privacy, 1}};
  client.logon("alex.wilber", "Exbridge-Demo-2007");
  EXPECT_THROW(
      {
        try {
          client.call(5, std::string(20000, 'x'), 2048);
        } catch (const std::runtime_error& ex) {
          EXPECT_STREQ(ex.what(), "fault 469827586");  // nca_s_op_rng_error 0x1C010002
          throw;
        }
      },
      std::runtime_error);
  EXPECT_FALSE(e.closing());
  EXPECT_EQ(load_le32(client.call(0, nspi_bind_stub()), 40), 0u);  // sequence numbers still agree
}

TEST(RpcEndpointNtlm, AWrongPasswordLeavesTheAssociationUnauthenticated) {
  const fake_exchange::exchange_config server;
  rpc_endpoint e(6004, &server);
  ntlm_client client{e, {authn::winnt, authn::level_privacy, 1}};
  client.logon("alex.wilber", "wrong");
  EXPECT_EQ(e.authenticated_user(), nullptr);
  EXPECT_EQ(e.auth_error(), "RPC-level NTLM logon failed for CONTOSO\\alex.wilber (unknown user, wrong password, or not NTLMv2)");
  // Its calls are refused as on an association without authentication: fault 5, not executed.
  const pdu fault = only_reply(e, request(5, 0, 0, nspi_bind_stub()));
  EXPECT_EQ(std::get<fault_body>(fault.content).status, status::access_denied);
  EXPECT_NE(fault.flags & did_not_execute, 0);
  EXPECT_EQ(e.summary(), e.auth_error() + ", 1 call");
}

TEST(RpcEndpointNtlm, AFragmentThatFailsItsCheckClosesTheAssociation) {
  const fake_exchange::exchange_config server;
  {
    rpc_endpoint e(6004, &server);
    ntlm_client client{e, {authn::winnt, authn::level_privacy, 1}};
    client.logon("alex.wilber", "Exbridge-Demo-2007");
    auto f = encode_protected_call(ptype::request, 9, 0, 0, nspi_bind_stub(), 4280, client.sec, *client.session)[0];
    f[30] = static_cast<char>(f[30] ^ 0x40);
    const pdu fault = only_reply(e, f);
    EXPECT_EQ(std::get<fault_body>(fault.content).status, status::sec_pkg_error);
    EXPECT_TRUE(e.closing());
    EXPECT_EQ(e.error(), "RPC: a fragment whose NTLM signature does not verify");
    EXPECT_EQ(e.summary(), "NTLM PKT_PRIVACY alex.wilber@contoso.example, 0 calls; RPC: a fragment whose NTLM signature "
                           "does not verify");
  }
  {
    rpc_endpoint e(6004, &server);  // a plain request on an association that signs
    ntlm_client client{e, {authn::winnt, authn::level_integrity, 1}};
    client.logon("alex.wilber", "Exbridge-Demo-2007");
    const pdu fault = only_reply(e, request(9, 0, 0, nspi_bind_stub()));
    EXPECT_EQ(std::get<fault_body>(fault.content).status, status::access_denied);
    EXPECT_TRUE(e.closing());
  }
}

}  // namespace
}  // namespace exbridge
