// FastTransfer streams (common/fasttransfer, common/fx_message_reader): the lexical parser against the one
// byte-level stream Microsoft publishes, split at every byte; the writers' encodings; and the message reader's
// grammar checks, which a client relies on to know a copied message is whole.
#include <gtest/gtest.h>

#include "common/fasttransfer.hpp"
#include "common/fx_message_reader.hpp"
#include "tests/support/hex.hpp"

namespace exbridge {
namespace fasttransfer_test {

/// Every event as a line of text, so a whole stream's parse compares as one string.
struct recorder : fx::handler {
  std::string log;
  void on_marker(std::uint32_t tag) override { log += "marker " + test::to_hex(le(tag)) + "\n"; }
  void on_property(std::uint32_t tag, const fx::named_property* named, std::uint32_t count) override {
    log += "property " + test::to_hex(le(tag)) + " x" + std::to_string(count);
    if (named != nullptr) log += named->lid ? " lid " + std::to_string(*named->lid) : " name " + named->name;
    log += "\n";
  }
  void on_value(std::string_view bytes, std::uint32_t size) override {
    pending += bytes;
    total = size;
  }
  void on_value_end() override {
    log += "  value " + std::to_string(total) + " " + test::to_hex(pending) + "\n";
    EXPECT_EQ(pending.size(), total);
    pending.clear();
  }
  static std::string le(std::uint32_t v) {
    std::string s;
    for (int i = 0; i < 4; ++i) s += static_cast<char>(v >> (8 * i));
    return s;
  }
  std::string pending;
  std::uint32_t total = 0;
};

// The stream in the Open Specifications blog's "MS-OXCFXICS - How to parse the FastTransfer Stream"
// (2015-09-16): the start of a hierarchy synchronisation, a folder change with binary, time, string, integer
// and boolean values.
const std::string blog_stream = test::from_hex(
    "03 00 12 40 02 01 E1 65 00 00 00 00 02 01 E0 65 16 00 00 00 52 F6 85 EC 7D 43 2E 4A A9 60 34 50"
    "88 53 D9 0A 00 00 00 00 03 F5 40 00 08 30 00 D0 9E A8 81 85 D0 01 02 01 E2 65 16 00 00 00 52 F6"
    "85 EC 7D 43 2E 4A A9 60 34 50 88 53 D9 0A 00 00 00 00 20 7C 02 01 E3 65 17 00 00 00 16 52 F6 85"
    "EC 7D 43 2E 4A A9 60 34 50 88 53 D9 0A 00 00 00 00 20 7C 1F 00 01 30 0C 00 00 00 49 00 4E 00 42"
    "00 4F 00 58 00 00 00 14 00 49 67 01 00 00 00 00 00 03 F4 03 00 39 66 FB 03 00 00 40 00 07 30 80"
    "39 06 A8 81 85 D0 01 0B 00 F4 10 00 00");

TEST(FastTransfer, ParsesThePublishedExampleStream) {
  recorder r;
  fx::parser p(r);
  ASSERT_TRUE(p.feed(blog_stream)) << p.error();
  EXPECT_TRUE(p.at_boundary());
  EXPECT_EQ(p.consumed(), 173u);
  EXPECT_EQ(r.log,
            "marker 03001240\n"                                  // IncrSyncChg
            "property 0201e165 x1\n  value 0 \n"                 // PidTagParentSourceKey, empty
            "property 0201e065 x1\n  value 22 52f685ec7d432e4aa96034508853d90a0000000003f5\n"
            "property 40000830 x1\n  value 8 00d09ea88185d001\n"  // PidTagLastModificationTime
            "property 0201e265 x1\n  value 22 52f685ec7d432e4aa96034508853d90a00000000207c\n"
            "property 0201e365 x1\n  value 23 1652f685ec7d432e4aa96034508853d90a00000000207c\n"
            "property 1f000130 x1\n  value 12 49004e0042004f0058000000\n"  // "INBOX", its NUL counted
            "property 14004967 x1\n  value 8 01000000000003f4\n"
            "property 03003966 x1\n  value 4 fb030000\n"
            "property 40000730 x1\n  value 8 803906a88185d001\n"
            "property 0b00f410 x1\n  value 2 0000\n");  // PidTagAttributeHidden: a 2-byte Boolean
}

TEST(FastTransfer, AnySplitOfTheStreamParsesTheSame) {
  recorder whole;
  fx::parser(whole).feed(blog_stream);
  for (std::size_t cut = 1; cut < blog_stream.size(); ++cut) {
    recorder r;
    fx::parser p(r);
    ASSERT_TRUE(p.feed(blog_stream.substr(0, cut)));
    EXPECT_EQ(p.at_boundary(), cut == 4 || cut == 12 || cut == 42 || cut == 54 || cut == 84 || cut == 115 ||
                                   cut == 135 || cut == 147 || cut == 155 || cut == 167)
        << cut;
    ASSERT_TRUE(p.feed(blog_stream.substr(cut)));
    EXPECT_EQ(r.log, whole.log) << "split at " << cut;
  }
  recorder bytewise;
  fx::parser p(bytewise);
  for (const char c : blog_stream) ASSERT_TRUE(p.feed(std::string_view(&c, 1)));
  EXPECT_EQ(bytewise.log, whole.log);
}

TEST(FastTransfer, WritersEncodeAsExchangeDoes) {
  std::string out;
  fx::put_string(out, 0x3001001F, "INBOX");
  EXPECT_EQ(test::to_hex(out), "1f0001300c00000049004e0042004f0058000000");
  out.clear();
  fx::put_string(out, 0x0037001E, "Hi");
  EXPECT_EQ(test::to_hex(out), "1e00370003000000486900");
  out.clear();
  fx::put_u16(out, 0x10F4000B, 1);
  fx::put_u32(out, fx::meta::fx_del_prop, fx::message_recipients);
  fx::put_marker(out, fx::marker::start_recip);
  fx::put_u64(out, 0x00390040, 0x01D08581A89ED000);
  fx::put_binary(out, 0x37010102, std::string("\0\1", 2));
  EXPECT_EQ(test::to_hex(out),
            "0b00f4100100" "03001640" "0d00120e" "03000340" "400039" "0000d09ea88185d001" "0201013702000000" "0001");
  EXPECT_THROW(fx::put_string(out, 0x00370003, "x"), std::invalid_argument);
}

TEST(FastTransfer, NamedAndMultiValuedProperties) {
  std::string s = test::from_hex(
      "1f 00 01 85"  "08 20 06 00 00 00 00 00 c0 00 00 00 00 00 00 46"  "00"  "52 85 00 00"  // LID 0x8552
      "06 00 00 00 61 00 62 00 00 00"                                                         // "ab"
      "03 00 02 90"  "29 03 02 00 00 00 00 00 c0 00 00 00 00 00 00 46"  "01"  "4b 00 77 00 00 00"  // name "Kw"
      "07 00 00 00"
      "03 10 05 66  02 00 00 00  01 00 00 00 02 00 00 00"   // PtypMultipleInteger32, 2 values
      "1f 10 06 66  01 00 00 00  04 00 00 00 78 00 00 00"   // PtypMultipleString, 1 value "x"
      "02 11 07 66  00 00 00 00");                          // PtypMultipleBinary, empty
  recorder r;
  fx::parser p(r);
  ASSERT_TRUE(p.feed(s)) << p.error();
  EXPECT_TRUE(p.at_boundary());
  EXPECT_EQ(r.log,
            "property 1f000185 x1 lid 34130\n  value 6 610062000000\n"
            "property 03000290 x1 name Kw\n  value 4 07000000\n"
            "property 03100566 x2\n  value 4 01000000\n  value 4 02000000\n"
            "property 1f100666 x1\n  value 4 78000000\n"
            "property 02110766 x0\n");
}

TEST(FastTransfer, RefusesWhatNoStreamCarries) {
  const auto refused = [](std::string_view hex, std::string_view why) {
    recorder r;
    fx::parser p(r);
    EXPECT_FALSE(p.feed(test::from_hex(hex))) << hex;
    EXPECT_NE(p.error().find(why), std::string::npos) << p.error();
    EXPECT_FALSE(p.feed("more"));  // a failed parser stays failed
  };
  refused("01 00 37 00", "has a type no FastTransfer stream carries");   // PtypNull
  refused("0d 10 37 00", "has a type no FastTransfer stream carries");   // multi-valued PtypObject
  refused("03 00 01 80 00000000000000000000000000000000 07", "has kind 7");
  std::string long_name = "03 00 01 80 00000000000000000000000000000000 01";
  for (int i = 0; i < 300; ++i) long_name += " 41 00";
  refused(long_name, "name is too long");
  refused("03 00 01 80 00000000000000000000000000000000 01 00 d8 00 00", "not UTF-16");  // lone surrogate
}

/// A message stream as fake-exchange writes it: propList, FXDelProp, a recipient, FXDelProp, an attachment.
std::string message_stream(bool with_attachment = true) {
  std::string s;
  fx::put_string(s, 0x001A001F, "IPM.Note");
  fx::put_string(s, 0x007D001F,
                 std::string("Subject: x\r\nMIME-Version: 1.0\r\n") +
                     (with_attachment ? mime::content_headers("b0") : mime::content_headers("")));
  fx::put_string(s, 0x1000001F, "body\r\n");
  fx::put_u32(s, fx::meta::fx_del_prop, fx::message_recipients);
  fx::put_marker(s, fx::marker::start_recip);
  fx::put_u32(s, 0x30000003, 0);
  fx::put_string(s, 0x3001001F, "Ann");
  fx::put_marker(s, fx::marker::end_to_recip);
  fx::put_u32(s, fx::meta::fx_del_prop, fx::message_attachments);
  if (with_attachment) {
    fx::put_marker(s, fx::marker::new_attach);
    fx::put_u32(s, 0x0E210003, 0);
    fx::put_string(s, 0x3707001F, "a.txt");
    fx::put_string(s, 0x370E001F, "text/plain");
    fx::put_binary(s, 0x37010102, "hello");
    fx::put_marker(s, fx::marker::end_attach);
  }
  return s;
}

TEST(FxMessageReader, ReadsAMessageAndRebuildsItsFrame) {
  std::string body;
  fx::message_reader reader(1024, [&](std::string_view b) { body += b; });
  const std::string s = message_stream();
  for (std::size_t at = 0; at < s.size(); at += 7) ASSERT_TRUE(reader.feed(s.substr(at, 7))) << reader.error();
  ASSERT_TRUE(reader.complete());
  const auto& m = reader.message();
  EXPECT_EQ(m.properties.text(0x001A), "IPM.Note");
  EXPECT_FALSE(m.properties.text(0x1000));  // the body went to the sink
  EXPECT_EQ(body, std::string("b\0o\0d\0y\0\r\0\n\0\0\0", 14));
  EXPECT_EQ(reader.body_bytes(), 14u);
  ASSERT_EQ(m.recipients.size(), 1u);
  EXPECT_EQ(m.recipients[0].text(0x3001), "Ann");
  EXPECT_EQ(m.recipients[0].u32(0x3000), 0u);
  ASSERT_EQ(m.attachments.size(), 1u);
  EXPECT_EQ(m.attachments[0].binary(0x3701), "hello");
  std::string why;
  const auto frame = fx::lab_frame(m, &why);
  ASSERT_TRUE(frame) << why;
  EXPECT_EQ(frame->head.substr(0, 12), "Subject: x\r\n");
  EXPECT_NE(frame->tail.find("Content-Disposition: attachment; filename=\"a.txt\"\r\n"), std::string::npos);
  EXPECT_NE(frame->tail.find("aGVsbG8=\r\n"), std::string::npos);  // base64 of "hello"
  EXPECT_EQ(frame->tail.substr(frame->tail.size() - 8), "--b0--\r\n");
}

TEST(FxMessageReader, AStreamCutInsideAnObjectIsNotComplete) {
  const std::string s = message_stream();
  const auto end_recip = s.find(test::from_hex("03 00 04 40"));
  fx::message_reader reader;
  ASSERT_TRUE(reader.feed(s.substr(0, end_recip)));
  EXPECT_FALSE(reader.complete());  // between atoms, but the recipient is open
  ASSERT_TRUE(reader.feed(s.substr(end_recip, 2)));
  EXPECT_FALSE(reader.complete());  // inside a tag
}

TEST(FxMessageReader, RefusesStreamsOutOfGrammar) {
  const auto refused = [](std::string stream, std::string_view why, std::size_t cap = 1024) {
    fx::message_reader reader(cap);
    EXPECT_FALSE(reader.feed(stream));
    EXPECT_NE(reader.error().find(why), std::string::npos) << reader.error();
  };
  std::string s;
  fx::put_marker(s, fx::marker::end_to_recip);
  refused(s, "closes nothing open");
  s.clear();
  fx::put_marker(s, fx::marker::start_message);
  refused(s, "does not belong in a message's content");
  s = message_stream(false);
  fx::put_string(s, 0x0037001F, "late");
  refused(s, "after the message's recipients or attachments began");
  s = message_stream(false);
  fx::put_marker(s, fx::marker::start_recip);  // a recipient after the attachment list began
  refused(s, "recipients come before attachments");
  s.clear();
  fx::put_u32(s, fx::meta::fx_del_prop, 0x0E120003);
  refused(s, "FXDelProp names 0x0E120003");
  s.clear();
  fx::put_binary(s, 0x37010102, std::string(2000, 'x'));
  refused(s, "larger than 1024 bytes");
}

TEST(FxMessageReader, LabFrameNamesWhatIsMissing) {
  fx::message_parts parts;
  std::string why;
  EXPECT_FALSE(fx::lab_frame(parts, &why));
  EXPECT_EQ(why, "the message has no PidTagTransportMessageHeaders");
  fx::message_reader reader;
  ASSERT_TRUE(reader.feed(message_stream()));
  parts = reader.message();
  parts.attachments[0].values.erase(0x3701 << 16 | 0x0102);
  EXPECT_FALSE(fx::lab_frame(parts, &why));
  EXPECT_EQ(why, "its attachment lacks a file name, a MIME type or its bytes");
}

}  // namespace fasttransfer_test
}  // namespace exbridge
