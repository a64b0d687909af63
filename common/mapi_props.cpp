// MAPI property values and rows in ROP buffers (see mapi_props.hpp).
#include "common/mapi_props.hpp"

#include <algorithm>
#include <stdexcept>

#include "common/utf16.hpp"

namespace exbridge::mapi {
namespace {

std::uint64_t number(const value& v) {
  if (const auto* n = std::get_if<std::uint64_t>(&v)) return *n;
  throw std::invalid_argument("a numeric property given a string value");
}

const std::string& text(const value& v) {
  if (const auto* s = std::get_if<std::string>(&v)) return *s;
  throw std::invalid_argument("a string property given a numeric value");
}

/// Reads up to and including a NUL of `width` bytes (1 or 2); nullopt without one.
std::optional<std::string> terminated(le_reader& r, std::size_t width) {
  std::string s;
  while (true) {
    if (!r.has(width)) return std::nullopt;
    const std::string unit = r.text(width);
    if (unit == std::string(width, '\0')) return s;
    s += unit;
  }
}

}  // namespace

void write_value(le_writer& w, std::uint32_t tag, const value& v) {
  switch (type_of(tag)) {
    case ptype::integer16: w.u16(static_cast<std::uint16_t>(number(v))); return;
    case ptype::integer32:
    case ptype::error: w.u32(static_cast<std::uint32_t>(number(v))); return;
    case ptype::boolean: w.u8(number(v) != 0 ? 1 : 0); return;  // one byte in ROP buffers ([MS-OXCDATA] 2.11.1)
    case ptype::integer64:
    case ptype::time:
      w.u64(number(v));
      return;
    case ptype::string8: w.bytes(text(v)), w.u8(0); return;
    case ptype::unicode: w.bytes(utf16le(text(v))), w.u16(0); return;
    case ptype::guid:
      if (text(v).size() != 16) throw std::invalid_argument("a GUID property that is not 16 bytes");
      w.bytes(text(v));
      return;
    case ptype::binary:
      if (text(v).size() > 0xFFFF) throw std::invalid_argument("a binary property past 65,535 bytes");
      w.u16(static_cast<std::uint16_t>(text(v).size())), w.bytes(text(v));
      return;
    default: throw std::invalid_argument("a property type this codec does not write");
  }
}

std::optional<value> read_value(le_reader& r, std::uint32_t tag) {
  switch (type_of(tag)) {
    case ptype::integer16:
      if (!r.has(2)) return std::nullopt;
      return value{std::uint64_t{r.u16()}};
    case ptype::integer32:
    case ptype::error:
      if (!r.has(4)) return std::nullopt;
      return value{std::uint64_t{r.u32()}};
    case ptype::boolean:
      if (!r.has(1)) return std::nullopt;
      return value{std::uint64_t{r.u8()}};
    case ptype::integer64:
    case ptype::time: {
      if (!r.has(8)) return std::nullopt;
      return value{r.u64()};
    }
    case ptype::string8: {
      auto s = terminated(r, 1);
      if (!s) return std::nullopt;
      return value{std::move(*s)};
    }
    case ptype::unicode: {
      auto raw = terminated(r, 2);
      if (!raw) return std::nullopt;
      auto s = from_utf16le(*raw);
      if (!s) return std::nullopt;
      return value{std::move(*s)};
    }
    case ptype::guid:
      if (!r.has(16)) return std::nullopt;
      return value{r.text(16)};
    case ptype::binary: {
      if (!r.has(2)) return std::nullopt;
      const std::uint16_t n = r.u16();
      if (!r.has(n)) return std::nullopt;
      return value{r.text(n)};
    }
    default: return std::nullopt;
  }
}

void write_row(le_writer& w, const std::vector<std::uint32_t>& columns, const std::vector<property>& props) {
  std::vector<const property*> found;
  for (const auto column : columns) {
    const auto p = std::find_if(props.begin(), props.end(), [&](const property& x) { return x.tag == column; });
    found.push_back(p == props.end() ? nullptr : &*p);
  }
  const bool complete = std::all_of(found.begin(), found.end(), [](const property* p) { return p != nullptr; });
  w.u8(complete ? 0x00 : 0x01);  // StandardPropertyRow, or FlaggedPropertyRow
  for (std::size_t i = 0; i < columns.size(); ++i) {
    if (!complete) w.u8(found[i] != nullptr ? 0x00 : 0x0A);
    if (found[i] != nullptr) {
      write_value(w, columns[i], found[i]->v);
    } else {
      w.u32(not_found);
    }
  }
}

std::optional<std::vector<std::optional<value>>> read_row(le_reader& r, const std::vector<std::uint32_t>& columns) {
  if (!r.has(1)) return std::nullopt;
  const std::uint8_t kind = r.u8();
  if (kind > 1) return std::nullopt;
  std::vector<std::optional<value>> row;
  for (const auto column : columns) {
    std::uint8_t flag = 0;
    if (kind == 1) {
      if (!r.has(1)) return std::nullopt;
      flag = r.u8();
    }
    if (flag == 0x01) {  // no value
      row.emplace_back();
      continue;
    }
    if (flag == 0x0A) {  // an error code instead of the value
      if (!r.has(4)) return std::nullopt;
      r.skip(4);
      row.emplace_back();
      continue;
    }
    if (flag != 0x00) return std::nullopt;
    auto v = read_value(r, column);
    if (!v) return std::nullopt;
    row.emplace_back(std::move(*v));
  }
  return row;
}

}  // namespace exbridge::mapi
