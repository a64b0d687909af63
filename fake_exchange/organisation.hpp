// The organisation fake-exchange serves: its domain, users, passwords and folder summaries.
// With no configuration it serves the built-in demo organisation listed in --help and the README.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace exbridge::fake_exchange {

struct user {
  std::string email;         ///< primary SMTP address, also the UPN users log on with
  std::string password;
  std::string display_name;
  std::string alias;         ///< the part before '@'; "DOMAIN\alias" logs on too
};

/// A distribution list (ExpandDL, ResolveNames): its members are users' addresses.
struct distribution_list {
  std::string email;
  std::string display_name;
  std::vector<std::string> members;
};

/// An Autodiscover redirect (MS-OXDSCLI Action redirectAddr or redirectUrl): asked about `email` (through
/// `host`, when set), the server points the client elsewhere instead of answering with settings, as
/// Exchange does for a mailbox moved to another forest or a namespace served elsewhere.
struct autodiscover_redirect {
  std::string email;
  std::string host;     ///< the Host header it applies to (empty: any)
  std::string address;  ///< redirectAddr: ask again about this address, or
  std::string url;      ///< redirectUrl: ask again at this https:// URL
};

struct organisation {
  std::string name = "Contoso";
  std::string domain = "contoso.example";
  std::string netbios_domain = "CONTOSO";
  std::string server_name = "EX2007";  ///< the mailbox/CAS server's NetBIOS name
  std::vector<user> users;
  std::vector<distribution_list> lists;  ///< configured lists (distribution_lists() adds "All Users")
  std::vector<autodiscover_redirect> redirects;

  /// Finds a user by e-mail address, UPN, "DOMAIN\alias" or bare alias (case-insensitive).
  const user* find_logon(std::string_view logon) const;
  const user* find_email(std::string_view email) const;
  /// The redirect for an Autodiscover request about `email` arriving for `host`, or nullptr.
  const autodiscover_redirect* find_redirect(std::string_view email, std::string_view host) const;
  std::string legacy_dn(const user& u) const;
  /// The user whose legacy DN this is (case-insensitive, as directory names compare), or nullptr.
  const user* find_legacy_dn(std::string_view dn) const;
  /// The configured lists plus a synthetic "All Users" <allusers@domain> holding every user, so that
  /// every organisation has a list to expand (unless one is configured with that address).
  std::vector<distribution_list> distribution_lists() const;
  std::string server_fqdn() const { return server_name + "." + domain; }
};

/// The built-in demo organisation: contoso.example with one mailbox user.
organisation demo_organisation();

/// Parses "--user EMAIL:PASSWORD[:Display Name]". Throws config_error.
user parse_user_spec(const std::string& spec);

/// The demo user, documented in --help and the README.
inline constexpr std::string_view demo_email = "alex.wilber@contoso.example";
inline constexpr std::string_view demo_password = "Exbridge-Demo-2007";

}  // namespace exbridge::fake_exchange
