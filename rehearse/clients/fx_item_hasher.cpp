// Streaming SHA-256 of an item rebuilt from its FastTransfer stream (see fx_item_hasher.hpp).
#include "rehearse/clients/fx_item_hasher.hpp"

#include "common/mime_frame.hpp"
#include "common/utf16.hpp"

namespace exbridge::rehearse {
namespace {
/// The largest property value kept whole: the attachment's bytes (the body streams through instead).
constexpr std::size_t value_cap = 64u << 20;
constexpr std::uint16_t id_transport_message_headers = 0x007D;
}  // namespace

fx_item_hasher::fx_item_hasher() : reader_(value_cap, [this](std::string_view wire) { body(wire); }) {}

bool fx_item_hasher::fail(std::string why) {
  if (error_.empty()) error_ = std::move(why);
  return false;
}

void fx_item_hasher::hash(std::string_view bytes) {
  hash_.update(bytes);
  size_ += bytes.size();
}

void fx_item_hasher::body(std::string_view wire) {
  if (!error_.empty()) return;
  if (!head_done_) {
    // fake-exchange sends PidTagTransportMessageHeaders before the body, so the MIME's head is known here; the
    // head does not depend on the attachment, which comes after the body.
    const auto headers = reader_.message().properties.text(id_transport_message_headers);
    const auto boundary = headers ? mime::boundary_of(*headers) : std::nullopt;
    if (!headers || !boundary) {
      fail("the body came before PidTagTransportMessageHeaders, or its Content-Type names no usable boundary");
      return;
    }
    hash(mime::render(*headers, *boundary, nullptr).head);
    head_done_ = true;
  }
  // UTF-16LE to the body's UTF-8, holding back the last code unit: the value ends with its NUL.
  held_.append(wire);
  std::size_t usable = held_.size() >= 2 ? (held_.size() & ~std::size_t{1}) - 2 : 0;
  std::string text;
  text.reserve(usable / 2);
  std::size_t at = 0;
  for (; at < usable; at += 2) {
    const auto unit = static_cast<std::uint16_t>(static_cast<unsigned char>(held_[at]) |
                                                 static_cast<unsigned char>(held_[at + 1]) << 8);
    if (unit >= 0xD800 && unit <= 0xDFFF) {
      // A surrogate pair may straddle pieces: decode it with its partner, or keep it for the next piece.
      if (at + 4 > usable) break;
      const auto low = static_cast<std::uint16_t>(static_cast<unsigned char>(held_[at + 2]) |
                                                  static_cast<unsigned char>(held_[at + 3]) << 8);
      append_utf8(text, 0x10000 + ((static_cast<std::uint32_t>(unit) - 0xD800) << 10) + (low - 0xDC00));
      at += 2;
      continue;
    }
    append_utf8(text, unit);
  }
  held_.erase(0, at);
  hash(text);
}

bool fx_item_hasher::feed(std::string_view bytes) {
  stream_bytes_ += bytes.size();
  if (!reader_.feed(bytes)) return fail("its FastTransfer stream is malformed: " + reader_.error());
  return error_.empty();
}

bool fx_item_hasher::finish() {
  if (!error_.empty()) return false;
  if (!reader_.complete()) return fail("its FastTransfer stream ended inside an object");
  if (!head_done_) return fail("its FastTransfer stream has no PidTagBody");
  if (held_ != std::string(2, '\0')) return fail("its PidTagBody does not end with a NUL");
  std::string why;
  const auto frame = fx::lab_frame(reader_.message(), &why);
  if (!frame) return fail("its MIME cannot be rebuilt: " + why);
  hash(frame->tail);
  digest_ = hash_.hex_digest();
  return true;
}

}  // namespace exbridge::rehearse
