// libFuzzer target: DCE/RPC PDUs (common/dcerpc.cpp) and the mailbox server's association behind fake-exchange's
// RPC proxy (fake_exchange/rpc_endpoint.cpp, virtual_connection.cpp), fed as a client's IN channel carries them
// once the virtual connection is open: PDUs back to back, cut by frag_length, RTS and DCE/RPC mixed.
//
// Invariants beyond "no crash, no UB": a DCE/RPC PDU that decodes re-encodes to bytes that decode to the same
// type, call, flags and body; everything the virtual connection sends decodes as an RTS or DCE/RPC PDU, and no
// response fragment is larger than the size agreed at bind; a protocol error closes nothing twice and is named.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "common/dcerpc.hpp"
#include "common/le_bytes.hpp"
#include "common/rts.hpp"
#include "fake_exchange/virtual_connection.hpp"
#include "tests/fuzz/fuzz_streams.hpp"

namespace exbridge::fuzz {
namespace {

void check_round_trip(std::string_view bytes) {
  const auto decoded = dcerpc::decode(bytes);
  const auto* p = std::get_if<dcerpc::pdu>(&decoded);
  if (p == nullptr) {
    if (std::get<dcerpc::decode_error>(decoded).what.empty()) invariant_failed("a refusal without a reason");
    return;
  }
  std::string wire;
  try {
    wire = dcerpc::encode(*p);
  } catch (const std::length_error&) {
    return;  // normalised padding can push a maximal PDU past 65,535 bytes
  }
  const auto again = dcerpc::decode(wire);
  const auto* q = std::get_if<dcerpc::pdu>(&again);
  if (q == nullptr) invariant_failed("an encoded PDU does not decode:", std::get<dcerpc::decode_error>(again).what);
  if (q->type != p->type || q->call_id != p->call_id || q->flags != p->flags || q->content.index() != p->content.index() ||
      q->auth.has_value() != p->auth.has_value()) {
    invariant_failed("a DCE/RPC PDU changed in a round trip");
  }
  if (dcerpc::encode(*q) != wire) invariant_failed("encode(decode(encode(p))) differs from encode(p)");
}

void check_output(const std::string& pdu, std::uint16_t max_frag) {
  const auto bytes = as_bytes(pdu);
  if (rts::pdu_type(bytes) == rts::ptype_rts) {
    if (!std::holds_alternative<rts::pdu>(rts::decode(bytes))) invariant_failed("the server sent an RTS PDU it cannot decode");
    return;
  }
  const auto decoded = dcerpc::decode(bytes);
  if (!std::holds_alternative<dcerpc::pdu>(decoded)) {
    invariant_failed("the server sent a DCE/RPC PDU it cannot decode:", std::get<dcerpc::decode_error>(decoded).what);
  }
  if (pdu.size() > max_frag) invariant_failed("a fragment larger than the size agreed at bind");
}

}  // namespace
}  // namespace exbridge::fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace exbridge;
  rts::cookie vc_id{}, in{}, out{}, group{};
  in[0] = 1, out[0] = 2, group[0] = 3;
  fake_exchange::virtual_connection vc(vc_id, 6001, {});
  if (vc.open_out({vc_id, out, 1 << 20}) || vc.open_in({vc_id, in, 1 << 30, 300000, group})) {
    fuzz::invariant_failed("a well-formed CONN/A1 and CONN/B1 were refused");
  }
  rts::pdu_splitter split;
  split.append(reinterpret_cast<const char*>(data), size);
  while (auto pdu = split.next()) {
    if (rts::pdu_type(as_bytes(*pdu)) != rts::ptype_rts) fuzz::check_round_trip(*pdu);
    if (const auto error = vc.receive_in(*pdu)) {
      if (error->empty()) fuzz::invariant_failed("a protocol error without a reason");
      vc.close(*error);
      break;
    }
    while (auto sent = vc.next_out()) fuzz::check_output(*sent, vc.endpoint().max_xmit_frag());
  }
  return 0;
}
