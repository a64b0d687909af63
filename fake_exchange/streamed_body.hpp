// A response body produced while it is sent: literal XML pieces and items' MIME as base64, so that a
// GetItem answer carrying a 150 MB item never exists in memory as a whole (its length is known up front).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "fake_exchange/mailbox.hpp"

namespace exbridge::fake_exchange {

class streamed_body {
 public:
  explicit streamed_body(std::shared_ptr<const mailbox> box) : box_(std::move(box)) {}

  void text(std::string literal);
  /// The item's MIME, base64-encoded (MimeContent), produced when it is read.
  void mime_base64(const item_meta& item);

  /// The item's text body (its MIME text part, the Body property), XML-escaped, produced when it is read.
  /// With `html` it is wrapped as HTML (what Exchange gives for BodyType HTML of a plain-text message).
  void body_text(const item_meta& item, bool html);

  /// Total bytes the body will have.
  std::uint64_t size() const { return size_; }
  /// Writes up to `n` bytes; returns how many (0 at the end).
  std::size_t read(char* out, std::size_t n);

 private:
  enum class piece_kind { literal, mime_base64, body_text, body_html };
  struct piece {
    std::string text;
    std::optional<item_meta> item;
    piece_kind kind = piece_kind::literal;
  };
  bool refill();

  std::shared_ptr<const mailbox> box_;
  std::vector<piece> pieces_;
  std::uint64_t size_ = 0;
  std::size_t next_piece_ = 0;
  std::optional<mime_source> source_;
  piece_kind source_kind_ = piece_kind::mime_base64;
  std::uint64_t source_left_ = 0;  // body pieces: bytes of the source still to produce
  std::string pending_;
  std::string raw_;  ///< the MIME chunk being encoded or copied
  std::size_t pending_offset_ = 0;
};

}  // namespace exbridge::fake_exchange
