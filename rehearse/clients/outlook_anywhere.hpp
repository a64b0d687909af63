// Outlook Anywhere (RPC over HTTP v2) as Outlook and the migration service's RPC checks use it through a
// proxy: an unauthenticated probe for the offered schemes, per-connection authentication (NTLM on
// zero-length requests, or Basic on each channel request), an echo probe, then the IN channel (1 GB
// RPC_IN_DATA) and the OUT channel (RPC_OUT_DATA, a 1 GB streaming answer) held idle with keep-alive
// pings both ways -- which is where proxies with short idle timeouts break Outlook Anywhere.
#pragma once

#include "rehearse/clients/exo_connection.hpp"

namespace exbridge::rehearse {

/// Runs the channels for `settings.idle` (virtual time), pinging the IN channel every
/// `settings.ping_interval` and reading the server's pings from the OUT channel. Outcomes: "ok",
/// "proxy-idle-timeout" (a channel closed after a silence), or the shared failure classes.
net::awaitable<probe_result> run_outlook_anywhere(client_settings settings);

}  // namespace exbridge::rehearse
