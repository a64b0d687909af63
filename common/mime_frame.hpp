// The one renderer of the lab's message MIME, shared by fake-exchange (which generates every item's bytes and
// hashes them into the manifest) and by the clients that rebuild an item from its MAPI properties (an Outlook
// Anywhere copy gets properties, never MIME: docs/design/fasttransfer-mime.md). A message is its top-level header
// block, a text/plain body, and optionally one attachment; this file renders everything around the body, so a
// client holding PidTagTransportMessageHeaders, PidTagBody and the attachment's properties produces exactly the
// bytes fake-exchange hashed.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace exbridge::mime {

/// The one attachment a lab message may carry (a file, sent base64-encoded).
struct attachment_part {
  std::string_view name;
  std::string_view content_type;
  std::string_view content;
};

/// The bytes before and after a message's text body.
struct frame {
  std::string head;  ///< the top-level headers, the blank line and, for multipart, the text part's headers
  std::string tail;  ///< "" for a single part; else the attachment's part and the closing boundary
};

/// The Content-Type and Content-Transfer-Encoding header lines that end a lab message's top-level header block:
/// text/plain, or multipart/mixed with `boundary` when it is not empty.
std::string content_headers(std::string_view boundary);

/// Renders the frame of a message whose top-level header block is `headers` (every line CRLF-terminated, ending
/// with content_headers(boundary)'s lines). `boundary` empty means a single text/plain part; otherwise
/// `attachment` is the second part.
frame render(std::string_view headers, std::string_view boundary, const attachment_part* attachment);

/// The multipart boundary a header block's Content-Type names; "" for a single-part message; nullopt for a
/// block this profile does not produce (a multipart without a quoted boundary).
std::optional<std::string> boundary_of(std::string_view headers);

}  // namespace exbridge::mime
