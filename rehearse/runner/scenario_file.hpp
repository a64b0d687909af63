// Scenario files (TOML): the processes to start, the lab PKI, and the steps with their expectations.
// A bad file is reported as "FILE:LINE:COLUMN: problem" (the toml++ source region), never a crash.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "common/clock.hpp"

namespace exbridge::rehearse {

struct process_spec {
  std::string name;     ///< used in variables: ${NAME.addr}, ${NAME.host}, ${NAME.port}
  /// "program": prints a readiness line "listening <what> HOST:PORT" (fake-exchange, exbridge);
  /// "haproxy": the user's haproxy.cfg, linted, rewritten for the lab and run until it signals READY=1;
  /// "stunnel": the user's stunnel.conf, linted, rewritten for the lab and run until its port listens;
  /// "nginx": the user's nginx.conf, the same way;
  /// "exbridge": the user's exbridge.toml, rewritten for the lab and run with the scenario's --time-scale;
  /// "command": any program, ready when `address` listens (default 127.0.0.1:${NAME.port}, a free port
  ///            rehearse picks and offers to the args);
  /// "external": nothing is started; a proxy already running at `address` (checked to accept connections).
  std::string kind = "program";
  std::string program;  ///< "fake-exchange", "exbridge" (next to rehearse), a name on PATH or an absolute path
  std::vector<std::string> args;
  std::filesystem::path config;  ///< haproxy, stunnel: the user's file (relative paths: from the scenario file)
  /// haproxy, stunnel: HOST:PORT the `server` lines (stunnel: `connect` lines to Exchange) are pointed at, in
  /// order, the last repeating (variables allowed)
  std::vector<std::string> upstreams;
  std::string cert, key;  ///< haproxy, stunnel: the certificate it serves (default: the lab's bridge certificate)
  std::string address;    ///< command, external: HOST:PORT where it listens (variables allowed)
  bool deferred = false;         ///< start = "step": started by a step (action "start"), not at setup
  std::chrono::milliseconds ready_timeout{20'000};  ///< real time to wait for the readiness line
  std::string where;    ///< "FILE:LINE" for messages
};

struct step_spec {
  std::string name;
  std::string action = "migration-probe";  ///< or "migrate-mailbox", "outlook-anywhere"
  std::string connect;      ///< HOST:PORT (variables allowed)
  std::string server_name;  ///< the public host name Exchange Online is given (SNI, certificate name, Host)
  std::string trust = "lab";  ///< "lab" (the run's lab CA), "system" or "ca:FILE" (variables allowed)
  std::string email;
  std::string password;
  std::string auth = "basic";  ///< "basic" or "ntlm"
  std::string ntlm_domain;     ///< NTLM: the NetBIOS domain; empty = the e-mail address as UPN
  std::string autodiscover = "public-name";  ///< or "domain": candidate URLs of the address's domain, redirects
  std::string autodiscover_email;            ///< the address Autodiscover is asked about (empty: email)
  std::map<std::string, std::string> resolve;  ///< host name (or name:80) -> HOST:PORT (variables allowed)
  unsigned ews_requests = 1;
  std::string manifest;        ///< migrate-mailbox: path of fake-exchange's manifest (variables allowed)
  unsigned page_size = 512;
  std::string listing = "find-item";  ///< migrate-mailbox: "find-item" or "sync-folder-items"
  unsigned batch = 10;
  std::string rpc_server = "ex2007.contoso.example";  ///< outlook-anywhere: the mailbox server behind rpcproxy.dll
  scaled_clock::duration idle = std::chrono::minutes(30);           ///< outlook-anywhere: channels held idle
  scaled_clock::duration ping_interval = std::chrono::minutes(12);  ///< outlook-anywhere: client keep-alive
  /// The client's per-request limit (Exchange Online's migration service: 100 s); longer models a
  /// client that outwaits the proxy's own timeouts.
  scaled_clock::duration request_timeout = std::chrono::seconds(100);
  unsigned mailboxes = 1;  ///< probe/migrate this many users at once; email and password then carry "{n}"
  /// migrate-mailbox: retries after a transient failure (EWS: of a GetItem batch; Outlook Anywhere: of the mailbox on
  /// a new virtual connection, 0 = until no_progress_limit passes without an item moved)
  unsigned retries = 0;
  scaled_clock::duration backoff = std::chrono::seconds(30);  ///< the first retry's wait (doubling after)
  /// migrate-mailbox: "outlook-anywhere" (as Exchange Online moves 2007 mailboxes) or "ews"
  std::string transport = "outlook-anywhere";
  scaled_clock::duration no_progress_limit = std::chrono::hours(5);  ///< outlook-anywhere: then migration-stalled
  std::uint64_t in_channel_bytes = 1'073'741'824;  ///< outlook-anywhere: the IN channel's declared length
  std::string expect = "ok";  ///< "ok" or a failure class, e.g. "tls-version-refused"
  std::string process;        ///< lint, start, stop: the process the step is about
  std::vector<std::string> expect_findings;  ///< lint: the exact set of finding codes expected (empty: not checked)
  bool has_expect_findings = false;
  std::string where;
};

struct scenario {
  std::filesystem::path file;
  std::string name;
  std::string description;
  double time_scale = 1;
  std::vector<std::string> bridge_names{"mail.contoso.example", "autodiscover.contoso.example"};
  std::vector<std::string> exchange_names{"ex2007.contoso.example"};
  std::vector<process_spec> processes;
  std::vector<step_spec> steps;
};

/// Loads and validates a scenario. Throws config_error("FILE:LINE:COL: ...") on any problem,
/// including unknown keys (a typo must not silently change a rehearsal).
scenario load_scenario(const std::filesystem::path& file);

/// Every scenario file of a catalog folder and its theme subfolders, in path order: NAME.toml, not the
/// NAME.faults.toml fault rules or NAME.exbridge.toml configs beside a scenario. Throws config_error when the
/// folder cannot be read.
std::vector<std::filesystem::path> catalog_scenarios(const std::filesystem::path& catalog);

/// The outcomes a step may expect: "ok" and every failure class rehearse can report.
const std::vector<std::string>& known_outcomes();

/// Replaces ${name} from `vars`; an unknown variable throws config_error naming it and `where`.
std::string substitute(const std::string& text, const std::map<std::string, std::string>& vars, const std::string& where);

}  // namespace exbridge::rehearse
