// The mailbox's folder tree (see folder_tree.hpp).
#include "fake_exchange/folder_tree.hpp"

#include <algorithm>
#include <array>

namespace exbridge::fake_exchange {
namespace {

// Every distinguished folder id the Exchange 2007 schema knows, plus the non-IPM folders a 2007 mailbox
// has under its root (so that root's ChildFolderCount matches what FindFolder returns). Ids added in
// 2010+ (archive*, recoverableitems*, conversationhistory, ...) fail schema validation, as on a real 2007
// server. The public folder root lives in the public store, outside every mailbox's tree.
// Every folder's TotalCount is what FindItem lists in it: the mailbox generator's count (Inbox, Sent Items and
// Deleted Items hold items; the other folders are empty). A real store counts the same items FindItem returns,
// and clients check one against the other (exchangelib's QuerySet.count(), migration tools' item counts).
constexpr std::array<folder_info, 24> folders{{
    {"root", "", "", "", "Folder", true},
    {"msgfolderroot", "root", "Top of Information Store", "", "Folder", true},
    {"calendar", "msgfolderroot", "Calendar", "IPF.Appointment", "CalendarFolder", true},
    {"contacts", "msgfolderroot", "Contacts", "IPF.Contact", "ContactsFolder", true},
    {"deleteditems", "msgfolderroot", "Deleted Items", "IPF.Note", "Folder", true},
    {"drafts", "msgfolderroot", "Drafts", "IPF.Note", "Folder", true},
    {"inbox", "msgfolderroot", "Inbox", "IPF.Note", "Folder", true},
    {"journal", "msgfolderroot", "Journal", "IPF.Journal", "Folder", true},
    {"junkemail", "msgfolderroot", "Junk E-mail", "IPF.Note", "Folder", true},
    {"notes", "msgfolderroot", "Notes", "IPF.StickyNote", "Folder", true},
    {"outbox", "msgfolderroot", "Outbox", "IPF.Note", "Folder", true},
    {"sentitems", "msgfolderroot", "Sent Items", "IPF.Note", "Folder", true},
    {"tasks", "msgfolderroot", "Tasks", "IPF.Task", "TasksFolder", true},
    {"searchfolders", "root", "Search Folders", "", "Folder", true},
    {"voicemail", "searchfolders", "Voice Mail", "IPF.Note.Microsoft.Voicemail", "SearchFolder", true},
    {"publicfoldersroot", "", "IPM_SUBTREE", "", "Folder", true},
    {"commonviews", "root", "Common Views", "", "Folder", false},
    {"deferredaction", "root", "Deferred Action", "", "Folder", false},
    {"freebusydata", "root", "Freebusy Data", "", "Folder", false},
    {"reminders", "root", "Reminders", "Outlook.Reminder", "SearchFolder", false},
    {"schedule", "root", "Schedule", "", "Folder", false},
    {"shortcuts", "root", "Shortcuts", "", "Folder", false},
    {"spoolerqueue", "root", "Spooler Queue", "", "Folder", false},
    {"views", "root", "Views", "", "Folder", false},
}};

void collect_below(const folder_info& f, bool deep, std::vector<const folder_info*>& out) {
  for (const auto& c : folders) {
    if (c.parent != f.key) continue;
    out.push_back(&c);
    if (deep) collect_below(c, true, out);
  }
}

}  // namespace

std::span<const folder_info> all_folders() { return folders; }

const folder_info* distinguished_folder(std::string_view id) {
  for (const auto& f : folders) {
    if (f.distinguished && f.key == id) return &f;
  }
  return nullptr;
}

const folder_info* folder_by_key(std::string_view key) {
  for (const auto& f : folders) {
    if (f.key == key) return &f;
  }
  return nullptr;
}

std::vector<const folder_info*> folders_below(const folder_info& f, bool deep) {
  std::vector<const folder_info*> out;
  collect_below(f, deep, out);
  return out;
}

unsigned child_count(const folder_info& f) {
  return static_cast<unsigned>(
      std::count_if(folders.begin(), folders.end(), [&](const folder_info& c) { return c.parent == f.key; }));
}

std::uint64_t folder_counter(const folder_info& f) { return static_cast<std::uint64_t>(&f - folders.data()) + 1; }

}  // namespace exbridge::fake_exchange
