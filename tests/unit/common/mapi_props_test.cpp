// MAPI property values and rows in ROP buffers (common/mapi_props): each type's encoding as [MS-OXCDATA] 2.11.1
// gives it, standard and flagged rows, and what a reader refuses.
#include <gtest/gtest.h>

#include "common/mapi_props.hpp"
#include "tests/support/hex.hpp"

namespace exbridge {
namespace mapi_props_test {

using namespace mapi;
using test::to_hex;

std::string encoded(std::uint32_t tag, const value& v) {
  le_writer w;
  write_value(w, tag, v);
  return w.text();
}

TEST(MapiProps, EachTypeAsTheSpecEncodesIt) {
  EXPECT_EQ(to_hex(encoded(0x00010002, std::uint64_t{0x1234})), "3412");
  EXPECT_EQ(to_hex(encoded(tag::message_flags, std::uint64_t{0x11})), "11000000");
  EXPECT_EQ(to_hex(encoded(tag::subfolders, std::uint64_t{1})), "01");  // PtypBoolean: one byte in ROP buffers
  EXPECT_EQ(to_hex(encoded(tag::folder_id, std::uint64_t{0x0700000000000001})), "0100000000000007");
  EXPECT_EQ(to_hex(encoded(0x0001001E, std::string("Hi"))), "486900");
  EXPECT_EQ(to_hex(encoded(tag::display_name, std::string("Inbox"))), "49006e0062006f0078000000");
  EXPECT_EQ(to_hex(encoded(tag::display_name, std::string("\xc3\xa9"))), "e9000000");  // é
  EXPECT_EQ(to_hex(encoded(0x00010102, std::string("\x01\x02", 2))), "02000102");  // PtypBinary: u16 count
  EXPECT_THROW(encoded(0x00011003, std::uint64_t{1}), std::invalid_argument);     // multi-valued: not written
  EXPECT_THROW(encoded(tag::subject, std::uint64_t{1}), std::invalid_argument);
}

TEST(MapiProps, ValuesReadBackAsWritten) {
  for (const auto& [t, v] : std::vector<std::pair<std::uint32_t, value>>{
           {0x00010002, std::uint64_t{7}},
           {tag::content_count, std::uint64_t{123456}},
           {tag::subfolders, std::uint64_t{1}},
           {tag::mid, std::uint64_t{0x0102030405060708}},
           {0x00010040, std::uint64_t{0x01d9000012345678}},
           {0x0001001E, std::string("ascii")},
           {tag::subject, std::string("Grüße \xf0\x9f\x93\xa7")},
           {0x00010048, std::string(16, '\x42')},
           {0x00010102, std::string("\0\1\2", 3)},
       }) {
    const std::string wire = encoded(t, v);
    le_reader r(as_bytes(wire));
    EXPECT_EQ(read_value(r, t), v) << std::hex << t;
    EXPECT_EQ(r.left(), 0u);
  }
}

TEST(MapiProps, RowsAreStandardWhenCompleteAndFlaggedWhenNot) {
  const std::vector<std::uint32_t> columns{tag::folder_id, tag::display_name, tag::container_class};
  le_writer complete;
  write_row(complete, columns, {{tag::display_name, std::string("A")}, {tag::folder_id, std::uint64_t{1}},
                                {tag::container_class, std::string("B")}});
  EXPECT_EQ(to_hex(complete.text()), "00" "0100000000000000" "41000000" "42000000");
  le_writer flagged;
  write_row(flagged, columns, {{tag::folder_id, std::uint64_t{1}}, {tag::display_name, std::string("A")}});
  EXPECT_EQ(to_hex(flagged.text()), "01" "00" "0100000000000000" "00" "41000000" "0a" "0f010480");
  le_reader r(as_bytes(flagged.text()));
  const auto row = read_row(r, columns);
  ASSERT_TRUE(row);
  EXPECT_EQ((*row)[0], value{std::uint64_t{1}});
  EXPECT_EQ((*row)[1], value{std::string("A")});
  EXPECT_FALSE((*row)[2]);
}

TEST(MapiProps, WhatAReaderRefuses) {
  const auto reads = [](const std::string& wire, const std::vector<std::uint32_t>& columns) {
    le_reader r(as_bytes(wire));
    return read_row(r, columns).has_value();
  };
  EXPECT_FALSE(reads("", {tag::content_count}));
  EXPECT_FALSE(reads(std::string("\x02", 1), {}));                           // not a row kind
  EXPECT_FALSE(reads(std::string("\x00\x01\x02", 3), {tag::content_count}));  // cut short
  EXPECT_FALSE(reads(std::string("\x00" "A\0", 3), {tag::display_name}));     // UTF-16 without its NUL
  EXPECT_FALSE(reads(std::string("\x01\x05", 2), {tag::content_count}));      // an unknown value flag
  EXPECT_FALSE(reads(std::string("\x00\x05\x00\x01", 4), {0x00010102}));      // a binary count past the end
  EXPECT_FALSE(reads(std::string("\x00\x00\xdc\x00\x00", 5), {tag::subject}));  // an unpaired surrogate
  EXPECT_TRUE(reads(std::string("\x01\x01", 2), {tag::content_count}));       // "no value" is a valid flag
}

}  // namespace mapi_props_test
}  // namespace exbridge
