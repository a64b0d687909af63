// Synthetic mailboxes: deterministic from a seed, any size, never held in memory. Every item's size,
// subject and MIME bytes are a pure function of (seed, owner, folder, index), so the server can stream
// an item as it produces it and a client can check every byte against the manifest's SHA-256.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/mime_frame.hpp"
#include "fake_exchange/organisation.hpp"

namespace exbridge::fake_exchange {

/// What every mailbox of the organisation holds (the same shape for every user, different bytes).
struct mailbox_spec {
  std::uint64_t seed = 2007;
  unsigned inbox_items = 20;            ///< Sent Items get a quarter of this, Deleted Items a tenth
  std::uint64_t small_min = 2 * 1024;   ///< small items: sizes spread between these bounds
  std::uint64_t small_max = 64 * 1024;
  unsigned large_every = 0;             ///< every Nth inbox item is large (0 = none)
  std::uint64_t large_size = 35'000'000;  ///< large items: around this size (+-10 %)
};

/// The mail folders that hold generated items, in manifest order.
inline constexpr std::array<std::string_view, 3> item_folders{"inbox", "sentitems", "deleteditems"};

/// The first this many items of each folder are unread: a folder's UnreadCount and its items' IsRead must
/// agree, as they do in a real store (clients cross-check them).
inline constexpr unsigned unread_items = 3;

struct item_meta {
  std::string folder;
  unsigned index = 0;
  std::uint64_t size = 0;  ///< MIME bytes
  std::string subject;
  std::string id;          ///< the EWS ItemId
  std::string received;    ///< DateTimeReceived, xs:dateTime
  bool has_attachment = false;  ///< the MIME is multipart/mixed with one small file attachment
  bool is_read = true;          ///< false for the first unread_items of the folder
};

/// The addressing headers of an item's MIME. EWS properties (From, Sender, ToRecipients, InternetMessageId,
/// DateTimeSent) are read from here too, so GetItem and the MIME can never disagree.
struct item_headers {
  std::string from_name, from_email;
  std::string to_name, to_email;
  std::string message_id;  ///< with its angle brackets, as the Message-ID header and InternetMessageId carry it
  std::string date;        ///< the Date header's value (the item's received time, xs:dateTime)
};

/// The file attachment some items carry (GetItem lists it, GetAttachment returns it, the MIME holds it
/// base64-encoded). Small: its bytes are held in memory.
struct attachment_meta {
  std::string id;  ///< the EWS AttachmentId
  std::string name;
  std::string content_type;
  std::string content;  ///< the file's bytes
};

class mailbox {
 public:
  mailbox(const user& owner, const mailbox_spec& spec);

  unsigned count(std::string_view folder) const;
  std::uint64_t total_bytes() const;
  item_meta item(std::string_view folder, unsigned index) const;
  /// Resolves an ItemId issued for this mailbox; nullopt for malformed ids and ids of other mailboxes.
  std::optional<item_meta> find(std::string_view item_id) const;
  /// The From, To, Message-ID and Date the item's MIME carries.
  item_headers headers(const item_meta& item) const;
  /// The item's attachment (nullopt when it has none).
  std::optional<attachment_meta> attachment(const item_meta& item) const;
  /// The item's top-level header block (every line CRLF-terminated, no blank line): what PidTagTransportMessageHeaders
  /// carries over Outlook Anywhere.
  std::string header_block(const item_meta& item) const;
  /// The item's multipart boundary ("" for a single-part item).
  std::string boundary(const item_meta& item) const;
  /// The item's MIME around its text body (mime::render of the above).
  mime::frame frame(const item_meta& item) const;
  /// Resolves an AttachmentId issued for this mailbox.
  std::optional<attachment_meta> find_attachment(std::string_view attachment_id) const;

  const user& owner() const { return owner_; }
  const mailbox_spec& spec() const { return spec_; }
  std::uint64_t item_seed(std::string_view folder, unsigned index) const;

 private:
  const user& owner_;
  mailbox_spec spec_;
  std::uint64_t owner_seed_;
};

/// Produces one item's MIME bytes in order, in any chunk sizes, holding only a few bytes of state.
class mime_source {
 public:
  mime_source(const mailbox& box, const item_meta& item);
  /// Writes up to `n` bytes; returns how many (0 at the end).
  std::size_t read(char* out, std::size_t n);
  std::uint64_t remaining() const { return size_ - position_; }
  /// Where the text body (the text/plain part's content) starts and ends in the MIME bytes: the item's
  /// Body property is exactly these bytes.
  std::uint64_t body_begin() const { return std::min<std::uint64_t>(header_.size(), size_); }
  std::uint64_t body_end() const { return std::max(body_begin(), size_ - trailer_.size()); }

 private:
  std::string header_;
  std::string trailer_;  // the attachment's MIME part and the closing boundary ("" without attachment)
  std::uint64_t seed_;
  std::uint64_t size_;
  std::uint64_t position_ = 0;
};

/// SHA-256 (lower-case hex) of an item's MIME, computed by streaming it.
std::string item_sha256(const mailbox& box, const item_meta& item);

/// An EWS id for a folder or item: base64 of a small binary record that names the owner first
/// (rehearse uses that to catch responses delivered to the wrong user).
std::string make_store_id(const user& owner, char kind, std::string_view folder, unsigned index);
std::string make_store_id(std::string_view owner_email, char kind, std::string_view folder, unsigned index);

/// What an id made by make_store_id names.
struct store_ref {
  std::string email;
  char kind = 0;  ///< 'F' folder, 'I' item, 'A' an item's attachment
  std::string folder;
  unsigned index = 0;  ///< items and attachments only
};
/// Parses an id made by make_store_id; nullopt for anything else (bad base64, wrong layout).
std::optional<store_ref> parse_store_id(std::string_view id);

}  // namespace exbridge::fake_exchange
