// A client's reading of one message's FastTransfer stream ([MS-OXCFXICS] 2.2.4.3.16 messageContent, what
// RopFastTransferSourceCopyTo on a Message object produces): the message's properties, its recipients and its
// attachments, checked against the grammar as the bytes arrive. Small values are kept (up to a cap); the body
// (PidTagBody) can instead be handed to a sink piece by piece, so a message of any size is read in constant
// memory. Also the lab's rebuild of an item's MIME from those parts (mime::render, as fake-exchange hashed it).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/fasttransfer.hpp"
#include "common/mime_frame.hpp"

namespace exbridge::fx {

/// One object's properties: each value's stream bytes by tag (strings with their NUL, integers little-endian).
struct property_bag {
  std::map<std::uint32_t, std::string> values;
  /// The value of the property with ID `id` if it is a string (PtypString, PtypString8 or code page 1200),
  /// as UTF-8 without its NUL.
  std::optional<std::string> text(std::uint16_t id) const;
  std::optional<std::uint32_t> u32(std::uint16_t id) const;
  std::optional<std::uint64_t> u64(std::uint16_t id) const;
  std::optional<std::string> binary(std::uint16_t id) const;

 private:
  const std::pair<const std::uint32_t, std::string>* find(std::uint16_t id) const;
};

struct message_parts {
  property_bag properties;
  std::vector<property_bag> recipients;
  std::vector<property_bag> attachments;  ///< by value; an embedded message's own content is skipped
};

class message_reader {
 public:
  /// Called with the body's bytes as they arrive (PidTagBody's value, in its wire encoding, NUL included).
  using body_sink = std::function<void(std::string_view)>;
  /// `value_cap`: the largest value kept (a larger one is an error); `body`: where PidTagBody goes instead of
  /// the property bag (none: kept like the others).
  explicit message_reader(std::size_t value_cap = 1 << 20, body_sink body = {});
  ~message_reader();
  message_reader(const message_reader&) = delete;  // its parser's events refer back to it
  message_reader& operator=(const message_reader&) = delete;

  /// Consumes the next bytes of the stream; false once it is malformed (error() says why).
  bool feed(std::string_view bytes);
  /// Whether the stream may end here: between atoms, with no recipient, attachment or embedded message open.
  bool complete() const;
  const std::string& error() const { return error_; }
  const message_parts& message() const { return message_; }
  std::uint64_t body_bytes() const { return body_bytes_; }

 private:
  struct events;
  std::unique_ptr<events> events_;
  parser parser_;
  message_parts message_;
  std::string error_;
  std::uint64_t body_bytes_ = 0;
};

/// The frame of a lab message rebuilt from its parts: the top-level headers from PidTagTransportMessageHeaders,
/// the attachment from its name, MIME type and bytes. nullopt (and `why`) when the parts lack any of them.
std::optional<mime::frame> lab_frame(const message_parts& parts, std::string* why = nullptr);

}  // namespace exbridge::fx
