// Fault injection: rules that make fake-exchange misbehave the way real migrations break (slow answers,
// resets mid-body, truncated bodies, ASP.NET errors, executionTimeout, slow handshakes, missing
// close_notify). Rules come from TOML ([[fault]] tables, in --faults or --config files) or from the
// control API, and may be replaced while the server runs.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.hpp"

namespace exbridge::fake_exchange {

enum class fault_kind {
  delay,              ///< wait `duration` before the response header
  throttle,           ///< send the body at `rate` bytes per (virtual) second
  stall,              ///< after `after_bytes` of body, send nothing for `duration`
  reset,              ///< after `after_bytes` of body, TCP RST (SO_LINGER 0, then close)
  truncate,           ///< after `after_bytes` of body, close with TLS close_notify
  error500,           ///< ASP.NET's "Server Error in '/EWS' Application." page, HTTP 500
  error503,           ///< http.sys's 503 Service Unavailable (under /rpc/: "503 RPC Error")
  execution_timeout,  ///< no answer for `duration` (ASP.NET executionTimeout, 110 s), then "Request timed out." 500
  slow_handshake,     ///< wait `duration` before answering the ClientHello (matches connections, not requests)
  no_close_notify,    ///< after `after_bytes` of body (default: the whole response), close without close_notify
};

std::string_view fault_kind_name(fault_kind kind);

struct fault_action {
  fault_kind kind = fault_kind::delay;
  scaled_clock::duration duration{};        ///< delay, stall, execution_timeout, slow_handshake
  std::optional<std::uint64_t> after_bytes;  ///< stall, reset, truncate, no_close_notify
  double rate = 0;                           ///< throttle: body bytes per virtual second
};

struct fault_rule {
  std::string name;         ///< names the rule in logs and /stats (default "rule-N")
  std::string path;         ///< path prefix, case-insensitive ("" = any)
  std::string operation;    ///< EWS operation or RPC method ("" = any)
  std::string user;         ///< authenticated user's e-mail address, case-insensitive ("" = any)
  std::uint64_t nth = 0;    ///< only the Nth request matching the above (0 = every one)
  double percent = 100;     ///< fire on this share of the matches, drawn from a generator seeded with `seed`
  std::uint64_t seed = 1;
  std::uint64_t times = 0;  ///< fire at most this often (0 = no limit)
  fault_action action;
  std::string where;        ///< "SOURCE:LINE" it came from, for messages
};

/// A rule that fired for one request or connection.
struct fault_hit {
  std::string rule;
  fault_action action;
  std::string describe() const;  ///< "rule-name:action" for the log line
};

/// The rules in force, thread-safe: the server matches on its own threads, the control API replaces
/// rules on its own. Matching is deterministic for a given order of requests (seeded percentages).
class fault_injector {
 public:
  void replace(std::vector<fault_rule> rules);
  std::vector<fault_rule> rules() const;

  /// The first rule (in file order) that fires for this request, if any. Connection rules never match here.
  std::optional<fault_hit> match_request(std::string_view path, std::string_view operation, std::string_view user);
  /// The first slow_handshake rule that fires for a new connection (`nth` counts connections).
  std::optional<fault_hit> match_connection();

 private:
  struct state {
    fault_rule rule;
    std::uint64_t matched = 0;
    std::uint64_t fired = 0;
    std::mt19937_64 random;
  };
  std::optional<fault_hit> fire(state& s);

  mutable std::mutex mutex_;
  std::vector<state> rules_;
};

/// Parses a TOML document holding [[fault]] tables, or a JSON document of the same shape
/// ({"fault": [ {...} ]}), as PUT /faults receives them. Throws config_error.
std::vector<fault_rule> parse_fault_document(std::string_view text, const std::string& source);

/// Reads a --faults file (TOML or JSON). Throws config_error naming the file and line.
std::vector<fault_rule> load_fault_file(const std::string& file);

/// The rules as JSON ({"fault": [...]}, durations as "1500ms"), accepted back by parse_fault_document.
std::string fault_rules_json(const std::vector<fault_rule>& rules);

}  // namespace exbridge::fake_exchange
