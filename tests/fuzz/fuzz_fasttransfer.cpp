// libFuzzer target: FastTransfer streams (common/fasttransfer.cpp, common/fx_message_reader.cpp) as a client
// receives them, in RopFastTransferSourceGetBuffer pieces of any size. The first input byte picks the piece
// size (0: the whole stream at once); the rest is the stream.
//
// Invariants beyond "no crash, no UB": the parse does not depend on where the pieces are cut (the same events
// and the same verdict as one feed); the atoms a stream parses into encode back to exactly the bytes consumed;
// and the message reader accepts no more than the lexical parser does.
#include <cstddef>
#include <cstdint>
#include <string>

#include "common/fasttransfer.hpp"
#include "common/fx_message_reader.hpp"
#include "common/le_bytes.hpp"
#include "common/utf16.hpp"
#include "tests/fuzz/fuzz_streams.hpp"

namespace exbridge::fuzz {
namespace {

/// Re-encodes every event: what a well-formed stream is made of, byte for byte.
struct reencoder : fx::handler {
  std::string out;
  std::uint32_t tag = 0;
  bool variable = false, fresh_element = true;
  void on_marker(std::uint32_t t) override { append_le32(out, t); }
  void on_property(std::uint32_t t, const fx::named_property* named, std::uint32_t count) override {
    append_le32(out, t);
    tag = t;
    if (named != nullptr) {
      out.append(reinterpret_cast<const char*>(named->guid.data()), 16);
      out += static_cast<char>(named->lid ? 0 : 1);
      if (named->lid) {
        append_le32(out, *named->lid);
      } else {
        out += utf16le(named->name);
        out.append(2, '\0');
      }
    }
    const auto type = static_cast<std::uint16_t>(t & 0xFFFF);
    const bool multi = !(type & 0x8000) && (type & 0x1000);
    if (multi) append_le32(out, count);
    variable = fx::is_variable(multi ? static_cast<std::uint16_t>(type & ~0x1000) : type);
    fresh_element = true;
  }
  void on_value(std::string_view bytes, std::uint32_t size) override {
    if (variable && fresh_element) append_le32(out, size);
    fresh_element = false;
    out.append(bytes);
  }
  void on_value_end() override { fresh_element = true; }
};

}  // namespace
}  // namespace exbridge::fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace exbridge;
  using namespace exbridge::fuzz;
  if (size < 1) return 0;
  const std::size_t piece = data[0] == 0 ? size : data[0];
  const std::string_view stream(reinterpret_cast<const char*>(data + 1), size - 1);

  reencoder whole;
  fx::parser one(whole);
  const bool whole_ok = one.feed(stream);

  reencoder pieces;
  fx::parser split(pieces);
  fx::message_reader reader(4096);
  bool split_ok = true, reader_ok = true;
  for (std::size_t at = 0; at < stream.size(); at += piece) {
    const auto part = stream.substr(at, piece);
    split_ok = split.feed(part) && split_ok;
    reader_ok = reader.feed(part) && reader_ok;
  }
  if (split_ok != whole_ok || split.error() != one.error()) invariant_failed("the verdict depends on the pieces:", split.error());
  if (pieces.out != whole.out) invariant_failed("the events depend on the pieces");
  if (whole_ok && split.at_boundary() != one.at_boundary()) invariant_failed("the end state depends on the pieces");
  // A parse that failed stops at the failing atom; one that did not consumed everything.
  if (whole_ok && one.consumed() != stream.size()) invariant_failed("a successful parse left bytes unread");
  if (whole_ok && one.at_boundary() && whole.out != stream) invariant_failed("atoms do not encode back to the stream");
  if (!whole_ok && reader_ok) invariant_failed("the message reader accepted what the parser refused:", one.error());
  if (reader.complete() && !one.at_boundary()) invariant_failed("the message reader called a cut stream complete");
  return 0;
}
