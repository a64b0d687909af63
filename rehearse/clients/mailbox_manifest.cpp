// Reading fake-exchange's manifest (see mailbox_manifest.hpp).
#include "rehearse/clients/mailbox_manifest.hpp"

#include <boost/algorithm/string/predicate.hpp>
#include <boost/json.hpp>

#include <fstream>
#include <sstream>

#include "common/errors.hpp"

namespace exbridge::rehearse {

std::vector<expected_folder> load_manifest(const std::string& file, const std::string& email) {
  std::ifstream in(file);
  if (!in) {
    throw config_error("manifest '" + file + "' cannot be read; let the exchange process write it with "
                       "'--manifest ${run.dir}/manifest.json'");
  }
  std::stringstream text;
  text << in.rdbuf();
  boost::system::error_code ec;
  const boost::json::value doc = boost::json::parse(text.str(), ec);
  if (ec || !doc.is_object() || !doc.as_object().contains("users")) {
    throw config_error("manifest '" + file + "' is not a fake-exchange manifest (" + ec.message() + ")");
  }
  try {
    for (const auto& u : doc.at("users").as_array()) {
      if (!boost::algorithm::iequals(std::string(u.at("email").as_string()), email)) continue;
      std::vector<expected_folder> out;
      for (const auto& f : u.at("folders").as_array()) {
        expected_folder folder;
        folder.id = f.at("id").as_string();
        if (const auto* name = f.as_object().if_contains("name")) folder.name = name->as_string();
        for (const auto& it : f.at("items").as_array()) {
          folder.items.push_back({std::string(it.at("id").as_string()), it.at("size").to_number<std::uint64_t>(),
                                  std::string(it.at("sha256").as_string())});
        }
        out.push_back(std::move(folder));
      }
      return out;
    }
  } catch (const std::exception& e) {
    throw config_error("manifest '" + file + "' is not a fake-exchange manifest (" + e.what() + ")");
  }
  throw config_error("manifest '" + file + "' has no mailbox for " + email);
}

std::uint64_t item_count(const std::vector<expected_folder>& folders) {
  std::uint64_t n = 0;
  for (const auto& f : folders) n += f.items.size();
  return n;
}

std::uint64_t byte_count(const std::vector<expected_folder>& folders) {
  std::uint64_t n = 0;
  for (const auto& f : folders) {
    for (const auto& i : f.items) n += i.size;
  }
  return n;
}

}  // namespace exbridge::rehearse
