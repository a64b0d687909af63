// --config file reading.
#include "fake_exchange/config_file.hpp"

#include "common/errors.hpp"
#include "common/toml_util.hpp"
#include "fake_exchange/fault_toml.hpp"

namespace exbridge::fake_exchange {
namespace {

void read_organisation(const std::string& file, const toml::node& node, organisation& org) {
  if (!node.is_table()) toml_fail_at(file, node, "'organisation' must be a table: [organisation]");
  const toml::table& t = *node.as_table();
  toml_reject_unknown_keys(file, t, {"name", "domain", "netbios_domain", "server_name"}, "[organisation]");
  org.name = toml_get_string(file, t, "name", false, org.name, "[organisation]");
  org.domain = toml_get_string(file, t, "domain", false, org.domain, "[organisation]");
  org.netbios_domain = toml_get_string(file, t, "netbios_domain", false, org.netbios_domain, "[organisation]");
  org.server_name = toml_get_string(file, t, "server_name", false, org.server_name, "[organisation]");
}

std::vector<user> read_users(const std::string& file, const toml::node& node) {
  if (!node.is_array_of_tables()) toml_fail_at(file, node, "'user' must be [[user]] tables");
  std::vector<user> users;
  for (const auto& entry : *node.as_array()) {
    const toml::table& t = *entry.as_table();
    toml_reject_unknown_keys(file, t, {"email", "password", "display_name"}, "[[user]]");
    user u;
    u.email = toml_get_string(file, t, "email", true, "", "[[user]]");
    const auto at = u.email.find('@');
    if (at == 0 || at == std::string::npos || at + 1 == u.email.size()) {
      toml_fail_at(file, *t.get("email"), "'" + u.email + "' is not an e-mail address (user@domain)");
    }
    u.password = toml_get_string(file, t, "password", true, "", "[[user]] " + u.email);
    if (u.password.empty()) toml_fail_at(file, *t.get("password"), "the password of " + u.email + " is empty");
    u.alias = u.email.substr(0, at);
    u.display_name = toml_get_string(file, t, "display_name", false, u.alias, "[[user]]");
    for (const auto& other : users) {
      if (other.email == u.email) toml_fail_at(file, t, "user " + u.email + " is listed twice");
    }
    users.push_back(std::move(u));
  }
  return users;
}

/// [[list]]: distribution lists for ExpandDL and ResolveNames; members must be configured users.
std::vector<distribution_list> read_lists(const std::string& file, const toml::node& node, const organisation& org) {
  if (!node.is_array_of_tables()) toml_fail_at(file, node, "'list' must be [[list]] tables");
  std::vector<distribution_list> lists;
  for (const auto& entry : *node.as_array()) {
    const toml::table& t = *entry.as_table();
    toml_reject_unknown_keys(file, t, {"email", "display_name", "members"}, "[[list]]");
    distribution_list l;
    l.email = toml_get_string(file, t, "email", true, "", "[[list]]");
    const auto at = l.email.find('@');
    if (at == 0 || at == std::string::npos || at + 1 == l.email.size()) {
      toml_fail_at(file, *t.get("email"), "'" + l.email + "' is not an e-mail address (list@domain)");
    }
    l.display_name = toml_get_string(file, t, "display_name", false, l.email.substr(0, at), "[[list]]");
    const toml::node* members = t.get("members");
    if (members == nullptr || !members->is_array()) {
      toml_fail_at(file, members != nullptr ? *members : static_cast<const toml::node&>(t),
                   "[[list]] " + l.email + " needs 'members', an array of user e-mail addresses");
    }
    for (const auto& m : *members->as_array()) {
      const auto* address = m.as_string();
      if (address == nullptr || org.find_email(address->get()) == nullptr) {
        toml_fail_at(file, m, "a member of " + l.email + " must be the e-mail address of a configured [[user]]");
      }
      l.members.push_back(address->get());
    }
    lists.push_back(std::move(l));
  }
  return lists;
}

/// [[redirect]]: Autodiscover answers redirectAddr or redirectUrl for these addresses.
std::vector<autodiscover_redirect> read_redirects(const std::string& file, const toml::node& node) {
  if (!node.is_array_of_tables()) toml_fail_at(file, node, "'redirect' must be [[redirect]] tables");
  std::vector<autodiscover_redirect> redirects;
  for (const auto& entry : *node.as_array()) {
    const toml::table& t = *entry.as_table();
    toml_reject_unknown_keys(file, t, {"email", "host", "address", "url"}, "[[redirect]]");
    const std::string email = toml_get_string(file, t, "email", true, "", "[[redirect]]");
    const std::string host = toml_get_string(file, t, "host", false, "", "[[redirect]] " + email);
    const std::string address = toml_get_string(file, t, "address", false, "", "[[redirect]] " + email);
    const std::string url = toml_get_string(file, t, "url", false, "", "[[redirect]] " + email);
    if (address.empty() == url.empty()) {
      toml_fail_at(file, t, "[[redirect]] " + email + " needs exactly one of 'address' (redirectAddr) or 'url' (redirectUrl)");
    }
    try {
      redirects.push_back(make_redirect(email, host, address.empty() ? url : address, "[[redirect]]"));
    } catch (const config_error& e) {
      toml_fail_at(file, t, e.what());
    }
  }
  return redirects;
}

void read_mailboxes(const std::string& file, const toml::node& node, mailbox_spec& mb) {
  if (!node.is_table()) toml_fail_at(file, node, "'mailboxes' must be a table: [mailboxes]");
  const toml::table& t = *node.as_table();
  toml_reject_unknown_keys(file, t, {"items", "seed", "large_every", "large_size", "small_max"}, "[mailboxes]");
  if (const auto* n = t.get("items")) mb.inbox_items = static_cast<unsigned>(toml_whole_number(file, *n, "items", 0, 10'000'000));
  if (const auto* n = t.get("seed")) mb.seed = toml_whole_number(file, *n, "seed", 0);
  if (const auto* n = t.get("large_every")) {
    mb.large_every = static_cast<unsigned>(toml_whole_number(file, *n, "large_every", 0, 10'000'000));
  }
  if (const auto* n = t.get("large_size")) mb.large_size = toml_whole_number(file, *n, "large_size", 1);
  if (const auto* n = t.get("small_max")) {
    mb.small_max = toml_whole_number(file, *n, "small_max", static_cast<std::int64_t>(mb.small_min));
  }
}

}  // namespace

autodiscover_redirect make_redirect(const std::string& email, const std::string& host, const std::string& target,
                                    const std::string& where) {
  const auto is_address = [](const std::string& a) {
    const auto at = a.find('@');
    return at != 0 && at != std::string::npos && at + 1 < a.size() && a.find_first_of(" /:") == std::string::npos;
  };
  if (!is_address(email)) throw config_error(where + ": '" + email + "' is not an e-mail address (user@domain)");
  if (host.find_first_of("/@ ") != std::string::npos) throw config_error(where + ": host '" + host + "' is not a host name");
  autodiscover_redirect r{email, host, "", ""};
  if (target.rfind("https://", 0) == 0 && target.size() > 8) {
    r.url = target;
  } else if (is_address(target)) {
    r.address = target;
  } else {
    // Clients follow only https:// redirect URLs (MS-OXDSCLI; exchangelib and the Managed API refuse others).
    throw config_error(where + ": the target of " + email + " must be an e-mail address (redirectAddr) or an https:// "
                       "URL (redirectUrl), not '" + target + "'");
  }
  return r;
}

void apply_config_file(const std::string& file, server_options& options) {
  const toml::table root = toml_parse_file(file, "check the --config path");
  toml_reject_unknown_keys(file, root,
                           {"version", "windows", "public_host", "rpc_ping_interval", "rpc_out_channel_bytes", "organisation", "user", "list",
                            "redirect", "mailboxes", "fault"},
                           "the configuration");
  auto& ex = options.exchange;
  if (const auto* n = root.get("version")) {
    const std::string name = toml_get_string(file, root, "version", false, "", "the configuration");
    ex.version = find_version_profile(name);
    if (ex.version == nullptr) toml_fail_at(file, *n, "version '" + name + "' is unknown; use RTM, SP1, SP2, SP3 or SP3-RU23");
  }
  if (const auto* n = root.get("windows")) {
    const std::string name = toml_get_string(file, root, "windows", false, "", "the configuration");
    try {
      options.windows = parse_schannel_profile(name, "windows");
      (void)schannel_ciphers(options.windows);  // win2003-legacy: refused here, at its line
    } catch (const config_error& e) {
      toml_fail_at(file, *n, e.what());
    }
  }
  ex.public_host = toml_get_string(file, root, "public_host", false, ex.public_host, "the configuration");
  if (const auto* n = root.get("rpc_ping_interval")) {
    options.rpc_ping_interval = toml_duration(file, *n, "rpc_ping_interval");
    if (options.rpc_ping_interval <= scaled_clock::duration::zero()) {
      toml_fail_at(file, *n, "'rpc_ping_interval' must be more than 0");
    }
  }
  if (const auto* n = root.get("rpc_out_channel_bytes")) {
    options.rpc_out_channel_length = static_cast<std::uint64_t>(
        toml_whole_number(file, *n, "rpc_out_channel_bytes", static_cast<std::int64_t>(min_out_channel_length), 4294967295LL));
  }
  if (const auto* n = root.get("organisation")) read_organisation(file, *n, ex.org);
  if (const auto* n = root.get("user")) ex.org.users = read_users(file, *n);
  if (const auto* n = root.get("list")) ex.org.lists = read_lists(file, *n, ex.org);  // after the users it names
  if (const auto* n = root.get("redirect")) ex.org.redirects = read_redirects(file, *n);
  if (const auto* n = root.get("mailboxes")) read_mailboxes(file, *n, ex.mailboxes);
  if (root.get("fault") != nullptr) options.faults = parse_fault_rules(root, file);
}

}  // namespace exbridge::fake_exchange
