// The Exchange Online side of a rehearsal: a migration client that connects like the migration service
// does (TLS 1.2+ with the Office 365 suites, SNI, chain and host-name checks), discovers the mailbox via
// Autodiscover (unauthenticated probe, then Basic) and reads it over EWS. Every failure is classified
// into one outcome name and explained in one sentence with the likely fix.
#pragma once

#include <string>
#include <vector>

#include "common/clock.hpp"
#include "common/net.hpp"
#include "common/tls_context.hpp"

namespace exbridge::scenario {

struct client_settings {
  std::string host;             ///< where the public name resolves to in this rehearsal
  unsigned short port = 443;
  std::string server_name;      ///< the public host name (SNI, certificate check, Host header)
  tls_verify trust = tls_verify::ca_file;
  std::string ca_file;          ///< with tls_verify::ca_file
  std::string email;
  std::string password;
  std::string auth = "basic";   ///< "basic" or "ntlm"
  std::string ntlm_domain;      ///< NTLM: empty = log on with the e-mail address as UPN
  unsigned ews_requests = 1;    ///< how many EWS reads after discovery (identity checked on each)
  std::string action = "migration-probe";  ///< or "migrate-mailbox": move every item and verify it
  std::string manifest_file;   ///< migrate-mailbox: fake-exchange's manifest (JSON)
  unsigned page_size = 512;    ///< FindItem page size (the migration service pages at 512)
  unsigned batch = 10;         ///< GetItem: small items per request
  scaled_clock::duration connect_timeout = std::chrono::seconds(30);
  scaled_clock::duration request_timeout = std::chrono::seconds(100);  ///< the migration service's per-request limit
};

struct probe_result {
  std::string outcome = "ok";  ///< "ok" or a failure class (scenario_file.hpp: known_outcomes)
  std::string explanation;     ///< one sentence: what happened, and for failures the likely fix
};

/// TLS handshake, Autodiscover (401 probe, then Basic or NTLM), then at the EwsUrl found either EWS
/// GetFolder(inbox) `ews_requests` times, each answer checked to come from the step's own mailbox
/// ("migration-probe"), or the whole mailbox moved and verified item by item ("migrate-mailbox").
net::awaitable<probe_result> run_migration_probe(client_settings settings);

}  // namespace exbridge::scenario
