// fake-exchange --config FILE (TOML): the organisation, its users and passwords, what their mailboxes
// hold, the Exchange build, Outlook Anywhere's ping interval and fault rules, in one file:
//
//   version = "SP3"                  # RTM, SP1, SP2, SP3, SP3-RU23
//   windows = "win2008"               # or win2003-aes; win2003-legacy is refused (no RC4/3DES in OpenSSL 3)
//   public_host = "mail.contoso.example"
//   rpc_ping_interval = "900s"
//   rpc_out_channel_bytes = 8388608  # each OUT channel's Content-Length; recycled before it is used up
//   [organisation]                   # name, domain, netbios_domain, server_name
//   [[user]]                         # email, password, display_name (optional)
//   [[list]]                         # email, display_name (optional), members = [user e-mail addresses]
//   [[redirect]]                     # email, host (optional), and address (redirectAddr) or url (redirectUrl)
//   [mailboxes]                      # items, seed, large_every, large_size, small_max
//   [[fault]]                        # see faults.hpp
//
// Every mistake (unknown key, wrong type, bad value, duplicate user, list member who is no user) is a config_error naming FILE:LINE.
#pragma once

#include <string>

#include "fake_exchange/server.hpp"

namespace exbridge::fake_exchange {

/// An Autodiscover redirect from `email` to `target`: an e-mail address (Action redirectAddr) or an https://
/// URL (Action redirectUrl); `host` limits it to requests for that Host. Throws config_error naming `where`.
autodiscover_redirect make_redirect(const std::string& email, const std::string& host, const std::string& target,
                                    const std::string& where);

/// Reads FILE and applies what it sets to `options` (absent keys keep their values). Throws config_error.
void apply_config_file(const std::string& file, server_options& options);

}  // namespace exbridge::fake_exchange
