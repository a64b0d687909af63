// Manifest generation.
#include "fake_exchange/manifest.hpp"

#include <boost/json.hpp>

#include "common/lab_pki.hpp"
#include "fake_exchange/folder_tree.hpp"

namespace exbridge::fake_exchange {

boost::json::value make_manifest(const organisation& org, const mailbox_spec& spec) {
  boost::json::array users;
  for (const auto& u : org.users) {
    const mailbox box(u, spec);
    boost::json::array folders;
    for (const auto folder : item_folders) {
      boost::json::array items;
      for (unsigned i = 0; i < box.count(folder); ++i) {
        const auto item = box.item(folder, i);
        items.push_back(boost::json::object{{"id", item.id}, {"size", item.size}, {"sha256", item_sha256(box, item)}});
      }
      // "name" is the folder's display name: an Outlook Anywhere client finds folders by walking the hierarchy.
      folders.push_back(boost::json::object{
          {"id", folder}, {"name", std::string(folder_by_key(folder)->display_name)}, {"items", std::move(items)}});
    }
    users.push_back(boost::json::object{{"email", u.email}, {"folders", std::move(folders)}});
  }
  return boost::json::object{{"seed", spec.seed}, {"users", std::move(users)}};
}

void write_manifest(const std::filesystem::path& file, const organisation& org, const mailbox_spec& spec) {
  write_file(file, boost::json::serialize(make_manifest(org, spec)) + "\n");
}

}  // namespace exbridge::fake_exchange
