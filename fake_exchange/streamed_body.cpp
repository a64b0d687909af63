// Streamed response bodies.
#include "fake_exchange/streamed_body.hpp"

#include <algorithm>
#include <string_view>

#include "common/base64.hpp"

namespace exbridge::fake_exchange {
namespace {

constexpr std::size_t raw_chunk = 48 * 1024;  // a multiple of 3: base64 of each chunk joins seamlessly

// A plain-text body as HTML: each line break becomes <br>, the whole wrapped in a minimal document, all of it
// XML-escaped inside <t:Body BodyType="HTML">. The generated text has no '<', '>' or '&', so the text itself
// needs no escaping in either language.
constexpr std::string_view html_head =
    "&lt;html&gt;\r\n&lt;head&gt;\r\n&lt;meta http-equiv=\"Content-Type\" content=\"text/html; charset=utf-8\"&gt;\r\n"
    "&lt;/head&gt;\r\n&lt;body&gt;\r\n&lt;font face=\"Tahoma\" size=\"2\"&gt;\r\n";
constexpr std::string_view html_tail = "&lt;/font&gt;\r\n&lt;/body&gt;\r\n&lt;/html&gt;\r\n";
constexpr std::string_view html_break = "&lt;br&gt;";


}  // namespace

void streamed_body::text(std::string literal) {
  size_ += literal.size();
  pieces_.push_back({std::move(literal), std::nullopt, piece_kind::literal});
}

void streamed_body::mime_base64(const item_meta& item) {
  size_ += base64_size(item.size);
  pieces_.push_back({"", item, piece_kind::mime_base64});
}

void streamed_body::body_text(const item_meta& item, bool html) {
  const mime_source probe(*box_, item);
  const std::uint64_t n = probe.body_end() - probe.body_begin();
  if (!html) {
    size_ += n;
  } else {
    // The body is 76 characters and CRLF per line from its first byte: a CR at every offset 76 mod 78.
    size_ += html_head.size() + n + html_break.size() * ((n + 1) / 78) + html_tail.size();
  }
  pieces_.push_back({"", item, html ? piece_kind::body_html : piece_kind::body_text});
}

// Moves the next bytes into pending_: the rest of a literal, or the next base64 chunk of an item.
bool streamed_body::refill() {
  pending_.clear();
  pending_offset_ = 0;
  while (pending_.empty()) {
    if (source_ && source_kind_ == piece_kind::mime_base64) {
      // Both buffers are reused from chunk to chunk (no allocation per 48 KiB).
      raw_.resize(raw_chunk);
      const std::size_t n = source_->read(raw_.data(), raw_.size());
      if (n == 0) {
        source_.reset();
        continue;
      }
      pending_.resize(base64_size(n));
      pending_.resize(base64_encode_into(std::string_view(raw_.data(), n), pending_.data()));
      return true;
    }
    if (source_) {  // a body: the MIME bytes between body_begin and body_end
      const bool html = source_kind_ == piece_kind::body_html;
      raw_.resize(static_cast<std::size_t>(std::min<std::uint64_t>(raw_chunk, source_left_)));
      const std::string_view raw(raw_.data(), source_->read(raw_.data(), raw_.size()));
      source_left_ -= raw.size();
      if (raw.empty()) {
        source_.reset();
        if (html) pending_ = html_tail;
        continue;
      }
      if (!html) {
        pending_ = raw;
      } else {
        for (const char ch : raw) {
          if (ch == '\r') pending_ += html_break;
          pending_ += ch;
        }
      }
      return true;
    }
    if (next_piece_ >= pieces_.size()) return false;
    piece& p = pieces_[next_piece_++];
    if (p.kind == piece_kind::literal) {
      pending_ = std::move(p.text);
      continue;
    }
    source_.emplace(*box_, *p.item);
    source_kind_ = p.kind;
    if (p.kind != piece_kind::mime_base64) {
      // Skip the headers (and the multipart preamble); stop before the attachment part.
      std::string skip(static_cast<std::size_t>(source_->body_begin()), '\0');
      source_->read(skip.data(), skip.size());
      source_left_ = source_->body_end() - source_->body_begin();
      if (p.kind == piece_kind::body_html) pending_ = html_head;
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
