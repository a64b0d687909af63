// stunnel configurations as administrators bridge Exchange 2007 to Exchange Online with them: stunnel relays
// TLS to TLS only as a chain of two services (one accepts Exchange Online's TLS 1.2, one connects to Exchange
// 2007 with TLS 1.0, `client = yes`). A parser that keeps line numbers, a linter that names this migration's
// traps (OpenSSL 3's security level, an unverified upstream, TLS 1.0 leaking to the public side, idle
// timeouts under Outlook Anywhere's pings), and a rewrite that runs the user's file in rehearse's lab.
// Pure library: no process is started and no socket is opened here.
#pragma once

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "rehearse/peers/config_finding.hpp"
#include "rehearse/peers/lab_target.hpp"

namespace exbridge::rehearse {

struct stunnel_option {
  int line = 0;
  std::string key;  ///< as written; stunnel compares keys without case
  std::string value;
};

struct stunnel_service {
  std::string name;
  int line = 0;  ///< of the [name] header
  std::vector<stunnel_option> options;
};

struct stunnel_config {
  std::string file;  ///< for messages
  std::vector<stunnel_option> global;  ///< before the first service; service options there are every service's defaults
  std::vector<stunnel_service> services;

  /// The option as the service sees it: its own, else the global default; nullptr when neither sets it.
  const stunnel_option* effective(const stunnel_service& service, const std::string& key) const;
  /// `client = yes`: the service connects with TLS (to Exchange 2007); otherwise it accepts TLS.
  bool is_client(const stunnel_service& service) const;
};

/// Parses text; throws config_error("FILE:LINE: ...") on a line that is neither `key = value`, a [service]
/// header, a comment nor blank, and on `include` (rehearse cannot follow it into the lab).
stunnel_config parse_stunnel_config(const std::string& text, const std::string& file);
/// Reads and parses a file; config_error naming the file if it is unreadable.
stunnel_config load_stunnel_config(const std::filesystem::path& file);

/// Findings sorted by line.
std::vector<config_finding> lint_stunnel_config(const stunnel_config& cfg);

struct stunnel_lab : lab_target {
  std::string accept_address;  ///< "127.0.0.1:PORT" for the (first) service that accepts Exchange Online
  std::function<std::string()> internal_address;  ///< a fresh "127.0.0.1:PORT" for a chain's inner hop
};

struct stunnel_rewrite {
  std::string text;
  std::vector<std::string> changes;  ///< "line 12: accept = 443 -> 127.0.0.1:40123"
};

/// Makes the lab version of a user's config: privileges, pid file and logging dropped (foreground, log on
/// stderr), addresses, certificates and names pointed at the lab, timeouts scaled; every other option,
/// mistakes included, is kept.
stunnel_rewrite rewrite_stunnel_for_lab(const stunnel_config& cfg, const stunnel_lab& lab);

}  // namespace exbridge::rehearse
