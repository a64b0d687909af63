// FastTransfer stream atoms (see fasttransfer.hpp). Sections are [MS-OXCFXICS]'s.
#include "common/fasttransfer.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <stdexcept>

#include "common/le_bytes.hpp"
#include "common/utf16.hpp"

namespace exbridge::fx {
namespace {

constexpr std::uint16_t multi_valued = 0x1000;
constexpr std::uint16_t code_page_string = 0x8000;  // 0x8000 | code page: a string in that code page
/// Names of named properties are short (Exchange caps them at 255 characters); a longer one is not a stream.
constexpr std::size_t max_name_bytes = 2 * 256;

bool multi_allowed(std::uint16_t base) {
  switch (base) {
    case 0x0002: case 0x0003: case 0x0004: case 0x0005: case 0x0006: case 0x0007: case 0x0014: case 0x0040:
    case 0x0048: case 0x001E: case 0x001F: case 0x0102:
      return true;
    default:
      return false;
  }
}

void put_tag(std::string& out, std::uint32_t tag) { append_le32(out, tag); }

/// Multi-valued: the 0x1000 bit of a type that is not a code page string.
bool is_multi(std::uint16_t type) { return !(type & code_page_string) && (type & multi_valued); }

}  // namespace

std::string hex32(std::uint32_t v) {
  char s[12];
  std::snprintf(s, sizeof s, "0x%08X", v);
  return s;
}

bool is_marker(std::uint32_t tag) {
  switch (tag) {
    case marker::new_attach: case marker::start_embed: case marker::end_embed: case marker::start_recip:
    case marker::end_to_recip: case marker::start_top_fld: case marker::start_sub_fld: case marker::end_folder:
    case marker::start_message: case marker::end_message: case marker::end_attach: case marker::start_fai_msg:
    case marker::incr_sync_chg: case marker::incr_sync_del: case marker::incr_sync_end: case marker::incr_sync_message:
    case marker::fx_error_info: case marker::incr_sync_read: case marker::incr_sync_state_begin:
    case marker::incr_sync_state_end: case marker::incr_sync_chg_partial:
      return true;
    default:
      return false;
  }
}

std::size_t fixed_size(std::uint16_t type) {
  switch (type) {
    case 0x0002: return 2;  // PtypInteger16
    case 0x0003: return 4;  // PtypInteger32
    case 0x0004: return 4;  // PtypFloating32
    case 0x0005: return 8;  // PtypFloating64
    case 0x0006: return 8;  // PtypCurrency
    case 0x0007: return 8;  // PtypFloatingTime
    case 0x000A: return 4;  // PtypErrorCode
    case 0x000B: return 2;  // PtypBoolean: two bytes in a stream (2.2.4.1.3's fixedSizeValue)
    case 0x0014: return 8;  // PtypInteger64
    case 0x0040: return 8;  // PtypTime
    case 0x0048: return 16; // PtypGuid
    default: return 0;
  }
}

bool is_variable(std::uint16_t type) {
  if (type & code_page_string) return true;
  return type == 0x000D || type == 0x001E || type == 0x001F || type == 0x00FB || type == 0x0102;
}

void put_marker(std::string& out, std::uint32_t m) { put_tag(out, m); }

void put_u16(std::string& out, std::uint32_t tag, std::uint16_t v) {
  put_tag(out, tag);
  append_le16(out, v);
}

void put_u32(std::string& out, std::uint32_t tag, std::uint32_t v) {
  put_tag(out, tag);
  append_le32(out, v);
}

void put_u64(std::string& out, std::uint32_t tag, std::uint64_t v) {
  put_tag(out, tag);
  append_le64(out, v);
}

void put_value_header(std::string& out, std::uint32_t tag, std::uint32_t length) {
  put_tag(out, tag);
  append_le32(out, length);
}

void put_binary(std::string& out, std::uint32_t tag, std::string_view bytes) {
  put_value_header(out, tag, static_cast<std::uint32_t>(bytes.size()));
  out.append(bytes);
}

void put_string(std::string& out, std::uint32_t tag, std::string_view utf8) {
  const auto type = static_cast<std::uint16_t>(tag & 0xFFFF);
  std::string bytes;
  if (type == 0x001F || type == (code_page_string | 1200)) {
    bytes = utf16le(utf8);
    bytes.append(2, '\0');
  } else if (type == 0x001E) {
    bytes = std::string(utf8);
    bytes.push_back('\0');
  } else {
    throw std::invalid_argument("fx::put_string: " + hex32(tag) + " is not a string this writer encodes");
  }
  put_binary(out, tag, bytes);
}

bool parser::fail(std::string why) {
  error_ = std::move(why);
  return false;
}

bool parser::fill(std::string_view& bytes, std::size_t want) {
  const std::size_t take = std::min(want - have_, bytes.size());
  std::memcpy(buf_.data() + have_, bytes.data(), take);
  have_ += take;
  consumed_ += take;
  bytes.remove_prefix(take);
  if (have_ < want) return false;
  have_ = 0;
  return true;
}

std::uint32_t parser::buffered_u32() const { return load_le32(std::string_view(buf_.data(), 4), 0); }

std::uint16_t parser::element_type() const {
  const auto type = static_cast<std::uint16_t>(tag_ & 0xFFFF);
  return is_multi(type) ? static_cast<std::uint16_t>(type & ~multi_valued) : type;
}

void parser::begin_values(const named_property* named) {
  if (is_multi(static_cast<std::uint16_t>(tag_ & 0xFFFF))) {
    state_ = state::count;  // the element count comes first
    return;
  }
  elements_left_ = 1;
  h_->on_property(tag_, named, 1);
  start_value();
}

void parser::start_value() { state_ = fixed_size(element_type()) != 0 ? state::fixed : state::length; }

void parser::end_element() {
  h_->on_value_end();
  if (--elements_left_ > 0) start_value();
  else state_ = state::tag;
}

bool parser::feed(std::string_view bytes) {
  if (!error_.empty()) return false;
  while (!bytes.empty()) {
    switch (state_) {
      case state::tag: {
        if (!fill(bytes, 4)) return true;
        tag_ = buffered_u32();
        if (is_marker(tag_)) {
          h_->on_marker(tag_);
          break;
        }
        const auto base = element_type();
        const bool known = is_multi(static_cast<std::uint16_t>(tag_ & 0xFFFF)) ? multi_allowed(base)
                                                                               : fixed_size(base) != 0 || is_variable(base);
        if (!known) return fail("property " + hex32(tag_) + " at byte " + std::to_string(consumed_ - 4) +
                                " has a type no FastTransfer stream carries");
        is_named_ = (tag_ >> 16) >= 0x8000;
        if (is_named_) state_ = state::named_head;
        else begin_values(nullptr);
        break;
      }
      case state::named_head:
        if (!fill(bytes, 17)) return true;
        std::memcpy(named_.guid.data(), buf_.data(), 16);
        named_.lid.reset();
        named_.name.clear();
        name_utf16_.clear();
        if (buf_[16] == 0) state_ = state::named_lid;
        else if (buf_[16] == 1) state_ = state::named_name;
        else return fail("named property " + hex32(tag_) + " has kind " + std::to_string(static_cast<std::uint8_t>(buf_[16])) +
                         " (0 or 1 expected)");
        break;
      case state::named_lid:
        if (!fill(bytes, 4)) return true;
        named_.lid = buffered_u32();
        begin_values(&named_);
        break;
      case state::named_name: {
        if (!fill(bytes, 2)) return true;
        if (buf_[0] != 0 || buf_[1] != 0) {
          if (name_utf16_.size() >= max_name_bytes) return fail("named property " + hex32(tag_) + "'s name is too long");
          name_utf16_.append(buf_.data(), 2);
          break;
        }
        auto name = from_utf16le(name_utf16_);
        if (!name) return fail("named property " + hex32(tag_) + "'s name is not UTF-16");
        named_.name = std::move(*name);
        begin_values(&named_);
        break;
      }
      case state::count:
        if (!fill(bytes, 4)) return true;
        elements_left_ = buffered_u32();
        h_->on_property(tag_, is_named_ ? &named_ : nullptr, elements_left_);
        if (elements_left_ == 0) state_ = state::tag;
        else start_value();
        break;
      case state::length:
        if (!fill(bytes, 4)) return true;
        value_size_ = value_left_ = buffered_u32();
        if (value_size_ == 0) {
          h_->on_value({}, 0);
          end_element();
        } else {
          state_ = state::variable;
        }
        break;
      case state::fixed: {
        const auto size = fixed_size(element_type());
        if (!fill(bytes, size)) return true;
        h_->on_value(std::string_view(buf_.data(), size), static_cast<std::uint32_t>(size));
        end_element();
        break;
      }
      case state::variable: {
        const auto take = static_cast<std::size_t>(std::min<std::uint64_t>(bytes.size(), value_left_));
        h_->on_value(bytes.substr(0, take), value_size_);
        value_left_ -= static_cast<std::uint32_t>(take);
        consumed_ += take;
        bytes.remove_prefix(take);
        if (value_left_ == 0) end_element();
        break;
      }
    }
  }
  return true;
}

}  // namespace exbridge::fx
