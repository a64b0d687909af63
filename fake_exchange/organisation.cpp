// Organisation lookups and the demo data.
#include "fake_exchange/organisation.hpp"

#include <algorithm>
#include <cctype>

#include "common/errors.hpp"

namespace exbridge::fake_exchange {
namespace {

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

std::string alias_of(const std::string& email) { return email.substr(0, email.find('@')); }

}  // namespace

const user* organisation::find_email(std::string_view email) const {
  for (const auto& u : users) {
    if (iequals(u.email, email)) return &u;
  }
  return nullptr;
}

const autodiscover_redirect* organisation::find_redirect(std::string_view email, std::string_view host) const {
  // The Host header may carry a port; the rule names the host only.
  const std::string_view host_name = host.substr(0, host.rfind(':') == std::string_view::npos || host.back() == ']'
                                                   ? host.size()
                                                   : host.rfind(':'));
  for (const auto& r : redirects) {
    if (iequals(r.email, email) && (r.host.empty() || iequals(r.host, host_name))) return &r;
  }
  return nullptr;
}

const user* organisation::find_logon(std::string_view logon) const {
  if (const user* u = find_email(logon)) return u;
  std::string_view alias = logon;
  if (const auto slash = logon.find('\\'); slash != std::string_view::npos) {
    if (!iequals(logon.substr(0, slash), netbios_domain) && !iequals(logon.substr(0, slash), domain)) return nullptr;
    alias = logon.substr(slash + 1);
  }
  for (const auto& u : users) {
    if (iequals(u.alias, alias)) return &u;
  }
  return nullptr;
}

const user* organisation::find_legacy_dn(std::string_view dn) const {
  for (const auto& u : users) {
    if (iequals(legacy_dn(u), dn)) return &u;
  }
  return nullptr;
}

std::string organisation::legacy_dn(const user& u) const {
  return "/o=" + name + "/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/cn=Recipients/cn=" + u.alias;
}

std::vector<distribution_list> organisation::distribution_lists() const {
  std::vector<distribution_list> out = lists;
  distribution_list all{"allusers@" + domain, "All Users", {}};
  for (const auto& u : users) all.members.push_back(u.email);
  const bool configured =
      std::any_of(out.begin(), out.end(), [&](const distribution_list& l) { return iequals(l.email, all.email); });
  if (!configured) out.push_back(std::move(all));
  return out;
}

organisation demo_organisation() {
  organisation org;
  org.users.push_back({std::string(demo_email), std::string(demo_password), "Alex Wilber", "alex.wilber"});
  return org;
}

user parse_user_spec(const std::string& spec) {
  const auto first = spec.find(':');
  if (first == std::string::npos || first == 0 || spec.find('@') > first) {
    throw config_error("--user '" + spec.substr(0, spec.find(':')) +
                       "...' must be EMAIL:PASSWORD[:Display Name], e.g. dana@contoso.example:S3cret:Dana Park");
  }
  user u;
  u.email = spec.substr(0, first);
  const auto second = spec.find(':', first + 1);
  u.password = spec.substr(first + 1, second == std::string::npos ? std::string::npos : second - first - 1);
  u.display_name = second == std::string::npos ? alias_of(u.email) : spec.substr(second + 1);
  u.alias = alias_of(u.email);
  if (u.password.empty()) throw config_error("--user " + u.email + ": the password is empty");
  return u;
}

}  // namespace exbridge::fake_exchange
