// MAPI property values as ROP buffers carry them ([MS-OXCDATA] 2.11.1 PropertyValue without its tag, 2.8.1
// PropertyRow): the types a mailbox walk reads, the tags it asks for, and rows in a table's column order --
// StandardPropertyRow when every column has a value, FlaggedPropertyRow (a flag byte per value, 0x0A and
// ecNotFound for a missing one) when not. Pure functions over bytes, written by fake-exchange's store and read by
// clients.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "common/le_bytes.hpp"

namespace exbridge::mapi {

/// Property types ([MS-OXCDATA] 2.11.1).
namespace ptype {
inline constexpr std::uint16_t integer16 = 0x0002;
inline constexpr std::uint16_t integer32 = 0x0003;
inline constexpr std::uint16_t error = 0x000A;
inline constexpr std::uint16_t boolean = 0x000B;
inline constexpr std::uint16_t integer64 = 0x0014;
inline constexpr std::uint16_t string8 = 0x001E;
inline constexpr std::uint16_t unicode = 0x001F;
inline constexpr std::uint16_t time = 0x0040;
inline constexpr std::uint16_t guid = 0x0048;
inline constexpr std::uint16_t binary = 0x0102;
}  // namespace ptype

/// Tags a mailbox walk uses ([MS-OXPROPS]).
namespace tag {
inline constexpr std::uint32_t message_class = 0x001A001F;
inline constexpr std::uint32_t subject = 0x0037001F;
inline constexpr std::uint32_t message_flags = 0x0E070003;
inline constexpr std::uint32_t message_size = 0x0E080003;
inline constexpr std::uint32_t display_name = 0x3001001F;
inline constexpr std::uint32_t content_count = 0x36020003;
inline constexpr std::uint32_t content_unread_count = 0x36030003;
inline constexpr std::uint32_t subfolders = 0x360A000B;
inline constexpr std::uint32_t container_class = 0x3613001F;
inline constexpr std::uint32_t folder_id = 0x67480014;
inline constexpr std::uint32_t parent_folder_id = 0x67490014;
inline constexpr std::uint32_t mid = 0x674A0014;
}  // namespace tag

inline constexpr std::uint16_t type_of(std::uint32_t tag) { return static_cast<std::uint16_t>(tag & 0xFFFF); }

/// A value: integers, booleans and times as a number; strings as UTF-8 (UTF-16LE on the wire for PtypString);
/// binary and GUIDs as raw bytes. The tag's type says which.
using value = std::variant<std::uint64_t, std::string>;

struct property {
  property() = default;
  /// A constructor rather than an aggregate: clang 14 (the fuzz build) lacks C++20 parenthesised aggregate
  /// initialisation, which emplace_back needs.
  property(std::uint32_t t, value val) : tag(t), v(std::move(val)) {}
  std::uint32_t tag = 0;
  value v;
};

/// ecNotFound, the error code a FlaggedPropertyRow carries for a column the row has no value for.
inline constexpr std::uint32_t not_found = 0x8004010F;

/// Writes one value in the ROP encoding. Throws std::invalid_argument for a type this codec does not know or a
/// value of the wrong kind: a server bug, not input.
void write_value(le_writer& w, std::uint32_t tag, const value& v);
/// Reads one value of `tag`'s type; nullopt when cut short, for an unknown type, or for bad UTF-16.
std::optional<value> read_value(le_reader& r, std::uint32_t tag);

/// A PropertyRow holding `props`' values in `columns` order.
void write_row(le_writer& w, const std::vector<std::uint32_t>& columns, const std::vector<property>& props);
/// A PropertyRow in `columns` order: each column's value, or nullopt where a flagged row said it has none.
/// nullopt for a row that does not parse.
std::optional<std::vector<std::optional<value>>> read_row(le_reader& r, const std::vector<std::uint32_t>& columns);

}  // namespace exbridge::mapi
