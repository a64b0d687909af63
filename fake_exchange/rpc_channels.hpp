// Outlook Anywhere's two channels as Exchange 2007's RPC proxy serves them, on one fake-exchange connection
// each: the IN channel (RPC_IN_DATA: the client's PDUs, read as they stream and never answered while healthy)
// and the OUT channel (RPC_OUT_DATA: a 200 header with a 1 GB Content-Length, then PDUs until the channel
// ends). Both join one virtual connection by its cookie (virtual_connection.hpp holds the protocol); these
// coroutines do the I/O, apply the fault rules in force and record how each channel ended.
#pragma once

#include <cstdint>
#include <optional>

#include "fake_exchange/connection.hpp"
#include "fake_exchange/rpc_proxy.hpp"
#include "fake_exchange/server.hpp"
#include "fake_exchange/virtual_connection.hpp"

namespace exbridge::fake_exchange {

/// What a channel needs from its server and its connection.
struct channel_env {
  connection& c;
  const server_options& options;
  server_stats& stats;
  std::shared_ptr<vc_table> connections;  ///< shared: a channel's frame may outlive the server at shutdown
};

/// An admitted RPC_IN_DATA whose body is being sent: reads it PDU by PDU into its virtual connection until the
/// client closes it, sends all it declared, or a fault or protocol error ends it.
net::awaitable<connection_end> serve_in_channel(channel_env env, http::request_parser<http::buffer_body>& parser,
                                                std::uint16_t port, const std::optional<fault_hit>& hit,
                                                request_record& rec);

/// An admitted RPC_OUT_DATA: reads CONN/A1 from its body, sends `header` (200 Success, application/rpc, 1 GB),
/// then the virtual connection's PDUs and a ping whenever the channel was quiet for the ping interval.
net::awaitable<connection_end> serve_out_channel(channel_env env, http::request_parser<http::buffer_body>& parser,
                                                 response_t& header, std::uint16_t port,
                                                 const std::optional<fault_hit>& hit, request_record& rec);

}  // namespace exbridge::fake_exchange
