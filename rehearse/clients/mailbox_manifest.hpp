// fake-exchange's manifest as a migration client reads it: for one mailbox, each folder (its EWS distinguished id
// and display name) and each item's id, MIME size and SHA-256 -- what every copied item is checked against.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace exbridge::rehearse {

struct expected_item {
  std::string id;
  std::uint64_t size = 0;
  std::string sha256;
};

struct expected_folder {
  std::string id;    ///< "inbox"
  std::string name;  ///< "Inbox" (empty in a manifest written before names were recorded)
  std::vector<expected_item> items;
};

/// The folders of `email`'s mailbox in `file`. Throws config_error when the file cannot be used.
std::vector<expected_folder> load_manifest(const std::string& file, const std::string& email);

/// Items and bytes of a whole mailbox.
std::uint64_t item_count(const std::vector<expected_folder>& folders);
std::uint64_t byte_count(const std::vector<expected_folder>& folders);

}  // namespace exbridge::rehearse
