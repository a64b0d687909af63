// The mailbox server's DCE/RPC association, PDU in, PDUs out: which interfaces each port serves, how
// rejections and feature negotiation are answered, the fragment size rule, calls refused without RPC
// authentication, fragment reassembly, and the bind_nak cases after which Windows closes the connection.
#include <gtest/gtest.h>

#include "common/le_bytes.hpp"
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
    rpc_endpoint e(c.port);
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
  rpc_endpoint e(6001);
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
    rpc_endpoint e(6001);
    const pdu ack = only_reply(e, bind_with({{0, test::emsmdb_interface(), {ndr20()}}}, c.xmit, c.recv));
    const auto& body = std::get<bind_ack_body>(ack.content);
    EXPECT_EQ(body.max_xmit_frag, c.agreed) << c.xmit << "/" << c.recv;
    EXPECT_EQ(body.max_recv_frag, c.agreed) << c.xmit << "/" << c.recv;
    EXPECT_EQ(e.max_xmit_frag(), c.agreed);
  }
}

TEST(RpcEndpoint, CallsWithoutRpcAuthenticationAreRefusedBeforeTheyRun) {
  rpc_endpoint e(6001);
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
  rpc_endpoint e(6001);
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
  rpc_endpoint other(6001);
  only_reply(other, test::bind_pdu(1, test::emsmdb_interface()));
  EXPECT_FALSE(other.receive(as_bytes(request(5, 0, 11, "x", last_frag))));
  EXPECT_EQ(other.error(), "a fragment of call 5 that never began");
}

TEST(RpcEndpoint, WhatWindowsRefusesWithBindNakClosesTheAssociation) {
  {
    rpc_endpoint e(6001);
    pdu p;
    p.type = ptype::bind;
    p.call_id = 1;
    p.content = bind_body{4280, 4280, 0, {{0, test::emsmdb_interface(), {ndr20()}}}};
    p.auth = auth_verifier{10, 6, 0, 79231, std::string(32, 'N')};  // NTLM NEGOTIATE at PKT_PRIVACY
    const pdu nak = only_reply(e, encode(p));
    ASSERT_EQ(nak.type, ptype::bind_nak);
    EXPECT_EQ(std::get<bind_nak_body>(nak.content).reject_reason, nak::authentication_type_not_recognized);
    EXPECT_TRUE(e.closing());
    EXPECT_FALSE(e.receive(as_bytes(test::bind_pdu(2, test::emsmdb_interface()))));
  }
  {
    rpc_endpoint e(6001);
    only_reply(e, test::bind_pdu(1, test::emsmdb_interface()));
    const pdu nak = only_reply(e, test::bind_pdu(2, test::emsmdb_interface()));
    ASSERT_EQ(nak.type, ptype::bind_nak);
    EXPECT_EQ(std::get<bind_nak_body>(nak.content).reject_reason, nak::reason_not_specified);
    EXPECT_EQ(e.error(), "a second bind on one association");
  }
  {
    rpc_endpoint e(6001);
    const pdu nak = only_reply(e, bind_with({}));
    EXPECT_EQ(nak.type, ptype::bind_nak);
  }
  {
    rpc_endpoint e(6001);
    EXPECT_FALSE(e.receive(as_bytes(request(1, 0, 0, ""))));
    EXPECT_EQ(e.error(), "a request before bind");
  }
}

TEST(RpcEndpoint, AlterContextAddsAContextOnTheAssociation) {
  rpc_endpoint e(6004);
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

}  // namespace
}  // namespace exbridge
