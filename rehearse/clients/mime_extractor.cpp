// Streaming MimeContent extraction.
#include "rehearse/clients/mime_extractor.hpp"

#include <algorithm>
#include <string_view>

namespace exbridge::rehearse {
namespace {

constexpr std::string_view element = "MimeContent";

int sextet(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

}  // namespace

void mime_extractor::feed(const char* data, std::size_t size) {
  std::size_t i = 0;
  while (i < size) {
    if (state_ == state::content) {
      for (; i < size && data[i] != '<'; ++i) feed_content(data[i]);
      if (i < size) {
        finish_item();
        state_ = state::search;
        window_.clear();
      }
      continue;
    }
    if (state_ == state::in_tag) {
      for (; i < size && data[i] != '>'; ++i) tag_last_ = data[i];
      if (i < size) {
        ++i;
        const bool empty_element = tag_last_ == '/';
        state_ = state::content;
        if (empty_element) {
          finish_item();
          state_ = state::search;
        }
        window_.clear();
      }
      continue;
    }
    // search: look for "<prefix:MimeContent" (a start tag) across chunk boundaries.
    const std::size_t before = window_.size();
    window_.append(data + i, size - i);
    const std::size_t at = window_.find(element);
    if (at == std::string::npos) {
      if (window_.size() > 64) window_.erase(0, window_.size() - 64);
      return;
    }
    const std::size_t lt = window_.rfind('<', at);
    const bool start_tag = lt != std::string::npos && lt + 1 < window_.size() && window_[lt + 1] != '/';
    const std::size_t resume = at + element.size();  // index in window_ just after the name
    i += resume - before;
    window_.clear();
    if (start_tag) {
      state_ = state::in_tag;
      tag_last_ = 0;
      current_ = {};
      quad_size_ = 0;
      padding_ = 0;
    }
  }
}

void mime_extractor::feed_content(char c) {
  if (c == '\r' || c == '\n' || c == ' ' || c == '\t') return;
  int v = 0;
  if (c == '=') {
    ++padding_;
  } else {
    v = sextet(c);
    if (v < 0 || padding_ > 0) {
      current_.valid_base64 = false;
      return;
    }
  }
  quad_[quad_size_++] = static_cast<unsigned>(v);
  if (quad_size_ < 4) return;
  const unsigned bits = quad_[0] << 18 | quad_[1] << 12 | quad_[2] << 6 | quad_[3];
  const unsigned char out[3] = {static_cast<unsigned char>(bits >> 16), static_cast<unsigned char>(bits >> 8),
                                static_cast<unsigned char>(bits)};
  const unsigned n = 3 - std::min(padding_, 2u);
  hash_.update(out, n);
  current_.bytes += n;
  quad_size_ = 0;
}

void mime_extractor::finish_item() {
  if (quad_size_ != 0) current_.valid_base64 = false;
  current_.sha256 = hash_.hex_digest();
  items_.push_back(current_);
  current_ = {};
  quad_size_ = 0;
  padding_ = 0;
}

}  // namespace exbridge::rehearse
