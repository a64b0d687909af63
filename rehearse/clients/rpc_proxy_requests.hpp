// The HTTP side of Outlook Anywhere as Windows' RPC runtime speaks it to rpcproxy.dll ([MS-RPCH] 2.1.2.1):
// the channel requests (RPC_IN_DATA, RPC_OUT_DATA) with Windows' headers, the unauthenticated probe that learns
// the offered schemes, per-connection NTLM on zero-length requests (or Basic on every request), and what each
// refusal means. Shared by every Outlook Anywhere client rehearse plays: the idle hold, the mailbox migration,
// preflight.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "rehearse/clients/exo_connection.hpp"

namespace exbridge::rehearse {

class rpc_proxy_requests {
 public:
  /// Requests for /rpc/rpcproxy.dll?<rpc_server>:<port>.
  rpc_proxy_requests(const client_settings& s, unsigned port);

  bool ntlm() const { return s_.auth == "ntlm"; }
  /// The Authorization a channel request carries: Basic on each, nothing with NTLM (the connection is).
  std::string credentials() const;
  /// An echo-sized request (0..16 body bytes): the probe, NTLM's legs, the echo.
  http::request<http::string_body> small_request(const char* method, std::string body,
                                                 const std::string& authorization) const;
  /// A channel request's header: its Content-Length is what the channel may carry, not what is sent now.
  http::request<http::empty_body> channel_header(const char* method, std::uint64_t length) const;

  /// The unauthenticated probe: a zero-length RPC_IN_DATA must get 401 naming the schemes; fails when the
  /// step's scheme is not among them.
  net::awaitable<std::optional<failure>> probe(exo_connection& conn);
  /// NTLM on zero-length requests of this connection, as Windows authenticates each channel's connection; a
  /// no-op with Basic.
  net::awaitable<std::optional<failure>> authenticate(exo_connection& conn, const char* method);

  failure refused() const;
  /// The connection NTLM authenticated closed before its channel request could use it.
  static failure lost_ntlm_connection(const char* channel);
  /// http_failure(), plus what rpcproxy.dll's own "503 RPC Error: <hex>" means.
  failure rpc_failure(const response_t& res, const std::string& what) const;

  const std::string& target() const { return target_; }
  const std::vector<std::string>& offered() const { return offered_; }

 private:
  template <class Request>
  void windows_headers(Request& req, const std::string& authorization) const;

  const client_settings& s_;
  unsigned port_;
  std::string target_;
  std::vector<std::string> offered_;
};

}  // namespace exbridge::rehearse
