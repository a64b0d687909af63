// Unit tests for fake-exchange's folder, sync, id and directory operations (FindFolder, SyncFolderHierarchy,
// SyncFolderItems, ConvertId, ResolveNames, ExpandDL): responses parsed with pugixml, checked for structure
// and values, per-item errors with HTTP 200 and request-level schema faults with HTTP 500.
#include <gtest/gtest.h>
#include <pugixml.hpp>

#include <algorithm>
#include <cctype>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <set>

#include "common/base64.hpp"
#include "common/xml.hpp"
#include "fake_exchange/ews.hpp"
#include "fake_exchange/streamed_body.hpp"

namespace exbridge::fake_exchange {
namespace {

organisation test_organisation() {
  organisation org = demo_organisation();  // Alex Wilber
  org.users.push_back({"megan.bowen@contoso.example", "pw", "Megan Bowen", "megan.bowen"});
  org.users.push_back({"alex.vance@contoso.example", "pw", "Alex Vance", "alex.vance"});
  org.lists.push_back({"sales@contoso.example", "Sales Team", {"megan.bowen@contoso.example", "alex.vance@contoso.example"}});
  return org;
}

struct answer {
  unsigned status = 0;
  std::string body;
  std::unique_ptr<pugi::xml_document> doc = std::make_unique<pugi::xml_document>();
  pugi::xml_node find(std::string_view name) const { return descendant_local(*doc, name); }
  /// Every element with this local name, in document order.
  std::vector<pugi::xml_node> all(std::string_view name) const {
    std::vector<pugi::xml_node> out;
    for (const auto& n : doc->select_nodes("//*")) {
      if (local_name(n.node()) == name) out.push_back(n.node());
    }
    return out;
  }
};

class EwsOps : public ::testing::Test {
 protected:
  answer call(const std::string& operation_xml, const user* who = nullptr, const version_profile* version = nullptr) {
    const std::string request =
        "<soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\" "
        "xmlns:t=\"http://schemas.microsoft.com/exchange/services/2006/types\" "
        "xmlns:m=\"http://schemas.microsoft.com/exchange/services/2006/messages\"><soap:Header>"
        "<t:RequestServerVersion Version=\"Exchange2007_SP1\"/></soap:Header><soap:Body>" +
        operation_xml + "</soap:Body></soap:Envelope>";
    const auto r = answer_ews(request, who != nullptr ? *who : org.users.front(),
                              version != nullptr ? *version : default_version_profile(), spec, org);
    answer a;
    a.status = r.status;
    a.body = r.body;
    if (r.stream) {  // GetItem: read the body as the server would send it
      std::vector<char> buf(4096);
      while (const std::size_t n = r.stream->read(buf.data(), buf.size())) a.body.append(buf.data(), n);
    }
    EXPECT_TRUE(a.doc->load_string(a.body.c_str())) << a.body.substr(0, 300);
    if (a.status == 200) {
      // Every answer carries ServerVersionInfo (8.x, without the 2010+ Version attribute).
      const auto svi = a.find("ServerVersionInfo");
      EXPECT_STREQ(svi.attribute("MajorVersion").value(), "8");
      EXPECT_FALSE(svi.attribute("Version"));
    }
    return a;
  }

  static void expect_schema_fault(const answer& a) {
    EXPECT_EQ(a.status, 500u);
    EXPECT_STREQ(a.find("ResponseCode").text().get(), "ErrorSchemaValidation") << a.body;
  }

  organisation org = test_organisation();
  mailbox_spec spec;
};

// --- FindFolder ---

std::string find_folder(const std::string& traversal, const std::string& parent, const std::string& shape = "Default") {
  return "<m:FindFolder Traversal=\"" + traversal + "\"><m:FolderShape><t:BaseShape>" + shape +
         "</t:BaseShape></m:FolderShape><m:ParentFolderIds>" + parent + "</m:ParentFolderIds></m:FindFolder>";
}

std::string distinguished(const std::string& id) { return "<t:DistinguishedFolderId Id=\"" + id + "\"/>"; }

std::vector<std::string> display_names(const answer& a) {
  std::vector<std::string> out;
  for (const auto& n : a.all("DisplayName")) out.emplace_back(n.text().get());
  return out;
}

TEST_F(EwsOps, FindFolderShallowListsTheChildrenOfTopOfInformationStore) {
  const auto a = call(find_folder("Shallow", distinguished("msgfolderroot")));
  ASSERT_EQ(a.status, 200u);
  EXPECT_STREQ(a.find("FindFolderResponseMessage").attribute("ResponseClass").value(), "Success");
  const auto root = a.find("RootFolder");
  EXPECT_STREQ(root.attribute("TotalItemsInView").value(), "11");
  EXPECT_STREQ(root.attribute("IncludesLastItemInRange").value(), "true");
  EXPECT_FALSE(root.attribute("IndexedPagingOffset"));  // unpaged
  const auto names = display_names(a);
  EXPECT_EQ(names.size(), 11u);
  EXPECT_NE(std::find(names.begin(), names.end(), "Inbox"), names.end());
  EXPECT_NE(std::find(names.begin(), names.end(), "Sent Items"), names.end());
  EXPECT_EQ(std::find(names.begin(), names.end(), "Top of Information Store"), names.end());
  // Typed folder elements and the generator's counts.
  EXPECT_TRUE(a.find("CalendarFolder"));
  EXPECT_TRUE(a.find("ContactsFolder"));
  EXPECT_TRUE(a.find("TasksFolder"));
  for (const auto& f : child_local(root, "Folders").children()) {
    if (std::string_view(child_local(f, "DisplayName").text().get()) == "Inbox") {
      EXPECT_EQ(child_local(f, "TotalCount").text().as_uint(), spec.inbox_items);
    }
  }
}

TEST_F(EwsOps, FindFolderDeepReturnsAConsistentTree) {
  const auto a = call(find_folder("Deep", distinguished("root"), "AllProperties"));
  ASSERT_EQ(a.status, 200u);
  const auto root = a.find("RootFolder");
  std::map<std::string, int> children_seen, declared;
  std::set<std::string> ids;
  int folders = 0;
  for (const auto& f : child_local(root, "Folders").children()) {
    ++folders;
    const std::string id = child_local(f, "FolderId").attribute("Id").value();
    EXPECT_TRUE(ids.insert(id).second) << "folder listed twice";
    declared[id] = child_local(f, "ChildFolderCount").text().as_int();
    ++children_seen[child_local(f, "ParentFolderId").attribute("Id").value()];
  }
  EXPECT_EQ(std::to_string(folders), root.attribute("TotalItemsInView").value());
  EXPECT_GT(folders, 11);
  // Every ChildFolderCount matches the folders that name it as their parent.
  for (const auto& [id, count] : declared) EXPECT_EQ(children_seen[id], count) << id;
  const auto names = display_names(a);
  EXPECT_NE(std::find(names.begin(), names.end(), "Inbox"), names.end());  // found through msgfolderroot
  EXPECT_NE(std::find(names.begin(), names.end(), "Voice Mail"), names.end());  // through Search Folders
}

TEST_F(EwsOps, FolderIdsFromFindFolderWorkInGetFolderAndFindFolder) {
  const auto a = call(find_folder("Shallow", distinguished("msgfolderroot"), "IdOnly"));
  ASSERT_EQ(a.status, 200u);
  EXPECT_FALSE(a.find("DisplayName"));  // IdOnly
  std::string inbox_id;
  for (const auto& id : a.all("FolderId")) {
    const auto g = call("<m:GetFolder><m:FolderShape><t:BaseShape>Default</t:BaseShape></m:FolderShape><m:FolderIds>"
                        "<t:FolderId Id=\"" + std::string(id.attribute("Id").value()) + "\"/></m:FolderIds></m:GetFolder>");
    ASSERT_STREQ(g.find("GetFolderResponseMessage").attribute("ResponseClass").value(), "Success") << g.body;
    if (std::string_view(g.find("DisplayName").text().get()) == "Inbox") inbox_id = id.attribute("Id").value();
  }
  ASSERT_FALSE(inbox_id.empty());
  const auto under_inbox = call(find_folder("Deep", "<t:FolderId Id=\"" + inbox_id + "\"/>"));
  EXPECT_STREQ(under_inbox.find("RootFolder").attribute("TotalItemsInView").value(), "0");
  // FindItem takes the FolderId too.
  const auto items = call("<m:FindItem Traversal=\"Shallow\"><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape></m:ItemShape>"
                          "<m:ParentFolderIds><t:FolderId Id=\"" + inbox_id + "\"/></m:ParentFolderIds></m:FindItem>");
  EXPECT_EQ(items.find("RootFolder").attribute("TotalItemsInView").as_uint(), spec.inbox_items);
}

TEST_F(EwsOps, FindFolderPerItemErrorsAndSchemaFaults) {
  // Two parents: the first malformed, the second another user's folder -- each its own message, HTTP 200.
  const user& megan = org.users[1];
  const auto ids = call(find_folder("Shallow", "<t:FolderId Id=\"not base64!\"/><t:FolderId Id=\"" +
                                                   make_store_id(megan, 'F', "inbox", 0) + "\"/>" +
                                                   distinguished("inbox")));
  ASSERT_EQ(ids.status, 200u);
  const auto messages = ids.all("FindFolderResponseMessage");
  ASSERT_EQ(messages.size(), 3u);
  EXPECT_STREQ(messages[0].attribute("ResponseClass").value(), "Error");
  EXPECT_STREQ(child_local(messages[0], "ResponseCode").text().get(), "ErrorInvalidIdMalformed");
  EXPECT_STREQ(child_local(messages[1], "ResponseCode").text().get(), "ErrorItemNotFound");
  EXPECT_STREQ(messages[2].attribute("ResponseClass").value(), "Success");
  expect_schema_fault(call(find_folder("Sideways", distinguished("inbox"))));
  expect_schema_fault(call(find_folder("Shallow", distinguished("archivemsgfolderroot"))));
}

// --- SyncFolderHierarchy ---

std::string sync_hierarchy(const std::string& state = "") {
  return "<m:SyncFolderHierarchy><m:FolderShape><t:BaseShape>AllProperties</t:BaseShape></m:FolderShape>" +
         (state.empty() ? std::string() : "<m:SyncState>" + state + "</m:SyncState>") + "</m:SyncFolderHierarchy>";
}

/// Flips one bit in the middle of a base64 state and re-encodes it: a valid-looking but altered state.
std::string tampered(const std::string& state) {
  auto raw = base64_decode(state);
  EXPECT_TRUE(raw);
  if (!raw) return state;
  (*raw)[raw->size() / 2] = static_cast<char>((*raw)[raw->size() / 2] ^ 0x01);
  return base64_encode(*raw);
}

TEST_F(EwsOps, SyncFolderHierarchyFromNoStateCreatesEveryFolder) {
  const auto a = call(sync_hierarchy());
  ASSERT_EQ(a.status, 200u);
  EXPECT_STREQ(a.find("SyncFolderHierarchyResponseMessage").attribute("ResponseClass").value(), "Success");
  EXPECT_STREQ(a.find("IncludesLastFolderInRange").text().get(), "true");
  const std::string state = a.find("SyncState").text().get();
  EXPECT_FALSE(state.empty());
  const auto creates = a.all("Create");
  EXPECT_EQ(creates.size(), 11u);  // the IPM subtree below Top of Information Store
  std::set<std::string> ids;
  for (const auto& c : creates) ids.insert(descendant_local(c, "FolderId").attribute("Id").value());
  EXPECT_EQ(ids.size(), creates.size());
  const auto names = display_names(a);
  EXPECT_NE(std::find(names.begin(), names.end(), "Deleted Items"), names.end());

  // The state it returned: nothing has changed since.
  const auto again = call(sync_hierarchy(state));
  EXPECT_STREQ(again.find("SyncFolderHierarchyResponseMessage").attribute("ResponseClass").value(), "Success");
  EXPECT_TRUE(again.all("Create").empty());

  // An altered state is refused, per message, with HTTP 200.
  const auto bad = call(sync_hierarchy(tampered(state)));
  EXPECT_EQ(bad.status, 200u);
  EXPECT_STREQ(bad.find("SyncFolderHierarchyResponseMessage").attribute("ResponseClass").value(), "Error");
  EXPECT_STREQ(bad.find("ResponseCode").text().get(), "ErrorInvalidSyncStateData");
  EXPECT_STREQ(bad.find("IncludesLastFolderInRange").text().get(), "true");
}

// --- SyncFolderItems ---

std::string sync_items(const std::string& folder, const std::string& max, const std::string& state = "",
                       const std::string& ignore = "", const std::string& shape = "IdOnly") {
  return "<m:SyncFolderItems><m:ItemShape><t:BaseShape>" + shape + "</t:BaseShape></m:ItemShape><m:SyncFolderId>" +
         distinguished(folder) + "</m:SyncFolderId>" + (state.empty() ? "" : "<m:SyncState>" + state + "</m:SyncState>") +
         (ignore.empty() ? "" : "<m:Ignore>" + ignore + "</m:Ignore>") + "<m:MaxChangesReturned>" + max +
         "</m:MaxChangesReturned></m:SyncFolderItems>";
}

struct sync_page {
  std::vector<std::string> ids;
  std::string state;
  bool last = false;
};

sync_page read_page(const answer& a) {
  sync_page p;
  EXPECT_EQ(a.status, 200u);
  EXPECT_STREQ(a.find("SyncFolderItemsResponseMessage").attribute("ResponseClass").value(), "Success") << a.body;
  for (const auto& c : a.all("Create")) p.ids.emplace_back(descendant_local(c, "ItemId").attribute("Id").value());
  p.state = a.find("SyncState").text().get();
  p.last = std::string_view(a.find("IncludesLastItemInRange").text().get()) == "true";
  return p;
}

TEST_F(EwsOps, SyncFolderItemsAt512DeliversEveryItemExactlyOnce) {
  spec.inbox_items = 1200;
  const mailbox box(org.users.front(), spec);
  std::vector<std::string> seen;
  std::vector<std::size_t> page_sizes;
  std::string state;
  bool last = false;
  for (int call_count = 0; !last && call_count < 10; ++call_count) {
    const auto page = read_page(call(sync_items("inbox", "512", state)));
    seen.insert(seen.end(), page.ids.begin(), page.ids.end());
    page_sizes.push_back(page.ids.size());
    EXPECT_NE(page.state, state);
    state = page.state;
    last = page.last;
  }
  EXPECT_TRUE(last);
  EXPECT_EQ(page_sizes, (std::vector<std::size_t>{512, 512, 176}));
  ASSERT_EQ(seen.size(), 1200u);
  EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()).size(), 1200u);
  for (unsigned i = 0; i < 1200; ++i) ASSERT_EQ(seen[i], box.item("inbox", i).id) << i;
  // Synced to the end: the final state gives no more changes and still says last.
  const auto after = read_page(call(sync_items("inbox", "512", state)));
  EXPECT_TRUE(after.ids.empty());
  EXPECT_TRUE(after.last);
}

TEST_F(EwsOps, SyncFolderItemsOddPageSizesIgnoreAndDefaultShape) {
  spec.inbox_items = 40;
  const mailbox box(org.users.front(), spec);
  std::vector<std::string> seen;
  std::string state;
  for (int i = 0; i < 20; ++i) {
    const auto page = read_page(call(sync_items("sentitems", "3", state)));
    seen.insert(seen.end(), page.ids.begin(), page.ids.end());
    state = page.state;
    if (page.last) break;
  }
  ASSERT_EQ(seen.size(), box.count("sentitems"));
  EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()).size(), seen.size());
  // Ignore: the listed item is left out; Default shape carries the summary.
  const std::string skipped = box.item("inbox", 1).id;
  const auto a = call(sync_items("inbox", "5", "", "<t:ItemId Id=\"" + skipped + "\"/>", "Default"));
  const auto page = read_page(a);
  ASSERT_EQ(page.ids.size(), 5u);
  EXPECT_EQ(std::find(page.ids.begin(), page.ids.end(), skipped), page.ids.end());
  EXPECT_EQ(page.ids[1], box.item("inbox", 2).id);
  EXPECT_STREQ(a.find("Subject").text().get(), box.item("inbox", 0).subject.c_str());
}

TEST_F(EwsOps, SyncFolderItemsRefusesMaxChangesOutside1To512) {
  for (const std::string bad : {"0", "513", "-1", "abc", "", "5+5", "1e2"}) {
    SCOPED_TRACE(bad);
    expect_schema_fault(call(sync_items("inbox", bad)));
  }
  EXPECT_EQ(read_page(call(sync_items("inbox", "1"))).ids.size(), 1u);
  EXPECT_EQ(read_page(call(sync_items("inbox", " +2 "))).ids.size(), 2u);  // xs:int lexical forms
  EXPECT_EQ(read_page(call(sync_items("inbox", "512"))).ids.size(), spec.inbox_items);
}

TEST_F(EwsOps, SyncFolderItemsRefusesTamperedAndForeignStates) {
  spec.inbox_items = 30;
  const auto first = read_page(call(sync_items("inbox", "10")));
  ASSERT_FALSE(first.state.empty());
  const auto expect_invalid = [&](const answer& a) {
    EXPECT_EQ(a.status, 200u);
    const auto message = a.find("SyncFolderItemsResponseMessage");
    EXPECT_STREQ(message.attribute("ResponseClass").value(), "Error") << a.body;
    EXPECT_STREQ(child_local(message, "ResponseCode").text().get(), "ErrorInvalidSyncStateData");
    EXPECT_STREQ(child_local(message, "MessageText").text().get(),
                 "Synchronization state data is corrupt or otherwise invalid.");
    EXPECT_TRUE(a.all("Create").empty());
  };
  expect_invalid(call(sync_items("inbox", "10", tampered(first.state))));
  expect_invalid(call(sync_items("inbox", "10", "bm90IGEgc3luYyBzdGF0ZQ==")));  // "not a sync state"
  expect_invalid(call(sync_items("inbox", "10", "!!!")));
  // Another folder's state, another mailbox's state, and a hierarchy state are all foreign here.
  expect_invalid(call(sync_items("sentitems", "10", first.state)));
  const auto megans = read_page(call(sync_items("inbox", "10"), &org.users[1]));
  expect_invalid(call(sync_items("inbox", "10", megans.state)));
  expect_invalid(call(sync_items("inbox", "10", call(sync_hierarchy()).find("SyncState").text().get())));
  // The genuine state still works and carries on where it stopped.
  const auto second = read_page(call(sync_items("inbox", "10", first.state)));
  EXPECT_EQ(second.ids.front(), mailbox(org.users.front(), spec).item("inbox", 10).id);
}

// --- ConvertId ---

std::string convert(const std::string& destination, const std::string& sources) {
  return "<m:ConvertId DestinationFormat=\"" + destination + "\"><m:SourceIds>" + sources + "</m:SourceIds></m:ConvertId>";
}

std::string alternate(const std::string& format, const std::string& id, const std::string& mailbox) {
  return "<t:AlternateId Format=\"" + format + "\" Id=\"" + xml_escape(id) + "\" Mailbox=\"" + mailbox + "\"/>";
}

TEST_F(EwsOps, ConvertIdRoundTripsItemAndFolderIdsThroughEveryFormat) {
  const user& alex = org.users.front();
  const mailbox box(alex, spec);
  for (const std::string& ews_id : {box.item("inbox", 7).id, make_store_id(alex, 'F', "calendar", 0)}) {
    for (const std::string format : {"EwsLegacyId", "EwsId", "EntryId", "HexEntryId", "StoreId", "OwaId"}) {
      SCOPED_TRACE(format);
      const auto there = call(convert(format, alternate("EwsId", ews_id, alex.email)));
      ASSERT_EQ(there.status, 200u);
      const auto converted = there.find("AlternateId");
      EXPECT_STREQ(there.find("ConvertIdResponseMessage").attribute("ResponseClass").value(), "Success") << there.body;
      EXPECT_STREQ(converted.attribute("Format").value(), format.c_str());
      EXPECT_STREQ(converted.attribute("Mailbox").value(), alex.email.c_str());
      EXPECT_STREQ(converted.attribute("xsi:type").value(), "t:AlternateIdType");
      const std::string id = converted.attribute("Id").value();
      EXPECT_EQ(id == ews_id, format == "EwsId");
      if (format == "HexEntryId") {
        EXPECT_EQ(id.find_first_not_of("0123456789ABCDEF"), std::string::npos);
      }
      if (format == "OwaId") {
        EXPECT_EQ(id.find_first_of("+/="), std::string::npos);
      }
      const auto back = call(convert("EwsId", alternate(format, id, alex.email)));
      EXPECT_STREQ(back.find("AlternateId").attribute("Id").value(), ews_id.c_str()) << back.body;
    }
  }
}

TEST_F(EwsOps, ConvertIdAnswersMalformedIdsPerItem) {
  const user& alex = org.users.front();
  const std::string good = mailbox(alex, spec).item("inbox", 0).id;
  // What exchangelib sends to probe the version ("DUMMY"), a good id, an EntryId named for the wrong mailbox.
  const auto as_entry = call(convert("EntryId", alternate("EwsId", good, alex.email)));
  const std::string entry = as_entry.find("AlternateId").attribute("Id").value();
  ASSERT_FALSE(entry.empty());
  const auto a = call(convert("EntryId", alternate("EwsId", "DUMMY", alex.email) + alternate("EwsId", good, alex.email) +
                                             alternate("EntryId", entry, "megan.bowen@contoso.example") +
                                             alternate("HexEntryId", "XYZ", alex.email)));
  ASSERT_EQ(a.status, 200u);
  const auto messages = a.all("ConvertIdResponseMessage");
  ASSERT_EQ(messages.size(), 4u);
  const std::vector<std::string> expected{"Error", "Success", "Error", "Error"};
  for (std::size_t i = 0; i < messages.size(); ++i) {
    EXPECT_EQ(messages[i].attribute("ResponseClass").value(), expected[i]) << i;
    if (expected[i] == "Error") {
      EXPECT_STREQ(child_local(messages[i], "ResponseCode").text().get(), "ErrorInvalidIdMalformed");
      EXPECT_STREQ(child_local(messages[i], "MessageText").text().get(), "Id is malformed.");
    }
  }
  expect_schema_fault(call(convert("ImmutableId", alternate("EwsId", good, alex.email))));
  expect_schema_fault(call(convert("EwsId", "<t:AlternateId Format=\"EwsId\" Id=\"" + good + "\"/>")));  // no Mailbox
  // ConvertId arrived with SP1: an RTM server does not know it.
  expect_schema_fault(call(convert("EwsId", alternate("EwsId", good, alex.email)), nullptr, find_version_profile("RTM")));
}

// --- Attachments: GetItem lists them, GetAttachment returns them, the MIME carries the same bytes ---

std::string read_mime(const mailbox& box, const item_meta& item, std::size_t chunk) {
  mime_source src(box, item);
  std::string out, buf(chunk, '\0');
  while (const std::size_t n = src.read(buf.data(), buf.size())) out.append(buf.data(), n);
  return out;
}

/// The decoded base64 part that follows the attachment's part header in `mime`.
std::string attachment_part(const std::string& mime, const std::string& name) {
  const auto header = mime.find("Content-Disposition: attachment; filename=\"" + name + "\"");
  if (header == std::string::npos) return "";
  const auto start = mime.find("\r\n\r\n", header) + 4;
  const auto end = mime.find("\r\n--", start);
  std::string encoded;
  for (const char ch : mime.substr(start, end - start)) {
    if (ch != '\r' && ch != '\n') encoded += ch;
  }
  return base64_decode(encoded).value_or("undecodable");
}

TEST_F(EwsOps, SomeItemsCarryAnAttachmentInTheirMimeAndGetAttachmentReturnsIt) {
  spec.inbox_items = 40;
  const mailbox box(org.users.front(), spec);
  std::optional<item_meta> with, without;
  for (unsigned i = 0; i < 40; ++i) {
    const auto item = box.item("inbox", i);
    if (item.has_attachment && !with) with = item;
    if (!item.has_attachment && !without) without = item;
  }
  ASSERT_TRUE(with && without);
  const auto attachment = box.attachment(*with);
  ASSERT_TRUE(attachment);
  EXPECT_FALSE(box.attachment(*without));

  // The MIME: multipart with the attachment's bytes, exactly item.size long, the same in any chunk size.
  const std::string mime = read_mime(box, *with, 1 << 20);
  EXPECT_EQ(mime.size(), with->size);
  EXPECT_EQ(read_mime(box, *with, 7), mime);
  EXPECT_EQ(read_mime(box, *with, 1), mime);
  EXPECT_NE(mime.find("Content-Type: multipart/mixed; boundary="), std::string::npos);
  EXPECT_EQ(mime.substr(mime.size() - 4), "--\r\n");
  EXPECT_EQ(attachment_part(mime, attachment->name), attachment->content);
  EXPECT_EQ(read_mime(box, *without, 4096).find("multipart"), std::string::npos);

  // GetItem lists it and says HasAttachments.
  const auto items = call("<m:GetItem><m:ItemShape><t:BaseShape>Default</t:BaseShape></m:ItemShape><m:ItemIds>"
                          "<t:ItemId Id=\"" + with->id + "\"/><t:ItemId Id=\"" + without->id + "\"/></m:ItemIds></m:GetItem>");
  const auto messages = items.all("Message");
  ASSERT_EQ(messages.size(), 2u);
  EXPECT_STREQ(child_local(messages[0], "HasAttachments").text().get(), "true");
  EXPECT_STREQ(child_local(messages[1], "HasAttachments").text().get(), "false");
  EXPECT_FALSE(child_local(messages[1], "Attachments"));
  const auto listed = path_local(messages[0], {"Attachments", "FileAttachment"});
  EXPECT_STREQ(child_local(listed, "Name").text().get(), attachment->name.c_str());
  EXPECT_FALSE(child_local(listed, "Content"));
  const std::string attachment_id = child_local(listed, "AttachmentId").attribute("Id").value();
  EXPECT_EQ(attachment_id, attachment->id);

  // GetAttachment: the content is the MIME part's bytes; bad ids are per-item errors with HTTP 200.
  const user& megan = org.users[1];
  const auto got = call("<m:GetAttachment><m:AttachmentIds><t:AttachmentId Id=\"" + attachment_id +
                        "\"/><t:AttachmentId Id=\"###\"/><t:AttachmentId Id=\"" + with->id +
                        "\"/><t:AttachmentId Id=\"" + make_store_id(megan, 'A', "inbox", with->index) +
                        "\"/></m:AttachmentIds></m:GetAttachment>");
  ASSERT_EQ(got.status, 200u);
  const auto answers = got.all("GetAttachmentResponseMessage");
  ASSERT_EQ(answers.size(), 4u);
  EXPECT_STREQ(answers[0].attribute("ResponseClass").value(), "Success");
  const auto file = path_local(answers[0], {"Attachments", "FileAttachment"});
  EXPECT_STREQ(child_local(file, "ContentType").text().get(), "text/plain");
  EXPECT_EQ(base64_decode(child_local(file, "Content").text().get()).value_or(""), attachment_part(mime, attachment->name));
  EXPECT_STREQ(child_local(answers[1], "ResponseCode").text().get(), "ErrorInvalidIdMalformed");
  EXPECT_STREQ(child_local(answers[2], "ResponseCode").text().get(), "ErrorItemNotFound");  // an item id
  EXPECT_STREQ(child_local(answers[3], "ResponseCode").text().get(), "ErrorItemNotFound");  // another mailbox's
  for (std::size_t i = 1; i < 4; ++i) EXPECT_STREQ(answers[i].attribute("ResponseClass").value(), "Error");
}

// --- ResolveNames and ExpandDL ---

std::string resolve(const std::string& entry, bool full = false) {
  return std::string("<m:ResolveNames ReturnFullContactData=\"") + (full ? "true" : "false") +
         "\"><m:UnresolvedEntry>" + entry + "</m:UnresolvedEntry></m:ResolveNames>";
}

TEST_F(EwsOps, ResolveNamesUniqueMatchIsAMailbox) {
  for (const std::string entry : {"megan", "Bowen", "SMTP:megan.bowen@contoso.example", "MEGAN.BOWEN@contoso.example"}) {
    SCOPED_TRACE(entry);
    const auto a = call(resolve(entry));
    ASSERT_EQ(a.status, 200u);
    EXPECT_STREQ(a.find("ResolveNamesResponseMessage").attribute("ResponseClass").value(), "Success");
    EXPECT_STREQ(a.find("ResponseCode").text().get(), "NoError");
    const auto set = a.find("ResolutionSet");
    EXPECT_STREQ(set.attribute("TotalItemsInView").value(), "1");
    EXPECT_STREQ(set.attribute("IncludesLastItemInRange").value(), "true");
    const auto mailbox = descendant_local(set, "Mailbox");
    EXPECT_STREQ(child_local(mailbox, "Name").text().get(), "Megan Bowen");
    EXPECT_STREQ(child_local(mailbox, "EmailAddress").text().get(), "megan.bowen@contoso.example");
    EXPECT_STREQ(child_local(mailbox, "RoutingType").text().get(), "SMTP");
    EXPECT_STREQ(child_local(mailbox, "MailboxType").text().get(), "Mailbox");
    EXPECT_FALSE(a.find("Contact"));
  }
  const auto full = call(resolve("megan", true));
  EXPECT_STREQ(descendant_local(full.find("Contact"), "DisplayName").text().get(), "Megan Bowen");
}

TEST_F(EwsOps, ResolveNamesSeveralMatchesAreAWarningAndNoneAnError) {
  const auto several = call(resolve("alex"));
  ASSERT_EQ(several.status, 200u);
  EXPECT_STREQ(several.find("ResolveNamesResponseMessage").attribute("ResponseClass").value(), "Warning");
  EXPECT_STREQ(several.find("ResponseCode").text().get(), "ErrorNameResolutionMultipleResults");
  EXPECT_STREQ(several.find("MessageText").text().get(), "Multiple results were found.");
  EXPECT_STREQ(several.find("ResolutionSet").attribute("TotalItemsInView").value(), "2");
  std::set<std::string> emails;
  for (const auto& e : several.all("EmailAddress")) emails.insert(e.text().get());
  EXPECT_EQ(emails, (std::set<std::string>{"alex.vance@contoso.example", "alex.wilber@contoso.example"}));

  const auto none = call(resolve("nobody"));
  ASSERT_EQ(none.status, 200u);
  EXPECT_STREQ(none.find("ResolveNamesResponseMessage").attribute("ResponseClass").value(), "Error");
  EXPECT_STREQ(none.find("ResponseCode").text().get(), "ErrorNameResolutionNoResults");
  EXPECT_STREQ(none.find("MessageText").text().get(), "No results were found.");
  EXPECT_FALSE(none.find("ResolutionSet"));

  const auto list = call(resolve("Sales"));
  EXPECT_STREQ(list.find("MailboxType").text().get(), "PublicDL");
  expect_schema_fault(call("<m:ResolveNames ReturnFullContactData=\"false\"/>"));
}

std::string expand(const std::string& address) {
  return "<m:ExpandDL><m:Mailbox><t:EmailAddress>" + address + "</t:EmailAddress></m:Mailbox></m:ExpandDL>";
}

TEST_F(EwsOps, ExpandDLListsConfiguredAndSyntheticListMembers) {
  const auto sales = call(expand("sales@contoso.example"));
  ASSERT_EQ(sales.status, 200u);
  EXPECT_STREQ(sales.find("ExpandDLResponseMessage").attribute("ResponseClass").value(), "Success");
  const auto expansion = sales.find("DLExpansion");
  EXPECT_STREQ(expansion.attribute("TotalItemsInView").value(), "2");
  EXPECT_STREQ(expansion.attribute("IncludesLastItemInRange").value(), "true");
  std::vector<std::string> names;
  for (const auto& m : expansion.children()) {
    names.emplace_back(child_local(m, "Name").text().get());
    EXPECT_STREQ(child_local(m, "RoutingType").text().get(), "SMTP");
    EXPECT_STREQ(child_local(m, "MailboxType").text().get(), "Mailbox");
  }
  EXPECT_EQ(names, (std::vector<std::string>{"Megan Bowen", "Alex Vance"}));
  // The synthetic list holds every user; a display name finds it too.
  EXPECT_STREQ(call(expand("allusers@contoso.example")).find("DLExpansion").attribute("TotalItemsInView").value(), "3");
  EXPECT_STREQ(call(expand("Sales Team")).find("DLExpansion").attribute("TotalItemsInView").value(), "2");

  for (const std::string unknown : {"nobody@contoso.example", "megan.bowen@contoso.example"}) {
    const auto a = call(expand(unknown));
    EXPECT_EQ(a.status, 200u);
    EXPECT_STREQ(a.find("ExpandDLResponseMessage").attribute("ResponseClass").value(), "Error");
    EXPECT_STREQ(a.find("ResponseCode").text().get(), "ErrorNameResolutionNoResults");
  }
}

// --- FindItem: Restriction, SortOrder and the ItemShape ---

std::string find_inbox(const std::string& shape, const std::string& rest, const std::string& view = "") {
  return "<m:FindItem Traversal=\"Shallow\"><m:ItemShape>" + shape + "</m:ItemShape>" + view + rest +
         "<m:ParentFolderIds><t:DistinguishedFolderId Id=\"inbox\"/></m:ParentFolderIds></m:FindItem>";
}
const std::string id_only = "<t:BaseShape>IdOnly</t:BaseShape>";

std::string ascii_lower(std::string s) {
  for (char& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return s;
}

std::string restriction(const std::string& expression) { return "<m:Restriction>" + expression + "</m:Restriction>"; }
std::string relation(const std::string& op, const std::string& field, const std::string& constant) {
  return "<t:" + op + "><t:FieldURI FieldURI=\"" + field + "\"/><t:FieldURIOrConstant><t:Constant Value=\"" + constant +
         "\"/></t:FieldURIOrConstant></t:" + op + ">";
}
std::string contains(const std::string& mode, const std::string& comparison, const std::string& constant) {
  return "<t:Contains ContainmentMode=\"" + mode + "\" ContainmentComparison=\"" + comparison +
         "\"><t:FieldURI FieldURI=\"item:Subject\"/><t:Constant Value=\"" + constant + "\"/></t:Contains>";
}

/// The ItemIds a FindItem answer lists, in order.
std::vector<std::string> listed_ids(const answer& a) {
  std::vector<std::string> out;
  for (const auto& id : a.all("ItemId")) out.push_back(id.attribute("Id").value());
  return out;
}

class EwsFind : public EwsOps {
 protected:
  EwsFind() { spec.inbox_items = 300; }
  /// The ids of the inbox items `keep` accepts, in folder order: what a restriction must list.
  std::vector<std::string> expected(const std::function<bool(const item_meta&)>& keep) const {
    const mailbox box(org.users.front(), spec);
    std::vector<std::string> out;
    for (unsigned i = 0; i < box.count("inbox"); ++i) {
      const auto m = box.item("inbox", i);
      if (keep(m)) out.push_back(m.id);
    }
    return out;
  }
  std::vector<std::string> find(const std::string& expression) {
    const auto a = call(find_inbox(id_only, restriction(expression)));
    EXPECT_EQ(a.status, 200u);
    EXPECT_STREQ(a.find("ResponseCode").text().get(), "NoError") << a.body.substr(0, 600);
    const auto ids = listed_ids(a);
    EXPECT_EQ(a.find("RootFolder").attribute("TotalItemsInView").as_uint(), ids.size());
    return ids;
  }
};

TEST_F(EwsFind, RestrictionsSelectTheItemsTheirExpressionsDescribe) {
  const auto lower = [](std::string s) { return ascii_lower(s); };
  // Contains, in each mode; Exact is case-sensitive, IgnoreCase is not.
  auto ids = find(contains("Substring", "Exact", "report 0"));
  EXPECT_EQ(ids, expected([](const item_meta& m) { return m.subject.find("report 0") != std::string::npos; }));
  EXPECT_FALSE(ids.empty());
  EXPECT_TRUE(find(contains("Substring", "Exact", "REPORT 0")).empty());
  EXPECT_EQ(find(contains("Substring", "IgnoreCase", "REPORT 0")), ids);
  EXPECT_EQ(find(contains("Prefixed", "Exact", "Re 1")),
            expected([](const item_meta& m) { return m.subject.rfind("Re 1", 0) == 0; }));
  const std::string one = expected([](const item_meta& m) { return m.index == 41; }).front();
  const mailbox box(org.users.front(), spec);
  const std::string subject = box.item("inbox", 41).subject;
  EXPECT_EQ(find(contains("FullString", "IgnoreCase", lower(subject))), std::vector<std::string>{one});
  EXPECT_TRUE(find(contains("FullString", "Exact", subject.substr(1))).empty());
  EXPECT_EQ(find(contains("PrefixOnWords", "Exact", "quart")), expected([](const item_meta&) { return true; }));
  EXPECT_TRUE(find(contains("PrefixOnWords", "Exact", "uarterly")).empty());
  EXPECT_TRUE(find(contains("ExactPhrase", "Exact", "quarterly rep")).empty());
  // Relations on each kind of value; strings compare without regard to case, as the store's collation does.
  EXPECT_EQ(find(relation("IsEqualTo", "item:Subject", lower(subject))), std::vector<std::string>{one});
  EXPECT_EQ(find(relation("IsGreaterThan", "item:Size", "20000")),
            expected([](const item_meta& m) { return m.size > 20000; }));
  EXPECT_EQ(find(relation("IsLessThanOrEqualTo", "item:Size", "20000")),
            expected([](const item_meta& m) { return m.size <= 20000; }));
  EXPECT_EQ(find(relation("IsEqualTo", "message:IsRead", "false")), expected([](const item_meta& m) { return !m.is_read; }));
  EXPECT_EQ(find(relation("IsNotEqualTo", "item:HasAttachments", "false")),
            expected([](const item_meta& m) { return m.has_attachment; }));
  EXPECT_EQ(find(relation("IsEqualTo", "item:ItemClass", "IPM.Note")).size(), 300u);
  const std::string when = box.item("inbox", 100).received;  // "...:MM:00Z"; the same instant as +01:00
  const std::string shifted = std::to_string(std::stoi(when.substr(11, 2)) + 1);
  const std::string when_plus1 = when.substr(0, 11) + (shifted.size() == 1 ? "0" : "") + shifted + when.substr(13, 6) + "+01:00";
  if (when.substr(11, 2) != "23") {
    EXPECT_EQ(find(relation("IsGreaterThanOrEqualTo", "item:DateTimeReceived", when_plus1)),
              expected([&](const item_meta& m) { return m.received >= when; }));
  }
  EXPECT_EQ(find(relation("IsLessThan", "item:DateTimeReceived", when)),
            expected([&](const item_meta& m) { return m.received < when; }));
  // And, Or, Not, Exists, Excludes.
  EXPECT_EQ(find("<t:And>" + relation("IsGreaterThan", "item:Size", "8000") + contains("Substring", "Exact", "Re 2") +
                 "</t:And>"),
            expected([](const item_meta& m) { return m.size > 8000 && m.subject.find("Re 2") != std::string::npos; }));
  EXPECT_EQ(find("<t:Or>" + relation("IsEqualTo", "message:IsRead", "false") + relation("IsLessThan", "item:Size", "3000") +
                 "</t:Or>"),
            expected([](const item_meta& m) { return !m.is_read || m.size < 3000; }));
  EXPECT_EQ(find("<t:Not>" + relation("IsEqualTo", "message:IsRead", "true") + "</t:Not>"),
            expected([](const item_meta& m) { return !m.is_read; }));
  EXPECT_EQ(find("<t:Exists><t:FieldURI FieldURI=\"item:Subject\"/></t:Exists>").size(), 300u);
  EXPECT_TRUE(find("<t:Exists><t:FieldURI FieldURI=\"item:Categories\"/></t:Exists>").empty());
  EXPECT_EQ(find("<t:Excludes><t:FieldURI FieldURI=\"item:Size\"/><t:Bitmask Value=\"0x1\"/></t:Excludes>"),
            expected([](const item_meta& m) { return m.size % 2 == 0; }));
}

TEST_F(EwsFind, PagingCountsTheRestrictedSet) {
  const std::string unread_or_big = restriction("<t:Or>" + relation("IsEqualTo", "message:IsRead", "false") +
                                                relation("IsGreaterThan", "item:Size", "30000") + "</t:Or>");
  const auto all = expected([](const item_meta& m) { return !m.is_read || m.size > 30000; });
  ASSERT_GT(all.size(), 20u);
  std::vector<std::string> paged;
  for (unsigned offset = 0;;) {
    const auto a = call(find_inbox(id_only, unread_or_big,
                                   "<m:IndexedPageItemView MaxEntriesReturned=\"7\" Offset=\"" + std::to_string(offset) +
                                       "\" BasePoint=\"Beginning\"/>"));
    const auto root = a.find("RootFolder");
    EXPECT_EQ(root.attribute("TotalItemsInView").as_uint(), all.size());
    const auto ids = listed_ids(a);
    paged.insert(paged.end(), ids.begin(), ids.end());
    offset = root.attribute("IndexedPagingOffset").as_uint();
    if (root.attribute("IncludesLastItemInRange").as_bool()) break;
    ASSERT_EQ(ids.size(), 7u);
  }
  EXPECT_EQ(paged, all);
  // BasePoint End counts back from the end of the restricted set.
  const auto a = call(find_inbox(id_only, unread_or_big, "<m:IndexedPageItemView MaxEntriesReturned=\"3\" Offset=\"0\" BasePoint=\"End\"/>"));
  EXPECT_EQ(listed_ids(a), std::vector<std::string>(all.end() - 3, all.end()));
}

TEST_F(EwsFind, PathsThatCannotBeQueriedOrSortedArePerMessageErrors) {
  const auto a = call(find_inbox(id_only, restriction(contains("Substring", "Exact", "x").replace(
                                                  contains("Substring", "Exact", "x").find("item:Subject"), 12, "item:Body"))));
  EXPECT_EQ(a.status, 200u);
  EXPECT_STREQ(a.find("FindItemResponseMessage").attribute("ResponseClass").value(), "Error");
  EXPECT_STREQ(a.find("ResponseCode").text().get(), "ErrorUnsupportedPathForQuery");
  EXPECT_STREQ(a.find("MessageXml").first_child().attribute("FieldURI").value(), "item:Body");
  // Contains on a number cannot run either.
  const auto b = call(find_inbox(id_only, restriction("<t:Contains ContainmentMode=\"Substring\" ContainmentComparison=\"Exact\">"
                                                      "<t:FieldURI FieldURI=\"item:Size\"/><t:Constant Value=\"1\"/></t:Contains>")));
  EXPECT_STREQ(b.find("ResponseCode").text().get(), "ErrorUnsupportedPathForQuery");
  const auto c = call(find_inbox(id_only, "<m:SortOrder><t:FieldOrder Order=\"Ascending\"><t:FieldURI FieldURI=\"message:ToRecipients\"/>"
                                          "</t:FieldOrder></m:SortOrder>"));
  EXPECT_EQ(c.status, 200u);
  EXPECT_STREQ(c.find("ResponseCode").text().get(), "ErrorUnsupportedPathForSortGroup");
  // A Restriction without an expression, or a FieldOrder without Order, is a schema failure.
  expect_schema_fault(call(find_inbox(id_only, "<m:Restriction/>")));
  expect_schema_fault(call(find_inbox(id_only, "<m:SortOrder><t:FieldOrder><t:FieldURI FieldURI=\"item:Size\"/></t:FieldOrder></m:SortOrder>")));
}

// Search expressions nest (Not inside Not ...); a request nested a million deep must get a fault, not overflow
// the stack of the code that compiles them. 200 levels still work.
TEST_F(EwsFind, DeeplyNestedRestrictionsAreRefusedNotFollowed) {
  const std::string leaf = "<t:Exists><t:FieldURI FieldURI=\"item:Subject\"/></t:Exists>";
  const auto nested = [&](std::size_t depth) {
    std::string e;
    for (std::size_t i = 0; i < depth; ++i) e += "<t:Not>";
    e += leaf;
    for (std::size_t i = 0; i < depth; ++i) e += "</t:Not>";
    return e;
  };
  EXPECT_EQ(find(nested(200)).size(), 300u);  // an even number of Nots: every item
  expect_schema_fault(call(find_inbox(id_only, restriction(nested(1'000'000)))));
}

TEST_F(EwsFind, SortOrderOrdersTheItems) {
  const auto sorted = [&](const std::string& field, const std::string& order, const std::string& rest = "") {
    return call(find_inbox(id_only, rest + "<m:SortOrder><t:FieldOrder Order=\"" + order + "\"><t:FieldURI FieldURI=\"" +
                                        field + "\"/></t:FieldOrder></m:SortOrder>",
                           "<m:IndexedPageItemView MaxEntriesReturned=\"50\" Offset=\"10\" BasePoint=\"Beginning\"/>"));
  };
  const mailbox box(org.users.front(), spec);
  std::vector<item_meta> items;
  for (unsigned i = 0; i < box.count("inbox"); ++i) items.push_back(box.item("inbox", i));
  const auto ids_of = [](const std::vector<item_meta>& v, std::size_t from, std::size_t n) {
    std::vector<std::string> out;
    for (std::size_t k = from; k < from + n && k < v.size(); ++k) out.push_back(v[k].id);
    return out;
  };
  auto by_size = items;
  std::stable_sort(by_size.begin(), by_size.end(), [](const auto& a, const auto& b) { return a.size > b.size; });
  EXPECT_EQ(listed_ids(sorted("item:Size", "Descending")), ids_of(by_size, 10, 50));
  auto by_date = items;
  std::stable_sort(by_date.begin(), by_date.end(), [](const auto& a, const auto& b) { return a.received < b.received; });
  EXPECT_EQ(listed_ids(sorted("item:DateTimeReceived", "Ascending")), ids_of(by_date, 10, 50));
  auto by_subject = items;
  std::stable_sort(by_subject.begin(), by_subject.end(),
                   [](const auto& a, const auto& b) { return ascii_lower(a.subject) > ascii_lower(b.subject); });
  EXPECT_EQ(listed_ids(sorted("item:Subject", "Descending")), ids_of(by_subject, 10, 50));
  // Sorting applies to the restricted set.
  std::vector<item_meta> read;
  std::copy_if(by_size.begin(), by_size.end(), std::back_inserter(read), [](const auto& m) { return m.is_read; });
  const auto r = sorted("item:Size", "Descending", restriction(relation("IsEqualTo", "message:IsRead", "true")));
  EXPECT_EQ(r.find("RootFolder").attribute("TotalItemsInView").as_uint(), read.size());
  EXPECT_EQ(listed_ids(r), ids_of(read, 10, 50));
}

// --- GetItem / FindItem properties: the shape chooses them, the MIME headers give their values ---

/// The header block of an item's MIME, as name -> value.
std::map<std::string, std::string> mime_headers(const mailbox& box, const item_meta& m, std::string* body = nullptr) {
  std::string mime(static_cast<std::size_t>(m.size), '\0');
  mime_source src(box, m);
  mime.resize(src.read(mime.data(), mime.size()));
  std::map<std::string, std::string> out;
  std::size_t at = 0;
  for (;;) {
    const std::size_t end = mime.find("\r\n", at);
    if (end == at || end == std::string::npos) break;
    const std::string line = mime.substr(at, end - at);
    out[line.substr(0, line.find(':'))] = line.substr(line.find(':') + 2);
    at = end + 2;
  }
  if (body != nullptr) {
    const mime_source probe(box, m);
    *body = mime.substr(static_cast<std::size_t>(probe.body_begin()), static_cast<std::size_t>(probe.body_end() - probe.body_begin()));
  }
  return out;
}

std::string crlf_to_lf(std::string s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (!(s[i] == '\r' && i + 1 < s.size() && s[i + 1] == '\n')) out += s[i];
  }
  return out;
}

TEST_F(EwsOps, GetItemAllPropertiesAgreeWithTheMimeInSchemaOrder) {
  const mailbox box(org.users.front(), spec);
  unsigned with_attachment = 0;
  while (!box.item("inbox", with_attachment).has_attachment) ++with_attachment;
  const auto m = box.item("inbox", with_attachment);
  std::string mime_body;
  auto h = mime_headers(box, m, &mime_body);
  const auto a = call("<m:GetItem><m:ItemShape><t:BaseShape>AllProperties</t:BaseShape><t:BodyType>Text</t:BodyType>"
                      "</m:ItemShape><m:ItemIds><t:ItemId Id=\"" + m.id + "\"/></m:ItemIds></m:GetItem>");
  ASSERT_EQ(a.status, 200u);
  const auto message = a.find("Message");
  EXPECT_STREQ(child_local(message, "ItemClass").text().get(), "IPM.Note");
  EXPECT_EQ(child_local(message, "Subject").text().get(), h["Subject"]);
  EXPECT_EQ(child_local(message, "InternetMessageId").text().get(), h["Message-ID"]);
  EXPECT_EQ(child_local(message, "DateTimeSent").text().get(), h["Date"]);
  EXPECT_EQ(child_local(message, "DateTimeCreated").text().get(), m.received);
  EXPECT_STREQ(child_local(message, "Importance").text().get(), "Normal");
  for (const char* who : {"From", "Sender"}) {
    const auto mbx = child_local(child_local(message, who), "Mailbox");
    EXPECT_EQ(std::string(child_local(mbx, "Name").text().get()) + " <" + child_local(mbx, "EmailAddress").text().get() + ">",
              h["From"]) << who;
    EXPECT_STREQ(child_local(mbx, "RoutingType").text().get(), "SMTP");
  }
  const auto to = child_local(child_local(message, "ToRecipients"), "Mailbox");
  EXPECT_EQ(std::string(child_local(to, "Name").text().get()) + " <" + child_local(to, "EmailAddress").text().get() + ">", h["To"]);
  const auto body = child_local(message, "Body");
  EXPECT_STREQ(body.attribute("BodyType").value(), "Text");
  EXPECT_EQ(body.text().get(), crlf_to_lf(mime_body));  // XML parsing turns CRLF into LF
  EXPECT_GT(mime_body.size(), 1000u);
  // ItemType's elements, then MessageType's, in the schema's order.
  const std::vector<std::string> order = {"ItemId", "ParentFolderId", "ItemClass", "Subject", "Sensitivity", "Body",
                                          "Attachments", "DateTimeReceived", "Size", "Importance", "DateTimeSent",
                                          "DateTimeCreated", "DisplayTo", "HasAttachments", "Sender", "ToRecipients",
                                          "From", "InternetMessageId", "IsRead"};
  std::vector<std::string> seen;
  for (const auto& child : message.children()) {
    const std::string name(local_name(child));
    if (std::find(order.begin(), order.end(), name) != order.end()) seen.push_back(name);
  }
  EXPECT_EQ(seen, order);
}

TEST_F(EwsOps, ItemShapesChooseTheProperties) {
  const mailbox box(org.users.front(), spec);
  const auto m = box.item("inbox", 2);
  const auto get = [&](const std::string& shape) {
    return call("<m:GetItem><m:ItemShape>" + shape + "</m:ItemShape><m:ItemIds><t:ItemId Id=\"" + m.id +
                "\"/></m:ItemIds></m:GetItem>");
  };
  // IdOnly is the id alone; AdditionalProperties add exactly what they name.
  const auto bare = get(id_only);
  std::vector<std::string> names;
  for (const auto& child : bare.find("Message").children()) names.emplace_back(local_name(child));
  EXPECT_EQ(names, std::vector<std::string>{"ItemId"});
  const auto some = get(id_only + "<t:AdditionalProperties><t:FieldURI FieldURI=\"message:From\"/>"
                                  "<t:FieldURI FieldURI=\"message:InternetMessageId\"/></t:AdditionalProperties>");
  names.clear();
  for (const auto& child : some.find("Message").children()) names.emplace_back(local_name(child));
  EXPECT_EQ(names, (std::vector<std::string>{"ItemId", "From", "InternetMessageId"}));
  EXPECT_EQ(some.find("InternetMessageId").text().get(), mime_headers(box, m)["Message-ID"]);
  // BodyType HTML: the same text, as an HTML document with a <br> per line.
  std::string mime_body;
  mime_headers(box, m, &mime_body);
  const auto html = get(id_only + "<t:BodyType>HTML</t:BodyType><t:AdditionalProperties><t:FieldURI FieldURI=\"item:Body\"/>"
                                  "</t:AdditionalProperties>");
  const auto body = child_local(html.find("Message"), "Body");
  EXPECT_STREQ(body.attribute("BodyType").value(), "HTML");
  const std::string text = body.text().get();
  EXPECT_EQ(text.rfind("<html>", 0), 0u);
  std::string plain = text.substr(text.find("size=\"2\">\n") + 10);
  plain = plain.substr(0, plain.rfind("</font>"));
  std::string without_breaks;
  for (std::size_t at = 0; at < plain.size();) {
    if (plain.compare(at, 4, "<br>") == 0) at += 4;
    else without_breaks += plain[at++];
  }
  EXPECT_EQ(without_breaks, crlf_to_lf(mime_body));
  // FindItem with AllProperties: no Body, Attachments or recipients; From by name.
  const auto found = call(find_inbox("<t:BaseShape>AllProperties</t:BaseShape>", "",
                                     "<m:IndexedPageItemView MaxEntriesReturned=\"3\" Offset=\"0\" BasePoint=\"Beginning\"/>"));
  const auto first = found.find("Message");
  EXPECT_FALSE(child_local(first, "Body"));
  EXPECT_FALSE(child_local(first, "ToRecipients"));
  EXPECT_STREQ(child_local(first, "ItemClass").text().get(), "IPM.Note");
  EXPECT_STREQ(child_local(child_local(child_local(first, "From"), "Mailbox"), "Name").text().get(), "Contoso Reports");
  EXPECT_EQ(child_local(first, "InternetMessageId").text().get(), mime_headers(box, box.item("inbox", 0))["Message-ID"]);
}

}  // namespace
}  // namespace exbridge::fake_exchange
