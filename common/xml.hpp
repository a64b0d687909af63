// Small XML helpers over pugixml. Exchange documents use whatever namespace prefixes the sender likes
// (m:, t:, s:, soap:, none), so lookups here go by *local* name.
#pragma once

#include <pugixml.hpp>

#include <cstddef>
#include <cstring>
#include <string>
#include <string_view>

namespace exbridge {

inline std::string xml_escape(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (const char c : in) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default: out += c;
    }
  }
  return out;
}

/// "m:GetFolder" -> "GetFolder".
inline std::string_view local_name(const pugi::xml_node& node) {
  const char* name = node.name();
  const char* colon = std::strchr(name, ':');
  return colon != nullptr ? colon + 1 : name;
}

/// The first child element with this local name (an empty node when none).
inline pugi::xml_node child_local(const pugi::xml_node& parent, std::string_view name) {
  for (const auto& child : parent.children()) {
    if (child.type() == pugi::node_element && local_name(child) == name) return child;
  }
  return {};
}

/// Whether any element lies deeper than `limit` levels below `root`, found without recursion (a hostile
/// document may nest millions of elements; the code that walks a DOM recursively must never see one).
inline bool deeper_than(const pugi::xml_node& root, std::size_t limit) {
  std::size_t depth = 0;
  pugi::xml_node n = root.first_child();
  if (n) depth = 1;
  while (n) {
    if (depth > limit) return true;
    if (n.first_child()) {
      n = n.first_child();
      ++depth;
      continue;
    }
    while (n && !n.next_sibling() && n != root) {
      n = n.parent();
      --depth;
    }
    if (!n || n == root) break;
    n = n.next_sibling();
  }
  return false;
}

/// The first descendant element (depth first) with this local name.
inline pugi::xml_node descendant_local(const pugi::xml_node& root, std::string_view name) {
  for (const auto& child : root.children()) {
    if (child.type() != pugi::node_element) continue;
    if (local_name(child) == name) return child;
    if (auto found = descendant_local(child, name)) return found;
  }
  return {};
}

/// Follows a path of local names from `root`: path_local(doc, {"Envelope", "Body"}).
inline pugi::xml_node path_local(pugi::xml_node node, std::initializer_list<std::string_view> path) {
  for (const auto name : path) {
    node = child_local(node, name);
    if (!node) break;
  }
  return node;
}

}  // namespace exbridge
