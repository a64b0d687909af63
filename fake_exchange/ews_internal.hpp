// What the EWS operations share (ews*.cpp only): the SOAP envelope with ServerVersionInfo, faults,
// response-message framing, the mailbox's folder tree and the item summary, so that every operation
// answers in the same shape and no operation builds these pieces on its own.
#pragma once

#include <pugixml.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fake_exchange/ews.hpp"

namespace exbridge::fake_exchange {

inline constexpr const char* ns_soap = "http://schemas.xmlsoap.org/soap/envelope/";
inline constexpr const char* ns_messages = "http://schemas.microsoft.com/exchange/services/2006/messages";
inline constexpr const char* ns_types = "http://schemas.microsoft.com/exchange/services/2006/types";
inline constexpr const char* ns_errors = "http://schemas.microsoft.com/exchange/services/2006/errors";

/// What an operation may look at besides its request element.
struct ews_context {
  const mailbox& box;
  const organisation& org;
  const version_profile& version;
};

// --- SOAP framing (ews.cpp) ---

/// The SOAP envelope with the ServerVersionInfo header around `body`.
std::string envelope(const version_profile& v, const std::string& body);
/// A request-level failure: SOAP fault, HTTP 500 (ASMX).
ews_result fault(std::string operation, std::string_view code, std::string_view message);
/// "The request failed schema validation: <detail>", as a 2007 server answers what its schema rejects.
ews_result schema_fault(std::string operation, const std::string& detail);
/// <OpResponse><m:ResponseMessages>messages</m:ResponseMessages></OpResponse> in the envelope, HTTP 200.
ews_result response(const std::string& operation, const std::string& messages, const version_profile& v);
/// <m:OpResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode>content</...>
std::string success_message(std::string_view operation, std::string_view content);
/// A per-item error (or warning): MessageText, ResponseCode, DescriptiveLinkKey 0, then `content`.
std::string error_message(std::string_view operation, std::string_view response_class, std::string_view code,
                          std::string_view text, std::string_view content = "");
/// <t:ItemId Id=... ChangeKey=... /> of a generated message.
std::string item_id_xml(const item_meta& m);
/// ItemId, Subject, DateTimeReceived, Size, HasAttachments and IsRead of a generated message, in the schema's
/// ItemType order; with `attachments_from` (GetItem) also the Attachments list.
std::string message_summary(const item_meta& m, const mailbox* attachments_from = nullptr);
/// ASCII lower case (addresses and names compare case-insensitively in the directory and in ids).
std::string ascii_lower(std::string_view s);
/// "true"/"false" of an xs:boolean attribute or element text (1/0 allowed).
bool xs_boolean(std::string_view text);

// --- The folder tree (ews_folders.cpp) ---

struct folder_info {
  std::string_view key;           ///< DistinguishedFolderIdNameType value, or a name for non-distinguished folders
  std::string_view parent;        ///< key of the parent folder; "" for root and the public folder root
  std::string_view display_name;
  std::string_view folder_class;  ///< "" when the folder has none (root, Top of Information Store, ...)
  std::string_view element;       ///< Folder, CalendarFolder, ContactsFolder, TasksFolder or SearchFolder
  bool distinguished;
};

/// A folder by distinguished id (nullptr for a name the 2007 schema does not know).
const folder_info* distinguished_folder(std::string_view id);

/// Which folder properties a FolderShape asks for.
struct folder_shape {
  bool parent = false, folder_class = false, display_name = false, counts = false;
};
folder_shape parse_folder_shape(const pugi::xml_node& shape);
/// One folder as <t:Folder>/<t:CalendarFolder>/... with the properties `shape` asks for.
std::string folder_xml(const folder_info& f, const mailbox& box, const folder_shape& shape);
/// The folders below `f` in depth-first order: only its children (`deep` false), or its whole subtree.
std::vector<const folder_info*> folders_below(const folder_info& f, bool deep);

/// What a FolderId or DistinguishedFolderId element names: a folder, or the per-item error code and text.
struct folder_lookup {
  const folder_info* folder = nullptr;
  std::string_view code, text;      ///< set when folder is nullptr and the id is a FolderId
  std::string schema_error;         ///< set when the element itself fails schema validation
};
folder_lookup lookup_folder(const pugi::xml_node& id, const user& owner);
/// The stable FolderId of `key` in `owner`'s mailbox.
std::string folder_id(const user& owner, std::string_view key);

// --- The operations, one function each ---

ews_result get_folder(const pugi::xml_node& op, const ews_context& c);
ews_result find_folder(const pugi::xml_node& op, const ews_context& c);
ews_result sync_folder_hierarchy(const pugi::xml_node& op, const ews_context& c);
ews_result sync_folder_items(const pugi::xml_node& op, const ews_context& c);
ews_result convert_id(const pugi::xml_node& op, const ews_context& c);
ews_result resolve_names(const pugi::xml_node& op, const ews_context& c);
ews_result expand_dl(const pugi::xml_node& op, const ews_context& c);

}  // namespace exbridge::fake_exchange
