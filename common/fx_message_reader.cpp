// Reading a message's FastTransfer stream (see fx_message_reader.hpp). The grammar is [MS-OXCFXICS] 2.2.4.3:
//   messageContent    = propList messageChildren
//   messageChildren   = [FXDelProp] *recipient [FXDelProp] *attachment
//   recipient         = StartRecip propList EndToRecip
//   attachment        = NewAttach PidTagAttachNumber attachmentContent EndAttach
//   attachmentContent = propList [StartEmbed messageContent EndEmbed]
#include "common/fx_message_reader.hpp"

#include "common/le_bytes.hpp"
#include "common/utf16.hpp"

namespace exbridge::fx {
namespace {

constexpr std::uint16_t id_body = 0x1000;
constexpr std::uint16_t id_transport_message_headers = 0x007D;
constexpr std::uint16_t id_attach_long_filename = 0x3707, id_attach_mime_tag = 0x370E, id_attach_data_binary = 0x3701;

}  // namespace

const std::pair<const std::uint32_t, std::string>* property_bag::find(std::uint16_t id) const {
  const auto it = values.lower_bound(static_cast<std::uint32_t>(id) << 16);
  if (it == values.end() || (it->first >> 16) != id) return nullptr;
  return &*it;
}

std::optional<std::string> property_bag::text(std::uint16_t id) const {
  const auto* p = find(id);
  if (p == nullptr) return std::nullopt;
  const auto type = static_cast<std::uint16_t>(p->first & 0xFFFF);
  std::string_view v = p->second;
  if (type == 0x001F || type == (0x8000 | 1200)) {
    if (v.size() < 2 || v.size() % 2 != 0 || v.substr(v.size() - 2) != std::string_view("\0\0", 2)) return std::nullopt;
    return from_utf16le(v.substr(0, v.size() - 2));
  }
  if (type == 0x001E) {
    if (v.empty() || v.back() != '\0') return std::nullopt;
    return std::string(v.substr(0, v.size() - 1));
  }
  return std::nullopt;
}

std::optional<std::uint32_t> property_bag::u32(std::uint16_t id) const {
  const auto* p = find(id);
  if (p == nullptr || p->second.size() != 4) return std::nullopt;
  return load_le32(p->second, 0);
}

std::optional<std::uint64_t> property_bag::u64(std::uint16_t id) const {
  const auto* p = find(id);
  if (p == nullptr || p->second.size() != 8) return std::nullopt;
  return load_le64(p->second, 0);
}

std::optional<std::string> property_bag::binary(std::uint16_t id) const {
  const auto* p = find(id);
  if (p == nullptr || (p->first & 0xFFFF) != 0x0102) return std::nullopt;
  return p->second;
}

struct message_reader::events final : handler {
  enum class where { message, recipient, attachment, embedded };
  struct level {
    where what;
    int phase = 0;  // messages: 0 properties, 1 recipients, 2 attachments
  };
  message_reader& r;
  std::size_t cap;
  body_sink body;
  std::vector<level> stack{{where::message}};
  std::uint32_t tag = 0;
  std::string* target = nullptr;  // where the current value goes (nullptr: dropped)
  bool to_body = false;
  bool fx_del_prop = false;
  std::string del_value;

  events(message_reader& reader, std::size_t c, body_sink b) : r(reader), cap(c), body(std::move(b)) {}

  void fail(std::string why) {
    if (r.error_.empty()) r.error_ = std::move(why);
  }
  /// The bag properties at the current level go to; nullptr inside an embedded message.
  property_bag* bag() {
    if (stack.size() != 1 && stack.size() != 2) return nullptr;
    if (stack.size() == 1) return &r.message_.properties;
    if (stack.back().what == where::recipient) return &r.message_.recipients.back();
    if (stack.back().what == where::attachment) return &r.message_.attachments.back();
    return nullptr;
  }
  bool in_message() const { return stack.back().what == where::message || stack.back().what == where::embedded; }
  /// Moves the current message to `phase` (recipients 1, attachments 2); false if it is already past it.
  bool advance(int phase, std::string_view what) {
    auto& current = stack.back();
    if (!in_message() || current.phase > phase) {
      fail(std::string(what) + " where the grammar does not allow one (recipients come before attachments, both "
           "after the message's properties, inside a message)");
      return false;
    }
    current.phase = phase;
    return true;
  }

  void on_marker(std::uint32_t m) override {
    if (!r.error_.empty()) return;
    const bool top = stack.size() == 1;
    switch (m) {
      case marker::start_recip:
        if (!advance(1, "StartRecip")) return;
        if (top) r.message_.recipients.emplace_back();
        stack.push_back({where::recipient});
        return;
      case marker::new_attach:
        if (!advance(2, "NewAttach")) return;
        if (top) r.message_.attachments.emplace_back();
        stack.push_back({where::attachment});
        return;
      case marker::end_to_recip:
      case marker::end_attach:
        if (stack.back().what != (m == marker::end_to_recip ? where::recipient : where::attachment)) {
          return fail("marker " + hex32(m) + " closes nothing open");
        }
        stack.pop_back();
        return;
      case marker::start_embed:
        if (stack.back().what != where::attachment) return fail("StartEmbed outside an attachment");
        stack.push_back({where::embedded});
        return;
      case marker::end_embed:
        if (stack.back().what != where::embedded) return fail("EndEmbed closes nothing open");
        stack.pop_back();
        return;
      default:
        return fail("marker " + hex32(m) + " does not belong in a message's content");
    }
  }

  void on_property(std::uint32_t t, const named_property*, std::uint32_t count) override {
    tag = t;
    target = nullptr;
    to_body = fx_del_prop = false;
    if (!r.error_.empty()) return;
    if (t == meta::fx_del_prop) {
      fx_del_prop = true;
      del_value.clear();
      return;
    }
    if (t == meta::dn_prefix || t == meta::ec_warning) return;  // stream-level notes, not the message's
    if (in_message() && stack.back().phase != 0) {
      return fail("property " + hex32(t) + " after the message's recipients or attachments began");
    }
    property_bag* b = bag();
    const bool multi = (t & 0x8000) == 0 && (t & 0x1000) != 0;  // the type's bits: not a code page string, MV
    if (b == nullptr || multi || count != 1) return;  // multi-valued properties are not kept
    if (stack.size() == 1 && (t >> 16) == id_body && body) {
      to_body = true;
      return;
    }
    target = &b->values[t];
    target->clear();
  }

  void on_value(std::string_view bytes, std::uint32_t) override {
    if (!r.error_.empty()) return;
    if (fx_del_prop) {
      del_value.append(bytes);
    } else if (to_body) {
      r.body_bytes_ += bytes.size();
      body(bytes);
    } else if (target != nullptr) {
      if (target->size() + bytes.size() > cap) {
        target = nullptr;
        return fail("property " + hex32(tag) + "'s value is larger than " + std::to_string(cap) + " bytes");
      }
      target->append(bytes);
    }
  }

  void on_value_end() override {
    if (!fx_del_prop || !r.error_.empty()) return;
    fx_del_prop = false;
    const std::uint32_t list = del_value.size() == 4 ? load_le32(del_value, 0) : 0;
    if (list == message_recipients) advance(1, "FXDelProp(recipients)");
    else if (list == message_attachments) advance(2, "FXDelProp(attachments)");
    else fail("FXDelProp names " + hex32(list) + ", not a message's recipients or attachments");
  }
};

message_reader::message_reader(std::size_t value_cap, body_sink body)
    : events_(std::make_unique<events>(*this, value_cap, std::move(body))), parser_(*events_) {}

message_reader::~message_reader() = default;

bool message_reader::feed(std::string_view bytes) {
  if (!error_.empty()) return false;
  if (!parser_.feed(bytes)) {
    error_ = parser_.error();
    return false;
  }
  return error_.empty();
}

bool message_reader::complete() const {
  return error_.empty() && parser_.at_boundary() && events_->stack.size() == 1;
}

std::optional<mime::frame> lab_frame(const message_parts& parts, std::string* why) {
  const auto say = [&](std::string text) -> std::optional<mime::frame> {
    if (why != nullptr) *why = std::move(text);
    return std::nullopt;
  };
  const auto headers = parts.properties.text(id_transport_message_headers);
  if (!headers) return say("the message has no PidTagTransportMessageHeaders");
  const auto boundary = mime::boundary_of(*headers);
  if (!boundary) return say("its headers' Content-Type names no usable boundary");
  if (parts.attachments.size() > 1) return say("it has more than one attachment");
  if (boundary->empty() && !parts.attachments.empty()) return say("it has an attachment but a single-part Content-Type");
  if (parts.attachments.empty()) return mime::render(*headers, *boundary, nullptr);
  const auto& a = parts.attachments.front();
  const auto name = a.text(id_attach_long_filename), type = a.text(id_attach_mime_tag);
  const auto data = a.binary(id_attach_data_binary);
  if (!name || !type || !data) return say("its attachment lacks a file name, a MIME type or its bytes");
  const mime::attachment_part part{*name, *type, *data};
  return mime::render(*headers, *boundary, &part);
}

}  // namespace exbridge::fx
