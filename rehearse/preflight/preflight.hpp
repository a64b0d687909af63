// `rehearse preflight https://HOST --email USER@DOMAIN`: the read-only checks Exchange Online's
// migration endpoint makes, run against a real endpoint before a cutover batch is created -- the TLS
// versions it accepts, its certificate (chain, name, expiry, signature), Autodiscover and EWS with the
// migration account, and Outlook Anywhere as the migration uses it (a virtual connection, EMSMDB with NTLM, one
// EcDoConnectEx, optionally held to see a server ping). Nothing is written to the mailbox, and the
// password is never printed or logged.
#pragma once

#include <iosfwd>
#include <string>

#include "common/clock.hpp"
#include "common/net.hpp"
#include "common/tls_context.hpp"

namespace exbridge::rehearse {

struct preflight_options {
  std::string url;           ///< https://HOST[:PORT] -- the public name Exchange Online is given
  std::string connect;       ///< HOST:PORT to connect to instead of resolving HOST (before a DNS change)
  std::string email;
  std::string password;      ///< from REHEARSE_PASSWORD or a prompt; never printed
  std::string auth = "basic";
  std::string ntlm_domain;
  tls_verify trust = tls_verify::system;
  std::string ca_file;
  std::string rpc_server;    ///< the mailbox server named in the RPC URL (empty: the one Autodiscover names)
  scaled_clock::duration rpc_hold{};  ///< how long to hold the virtual connection, counting server pings
};

/// Runs every check, printing one line per check; returns how many failed.
unsigned run_preflight(const preflight_options& options, std::ostream& out);

/// Reads the password: REHEARSE_PASSWORD, or a prompt on the terminal with echo off. Throws config_error
/// when there is neither.
std::string read_password(const std::string& email);

}  // namespace exbridge::rehearse
