// The mailbox's folder tree as Exchange 2007 lays it out -- one table that EWS (GetFolder, FindFolder,
// SyncFolderHierarchy) and the store behind Outlook Anywhere (RopLogon's special folders, hierarchy tables)
// both read, so that the two protocols can never disagree about a mailbox's folders.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace exbridge::fake_exchange {

struct folder_info {
  std::string_view key;           ///< DistinguishedFolderIdNameType value, or a name for non-distinguished folders
  std::string_view parent;        ///< key of the parent folder; "" for root and the public folder root
  std::string_view display_name;
  std::string_view folder_class;  ///< "" when the folder has none (root, Top of Information Store, ...)
  std::string_view element;       ///< Folder, CalendarFolder, ContactsFolder, TasksFolder or SearchFolder
  bool distinguished;
};

/// Every folder, parents before children.
std::span<const folder_info> all_folders();
/// A folder by distinguished id (nullptr for a name the 2007 schema does not know).
const folder_info* distinguished_folder(std::string_view id);
/// Any folder of the tree by key, distinguished or not (nullptr when there is none).
const folder_info* folder_by_key(std::string_view key);
/// The folders below `f` in depth-first order: only its children (`deep` false), or its whole subtree.
std::vector<const folder_info*> folders_below(const folder_info& f, bool deep);
unsigned child_count(const folder_info& f);
/// The folder's global counter in the store (its folder ID's low 48 bits): its place in the table, from 1.
std::uint64_t folder_counter(const folder_info& f);

}  // namespace exbridge::fake_exchange
