// What the EWS operations share (ews*.cpp only): the SOAP envelope with ServerVersionInfo, faults,
// response-message framing, the mailbox's folder tree and the item summary, so that every operation
// answers in the same shape and no operation builds these pieces on its own.
#pragma once

#include <pugixml.hpp>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fake_exchange/ews.hpp"
#include "fake_exchange/folder_tree.hpp"

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
/// A FileAttachment as GetItem lists it, or with its Content as GetAttachment returns it.
std::string file_attachment_xml(const attachment_meta& a, bool with_content);
/// ASCII lower case (addresses and names compare case-insensitively in the directory and in ids).
std::string ascii_lower(std::string_view s);
/// "true"/"false" of an xs:boolean attribute or element text (1/0 allowed).
bool xs_boolean(std::string_view text);

// --- Folders (ews_folders.cpp; the tree is folder_tree.hpp) ---

/// Which folder properties a FolderShape asks for.
struct folder_shape {
  bool parent = false, folder_class = false, display_name = false, counts = false;
};
folder_shape parse_folder_shape(const pugi::xml_node& shape);
/// One folder as <t:Folder>/<t:CalendarFolder>/... with the properties `shape` asks for.
std::string folder_xml(const folder_info& f, const mailbox& box, const folder_shape& shape);

/// What a FolderId or DistinguishedFolderId element names: a folder, or the per-item error code and text.
struct folder_lookup {
  const folder_info* folder = nullptr;
  std::string_view code, text;      ///< set when folder is nullptr and the id is a FolderId
  std::string schema_error;         ///< set when the element itself fails schema validation
};
folder_lookup lookup_folder(const pugi::xml_node& id, const user& owner);
/// The stable FolderId of `key` in `owner`'s mailbox.
std::string folder_id(const user& owner, std::string_view key);

// --- Items: shapes, properties, restrictions and sorting (ews_items.cpp) ---

/// What an ItemShape asks for.
struct item_shape {
  enum base_shape { id_only, default_shape, all } base = id_only;
  std::vector<std::string> additional;  ///< AdditionalProperties FieldURIs (item:MimeContent goes to `mime`)
  bool mime = false;
  std::string body_type = "Best";  ///< Best, Text or HTML (Best is Text: every generated body is text/plain)
};
item_shape parse_item_shape(const pugi::xml_node& shape);

/// A message's properties that `shape` asks for, in the schema's order, split around Body (which GetItem
/// streams from the MIME): ItemId through Sensitivity, then Body if `body`, then the rest. FindItem
/// (`find_item`) never returns Body, Attachments or recipients, and mailboxes by name only.
struct item_properties {
  std::string before_body, after_body;
  bool body = false, body_html = false;
};
item_properties message_properties(const item_meta& m, const mailbox& box, const item_shape& shape, bool find_item);

/// Milliseconds since 1970 (UTC) of an xs:dateTime; nullopt when it is not one.
std::optional<long long> parse_xs_datetime(std::string_view text);

/// Why a Restriction or SortOrder cannot run: a per-message error (code, text, the offending path) or,
/// with `schema`, a request the 2007 schema rejects (text is the detail).
struct query_error {
  bool schema = false;
  std::string code, text, path;
};

struct search_expression;
struct queryable_field;

/// FindItem's Restriction and SortOrder, compiled once and evaluated per item from item_meta.
class item_query {
 public:
  item_query();
  ~item_query();
  item_query(item_query&&) noexcept;
  item_query& operator=(item_query&&) noexcept;
  /// Either node may be empty (no restriction / folder order).
  std::optional<query_error> parse(const pugi::xml_node& restriction, const pugi::xml_node& sort_order);
  bool matches(const item_meta& m, const mailbox& box) const;
  /// The indices of the folder's items that match, in the requested order.
  std::vector<unsigned> select(const mailbox& box, std::string_view folder) const;

 private:
  struct sort_key {
    const queryable_field* field;
    bool descending;
  };
  std::unique_ptr<search_expression> restriction_;
  std::vector<sort_key> sort_;
};

// --- The operations, one function each ---

ews_result get_folder(const pugi::xml_node& op, const ews_context& c);
ews_result find_folder(const pugi::xml_node& op, const ews_context& c);
ews_result sync_folder_hierarchy(const pugi::xml_node& op, const ews_context& c);
ews_result sync_folder_items(const pugi::xml_node& op, const ews_context& c);
ews_result convert_id(const pugi::xml_node& op, const ews_context& c);
ews_result resolve_names(const pugi::xml_node& op, const ews_context& c);
ews_result expand_dl(const pugi::xml_node& op, const ews_context& c);

}  // namespace exbridge::fake_exchange
