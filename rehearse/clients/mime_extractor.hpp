// Finds every <MimeContent> element in a GetItem response as the bytes arrive, base64-decodes it on the
// fly and hashes it: a 150 MB item is verified without ever being held in memory.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/sha256.hpp"

namespace exbridge::rehearse {

class mime_extractor {
 public:
  /// Feeds the next bytes of the response body, in any chunking.
  void feed(const char* data, std::size_t size);

  /// One entry per complete MimeContent element, in document order.
  struct item {
    std::string sha256;
    std::uint64_t bytes = 0;
    bool valid_base64 = true;
  };
  const std::vector<item>& items() const { return items_; }
  /// True while inside an element (the response ended in the middle of an item).
  bool inside_item() const { return state_ != state::search; }

 private:
  enum class state { search, in_tag, content };
  void feed_content(char c);
  void finish_item();

  state state_ = state::search;
  std::string window_;  // recent bytes while searching for the next start tag
  char tag_last_ = 0;   // last character seen inside the start tag ('/' makes it an empty element)
  sha256 hash_;
  item current_;
  unsigned quad_[4] = {};
  unsigned quad_size_ = 0;
  unsigned padding_ = 0;
  std::vector<item> items_;
};

}  // namespace exbridge::rehearse
