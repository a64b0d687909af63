// One message's FastTransfer stream, as RopFastTransferSourceCopyTo on a Message object produces it and
// RopFastTransferSourceGetBuffer hands it out ([MS-OXCFXICS] 2.2.4.3.16 messageContent: the message's propList,
// then its recipients and attachments). What it carries is chosen so that a client can rebuild the exact MIME
// the manifest hashes (docs/design/fasttransfer-mime.md): PidTagTransportMessageHeaders holds the top-level
// header block, PidTagBody the text body (streamed from the item's MIME, never held whole), the attachment its
// name, type and bytes; mime::render does the rest on both sides.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "fake_exchange/mailbox.hpp"

namespace exbridge::fake_exchange {

/// RopFastTransferSourceCopyTo's choices ([MS-OXCFXICS] 2.2.3.1.1.1).
struct copy_options {
  bool subobjects = true;   ///< Level 0: recipients and attachments too
  bool best_body = true;    ///< CopyFlags BestBody: the native body whatever the exclusions say
  std::uint16_t string_type = 0x001F;  ///< PtypString (Unicode), PtypString8, or 0x84B0 (code page 1200)
  std::vector<std::uint32_t> excluded;  ///< PropertyTags: left out by property ID
};

class message_stream {
 public:
  message_stream(const mailbox& box, const item_meta& item, const copy_options& options);
  /// Writes up to `n` bytes of the stream; returns how many (0 at the end).
  std::size_t read(char* out, std::size_t n);
  std::uint64_t size() const { return prefix_.size() + body_size_ + suffix_.size(); }
  std::uint64_t remaining() const { return size() - position_; }

 private:
  std::string prefix_;  // every atom before the body's bytes, and the body's tag and length
  mime_source mime_;    // positioned at the body
  bool wide_ = true;    // the body goes out as UTF-16LE: every MIME byte (7-bit ASCII) then a zero
  std::uint64_t body_size_ = 0;  // the body value's bytes on the wire, without its NUL
  std::string suffix_;  // the body's NUL and every atom after it
  std::uint64_t position_ = 0;
};

}  // namespace exbridge::fake_exchange
