// SyncFolderHierarchy and SyncFolderItems, with opaque sync states.
//
// The synthetic mailbox never changes, so a sync state only needs to say how far a client has got: the
// folder it syncs and the position of the next item. It is base64 of that record plus a keyed SHA-256 tag
// (keyed by the mailbox seed and owner), so that a state from another mailbox, another folder or another
// operation -- or one altered on the way -- is refused with ErrorInvalidSyncStateData, as Exchange refuses
// foreign or corrupt states (the client must then start over without a state).
#include <cctype>
#include <charconv>
#include <cstdint>
#include <set>

#include "common/base64.hpp"
#include "common/sha256.hpp"
#include "common/xml.hpp"
#include "fake_exchange/ews_internal.hpp"

namespace exbridge::fake_exchange {
namespace {

constexpr std::string_view state_magic = "EXSYNC1";
constexpr std::size_t tag_size = 16;  // hex characters of the SHA-256 tag

std::string state_tag(const mailbox& box, std::string_view payload) {
  sha256 h;
  const std::string key = "fake-exchange sync state\n" + std::to_string(box.spec().seed) + "\n" + box.owner().email + "\n";
  h.update(key);
  h.update(payload);
  return h.hex_digest().substr(0, tag_size);
}

/// kind: 'H' (hierarchy) or 'I' (items); `folder` the folder synced; `position` the next item's index.
std::string make_sync_state(const mailbox& box, char kind, std::string_view folder, unsigned position) {
  std::string payload(state_magic);
  payload += kind;
  payload += static_cast<char>(folder.size());
  payload += folder;
  for (int b = 0; b < 4; ++b) payload += static_cast<char>((position >> (8 * b)) & 0xff);
  return base64_encode(payload + state_tag(box, payload));
}

/// The position a state names, or nullopt when it is malformed, altered or not this mailbox's state for
/// this folder and operation.
std::optional<unsigned> read_sync_state(const mailbox& box, std::string_view state, char kind, std::string_view folder) {
  const auto raw = base64_decode(state);
  const std::size_t fixed = state_magic.size() + 2 + 4 + tag_size;
  if (!raw || raw->size() < fixed) return std::nullopt;
  const std::string_view payload(raw->data(), raw->size() - tag_size);
  if (state_tag(box, payload) != std::string_view(*raw).substr(payload.size())) return std::nullopt;
  if (payload.substr(0, state_magic.size()) != state_magic || payload[state_magic.size()] != kind) return std::nullopt;
  const auto folder_size = static_cast<unsigned char>(payload[state_magic.size() + 1]);
  if (payload.size() != state_magic.size() + 2 + folder_size + 4) return std::nullopt;
  if (payload.substr(state_magic.size() + 2, folder_size) != folder) return std::nullopt;
  unsigned position = 0;
  for (int b = 3; b >= 0; --b) {
    position = position << 8 | static_cast<unsigned char>(payload[payload.size() - 4 + static_cast<unsigned>(b)]);
  }
  return position;
}

/// The folder a SyncFolderId names (its single FolderId or DistinguishedFolderId child).
folder_lookup sync_folder(const pugi::xml_node& sync_folder_id, const user& owner) {
  for (const auto& id : sync_folder_id.children()) {
    if (id.type() == pugi::node_element) return lookup_folder(id, owner);
  }
  folder_lookup none;
  none.schema_error = "The element 'SyncFolderId' has incomplete content.";
  return none;
}

}  // namespace

/// SyncFolderHierarchy: from no state, a Create for every folder below the synced folder (the IPM subtree,
/// msgfolderroot, when SyncFolderId is absent); from a valid state, no changes (the tree never changes).
ews_result sync_folder_hierarchy(const pugi::xml_node& op, const ews_context& c) {
  const pugi::xml_node shape = child_local(op, "FolderShape");
  if (!shape) {
    return schema_fault("SyncFolderHierarchy", "The element 'SyncFolderHierarchy' has incomplete content. List of "
                                               "possible elements expected: 'FolderShape' in namespace '" +
                                                   std::string(ns_messages) + "'.");
  }
  const folder_info* base = distinguished_folder("msgfolderroot");
  if (const pugi::xml_node id = child_local(op, "SyncFolderId")) {
    const folder_lookup found = sync_folder(id, c.box.owner());
    if (!found.schema_error.empty()) return schema_fault("SyncFolderHierarchy", found.schema_error);
    if (found.folder == nullptr) {
      return response("SyncFolderHierarchy",
                      error_message("SyncFolderHierarchy", "Error", found.code, found.text,
                                    "<m:SyncState /><m:IncludesLastFolderInRange>true</m:IncludesLastFolderInRange>"),
                      c.version);
    }
    base = found.folder;
  }
  const auto below = folders_below(*base, true);
  const std::string state = child_local(op, "SyncState").text().get();
  std::string changes;
  if (!state.empty()) {
    if (!read_sync_state(c.box, state, 'H', base->key)) {
      // Exchange's text for SyncFolderHierarchy says "corrupted" (SyncFolderItems' says "corrupt").
      return response("SyncFolderHierarchy",
                      error_message("SyncFolderHierarchy", "Error", "ErrorInvalidSyncStateData",
                                    "Synchronization state data is corrupted or otherwise invalid.",
                                    "<m:SyncState /><m:IncludesLastFolderInRange>true</m:IncludesLastFolderInRange>"),
                      c.version);
    }
  } else {
    const folder_shape wanted = parse_folder_shape(shape);
    for (const folder_info* f : below) changes += "<t:Create>" + folder_xml(*f, c.box, wanted) + "</t:Create>";
  }
  const std::string content = "<m:SyncState>" + make_sync_state(c.box, 'H', base->key, static_cast<unsigned>(below.size())) +
                              "</m:SyncState><m:IncludesLastFolderInRange>true</m:IncludesLastFolderInRange>" +
                              (changes.empty() ? "<m:Changes />" : "<m:Changes>" + changes + "</m:Changes>");
  return response("SyncFolderHierarchy", success_message("SyncFolderHierarchy", content), c.version);
}

/// SyncFolderItems: Create changes in item order, at most MaxChangesReturned (1-512) per call; the state
/// returned names the next item, so repeated calls deliver every item exactly once.
ews_result sync_folder_items(const pugi::xml_node& op, const ews_context& c) {
  const pugi::xml_node shape = child_local(op, "ItemShape");
  const pugi::xml_node folder_node = child_local(op, "SyncFolderId");
  const pugi::xml_node max_node = child_local(op, "MaxChangesReturned");
  if (!shape || !folder_node || !max_node) {
    return schema_fault("SyncFolderItems", "The element 'SyncFolderItems' has incomplete content. List of possible "
                                           "elements expected: 'ItemShape, SyncFolderId, MaxChangesReturned' in "
                                           "namespace '" + std::string(ns_messages) + "'.");
  }
  // MaxSyncChangesReturnedType is xs:int restricted to 1..512 in the 2007 schema: anything else is a
  // schema violation of the whole request (HTTP 500 fault), not a per-folder error.
  const std::string max_text = max_node.text().get();
  std::string_view digits = max_text;
  while (!digits.empty() && std::isspace(static_cast<unsigned char>(digits.front()))) digits.remove_prefix(1);
  while (!digits.empty() && std::isspace(static_cast<unsigned char>(digits.back()))) digits.remove_suffix(1);
  if (!digits.empty() && digits.front() == '+') digits.remove_prefix(1);
  long long max_changes = 0;
  const auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), max_changes);
  const std::string element = std::string("The '") + ns_messages + ":MaxChangesReturned' element is invalid - The value '" +
                              max_text + "' is invalid according to its datatype '";
  if (digits.empty() || error != std::errc() || end != digits.data() + digits.size()) {
    return schema_fault("SyncFolderItems", element + "http://www.w3.org/2001/XMLSchema:int' - The string '" + max_text +
                                               "' is not a valid Int32 value.");
  }
  if (max_changes < 1 || max_changes > 512) {
    return schema_fault("SyncFolderItems", element + ns_types + ":MaxSyncChangesReturnedType' - The " +
                                               (max_changes > 512 ? "MaxInclusive" : "MinInclusive") +
                                               " constraint failed.");
  }
  const std::string trailer_on_error = "<m:SyncState /><m:IncludesLastItemInRange>true</m:IncludesLastItemInRange>";
  const folder_lookup found = sync_folder(folder_node, c.box.owner());
  if (!found.schema_error.empty()) return schema_fault("SyncFolderItems", found.schema_error);
  if (found.folder == nullptr) {
    return response("SyncFolderItems",
                    error_message("SyncFolderItems", "Error", found.code, found.text, trailer_on_error), c.version);
  }
  const std::string_view folder = found.folder->key;
  const std::string state = child_local(op, "SyncState").text().get();
  unsigned position = 0;
  const unsigned total = c.box.count(folder);
  if (!state.empty()) {
    const auto read = read_sync_state(c.box, state, 'I', folder);
    if (!read || *read > total) {
      return response("SyncFolderItems",
                      error_message("SyncFolderItems", "Error", "ErrorInvalidSyncStateData",
                                    "Synchronization state data is corrupt or otherwise invalid.", trailer_on_error),
                      c.version);
    }
    position = *read;
  }
  std::set<std::string, std::less<>> ignored;
  for (const auto& id : child_local(op, "Ignore").children()) {
    if (id.type() == pugi::node_element) ignored.insert(id.attribute("Id").value());
  }
  // The ItemShape chooses each Create's properties, as in FindItem (no Body, Attachments or recipients).
  const item_shape wanted = parse_item_shape(shape);
  std::string changes;
  unsigned returned = 0;
  for (; position < total && returned < static_cast<unsigned>(max_changes); ++position) {
    const item_meta item = c.box.item(folder, position);
    if (ignored.count(item.id) != 0) continue;
    const item_properties p = message_properties(item, c.box, wanted, true);
    changes += "<t:Create><t:Message>" + p.before_body + p.after_body + "</t:Message></t:Create>";
    ++returned;
  }
  const std::string content = "<m:SyncState>" + make_sync_state(c.box, 'I', folder, position) +
                              "</m:SyncState><m:IncludesLastItemInRange>" + (position >= total ? "true" : "false") +
                              "</m:IncludesLastItemInRange>" +
                              (changes.empty() ? "<m:Changes />" : "<m:Changes>" + changes + "</m:Changes>");
  return response("SyncFolderItems", success_message("SyncFolderItems", content), c.version);
}

}  // namespace exbridge::fake_exchange
