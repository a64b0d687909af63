// A mailbox moved over Outlook Anywhere, as Exchange Online's migration service moves an Exchange 2007 mailbox:
// one virtual connection (rpch_connection) per mailbox, an EMSMDB session authenticated with NTLM at
// PKT_PRIVACY (rpc_association), RopLogon, the folder hierarchy walked, every message of every folder copied by
// RopOpenMessage and a FastTransfer download ([MS-OXCFXICS] RopFastTransferSourceCopyTo, GetBuffer), and each
// item's rebuilt MIME checked against fake-exchange's manifest (fx_item_hasher). A transient failure (a
// channel cut, a stall, a proxy error) is retried on a new virtual connection after a back-off, resuming after
// the last item verified; a mailbox that makes no progress for `no_progress_limit` fails as Exchange Online
// reports it.
#pragma once

#include <string>

#include "rehearse/clients/exo_connection.hpp"

namespace exbridge::rehearse {

/// The Outlook Anywhere settings Autodiscover gave (EXPR and EXCH protocols, the user's legacy DN).
struct outlook_anywhere_endpoint {
  std::string proxy_server;  ///< EXPR <Server>: the RPC proxy's public name
  std::string rpc_server;    ///< EXCH <Server>: the mailbox server behind rpcproxy.dll
  std::string legacy_dn;     ///< <User><LegacyDN>: the mailbox EcDoConnectEx and RopLogon name
  std::string auth_package;  ///< EXPR <AuthPackage>: Basic, Ntlm or Negotiate
};

/// Moves `s.email`'s mailbox and verifies every item against `s.manifest_file`. `preamble` opens the
/// explanation (TLS, auth, server version).
net::awaitable<probe_result> migrate_over_outlook_anywhere(const client_settings& s,
                                                           const outlook_anywhere_endpoint& endpoint,
                                                           const std::string& preamble);

/// preflight's read-only check of the same path against a real endpoint: a virtual connection (CONN/A1 to
/// CONN/C2), a bind to EMSMDB with NTLM, EcDoConnectEx for the mailbox and EcDoDisconnect; then, when `s.idle` is
/// not zero, the connection held that long, counting the server's pings (Exchange sends one every 900 s).
net::awaitable<probe_result> check_outlook_anywhere_session(const client_settings& s,
                                                            const outlook_anywhere_endpoint& endpoint,
                                                            const std::string& preamble);

}  // namespace exbridge::rehearse
