// A message's FastTransfer stream (see fx_message.hpp). Tags are [MS-OXPROPS]'s; the order of the propList is
// Exchange's habit (class, subject, times, flags, addressing, headers, body), which no client may rely on.
#include "fake_exchange/fx_message.hpp"

#include <algorithm>

#include "common/fasttransfer.hpp"
#include "fake_exchange/ews_internal.hpp"

namespace exbridge::fake_exchange {
namespace {

/// A FILETIME (100 ns since 1601) from an xs:dateTime; 0 if it is not one (never, for generated items).
std::uint64_t filetime(std::string_view xs) {
  const auto ms = parse_xs_datetime(xs);
  return ms ? static_cast<std::uint64_t>(*ms + 11'644'473'600'000LL) * 10'000 : 0;
}

constexpr std::uint32_t tag_of(std::uint16_t id, std::uint16_t type) { return static_cast<std::uint32_t>(id) << 16 | type; }

constexpr std::uint16_t id_body = 0x1000;
constexpr std::uint16_t time_type = 0x0040, int32_type = 0x0003, binary_type = 0x0102;
/// us-ascii, the charset of every generated text part.
constexpr std::uint32_t internet_codepage_us_ascii = 20127;

}  // namespace

message_stream::message_stream(const mailbox& box, const item_meta& item, const copy_options& options)
    : mime_(box, item), wide_(options.string_type != 0x001E) {
  const auto excluded = [&](std::uint16_t id) {
    return std::any_of(options.excluded.begin(), options.excluded.end(),
                       [&](std::uint32_t t) { return (t >> 16) == id; });
  };
  const std::uint16_t st = options.string_type;
  std::string& out = prefix_;
  const auto text = [&](std::uint16_t id, std::string_view v) {
    if (!excluded(id)) fx::put_string(out, tag_of(id, st), v);
  };
  const auto u32 = [&](std::uint16_t id, std::uint32_t v) {
    if (!excluded(id)) fx::put_u32(out, tag_of(id, int32_type), v);
  };
  const auto time = [&](std::uint16_t id, std::uint64_t v) {
    if (!excluded(id)) fx::put_u64(out, tag_of(id, time_type), v);
  };
  const item_headers h = box.headers(item);
  const std::uint64_t received = filetime(item.received);
  text(0x001A, "IPM.Note");                                        // PidTagMessageClass
  text(0x0037, item.subject);                                      // PidTagSubject
  time(0x0039, received);                                          // PidTagClientSubmitTime
  time(0x0E06, received);                                          // PidTagMessageDeliveryTime
  u32(0x0E07, (item.is_read ? 0x01 : 0) | (item.has_attachment ? 0x10 : 0));  // PidTagMessageFlags: READ, HASATTACH
  text(0x1035, h.message_id);                                      // PidTagInternetMessageId
  text(0x0C1A, h.from_name);                                       // PidTagSenderName
  text(0x0C1E, "SMTP");                                            // PidTagSenderAddressType
  text(0x0C1F, h.from_email);                                      // PidTagSenderEmailAddress
  text(0x0042, h.from_name);                                       // PidTagSentRepresentingName
  text(0x0064, "SMTP");                                            // PidTagSentRepresentingAddressType
  text(0x0065, h.from_email);                                      // PidTagSentRepresentingEmailAddress
  u32(0x3FDE, internet_codepage_us_ascii);                         // PidTagInternetCodepage
  text(0x007D, box.header_block(item));                            // PidTagTransportMessageHeaders

  // PidTagBody, the native body: BestBody sends it whatever the exclusions say ([MS-OXCFXICS] 3.2.5.8.1.1).
  const std::uint64_t body_bytes = mime_.body_end() - mime_.body_begin();
  const bool body = options.best_body || !excluded(id_body);
  const std::size_t nul = wide_ ? 2 : 1;
  if (body) {
    body_size_ = body_bytes * (wide_ ? 2 : 1);
    fx::put_value_header(out, tag_of(id_body, st), static_cast<std::uint32_t>(body_size_ + nul));
    suffix_.append(nul, '\0');
  }
  // Skip the header: the stream reads the MIME from the body on.
  for (std::uint64_t left = mime_.body_begin(); left > 0;) {
    char skip[512];
    left -= mime_.read(skip, static_cast<std::size_t>(std::min<std::uint64_t>(left, sizeof skip)));
  }

  if (!options.subobjects) return;
  std::string& tail = suffix_;
  const auto tail_text = [&](std::uint16_t id, std::string_view v) { fx::put_string(tail, tag_of(id, st), v); };
  // [MS-OXCFXICS] 2.2.4.3.12 messageChildren: each list announced by FXDelProp, even when empty, as Exchange does.
  if (!excluded(fx::message_recipients >> 16)) {
    fx::put_u32(tail, fx::meta::fx_del_prop, fx::message_recipients);
    fx::put_marker(tail, fx::marker::start_recip);
    fx::put_u32(tail, 0x30000003, 0);     // PidTagRowid, first in a recipient
    fx::put_u32(tail, 0x0C150003, 1);     // PidTagRecipientType: MAPI_TO
    tail_text(0x3001, h.to_name);         // PidTagDisplayName
    tail_text(0x3002, "SMTP");            // PidTagAddressType
    tail_text(0x3003, h.to_email);        // PidTagEmailAddress
    tail_text(0x39FE, h.to_email);        // PidTagSmtpAddress
    fx::put_marker(tail, fx::marker::end_to_recip);
  }
  if (!excluded(fx::message_attachments >> 16)) {
    fx::put_u32(tail, fx::meta::fx_del_prop, fx::message_attachments);
    if (const auto a = box.attachment(item)) {
      fx::put_marker(tail, fx::marker::new_attach);
      fx::put_u32(tail, 0x0E210003, 0);     // PidTagAttachNumber, first in an attachment
      fx::put_u32(tail, 0x37050003, 1);     // PidTagAttachMethod: afByValue
      tail_text(0x3707, a->name);           // PidTagAttachLongFilename
      tail_text(0x3704, a->name);           // PidTagAttachFilename
      tail_text(0x370E, a->content_type);   // PidTagAttachMimeTag
      fx::put_u32(tail, 0x0E200003, static_cast<std::uint32_t>(a->content.size()));  // PidTagAttachSize
      fx::put_u32(tail, 0x370B0003, 0xFFFFFFFF);  // PidTagRenderingPosition: not rendered in the body
      fx::put_binary(tail, tag_of(0x3701, binary_type), a->content);  // PidTagAttachDataBinary
      fx::put_marker(tail, fx::marker::end_attach);
    }
  }
}

std::size_t message_stream::read(char* out, std::size_t n) {
  std::size_t done = 0;
  const std::uint64_t body_begin = prefix_.size(), body_end = body_begin + body_size_;
  while (done < n && position_ < body_begin) out[done++] = prefix_[static_cast<std::size_t>(position_++)];
  while (done < n && position_ < body_end) {
    if (!wide_) {
      const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(n - done, body_end - position_));
      const std::size_t got = mime_.read(out + done, want);
      done += got, position_ += got;
      continue;
    }
    // UTF-16LE: the zero after a character whose ASCII byte went out in an earlier read.
    if ((position_ - body_begin) % 2 == 1) {
      out[done++] = '\0', ++position_;
      continue;
    }
    char ascii[4096];
    const auto want = static_cast<std::size_t>(
        std::min<std::uint64_t>({sizeof ascii, (n - done + 1) / 2, (body_end - position_) / 2}));
    const std::size_t got = mime_.read(ascii, want);
    for (std::size_t i = 0; i < got && done < n; ++i) {
      out[done++] = ascii[i], ++position_;
      if (done < n) out[done++] = '\0', ++position_;
    }
  }
  while (done < n && position_ < size()) out[done++] = suffix_[static_cast<std::size_t>(position_++ - body_end)];
  return done;
}

}  // namespace exbridge::fake_exchange
