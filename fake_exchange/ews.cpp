// EWS implementation: SOAP envelope checks, RequestServerVersion, GetFolder on distinguished folders.
#include "fake_exchange/ews.hpp"

#include <pugixml.hpp>

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
    {"inbox", "Inbox", 20, 3, 0},
    {"calendar", "Calendar", 6, 0, 0},
    {"contacts", "Contacts", 4, 0, 0},
    {"deleteditems", "Deleted Items", 2, 0, 0},
    {"drafts", "Drafts", 1, 0, 0},
    {"journal", "Journal", 0, 0, 0},
    {"junkemail", "Junk E-mail", 0, 0, 0},
    {"notes", "Notes", 0, 0, 0},
    {"outbox", "Outbox", 0, 0, 0},
    {"sentitems", "Sent Items", 9, 0, 0},
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

/// A stable, opaque folder id: base64 of owner and folder, shaped like a 2007 store id.
std::string folder_id(const user& owner, std::string_view folder) {
  std::string raw = "\x00\x00\x00\x00";
  raw.append(1, static_cast<char>(owner.email.size()));
  raw += owner.email;
  raw += '\x01';
  raw += folder;
  return base64_encode(raw);
}

ews_result get_folder(const pugi::xml_node& op, const user& owner, const version_profile& v) {
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
    messages += "<t:TotalCount>" + std::to_string(f->total) + "</t:TotalCount>";
    messages += "<t:ChildFolderCount>" + std::to_string(f->children) + "</t:ChildFolderCount>";
    if (f->id != "calendar" && f->id != "contacts" && f->id != "tasks") {
      messages += "<t:UnreadCount>" + std::to_string(f->unread) + "</t:UnreadCount>";
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

}  // namespace

ews_result answer_ews(std::string_view request_body, const user& owner, const version_profile& version) {
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
  if (operation == "GetFolder") return get_folder(op, owner, version);
  return schema_fault(operation, "The element '" + operation + "' in namespace '" + ns_messages +
                                     "' is not supported by this server.");
}

}  // namespace exbridge::fake_exchange
