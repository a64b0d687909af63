// Unit tests for the synthetic mailboxes, the streamed GetItem body and rehearse's MIME extractor:
// deterministic content, chunking that changes nothing, ids bound to their owner, and byte-exact hashes.
#include <gtest/gtest.h>
#include <pugixml.hpp>

#include <random>

#include "common/sha256.hpp"
#include "common/xml.hpp"
#include "fake_exchange/ews.hpp"
#include "fake_exchange/mailbox.hpp"
#include "fake_exchange/streamed_body.hpp"
#include "rehearse/clients/mime_extractor.hpp"

namespace exbridge::fake_exchange {
namespace {

const user alex{"alex.wilber@contoso.example", "pw", "Alex Wilber", "alex.wilber"};
const user megan{"megan.bowen@contoso.example", "pw", "Megan Bowen", "megan.bowen"};

std::string read_all(mime_source src, std::size_t chunk) {
  std::string out, buf(chunk, '\0');
  while (const std::size_t n = src.read(buf.data(), buf.size())) out.append(buf.data(), n);
  return out;
}

TEST(Mailbox, ItemsAreDeterministicAndSizedAsSpecified) {
  mailbox_spec spec;
  spec.inbox_items = 40;
  spec.large_every = 10;
  spec.large_size = 1'000'000;
  const mailbox a(alex, spec), again(alex, spec), b(megan, spec);
  EXPECT_EQ(a.count("inbox"), 40u);
  EXPECT_EQ(a.count("sentitems"), 10u);
  EXPECT_EQ(a.count("deleteditems"), 4u);
  for (unsigned i = 0; i < 40; ++i) {
    const auto item = a.item("inbox", i);
    EXPECT_EQ(item_sha256(a, item), item_sha256(again, again.item("inbox", i)));
    if ((i + 1) % 10 == 0) {
      EXPECT_GE(item.size, 900'000u);
      EXPECT_LE(item.size, 1'100'000u);
    } else {
      EXPECT_GE(item.size, spec.small_min);
      EXPECT_LE(item.size, spec.small_max);
    }
    EXPECT_EQ(read_all(mime_source(a, item), 4096).size(), item.size);
  }
  EXPECT_NE(item_sha256(a, a.item("inbox", 0)), item_sha256(b, b.item("inbox", 0)));
}

TEST(Mailbox, ChunkSizeDoesNotChangeTheBytes) {
  const mailbox box(alex, {});
  const auto item = box.item("inbox", 3);
  const std::string whole = read_all(mime_source(box, item), 1 << 20);
  EXPECT_EQ(read_all(mime_source(box, item), 1), whole);
  EXPECT_EQ(read_all(mime_source(box, item), 7), whole);
  EXPECT_EQ(whole.rfind("Received: ", 0), 0u);
  EXPECT_NE(whole.find("\r\n\r\n"), std::string::npos);
  sha256 h;
  h.update(whole);
  EXPECT_EQ(h.hex_digest(), item_sha256(box, item));
}

TEST(Mailbox, TextBodiesAreLinesOfTheirOwnAcrossBlocks) {
  mailbox_spec spec;
  spec.large_every = 2;
  spec.large_size = 200'000;  // about 80 of the generator's 2,496-byte blocks
  const mailbox box(alex, spec);
  const auto a = box.item("inbox", 1), b = box.item("inbox", 3);
  const auto body_of = [&](const item_meta& item) {
    const mime_source probe(box, item);
    return read_all(mime_source(box, item), 4096).substr(probe.body_begin(), probe.body_end() - probe.body_begin());
  };
  const std::string body_a = body_of(a), body_b = body_of(b);
  ASSERT_GT(body_a.size(), 150'000u);
  // RFC 2045 lines: 76 printable characters and CRLF, up to a last partial line.
  for (std::size_t at = 0; at + 78 <= body_a.size(); at += 78) {
    ASSERT_EQ(body_a.compare(at + 76, 2, "\r\n"), 0) << "line at " << at;
    ASSERT_EQ(body_a.substr(at, 76).find_first_of("\r\n="), std::string::npos) << "line at " << at;
  }
  // Two items share at most a couple of 2,496-byte blocks at the same place (each draws its blocks from its own
  // seed: 993 possible starts per block).
  std::size_t same_blocks = 0;
  for (std::size_t at = 0; at + 2496 <= std::min(body_a.size(), body_b.size()); at += 2496) {
    same_blocks += body_a.compare(at, 2496, body_b, at, 2496) == 0 ? 1 : 0;
  }
  EXPECT_LE(same_blocks, 2u);
  EXPECT_NE(item_sha256(box, a), item_sha256(box, b));
}

TEST(Mailbox, ItemIdsResolveOnlyInTheirOwnersMailbox) {
  const mailbox a(alex, {}), b(megan, {});
  const auto item = a.item("sentitems", 2);
  ASSERT_TRUE(a.find(item.id));
  EXPECT_EQ(a.find(item.id)->index, 2u);
  EXPECT_FALSE(b.find(item.id));
  EXPECT_FALSE(a.find("not base64!"));
  EXPECT_FALSE(a.find(make_store_id(alex, 'I', "inbox", 9999)));
}

std::string ews(const std::string& body) {
  return "<soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\" "
         "xmlns:t=\"http://schemas.microsoft.com/exchange/services/2006/types\" "
         "xmlns:m=\"http://schemas.microsoft.com/exchange/services/2006/messages\"><soap:Body>" + body +
         "</soap:Body></soap:Envelope>";
}

TEST(EwsItems, FindItemPagesWithTheAttributesClientsKeyOn) {
  mailbox_spec spec;
  spec.inbox_items = 1200;
  const auto page = [&](unsigned offset) {
    const auto r = answer_ews(ews("<m:FindItem Traversal=\"Shallow\"><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape>"
                                  "</m:ItemShape><m:IndexedPageItemView MaxEntriesReturned=\"512\" Offset=\"" +
                                  std::to_string(offset) + "\" BasePoint=\"Beginning\"/><m:ParentFolderIds>"
                                  "<t:DistinguishedFolderId Id=\"inbox\"/></m:ParentFolderIds></m:FindItem>"),
                              alex, default_version_profile(), spec, demo_organisation());
    EXPECT_EQ(r.status, 200u);
    auto doc = std::make_unique<pugi::xml_document>();
    doc->load_string(r.body.c_str());
    return doc;
  };
  const auto first = page(0);
  auto root = descendant_local(*first, "RootFolder");
  EXPECT_STREQ(root.attribute("TotalItemsInView").value(), "1200");
  EXPECT_STREQ(root.attribute("IncludesLastItemInRange").value(), "false");
  EXPECT_STREQ(root.attribute("IndexedPagingOffset").value(), "512");
  EXPECT_EQ(std::distance(child_local(root, "Items").children().begin(), child_local(root, "Items").children().end()), 512);
  const auto last = page(1024);
  root = descendant_local(*last, "RootFolder");
  EXPECT_STREQ(root.attribute("IncludesLastItemInRange").value(), "true");
  EXPECT_EQ(std::distance(child_local(root, "Items").children().begin(), child_local(root, "Items").children().end()), 176);
}

TEST(EwsItems, GetItemStreamsMimeThatHashesToTheManifest) {
  mailbox_spec spec;
  spec.large_every = 5;
  spec.large_size = 300'000;
  const mailbox box(alex, spec);
  const auto small = box.item("inbox", 0), large = box.item("inbox", 4);
  const auto r = answer_ews(ews("<m:GetItem><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape><t:IncludeMimeContent>true"
                                "</t:IncludeMimeContent></m:ItemShape><m:ItemIds><t:ItemId Id=\"" + small.id +
                                "\"/><t:ItemId Id=\"bogus\"/><t:ItemId Id=\"" + large.id + "\"/></m:ItemIds></m:GetItem>"),
                            alex, default_version_profile(), spec, demo_organisation());
  ASSERT_TRUE(r.stream);
  // Read in odd-sized pieces and feed the extractor in other odd-sized pieces.
  std::string body;
  std::vector<char> buf(777);
  while (const std::size_t n = r.stream->read(buf.data(), buf.size())) body.append(buf.data(), n);
  EXPECT_EQ(body.size(), r.stream->size());
  pugi::xml_document doc;
  ASSERT_TRUE(doc.load_string(body.c_str())) << body.substr(0, 300);
  rehearse::mime_extractor extractor;
  for (std::size_t at = 0; at < body.size(); at += 13) extractor.feed(body.data() + at, std::min<std::size_t>(13, body.size() - at));
  ASSERT_EQ(extractor.items().size(), 2u);  // the bogus id is an error message without MIME
  EXPECT_EQ(extractor.items()[0].sha256, item_sha256(box, small));
  EXPECT_EQ(extractor.items()[0].bytes, small.size);
  EXPECT_EQ(extractor.items()[1].sha256, item_sha256(box, large));
  EXPECT_NE(body.find("ErrorInvalidIdMalformed"), std::string::npos);
}

TEST(MimeExtractor, DetectsASingleFlippedCharacter) {
  const std::string doc = "<x><t:MimeContent CharacterSet=\"UTF-8\">SGVsbG8sIHdvcmxkIQ==</t:MimeContent>"
                          "<t:MimeContent>SGVsbG8sIHdvcmxkIQ==</t:MimeContent></x>";
  std::string bad = doc;
  bad[bad.find("SGVs") + 2] = 'W';
  rehearse::mime_extractor good_x, bad_x;
  good_x.feed(doc.data(), doc.size());
  bad_x.feed(bad.data(), bad.size());
  ASSERT_EQ(good_x.items().size(), 2u);
  EXPECT_EQ(good_x.items()[0].bytes, 13u);  // "Hello, world!"
  EXPECT_EQ(good_x.items()[0].sha256, good_x.items()[1].sha256);
  ASSERT_EQ(bad_x.items().size(), 2u);
  EXPECT_NE(bad_x.items()[0].sha256, good_x.items()[0].sha256);
}

TEST(MimeExtractor, ByteAtATimeEqualsAllAtOnce) {
  const std::string doc = "<a><m:Items><t:MimeContent>QUJD</t:MimeContent></m:Items><t:MimeContent/></a>";
  rehearse::mime_extractor whole, dribbled;
  whole.feed(doc.data(), doc.size());
  for (const char c : doc) dribbled.feed(&c, 1);
  ASSERT_EQ(whole.items().size(), 2u);
  ASSERT_EQ(dribbled.items().size(), 2u);
  EXPECT_EQ(whole.items()[0].sha256, dribbled.items()[0].sha256);
  EXPECT_EQ(whole.items()[1].bytes, 0u);
  EXPECT_FALSE(dribbled.inside_item());
}

}  // namespace
}  // namespace exbridge::fake_exchange
