// The store (EMSMDB, [MS-OXCRPC]) as a 2007 mailbox server answers it over RPC over HTTP on port 6001:
// EcDoConnectEx opens a session for the authenticated user's mailbox and returns its context handle (CXH),
// EcDoRpcExt2 carries the session's remote operations (store.hpp) in extended buffers, EcDoDisconnect closes it.
// Pure: NDR request stubs in, NDR response stubs or an RPC fault status out, like nspi.hpp.
//
// Not served: the older and the notification calls (EcDoConnect, EcDoRpc, EcRRegisterPushNotification, ...).
// They get the fault nca_s_op_rng_error -- a clean refusal, never a hang.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "fake_exchange/exchange_config.hpp"
#include "fake_exchange/nspi.hpp"
#include "fake_exchange/store.hpp"

namespace exbridge::fake_exchange {

/// One association's store sessions.
class emsmdb_server {
 public:
  explicit emsmdb_server(const exchange_config* server) : server_(server) {}

  /// A call by `caller`, the user RPC-level authentication established.
  call_result call(std::uint16_t opnum, std::string_view stub, const user& caller);
  std::size_t sessions() const { return sessions_.size(); }

 private:
  call_result connect(std::string_view stub, const user& caller);
  call_result disconnect(std::string_view stub);
  call_result rpc_ext2(std::string_view stub);

  const exchange_config* server_;
  std::map<context_handle, store_session> sessions_;
  std::uint16_t next_index_ = 1;  ///< picxr: the session's index on this server
};

}  // namespace exbridge::fake_exchange
