// An item copied over Outlook Anywhere, hashed as it arrives: its FastTransfer stream (messageContent) is read
// with the grammar checked, and the MIME the lab's profile rebuilds from it (docs/design/fasttransfer-mime.md:
// the header block from PidTagTransportMessageHeaders, PidTagBody, the attachment) goes through SHA-256 piece by
// piece -- the head once the headers are known, the body as it streams, the tail at the end -- so an item of any
// size is checked against the manifest in constant memory.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/fx_message_reader.hpp"
#include "common/sha256.hpp"

namespace exbridge::rehearse {

class fx_item_hasher {
 public:
  fx_item_hasher();
  fx_item_hasher(const fx_item_hasher&) = delete;
  fx_item_hasher& operator=(const fx_item_hasher&) = delete;

  /// The next TransferBuffer bytes; false once the stream is malformed (error() says why).
  bool feed(std::string_view bytes);
  /// Ends the stream: true when it was complete and the MIME could be rebuilt; then sha256() and size() hold.
  bool finish();

  const std::string& error() const { return error_; }
  const std::string& sha256_hex() const { return digest_; }
  std::uint64_t size() const { return size_; }
  std::uint64_t stream_bytes() const { return stream_bytes_; }

 private:
  void body(std::string_view wire);
  void hash(std::string_view bytes);
  bool fail(std::string why);

  fx::message_reader reader_;
  sha256 hash_;
  std::string digest_;
  std::string error_;
  std::string held_;  ///< body bytes not yet decoded: an odd byte, and the last UTF-16 unit (the NUL, at the end)
  bool head_done_ = false;
  std::uint64_t size_ = 0;
  std::uint64_t stream_bytes_ = 0;
};

}  // namespace exbridge::rehearse
