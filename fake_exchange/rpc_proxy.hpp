// Outlook Anywhere (RPC over HTTP v2, MS-RPCH) as Exchange 2007's RPC proxy shows it at the HTTP level:
// /rpc/rpcproxy.dll?<server>:<port> with RPC_IN_DATA and RPC_OUT_DATA. What it decides here, from the
// request header, is which kind of channel a request opens; rpc_channels.hpp serves the channels.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "fake_exchange/router.hpp"

namespace exbridge::fake_exchange {

/// What an RPC proxy request turns out to be.
enum class rpc_channel {
  none,  ///< answered by `response` alone (401, 404, 405, 503 RPC Error)
  echo,  ///< Content-Length <= 16: a proxy-discovery echo, answered with 200 and an echo RTS PDU
  in,    ///< RPC_IN_DATA with a real body: read PDU by PDU as it streams, never answered while healthy
  out,   ///< RPC_OUT_DATA: `response` is the 200 header of the channel's 1 GB body of PDUs
};

struct rpc_decision {
  rpc_channel channel = rpc_channel::none;
  http::response<http::string_body> response;  ///< the answer (for `in`: unused)
  std::string user;
  std::string operation;  ///< "RPC_IN_DATA" or "RPC_OUT_DATA" (the method), for the log and the stats
  std::uint16_t port = 0; ///< the mailbox server's port the channel names (6001, 6002 or 6004)
};

/// Echo requests carry at most this many body bytes (MS-RPCH 2.1.2.1.1: 0 to 0x10).
inline constexpr std::uint64_t rpc_echo_max_length = 16;

/// True for any target under /rpc/ (IIS's virtual directory, whose authentication applies to all of it).
bool is_rpc_path(std::string_view target);

/// Decides one request under /rpc/ from its header: IIS authentication first, then rpcproxy's checks
/// (method, the ValidPorts list: this server's names with ports 6001, 6002 and 6004).
rpc_decision route_rpc(const http::request_header<>& request, std::optional<std::uint64_t> content_length,
                       const exchange_config& config, connection_auth& connection);

/// The 20-byte RTS PDUs the stub sends: an echo (answer to proxy discovery) and a ping (OUT keep-alive).
std::string rts_echo_pdu();
std::string rts_ping_pdu();

/// rpcproxy's error answer: "HTTP/1.0 503 RPC Error: <hex>" (MS-RPCH 2.1.2.1.3), connection closed.
http::response<http::string_body> rpc_error_response(std::uint32_t code);

}  // namespace exbridge::fake_exchange
