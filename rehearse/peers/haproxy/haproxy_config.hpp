// HAProxy configurations as administrators bridge Exchange 2007 to Exchange Online with them: a parser
// that keeps line numbers, a linter that names the known traps of this migration (OpenSSL 3 security
// level, NTLM with http-server-close, Outlook Anywhere ping timeouts, ...), and a rewrite that turns the
// user's file into one that runs unprivileged in rehearse's lab while reproducing every mistake in it.
// Pure library: no process is started and no socket is opened here.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "rehearse/peers/config_finding.hpp"

namespace exbridge::rehearse {

/// One meaningful config line (comments and blank lines dropped).
struct haproxy_line {
  int number = 0;                 ///< 1-based line number in the file
  std::string keyword;            ///< first word, e.g. "timeout", "server", "bind", "option"
  std::vector<std::string> args;  ///< the remaining words, unquoted and unescaped as HAProxy does
  std::string text;               ///< original line without trailing comment/whitespace
};

struct haproxy_section {
  std::string kind;  ///< "global", "defaults", "frontend", "backend", "listen", "userlist", "peers", ...
  std::string name;  ///< may be empty (global, unnamed defaults)
  int number = 0;    ///< line of the section header
  std::vector<haproxy_line> lines;
  haproxy_line header;  ///< the header line itself (e.g. args {"name", "from", "defaults-name"})
};

struct haproxy_config {
  std::string file;  ///< for messages
  std::vector<haproxy_section> sections;
  std::vector<std::string> original_lines;  ///< the file as read, for the rewrite
};

/// Parses text; throws config_error("FILE:LINE: ...") on a line outside any section or an unmatched quote.
haproxy_config parse_haproxy_config(const std::string& text, const std::string& file);
/// Reads and parses a file; config_error naming the file if it is unreadable.
haproxy_config load_haproxy_config(const std::filesystem::path& file);

using haproxy_finding = config_finding;

struct haproxy_lint_options {
  std::uint64_t fd_limit = 0;  ///< 0 = the hard RLIMIT_NOFILE of this process
};

/// Findings sorted by line.
std::vector<haproxy_finding> lint_haproxy_config(const haproxy_config& cfg, const haproxy_lint_options& options = {});

/// HAProxy time values: "100" (ms by default), "100ms", "30s", "15m", "1h", "1d", "500us". Throws config_error.
std::chrono::microseconds parse_haproxy_time(const std::string& text);
/// The shortest exact form: "15m", "9s", "1500ms", "250us", "0".
std::string format_haproxy_time(std::chrono::microseconds t);

struct haproxy_lab {
  std::string bind_address;      ///< "127.0.0.1:PORT" for the first ssl `bind` of every frontend/listen
  std::string bridge_pem;        ///< cert+key PEM replacing every `crt X` on bind lines
  std::string upstream_address;  ///< "127.0.0.1:PORT" replacing the address of every `server` line
  /// Several lab Exchange servers (a pool): the n-th `server` line gets the n-th address (the last one
  /// repeats). Overrides upstream_address when not empty.
  std::vector<std::string> upstream_addresses;
  std::string ca_file;           ///< replaces `ca-file X` on server lines (the lab CA); empty = leave
  double time_scale = 1;         ///< timeouts and check intervals are divided by this (min 1 ms)
  std::string log_target = "stdout format raw local0";  ///< replaces every `log` line in `global`
  /// The lab Exchange certificate's name: replaces `sni str(X)` and `verifyhost X` on server lines, which
  /// name the customer's server (empty = leave).
  std::string upstream_name;
  /// The lab machine's file-descriptor limit: a global `maxconn` HAProxy could not reserve descriptors for
  /// is lowered to fit (HAProxy 2.6 refuses to start otherwise); 0 = leave.
  std::uint64_t fd_limit = 0;
  /// Replace `option httplog` with the same line format plus HAProxy's upstream TLS error (bc_err_str,
  /// ssl_bc_err), the only place HAProxy says why a TLS 1.0 handshake with Exchange 2007 failed.
  bool tls_error_log = false;
};

struct haproxy_rewrite {
  std::string text;                  ///< the lab config, line for line with the user's file
  std::vector<std::string> changes;  ///< "line 26: timeout client 15m -> 9s (time scale 100)"
};

/// Makes the lab version of a user's config: only what cannot run in the lab is changed (privileges,
/// addresses, certificates, syslog target, time scale); every other line, mistakes included, is kept.
haproxy_rewrite rewrite_haproxy_for_lab(const haproxy_config& cfg, const haproxy_lab& lab);

}  // namespace exbridge::rehearse
