// Synthetic mailbox generation.
#include "fake_exchange/mailbox.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <vector>

#include "common/base64.hpp"
#include "common/mime_frame.hpp"
#include "common/sha256.hpp"

namespace exbridge::fake_exchange {
namespace {

std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

std::uint64_t hash_text(std::string_view s, std::uint64_t h) {
  for (const char c : s) h = splitmix64(h ^ static_cast<unsigned char>(c));
  return h;
}

constexpr std::string_view alphabet = "abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,;:-()!?' etaoin";
constexpr std::uint64_t line = 78;  // 76 characters and CRLF, as RFC 2045 lines

// The text bodies are cut from a pool of ready-made lines, so that producing an item costs a copy per byte, not
// a hash and table lookups (serving speed is bounded by this and TLS 1.0's CBC encryption): 1,024 lines of 76
// random characters and CRLF, made once from a fixed seed. A body is a sequence of 32-line blocks, block g
// being the 32 pool lines from line splitmix64(item seed + g) mod 993: every item gets its own bytes, and byte
// j of a body depends only on the item's seed and j, whatever the read sizes.
constexpr std::uint64_t pool_lines = 1024;
constexpr std::uint64_t block_lines = 32;
constexpr std::uint64_t block_bytes = block_lines * line;

const std::string& text_pool() {
  static const std::string pool = [] {
    std::string p(pool_lines * line, '\0');
    for (std::uint64_t i = 0; i < p.size(); ++i) {
      const std::uint64_t in_line = i % line;
      if (in_line == line - 2) p[i] = '\r';
      else if (in_line == line - 1) p[i] = '\n';
      else p[i] = alphabet[splitmix64(0x7e57b0d1ull + i) % alphabet.size()];
    }
    return p;
  }();
  return pool;
}

// Items with an attachment: every fourth small item of Inbox and Sent Items that has room for it.
constexpr std::uint64_t attachment_min_item_size = 8 * 1024;

unsigned folder_number(std::string_view folder) {
  for (unsigned i = 0; i < item_folders.size(); ++i) {
    if (item_folders[i] == folder) return i;
  }
  return static_cast<unsigned>(item_folders.size());
}

}  // namespace

mailbox::mailbox(const user& owner, const mailbox_spec& spec)
    : owner_(owner), spec_(spec), owner_seed_(hash_text(owner.email, spec.seed)) {}

unsigned mailbox::count(std::string_view folder) const {
  if (folder == "inbox") return spec_.inbox_items;
  if (folder == "sentitems") return spec_.inbox_items / 4;
  if (folder == "deleteditems") return spec_.inbox_items / 10;
  return 0;
}

std::uint64_t mailbox::total_bytes() const {
  std::uint64_t total = 0;
  for (const auto folder : item_folders) {
    for (unsigned i = 0; i < count(folder); ++i) total += item(folder, i).size;
  }
  return total;
}

std::uint64_t mailbox::item_seed(std::string_view folder, unsigned index) const {
  return splitmix64(owner_seed_ ^ (static_cast<std::uint64_t>(folder_number(folder)) << 40) ^ index);
}

item_meta mailbox::item(std::string_view folder, unsigned index) const {
  const std::uint64_t r = item_seed(folder, index);
  item_meta m;
  m.folder = std::string(folder);
  m.index = index;
  const bool large = spec_.large_every != 0 && folder == "inbox" && (index + 1) % spec_.large_every == 0;
  if (large) {
    // Around large_size, +-10 %.
    const double f = 0.9 + 0.2 * static_cast<double>(r % 10'000) / 10'000.0;
    m.size = static_cast<std::uint64_t>(static_cast<double>(spec_.large_size) * f);
  } else {
    // Log-uniform between the small bounds: many tiny items, fewer bigger ones, like real mail.
    const double lo = std::log(static_cast<double>(std::max<std::uint64_t>(spec_.small_min, 512)));
    const double hi = std::log(static_cast<double>(std::max(spec_.small_max, spec_.small_min + 1)));
    m.size = static_cast<std::uint64_t>(std::exp(lo + (hi - lo) * static_cast<double>(r % 1'000'000) / 1'000'000.0));
  }
  char subject[96];
  std::snprintf(subject, sizeof subject, "%s %u: quarterly report %04llx", folder == "inbox" ? "Re" : "Fw", index + 1,
                static_cast<unsigned long long>(r & 0xffff));
  m.subject = subject;
  m.id = make_store_id(owner_, 'I', folder, index);
  m.is_read = index >= unread_items;
  m.has_attachment = !large && (folder == "inbox" || folder == "sentitems") && index % 4 == 1 &&
                     m.size >= attachment_min_item_size;
  // Received dates walk back from 2026-11-01 one item per hour or so.
  const unsigned hours = index * 3 + static_cast<unsigned>(r % 3);
  char when[40];
  std::snprintf(when, sizeof when, "2026-%02u-%02uT%02u:%02u:00Z", 10 - std::min(9u, hours / (24 * 28)),
                1 + (hours / 24) % 28, hours % 24, static_cast<unsigned>(r % 60));
  m.received = when;
  // Every item holds at least its headers and, when it has one, its attachment: the body fills the rest.
  const mime::frame f = frame(m);
  m.size = std::max<std::uint64_t>(m.size, f.head.size() + f.tail.size());
  return m;
}

std::optional<item_meta> mailbox::find(std::string_view item_id) const {
  const auto ref = parse_store_id(item_id);
  if (!ref || ref->kind != 'I' || ref->email != owner_.email) return std::nullopt;
  if (folder_number(ref->folder) >= item_folders.size() || ref->index >= count(ref->folder)) return std::nullopt;
  return item(ref->folder, ref->index);
}

item_headers mailbox::headers(const item_meta& item) const {
  item_headers h;
  h.from_name = "Contoso Reports";
  h.from_email = "reports@contoso.example";
  h.to_name = owner_.display_name;
  h.to_email = owner_.email;
  h.message_id = "<" + std::to_string(item_seed(item.folder, item.index)) + "@contoso.example>";
  h.date = item.received;
  return h;
}

std::optional<attachment_meta> mailbox::attachment(const item_meta& item) const {
  if (!item.has_attachment) return std::nullopt;
  attachment_meta a;
  a.id = make_store_id(owner_, 'A', item.folder, item.index);
  a.name = "report-" + std::to_string(item.index + 1) + ".txt";
  a.content_type = "text/plain";
  // 512..2047 bytes of text lines, a function of the item's seed only.
  const std::uint64_t seed = splitmix64(item_seed(item.folder, item.index) ^ 0xa77ac4ull);
  a.content.resize(512 + seed % 1536);
  for (std::size_t i = 0; i < a.content.size(); ++i) {
    a.content[i] = i % 64 == 63 ? '\n' : alphabet[splitmix64(seed + i) % alphabet.size()];
  }
  return a;
}

std::optional<attachment_meta> mailbox::find_attachment(std::string_view attachment_id) const {
  const auto ref = parse_store_id(attachment_id);
  if (!ref || ref->kind != 'A' || ref->email != owner_.email) return std::nullopt;
  if (folder_number(ref->folder) >= item_folders.size() || ref->index >= count(ref->folder)) return std::nullopt;
  return attachment(item(ref->folder, ref->index));
}

std::string make_store_id(const user& owner, char kind, std::string_view folder, unsigned index) {
  return make_store_id(owner.email, kind, folder, index);
}

std::string make_store_id(std::string_view owner_email, char kind, std::string_view folder, unsigned index) {
  std::string raw("\0\0\0\0", 4);
  raw += static_cast<char>(owner_email.size());
  raw += owner_email;
  raw += kind;
  raw += folder;
  if (kind == 'I' || kind == 'A') {
    raw += '\0';
    for (int b = 0; b < 4; ++b) raw += static_cast<char>((index >> (8 * b)) & 0xff);
  }
  return base64_encode(raw);
}

std::optional<store_ref> parse_store_id(std::string_view id) {
  const auto raw = base64_decode(id);
  if (!raw || raw->size() < 6 || raw->compare(0, 4, std::string(4, '\0')) != 0) return std::nullopt;
  const auto email_size = static_cast<unsigned char>((*raw)[4]);
  if (raw->size() < 6u + email_size) return std::nullopt;
  store_ref ref;
  ref.email = raw->substr(5, email_size);
  ref.kind = (*raw)[5 + email_size];
  std::string rest = raw->substr(6 + email_size);
  if (ref.kind == 'F') {
    if (rest.empty() || rest.find('\0') != std::string::npos) return std::nullopt;
    ref.folder = std::move(rest);
    return ref;
  }
  if (ref.kind != 'I' && ref.kind != 'A') return std::nullopt;
  const auto nul = rest.find('\0');
  if (nul == std::string::npos || nul == 0 || rest.size() != nul + 5) return std::nullopt;
  ref.folder = rest.substr(0, nul);
  for (int b = 3; b >= 0; --b) {
    ref.index = ref.index << 8 | static_cast<unsigned char>(rest[nul + 1 + static_cast<unsigned>(b)]);
  }
  return ref;
}

std::string mailbox::boundary(const item_meta& item) const {
  // "=_" never occurs in the generated text, so the boundary cannot appear inside a part.
  if (!item.has_attachment) return {};
  return "----=_NextPart_" + std::to_string(item_seed(item.folder, item.index) % 1'000'000'007);
}

std::string mailbox::header_block(const item_meta& item) const {
  const item_headers h = headers(item);
  return "Received: from EX2007.contoso.example by EX2007.contoso.example; " + item.received +
         "\r\nMessage-ID: " + h.message_id + "\r\nDate: " + h.date + "\r\nFrom: " + h.from_name + " <" +
         h.from_email + ">\r\nTo: " + h.to_name + " <" + h.to_email + ">\r\nSubject: " + item.subject +
         "\r\nMIME-Version: 1.0\r\n" + mime::content_headers(boundary(item));
}

mime::frame mailbox::frame(const item_meta& item) const {
  const auto a = attachment(item);
  if (!a) return mime::render(header_block(item), boundary(item), nullptr);
  const mime::attachment_part part{a->name, a->content_type, a->content};
  return mime::render(header_block(item), boundary(item), &part);
}

mime_source::mime_source(const mailbox& box, const item_meta& item)
    : seed_(box.item_seed(item.folder, item.index)), size_(item.size) {
  mime::frame f = box.frame(item);
  header_ = std::move(f.head);
  trailer_ = std::move(f.tail);
}

std::size_t mime_source::read(char* out, std::size_t n) {
  const std::string& pool = text_pool();
  const std::size_t count = static_cast<std::size_t>(std::min<std::uint64_t>(n, size_ - position_));
  std::size_t done = 0;
  while (done < count && position_ < header_.size()) out[done++] = header_[static_cast<std::size_t>(position_++)];
  // Body: 78-byte lines of text, block by block from the pool; byte j of the body depends only on (seed, j).
  const std::uint64_t text_end = size_ - trailer_.size();
  while (done < count && position_ < text_end) {
    const std::uint64_t j = position_ - header_.size();
    const std::uint64_t block = j / block_bytes, in_block = j % block_bytes;
    const std::uint64_t first_line = splitmix64(seed_ + block) % (pool_lines - block_lines + 1);
    const std::size_t run = static_cast<std::size_t>(
        std::min<std::uint64_t>({block_bytes - in_block, count - done, text_end - position_}));
    std::memcpy(out + done, pool.data() + first_line * line + in_block, run);
    done += run;
    position_ += run;
  }
  while (done < count) out[done++] = trailer_[static_cast<std::size_t>(position_++ - text_end)];
  return count;
}

std::string item_sha256(const mailbox& box, const item_meta& item) {
  sha256 hash;
  mime_source src(box, item);
  std::vector<char> buf(64 * 1024);
  while (const std::size_t n = src.read(buf.data(), buf.size())) hash.update(buf.data(), n);
  return hash.hex_digest();
}

}  // namespace exbridge::fake_exchange
