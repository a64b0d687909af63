// libFuzzer target: DCE/RPC PDUs (common/dcerpc.cpp) and the mailbox server's association behind fake-exchange's
// RPC proxy (fake_exchange/rpc_endpoint.cpp, virtual_connection.cpp), fed as a client's IN channel carries them
// once the virtual connection is open: PDUs back to back, cut by frag_length, RTS and DCE/RPC mixed.
//
// The OUT channels are small (16 KiB), so responses make the server recycle them; IN_R1/A1, OUT_R1/A3 and
// OUT_R2/C1 are handed to the virtual connection as if they came on the replacement channel they open.
//
// Invariants beyond "no crash, no UB": a DCE/RPC PDU that decodes re-encodes to bytes that decode to the same
// type, call, flags and body; everything the virtual connection sends decodes as an RTS or DCE/RPC PDU, and no
// response fragment is larger than the size agreed at bind; no OUT channel carries more than its length, nor
// anything after OUT_R2/B3; a protocol error closes nothing twice and is named.
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
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
  // Small OUT channels, so that responses make the server ask for a new one (OUT_R2/A2) within an input.
  constexpr std::uint64_t out_length = fake_exchange::min_out_channel_length;
  fake_exchange::virtual_connection vc(vc_id, 6001, {.out_channel_length = out_length});
  if (vc.open_out({vc_id, out, 1 << 20}) || vc.open_in({vc_id, in, 1 << 30, 300000, group})) {
    fuzz::invariant_failed("a well-formed CONN/A1 and CONN/B1 were refused");
  }
  std::map<rts::cookie, std::uint64_t> sent;  // bytes each OUT channel carried
  std::optional<rts::cookie> successor;
  const auto drain = [&] {
    const rts::cookie channel = vc.out_channel();
    while (auto pdu = vc.next_out(channel)) {
      fuzz::check_output(*pdu, vc.endpoint().max_xmit_frag());
      if (vc.retired(channel) && *pdu != rts::encode(rts::out_r2_b3())) fuzz::invariant_failed("a PDU after OUT_R2/B3");
      if ((sent[channel] += pdu->size()) > out_length) fuzz::invariant_failed("an OUT channel past its length");
      if (vc.retired(channel)) break;
    }
  };
  rts::pdu_splitter split;
  split.append(reinterpret_cast<const char*>(data), size);
  while (auto pdu = split.next()) {
    std::optional<std::string> error;
    if (rts::pdu_type(as_bytes(*pdu)) != rts::ptype_rts) {
      fuzz::check_round_trip(*pdu);
      error = vc.receive_in(*pdu);
    } else {
      // The PDUs that open a replacement channel arrive on that channel: the harness plays both.
      const auto decoded = rts::decode(*pdu);
      const auto* p = std::get_if<rts::pdu>(&decoded);
      const auto a1 = p ? rts::as_in_r1_a1(*p) : std::nullopt;
      const auto a3 = p ? rts::as_out_r1_a3(*p) : std::nullopt;
      if (a1) {
        error = vc.open_in_successor(*a1);
      } else if (a3) {
        error = vc.open_out_successor(*a3);
        if (!error) successor = a3->successor;
      } else if (p && rts::identify(*p) == rts::kind::out_r2_c1 && successor) {
        error = vc.successor_out_ready(*successor);
      } else {
        error = vc.receive_in(*pdu);
      }
    }
    if (error) {
      if (error->empty()) fuzz::invariant_failed("a protocol error without a reason");
      vc.close(*error);
      break;
    }
    drain();
    drain();  // after a switch, the successor's first PDUs
  }
  return 0;
}
