// nginx configurations as administrators put nginx between Exchange Online and Exchange 2007: a parser that keeps
// line numbers, a linter that names the ways nginx's defaults break Outlook Anywhere (a 1 MB body limit against
// the 1 GB RPC_IN_DATA, request buffering that waits for a body that never ends, 60 s timeouts against the
// 720/900 s pings, HTTP/1.0 upstream, no NTLM connection binding in open-source nginx, TLS 1.0 on OpenSSL 3),
// and a rewrite that runs the user's file in rehearse's lab. Pure library: no process, no socket.
#pragma once

#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "rehearse/peers/config_finding.hpp"
#include "rehearse/peers/lab_target.hpp"

namespace exbridge::rehearse {

/// One directive: `name args;` or `name args { block }`.
struct nginx_directive {
  int line = 0;
  std::string name;
  std::vector<std::string> args;  ///< unquoted
  bool has_block = false;
  std::vector<nginx_directive> block;
};

struct nginx_config {
  std::string file;
  std::vector<nginx_directive> main;  ///< the main context
};

/// Parses text; throws config_error("FILE:LINE: ...") on unbalanced braces, a missing ';' or an unterminated quote.
nginx_config parse_nginx_config(const std::string& text, const std::string& file);
nginx_config load_nginx_config(const std::filesystem::path& file);

/// An nginx time ("60s", "1h", "90", "1m30s", "500ms") in milliseconds; nullopt if it is not one.
std::optional<long long> nginx_time_ms(const std::string& text);
/// An nginx size ("1m", "0", "1g", "512k") in bytes; nullopt if it is not one.
std::optional<long long> nginx_size_bytes(const std::string& text);

/// Findings sorted by line.
std::vector<config_finding> lint_nginx_config(const nginx_config& cfg);

struct nginx_lab : lab_target {
  std::string listen_address;     ///< "127.0.0.1:PORT" for the (first) TLS listener
  std::filesystem::path run_dir;  ///< pid, logs and temporary files
  std::function<std::string()> spare_address;  ///< a fresh "127.0.0.1:PORT" for other listeners
};

struct nginx_rewrite {
  std::string text;
  std::vector<std::string> changes;
};

/// The lab version of a user's config: process settings (user, pid, daemon, logs, temporary paths) set for the lab,
/// listeners, certificates, upstreams and names pointed at the lab, timeouts scaled; every other directive,
/// mistakes included, kept, each marked with its line in the user's file.
nginx_rewrite rewrite_nginx_for_lab(const nginx_config& cfg, const nginx_lab& lab);

}  // namespace exbridge::rehearse
