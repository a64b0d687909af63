// Streamed response bodies.
#include "fake_exchange/streamed_body.hpp"

#include <algorithm>

#include "common/base64.hpp"

namespace exbridge::fake_exchange {
namespace {

constexpr std::size_t raw_chunk = 48 * 1024;  // a multiple of 3: base64 of each chunk joins seamlessly

}  // namespace

void streamed_body::text(std::string literal) {
  size_ += literal.size();
  pieces_.push_back({std::move(literal), std::nullopt});
}

void streamed_body::mime_base64(const item_meta& item) {
  size_ += 4 * ((item.size + 2) / 3);
  pieces_.push_back({"", item});
}

// Moves the next bytes into pending_: the rest of a literal, or the next base64 chunk of an item.
bool streamed_body::refill() {
  pending_.clear();
  pending_offset_ = 0;
  while (pending_.empty()) {
    if (source_) {
      std::string raw(raw_chunk, '\0');
      raw.resize(source_->read(raw.data(), raw.size()));
      if (raw.empty()) {
        source_.reset();
        continue;
      }
      pending_ = base64_encode(raw);
      return true;
    }
    if (next_piece_ >= pieces_.size()) return false;
    piece& p = pieces_[next_piece_++];
    if (p.item) {
      source_.emplace(*box_, *p.item);
    } else {
      pending_ = std::move(p.text);
    }
  }
  return true;
}

std::size_t streamed_body::read(char* out, std::size_t n) {
  std::size_t done = 0;
  while (done < n) {
    if (pending_offset_ >= pending_.size() && !refill()) break;
    const std::size_t take = std::min(n - done, pending_.size() - pending_offset_);
    std::copy_n(pending_.data() + pending_offset_, take, out + done);
    pending_offset_ += take;
    done += take;
  }
  return done;
}

}  // namespace exbridge::fake_exchange
