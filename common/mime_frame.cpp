// The lab's MIME profile (see mime_frame.hpp). Every constant here is part of every manifest hash.
#include "common/mime_frame.hpp"

#include "common/base64.hpp"

namespace exbridge::mime {
namespace {
constexpr std::string_view text_part =
    "Content-Type: text/plain; charset=\"us-ascii\"\r\nContent-Transfer-Encoding: 7bit\r\n";
constexpr std::string_view multipart_prefix = "Content-Type: multipart/mixed; boundary=\"";
}  // namespace

std::string content_headers(std::string_view boundary) {
  if (boundary.empty()) return std::string(text_part);
  return std::string(multipart_prefix) + std::string(boundary) + "\"\r\n";
}

frame render(std::string_view headers, std::string_view boundary, const attachment_part* attachment) {
  frame f;
  f.head = std::string(headers) + "\r\n";
  if (boundary.empty()) return f;
  const std::string b(boundary);
  f.head += "This is a multi-part message in MIME format.\r\n\r\n--" + b + "\r\n" + std::string(text_part) + "\r\n";
  f.tail = "\r\n--" + b;
  if (attachment != nullptr) {
    const std::string name(attachment->name);
    f.tail += "\r\nContent-Type: " + std::string(attachment->content_type) + "; name=\"" + name +
              "\"\r\nContent-Disposition: attachment; filename=\"" + name +
              "\"\r\nContent-Transfer-Encoding: base64\r\n\r\n";
    // RFC 2045 lines: 76 characters and CRLF.
    const std::string encoded = base64_encode(attachment->content);
    for (std::size_t at = 0; at < encoded.size(); at += 76) f.tail += encoded.substr(at, 76) + "\r\n";
    f.tail += "\r\n--" + b;
  }
  f.tail += "--\r\n";
  return f;
}

std::optional<std::string> boundary_of(std::string_view headers) {
  const auto at = headers.find(multipart_prefix);
  if (at == std::string_view::npos) return std::string();
  const auto begin = at + multipart_prefix.size();
  const auto end = headers.find('"', begin);
  if (end == std::string_view::npos || end == begin) return std::nullopt;
  return std::string(headers.substr(begin, end - begin));
}

}  // namespace exbridge::mime
