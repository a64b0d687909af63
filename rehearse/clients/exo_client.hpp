// The Exchange Online side of a rehearsal: a migration client that connects like the migration service
// does (TLS 1.2+ with the Office 365 suites, SNI, chain and host-name checks), discovers the mailbox via
// Autodiscover (unauthenticated probe, then Basic or NTLM) and reads or moves it over EWS, or hands the move to
// the Outlook Anywhere migration (oa_migration.hpp). Every failure is classified into one outcome name and
// explained in one sentence with the likely fix.
#pragma once

#include "rehearse/clients/exo_connection.hpp"

namespace exbridge::rehearse {

/// TLS handshake, Autodiscover (401 probe, then Basic or NTLM), then: over Outlook Anywhere, the mailbox moved
/// ("migrate-mailbox", the default transport) or one read-only session ("outlook-anywhere-session", preflight);
/// else at the EwsUrl found either EWS GetFolder(inbox) `ews_requests` times, each answer checked to come from
/// the step's own mailbox ("migration-probe"), or the whole mailbox moved and verified item by item
/// ("migrate-mailbox" with transport "ews").
net::awaitable<probe_result> run_migration_probe(client_settings settings);

/// The same for `mailboxes` users at once (their email and password patterns carry "{n}", see
/// expand_index): every mailbox checked on its own connections; the result sums them, or names the first
/// mailbox that failed and how many did.
net::awaitable<probe_result> run_mailboxes(client_settings base, unsigned mailboxes);

}  // namespace exbridge::rehearse
