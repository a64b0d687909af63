// Folder lookups by EWS id and the folder operations GetFolder and FindFolder (the tree itself is
// folder_tree.cpp's) (Shallow or Deep; 2007 clients send FindFolder unpaged).
#include <algorithm>
#include <cstdint>

#include "common/xml.hpp"
#include "fake_exchange/ews_internal.hpp"

namespace exbridge::fake_exchange {
namespace {

// ChangeKeys never change: the synthetic mailbox is never modified.
constexpr std::string_view folder_change_key = "AQAAABYAAAB8Jdcz2ZFRTJ1QfIyd+B0XAAAAAAEB";

}  // namespace

std::string folder_id(const user& owner, std::string_view key) { return make_store_id(owner, 'F', key, 0); }

folder_lookup lookup_folder(const pugi::xml_node& id, const user& owner) {
  folder_lookup out;
  const std::string_view kind = local_name(id);
  const std::string value = id.attribute("Id").value();
  if (kind == "DistinguishedFolderId") {
    out.folder = distinguished_folder(value);
    if (out.folder == nullptr) {
      out.schema_error = "The 'Id' attribute is invalid - The value '" + value + "' is invalid according to its datatype '" +
                         ns_types + ":DistinguishedFolderIdNameType' - The Enumeration constraint failed.";
    }
    return out;
  }
  if (kind != "FolderId") {
    out.schema_error = "The element '" + std::string(kind) + "' is not a folder id of the Exchange 2007 schema.";
    return out;
  }
  const auto ref = parse_store_id(value);
  if (!ref) {
    out.code = "ErrorInvalidIdMalformed";
    out.text = "Id is malformed.";
    return out;
  }
  for (const auto& f : all_folders()) {
    if (ref->kind == 'F' && ref->email == owner.email && f.key == ref->folder) out.folder = &f;
  }
  if (out.folder == nullptr) {
    // A well-formed id of another mailbox, an item id, or a folder that does not exist.
    out.code = "ErrorItemNotFound";
    out.text = "The specified object was not found in the store.";
  }
  return out;
}

folder_shape parse_folder_shape(const pugi::xml_node& shape) {
  folder_shape s;
  const std::string base = child_local(shape, "BaseShape").text().get();
  if (base == "Default" || base == "AllProperties") s.display_name = s.counts = true;
  if (base == "AllProperties") s.parent = s.folder_class = true;
  for (const auto& path : child_local(shape, "AdditionalProperties").children()) {
    const std::string uri = path.attribute("FieldURI").value();
    if (uri == "folder:ParentFolderId") s.parent = true;
    if (uri == "folder:FolderClass") s.folder_class = true;
    if (uri == "folder:DisplayName") s.display_name = true;
    if (uri == "folder:TotalCount" || uri == "folder:ChildFolderCount" || uri == "folder:UnreadCount") s.counts = true;
  }
  return s;
}

std::string folder_xml(const folder_info& f, const mailbox& box, const folder_shape& shape) {
  const user& owner = box.owner();
  std::string out = "<t:" + std::string(f.element) + "><t:FolderId Id=\"" + folder_id(owner, f.key) +
                    "\" ChangeKey=\"" + std::string(folder_change_key) + "\" />";
  // BaseFolderType's sequence: FolderId, ParentFolderId, FolderClass, DisplayName, TotalCount, ChildFolderCount;
  // FolderType (and TasksFolderType, SearchFolderType) then adds UnreadCount.
  if (shape.parent && !f.parent.empty()) {
    out += "<t:ParentFolderId Id=\"" + folder_id(owner, f.parent) + "\" ChangeKey=\"AQAAAA==\" />";
  }
  if (shape.folder_class && !f.folder_class.empty()) {
    out += "<t:FolderClass>" + std::string(f.folder_class) + "</t:FolderClass>";
  }
  if (shape.display_name) out += "<t:DisplayName>" + xml_escape(f.display_name) + "</t:DisplayName>";
  if (shape.counts) {
    const unsigned total = box.count(f.key);
    out += "<t:TotalCount>" + std::to_string(total) + "</t:TotalCount>";
    out += "<t:ChildFolderCount>" + std::to_string(child_count(f)) + "</t:ChildFolderCount>";
    if (f.element != "CalendarFolder" && f.element != "ContactsFolder") {
      const unsigned unread = std::min(total, unread_items);
      out += "<t:UnreadCount>" + std::to_string(unread) + "</t:UnreadCount>";
    }
  }
  return out + "</t:" + std::string(f.element) + ">";
}

ews_result get_folder(const pugi::xml_node& op, const ews_context& c) {
  const pugi::xml_node ids = child_local(op, "FolderIds");
  const pugi::xml_node shape = child_local(op, "FolderShape");
  if (!ids || !shape) {
    return schema_fault("GetFolder", "The element 'GetFolder' has incomplete content. List of possible elements expected: "
                                     "'FolderShape, FolderIds' in namespace '" + std::string(ns_messages) + "'.");
  }
  const folder_shape wanted = parse_folder_shape(shape);
  std::string messages;
  for (const auto& id : ids.children()) {
    if (id.type() != pugi::node_element) continue;
    const folder_lookup found = lookup_folder(id, c.box.owner());
    if (!found.schema_error.empty()) return schema_fault("GetFolder", found.schema_error);
    if (found.folder == nullptr) {
      messages += error_message("GetFolder", "Error", found.code, found.text, "<m:Folders />");
      continue;
    }
    messages += success_message("GetFolder", "<m:Folders>" + folder_xml(*found.folder, c.box, wanted) + "</m:Folders>");
  }
  return response("GetFolder", messages, c.version);
}

/// FindFolder: one RootFolder per parent folder. 2007 clients (exchangelib, the Managed API against 2007)
/// send it unpaged; an IndexedPageFolderView is honoured all the same.
ews_result find_folder(const pugi::xml_node& op, const ews_context& c) {
  const std::string traversal = op.attribute("Traversal").value();
  const pugi::xml_node shape = child_local(op, "FolderShape");
  const pugi::xml_node parents = child_local(op, "ParentFolderIds");
  if (traversal != "Shallow" && traversal != "Deep" && traversal != "SoftDeleted") {
    return schema_fault("FindFolder", "The 'Traversal' attribute is invalid - The value '" + traversal +
                                          "' is invalid according to its datatype '" + ns_types +
                                          ":FolderQueryTraversalType' - The Enumeration constraint failed.");
  }
  if (!shape || !parents) {
    return schema_fault("FindFolder", "The element 'FindFolder' has incomplete content. List of possible elements "
                                      "expected: 'FolderShape, ParentFolderIds' in namespace '" +
                                          std::string(ns_messages) + "'.");
  }
  std::size_t offset = 0, max_entries = SIZE_MAX;
  const pugi::xml_node view = child_local(op, "IndexedPageFolderView");
  if (view) {
    const long long requested_offset = view.attribute("Offset").as_llong(-1);
    const long long requested_max = view.attribute("MaxEntriesReturned").as_llong(-1);
    if (requested_offset < 0 || (view.attribute("MaxEntriesReturned") && requested_max < 1)) {
      return schema_fault("FindFolder", "The IndexedPageFolderView element is invalid.");
    }
    offset = static_cast<std::size_t>(requested_offset);
    if (view.attribute("MaxEntriesReturned")) max_entries = static_cast<std::size_t>(requested_max);
  }
  const folder_shape wanted = parse_folder_shape(shape);
  std::string messages;
  for (const auto& id : parents.children()) {
    if (id.type() != pugi::node_element) continue;
    const folder_lookup found = lookup_folder(id, c.box.owner());
    if (!found.schema_error.empty()) return schema_fault("FindFolder", found.schema_error);
    if (found.folder == nullptr) {
      messages += error_message("FindFolder", "Error", found.code, found.text);
      continue;
    }
    // The synthetic mailbox has no soft-deleted folders.
    const auto below = traversal == "SoftDeleted" ? std::vector<const folder_info*>{}
                                                  : folders_below(*found.folder, traversal == "Deep");
    const std::size_t first = std::min(offset, below.size());
    const std::size_t count = std::min(max_entries, below.size() - first);
    std::string list;
    for (std::size_t k = first; k < first + count; ++k) list += folder_xml(*below[k], c.box, wanted);
    const bool last = first + count >= below.size();
    std::string root = "<m:RootFolder ";
    if (view) root += "IndexedPagingOffset=\"" + std::to_string(first + count) + "\" ";
    root += "TotalItemsInView=\"" + std::to_string(below.size()) + "\" IncludesLastItemInRange=\"" +
            (last ? "true" : "false") + "\">";
    root += list.empty() ? "<t:Folders />" : "<t:Folders>" + list + "</t:Folders>";
    messages += success_message("FindFolder", root + "</m:RootFolder>");
  }
  return response("FindFolder", messages, c.version);
}

}  // namespace exbridge::fake_exchange
