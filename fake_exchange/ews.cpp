// EWS implementation: SOAP envelope checks, RequestServerVersion, GetFolder on distinguished folders.
#include "fake_exchange/ews.hpp"

#include <pugixml.hpp>

#include <algorithm>
#include <array>
#include <cstdint>

#include "common/base64.hpp"
#include "common/xml.hpp"

namespace exbridge::fake_exchange {
namespace {

constexpr const char* ns_soap = "http://schemas.xmlsoap.org/soap/envelope/";
constexpr const char* ns_messages = "http://schemas.microsoft.com/exchange/services/2006/messages";
constexpr const char* ns_types = "http://schemas.microsoft.com/exchange/services/2006/types";
constexpr const char* ns_errors = "http://schemas.microsoft.com/exchange/services/2006/errors";

struct folder_info {
  std::string_view id;            // DistinguishedFolderIdNameType value (2007 schema)
  std::string_view display_name;
  int total, unread, children;
};

// Every distinguished folder id the Exchange 2007 schema knows. Ids added in 2010+ (archive*,
// recoverableitems*, conversationhistory, ...) fail schema validation, as on a real 2007 server.
constexpr std::array<folder_info, 16> folders{{
    {"msgfolderroot", "Top of Information Store", 0, 0, 11},
    {"root", "", 0, 0, 12},
    {"inbox", "Inbox", 0, 0, 0},  // inbox, sentitems, deleteditems: counts come from the mailbox generator
    {"calendar", "Calendar", 6, 0, 0},
    {"contacts", "Contacts", 4, 0, 0},
    {"deleteditems", "Deleted Items", 0, 0, 0},
    {"drafts", "Drafts", 1, 0, 0},
    {"journal", "Journal", 0, 0, 0},
    {"junkemail", "Junk E-mail", 0, 0, 0},
    {"notes", "Notes", 0, 0, 0},
    {"outbox", "Outbox", 0, 0, 0},
    {"sentitems", "Sent Items", 0, 0, 0},
    {"tasks", "Tasks", 1, 0, 0},
    {"searchfolders", "Search Folders", 0, 0, 0},
    {"voicemail", "Voice Mail", 0, 0, 0},
    {"publicfoldersroot", "IPM_SUBTREE", 0, 0, 0},
}};

const folder_info* find_folder(std::string_view id) {
  for (const auto& f : folders) {
    if (f.id == id) return &f;
  }
  return nullptr;
}

std::string envelope(const version_profile& v, const std::string& body) {
  return std::string("<?xml version=\"1.0\" encoding=\"utf-8\"?>"
                     "<soap:Envelope xmlns:soap=\"") +
         ns_soap +
         "\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\">"
         "<soap:Header><t:ServerVersionInfo MajorVersion=\"" +
         std::to_string(v.major) + "\" MinorVersion=\"" + std::to_string(v.minor) + "\" MajorBuildNumber=\"" +
         std::to_string(v.build) + "\" MinorBuildNumber=\"" + std::to_string(v.revision) + "\" xmlns:t=\"" + ns_types +
         "\" /></soap:Header><soap:Body>" + body + "</soap:Body></soap:Envelope>";
}

ews_result fault(std::string operation, std::string_view code, std::string_view message) {
  std::string body = std::string("<?xml version=\"1.0\" encoding=\"utf-8\"?><s:Envelope xmlns:s=\"") + ns_soap +
                     "\"><s:Body><s:Fault><faultcode xmlns:a=\"" + ns_types + "\">a:" + std::string(code) +
                     "</faultcode><faultstring xml:lang=\"en-US\">" + xml_escape(message) +
                     "</faultstring><detail><e:ResponseCode xmlns:e=\"" + ns_errors + "\">" + std::string(code) +
                     "</e:ResponseCode><e:Message xmlns:e=\"" + ns_errors + "\">" + xml_escape(message) +
                     "</e:Message></detail></s:Fault></s:Body></s:Envelope>";
  return {500, std::move(body), std::move(operation)};
}

ews_result schema_fault(std::string operation, const std::string& detail) {
  return fault(std::move(operation), "ErrorSchemaValidation", "The request failed schema validation: " + detail);
}

/// A stable, opaque folder id that names its owner (see make_store_id).
std::string folder_id(const user& owner, std::string_view folder) { return make_store_id(owner, 'F', folder, 0); }

/// The distinguished folder a FolderIds/ParentFolderIds element names; nullptr when none is valid.
const folder_info* requested_folder(const pugi::xml_node& ids) {
  const pugi::xml_node id = child_local(ids, "DistinguishedFolderId");
  return id ? find_folder(id.attribute("Id").value()) : nullptr;
}

ews_result get_folder(const pugi::xml_node& op, const mailbox& box, const version_profile& v) {
  const user& owner = box.owner();
  const pugi::xml_node ids = child_local(op, "FolderIds");
  if (!ids || !child_local(op, "FolderShape")) {
    return schema_fault("GetFolder", "The element 'GetFolder' has incomplete content. List of possible elements expected: "
                                     "'FolderShape, FolderIds' in namespace '" + std::string(ns_messages) + "'.");
  }
  std::string messages;
  for (const auto& id : ids.children()) {
    if (id.type() != pugi::node_element) continue;
    if (local_name(id) == "FolderId") {
      // Real-id lookups arrive with the mailbox generator; an id we never issued is not found.
      messages += "<m:GetFolderResponseMessage ResponseClass=\"Error\"><m:MessageText>The specified object was not found "
                  "in the store.</m:MessageText><m:ResponseCode>ErrorItemNotFound</m:ResponseCode>"
                  "<m:DescriptiveLinkKey>0</m:DescriptiveLinkKey><m:Folders /></m:GetFolderResponseMessage>";
      continue;
    }
    const std::string name = id.attribute("Id").value();
    const folder_info* f = find_folder(name);
    if (local_name(id) != "DistinguishedFolderId" || f == nullptr) {
      return schema_fault("GetFolder", "The '" + std::string("Id") + "' attribute is invalid - The value '" + name +
                                           "' is invalid according to its datatype '" + ns_types +
                                           ":DistinguishedFolderIdNameType' - The Enumeration constraint failed.");
    }
    messages += "<m:GetFolderResponseMessage ResponseClass=\"Success\"><m:ResponseCode>NoError</m:ResponseCode><m:Folders>";
    messages += f->id == "calendar" ? "<t:CalendarFolder>" : f->id == "contacts" ? "<t:ContactsFolder>"
                                                           : f->id == "tasks"    ? "<t:TasksFolder>"
                                                                                 : "<t:Folder>";
    messages += "<t:FolderId Id=\"" + folder_id(owner, f->id) + "\" ChangeKey=\"AQAAABYAAAB8Jdcz2ZFRTJ1QfIyd+B0XAAAAAAEB\" />";
    messages += "<t:DisplayName>" + xml_escape(f->display_name) + "</t:DisplayName>";
    const bool generated = std::find(item_folders.begin(), item_folders.end(), f->id) != item_folders.end();
    const unsigned total = generated ? box.count(f->id) : static_cast<unsigned>(f->total);
    messages += "<t:TotalCount>" + std::to_string(total) + "</t:TotalCount>";
    messages += "<t:ChildFolderCount>" + std::to_string(f->children) + "</t:ChildFolderCount>";
    if (f->id != "calendar" && f->id != "contacts" && f->id != "tasks") {
      const unsigned unread = generated ? std::min(total, 3u) : static_cast<unsigned>(f->unread);
      messages += "<t:UnreadCount>" + std::to_string(unread) + "</t:UnreadCount>";
    }
    messages += f->id == "calendar" ? "</t:CalendarFolder>" : f->id == "contacts" ? "</t:ContactsFolder>"
                                                            : f->id == "tasks"    ? "</t:TasksFolder>"
                                                                                  : "</t:Folder>";
    messages += "</m:Folders></m:GetFolderResponseMessage>";
  }
  const std::string body = std::string("<GetFolderResponse xmlns:m=\"") + ns_messages + "\" xmlns:t=\"" + ns_types +
                           "\" xmlns=\"" + ns_messages + "\"><m:ResponseMessages>" + messages +
                           "</m:ResponseMessages></GetFolderResponse>";
  return {200, envelope(v, body), "GetFolder"};
}


std::string message_summary(const item_meta& m) {
  return "<t:ItemId Id=\"" + m.id + "\" ChangeKey=\"CQAAABYAAAB8Jdcz2ZFRTJ1QfIyd+B0XAAAAAAEC\" /><t:Subject>" +
         xml_escape(m.subject) + "</t:Subject><t:Size>" + std::to_string(std::min<std::uint64_t>(m.size, 2147483647)) +
         "</t:Size><t:DateTimeReceived>" + m.received + "</t:DateTimeReceived>";
}

/// FindItem with IndexedPageItemView: the paging attributes exchangelib and the migration service key on.
ews_result find_item(const pugi::xml_node& op, const mailbox& box, const version_profile& v) {
  const folder_info* f = requested_folder(child_local(op, "ParentFolderIds"));
  if (f == nullptr || !child_local(op, "ItemShape")) {
    return schema_fault("FindItem", "FindItem needs ItemShape and a ParentFolderIds/DistinguishedFolderId of the "
                                    "Exchange 2007 schema.");
  }
  const unsigned total = box.count(f->id);
  unsigned offset = 0, max_entries = total;
  bool from_end = false;
  if (const pugi::xml_node view = child_local(op, "IndexedPageItemView")) {
    const long long requested_max = view.attribute("MaxEntriesReturned").as_llong(-1);
    const long long requested_offset = view.attribute("Offset").as_llong(-1);
    const std::string base = view.attribute("BasePoint").as_string("Beginning");
    if (requested_offset < 0 || (base != "Beginning" && base != "End") ||
        (view.attribute("MaxEntriesReturned") && requested_max < 1)) {
      return schema_fault("FindItem", "The IndexedPageItemView element is invalid.");
    }
    offset = static_cast<unsigned>(std::min<long long>(requested_offset, total));
    if (view.attribute("MaxEntriesReturned")) max_entries = static_cast<unsigned>(std::min<long long>(requested_max, total));
    from_end = base == "End";
  }
  const unsigned count = std::min(max_entries, total - offset);
  std::string items;
  for (unsigned k = 0; k < count; ++k) {
    const unsigned index = from_end ? total - offset - count + k : offset + k;
    items += "<t:Message>" + message_summary(box.item(f->id, index)) + "</t:Message>";
  }
  const bool last = offset + count >= total;
  const std::string body = std::string("<FindItemResponse xmlns:m=\"") + ns_messages + "\" xmlns:t=\"" + ns_types +
                           "\" xmlns=\"" + ns_messages +
                           "\"><m:ResponseMessages><m:FindItemResponseMessage ResponseClass=\"Success\">"
                           "<m:ResponseCode>NoError</m:ResponseCode><m:RootFolder IndexedPagingOffset=\"" +
                           std::to_string(offset + count) + "\" TotalItemsInView=\"" + std::to_string(total) +
                           "\" IncludesLastItemInRange=\"" + (last ? "true" : "false") + "\"><t:Items>" + items +
                           "</t:Items></m:RootFolder></m:FindItemResponseMessage></m:ResponseMessages>"
                           "</FindItemResponse>";
  return {200, envelope(v, body), "FindItem"};
}

/// GetItem; with MimeContent requested, each item's MIME is streamed as base64 while the answer is sent.
ews_result get_item(const pugi::xml_node& op, std::shared_ptr<const mailbox> box, const version_profile& v) {
  const pugi::xml_node shape = child_local(op, "ItemShape");
  const pugi::xml_node ids = child_local(op, "ItemIds");
  if (!shape || !ids) return schema_fault("GetItem", "GetItem needs ItemShape and ItemIds.");
  bool want_mime = std::string(child_local(shape, "IncludeMimeContent").text().get()) == "true";
  for (const auto& path : child_local(shape, "AdditionalProperties").children()) {
    if (std::string(path.attribute("FieldURI").value()) == "item:MimeContent") want_mime = true;
  }
  auto stream = std::make_shared<streamed_body>(box);
  const std::string head = envelope(v, std::string("<GetItemResponse xmlns:m=\"") + ns_messages + "\" xmlns:t=\"" +
                                           ns_types + "\" xmlns=\"" + ns_messages + "\"><m:ResponseMessages>");
  // envelope() closes Body and Envelope; split it around the messages.
  const std::string tail_marker = "</soap:Body>";
  const auto cut = head.rfind(tail_marker);
  stream->text(head.substr(0, cut));
  for (const auto& id : ids.children()) {
    if (id.type() != pugi::node_element) continue;
    const auto item = box->find(id.attribute("Id").value());
    if (!item) {
      const bool malformed = !base64_decode(id.attribute("Id").value());
      stream->text(std::string("<m:GetItemResponseMessage ResponseClass=\"Error\"><m:MessageText>") +
                   (malformed ? "Id is malformed." : "The specified object was not found in the store.") +
                   "</m:MessageText><m:ResponseCode>" + (malformed ? "ErrorInvalidIdMalformed" : "ErrorItemNotFound") +
                   "</m:ResponseCode><m:DescriptiveLinkKey>0</m:DescriptiveLinkKey><m:Items /></m:GetItemResponseMessage>");
      continue;
    }
    stream->text("<m:GetItemResponseMessage ResponseClass=\"Success\"><m:ResponseCode>NoError</m:ResponseCode><m:Items>"
                 "<t:Message>");
    if (want_mime) {
      stream->text("<t:MimeContent CharacterSet=\"UTF-8\">");
      stream->mime_base64(*item);
      stream->text("</t:MimeContent>");
    }
    stream->text(message_summary(*item) + "</t:Message></m:Items></m:GetItemResponseMessage>");
  }
  stream->text("</m:ResponseMessages></GetItemResponse>" + head.substr(cut));
  return {200, "", "GetItem", std::move(stream)};
}

}  // namespace

ews_result answer_ews(std::string_view request_body, const user& owner, const version_profile& version,
                      const mailbox_spec& mailboxes) {
  pugi::xml_document doc;
  const pugi::xml_parse_result parsed = doc.load_buffer(request_body.data(), request_body.size());
  if (!parsed) {
    return fault("", "ErrorSchemaValidation",
                 std::string("The request failed schema validation: ") + parsed.description() + " at offset " +
                     std::to_string(parsed.offset) + ".");
  }
  const pugi::xml_node env = doc.document_element();
  if (local_name(env) != "Envelope") {
    return schema_fault("", "The root element must be a SOAP 1.1 Envelope.");
  }
  const pugi::xml_node body = child_local(env, "Body");
  pugi::xml_node op;
  for (const auto& child : body.children()) {
    if (child.type() == pugi::node_element) {
      op = child;
      break;
    }
  }
  if (!op) return schema_fault("", "The SOAP Body holds no operation.");
  const std::string operation(local_name(op));

  // RequestServerVersion: optional against 2007; only the two 2007 schema values exist.
  if (const pugi::xml_node rsv = descendant_local(child_local(env, "Header"), "RequestServerVersion")) {
    const std::string requested = rsv.attribute("Version").value();
    if (requested != "Exchange2007" && requested != "Exchange2007_SP1") {
      return fault(operation, "ErrorInvalidServerVersion", "The specified server version is invalid.");
    }
  }
  auto box = std::make_shared<const mailbox>(owner, mailboxes);
  if (operation == "GetFolder") return get_folder(op, *box, version);
  if (operation == "FindItem") return find_item(op, *box, version);
  if (operation == "GetItem") return get_item(op, std::move(box), version);
  return schema_fault(operation, "The element '" + operation + "' in namespace '" + ns_messages +
                                     "' is not supported by this server.");
}

}  // namespace exbridge::fake_exchange
