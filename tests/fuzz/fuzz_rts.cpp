// libFuzzer target: RTS PDUs (common/rts.cpp) as every party of RPC over HTTP receives them -- fake-exchange's
// RPC proxy reading a channel's opening PDUs, rehearse's client reading the OUT channel, exbridge reading
// CONN/A1 and CONN/B1 for the virtual-connection cookie. The input is cut into PDUs by frag_length, as a
// channel's body is, and each is decoded.
//
// Invariants beyond "no crash, no UB": a PDU that decodes encodes to bytes that decode to the same PDU and
// encode to the same bytes again (padding and address-padding bytes are the only bytes a receiver ignores);
// its kind and the CONN/A1 and CONN/B1 fields read from it survive the round trip.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "common/rts.hpp"
#include "tests/fuzz/fuzz_streams.hpp"

namespace exbridge::fuzz {
namespace {

void check_round_trip(std::span<const std::uint8_t> bytes) {
  const auto decoded = rts::decode(bytes);
  const auto* p = std::get_if<rts::pdu>(&decoded);
  if (p == nullptr) return;
  const std::string wire = rts::encode(*p);
  if (wire.size() != bytes.size()) invariant_failed("re-encoding changed a PDU's size");
  const auto again = rts::decode(wire);
  const auto* q = std::get_if<rts::pdu>(&again);
  if (q == nullptr) invariant_failed("an encoded PDU does not decode:", std::get<rts::decode_error>(again).what);
  if (rts::encode(*q) != wire) invariant_failed("encode(decode(encode(p))) differs from encode(p)");
  if (rts::identify(*q) != rts::identify(*p)) invariant_failed("the PDU's kind changed in a round trip");
  const auto a1 = rts::as_conn_a1(*p), a1_again = rts::as_conn_a1(*q);
  if (a1.has_value() != a1_again.has_value() ||
      (a1 && (a1->virtual_connection != a1_again->virtual_connection || a1->out_channel != a1_again->out_channel))) {
    invariant_failed("CONN/A1's cookies changed in a round trip");
  }
  const auto b1 = rts::as_conn_b1(*p), b1_again = rts::as_conn_b1(*q);
  if (b1.has_value() != b1_again.has_value() || (b1 && b1->virtual_connection != b1_again->virtual_connection)) {
    invariant_failed("CONN/B1's cookie changed in a round trip");
  }
}

}  // namespace
}  // namespace exbridge::fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace exbridge;
  std::span<const std::uint8_t> rest(data, size);
  // As a channel's body: PDUs back to back, each as long as its frag_length says.
  while (const auto length = rts::pdu_length(rest)) {
    if (*length < rts::header_size || *length > rest.size()) {
      fuzz::check_round_trip(rest);  // what a receiver would reject: it must say so, not crash
      break;
    }
    (void)rts::pdu_type(rest);
    fuzz::check_round_trip(rest.first(*length));
    rest = rest.subspan(*length);
  }
  return 0;
}
