// ResolveNames and ExpandDL against the configured organisation (its users and distribution lists), as
// the Exchange 2007 directory answers them: one match is Success, several are a Warning with
// ErrorNameResolutionMultipleResults and every candidate, none is an Error with ErrorNameResolutionNoResults.
#include <algorithm>
#include <cctype>

#include "common/xml.hpp"
#include "fake_exchange/ews_internal.hpp"

namespace exbridge::fake_exchange {
namespace {

// Exchange returns at most 100 candidates from ResolveNames.
constexpr std::size_t max_resolutions = 100;

struct recipient {
  std::string name, email;
  bool is_list = false;
};

bool starts_with(const std::string& text, const std::string& prefix) { return text.rfind(prefix, 0) == 0; }

std::vector<recipient> directory(const organisation& org) {
  std::vector<recipient> out;
  for (const auto& u : org.users) out.push_back({u.display_name, u.email, false});
  for (const auto& l : org.distribution_lists()) out.push_back({l.display_name, l.email, true});
  return out;
}

/// Ambiguous name resolution, simplified: "SMTP:addr" matches the address exactly; anything else matches
/// the start of the address, of its alias, of the display name or of any word of the display name.
bool matches(const recipient& r, std::string_view entry) {
  std::string wanted = ascii_lower(entry);
  if (starts_with(wanted, "smtp:")) return ascii_lower(r.email) == wanted.substr(5);
  if (wanted.empty()) return false;
  const std::string name = ascii_lower(r.name), email = ascii_lower(r.email);
  if (starts_with(email, wanted) || starts_with(name, wanted)) return true;
  for (std::size_t space = name.find(' '); space != std::string::npos; space = name.find(' ', space + 1)) {
    if (starts_with(name.substr(space + 1), wanted)) return true;
  }
  return false;
}

std::string mailbox_xml(const recipient& r) {
  return "<t:Mailbox><t:Name>" + xml_escape(r.name) + "</t:Name><t:EmailAddress>" + xml_escape(r.email) +
         "</t:EmailAddress><t:RoutingType>SMTP</t:RoutingType><t:MailboxType>" +
         (r.is_list ? "PublicDL" : "Mailbox") + "</t:MailboxType></t:Mailbox>";
}

/// With ReturnFullContactData, the directory entry's contact data follows the mailbox.
std::string contact_xml(const recipient& r) {
  return "<t:Contact><t:DisplayName>" + xml_escape(r.name) +
         "</t:DisplayName><t:EmailAddresses><t:Entry Key=\"EmailAddress1\">SMTP:" + xml_escape(r.email) +
         "</t:Entry></t:EmailAddresses></t:Contact>";
}

}  // namespace

ews_result resolve_names(const pugi::xml_node& op, const ews_context& c) {
  const pugi::xml_node entry = child_local(op, "UnresolvedEntry");
  if (!entry || !op.attribute("ReturnFullContactData")) {
    return schema_fault("ResolveNames", "The element 'ResolveNames' has incomplete content. List of possible elements "
                                        "expected: 'UnresolvedEntry' in namespace '" + std::string(ns_messages) +
                                            "' (and the attribute 'ReturnFullContactData' is required).");
  }
  const bool full = xs_boolean(op.attribute("ReturnFullContactData").value());
  std::vector<recipient> found;
  for (auto& r : directory(c.org)) {
    if (matches(r, entry.text().get())) found.push_back(std::move(r));
  }
  if (found.empty()) {
    return response("ResolveNames",
                    error_message("ResolveNames", "Error", "ErrorNameResolutionNoResults", "No results were found."),
                    c.version);
  }
  std::sort(found.begin(), found.end(), [](const recipient& a, const recipient& b) { return a.name < b.name; });
  const std::size_t shown = std::min(found.size(), max_resolutions);
  std::string set = "<m:ResolutionSet TotalItemsInView=\"" + std::to_string(shown) + "\" IncludesLastItemInRange=\"" +
                    (shown == found.size() ? "true" : "false") + "\">";
  for (std::size_t i = 0; i < shown; ++i) {
    set += "<t:Resolution>" + mailbox_xml(found[i]) + (full && !found[i].is_list ? contact_xml(found[i]) : "") +
           "</t:Resolution>";
  }
  set += "</m:ResolutionSet>";
  const std::string message =
      found.size() == 1 ? success_message("ResolveNames", set)
                        : error_message("ResolveNames", "Warning", "ErrorNameResolutionMultipleResults",
                                        "Multiple results were found.", set);
  return response("ResolveNames", message, c.version);
}

/// ExpandDL of a public list named by its address, alias or display name. Private lists (a Mailbox with an
/// ItemId) do not exist in the synthetic mailboxes, so they are not found either.
ews_result expand_dl(const pugi::xml_node& op, const ews_context& c) {
  const pugi::xml_node mailbox = child_local(op, "Mailbox");
  if (!mailbox) {
    return schema_fault("ExpandDL", "The element 'ExpandDL' has incomplete content. List of possible elements "
                                    "expected: 'Mailbox' in namespace '" + std::string(ns_messages) + "'.");
  }
  const std::string wanted = ascii_lower(child_local(mailbox, "EmailAddress").text().get());
  for (const auto& list : c.org.distribution_lists()) {
    const std::string email = ascii_lower(list.email);
    if (wanted.empty() || (email != wanted && email.substr(0, email.find('@')) != wanted && ascii_lower(list.display_name) != wanted)) {
      continue;
    }
    std::string expansion;
    for (const auto& member : list.members) {
      const user* u = c.org.find_email(member);
      expansion += mailbox_xml({u != nullptr ? u->display_name : member, member, false});
    }
    const std::string content = "<m:DLExpansion TotalItemsInView=\"" + std::to_string(list.members.size()) +
                                "\" IncludesLastItemInRange=\"true\">" + expansion + "</m:DLExpansion>";
    return response("ExpandDL", success_message("ExpandDL", content), c.version);
  }
  // Exchange's wording for ExpandDL differs from ResolveNames' ("are" rather than "were").
  return response("ExpandDL", error_message("ExpandDL", "Error", "ErrorNameResolutionNoResults", "No results are found."),
                  c.version);
}

}  // namespace exbridge::fake_exchange
