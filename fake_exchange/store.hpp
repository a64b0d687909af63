// One EMSMDB session's side of the remote operations ([MS-OXCROPS], [MS-OXCSTOR]): its server objects, the
// handle table each ROP buffer carries, and the ROPs served so far -- RopLogon to the session owner's own private
// mailbox and RopRelease. Pure: a ROP request buffer in, a ROP response buffer out.
//
// A ROP not served yet gets a response with ecNotSupported (0x80040102) and ends the buffer there: a ROP's
// request length depends on its id, so the ones after it cannot be found (the client sees fewer responses than
// it sent, and stops). The table, folder and FastTransfer ROPs come next (issue 19 goes on).
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <variant>

#include "common/rop_buffer.hpp"
#include "fake_exchange/exchange_config.hpp"

namespace exbridge::fake_exchange {

/// The store's return codes -- of EcDoConnectEx, EcDoRpcExt2 and the ROPs ([MS-OXCDATA] 2.4, [MS-OXCSTOR]
/// 3.2.5.1.3).
namespace mapi_ec {
inline constexpr std::uint32_t none = 0;
inline constexpr std::uint32_t unknown_user = 0x000003EB;
inline constexpr std::uint32_t rpc_format = 0x000004B6;
inline constexpr std::uint32_t buffer_too_small = 0x0000047D;
inline constexpr std::uint32_t not_supported = 0x80040102;
inline constexpr std::uint32_t login_failure = 0x80040111;
inline constexpr std::uint32_t access_denied = 0x80070005;
}  // namespace mapi_ec

/// A folder ID ([MS-OXCDATA] 2.2.1.1): ReplicaId 1, then the 48-bit global counter big-endian, as a u64 read
/// little-endian from the wire.
std::uint64_t folder_id(std::uint64_t global_counter);

class store_session {
 public:
  store_session(const exchange_config& server, const user& owner) : server_(&server), owner_(&owner) {}

  /// Runs one ROP request buffer. Returns the response buffer, or the EcDoRpcExt2 return value that fails the
  /// whole call (ecRpcFormat for a buffer that cannot be parsed).
  std::variant<std::string, std::uint32_t> execute(const rop::request_buffer& in);

  const user& owner() const { return *owner_; }
  std::size_t objects() const { return objects_.size(); }

 private:
  enum class kind { logon };
  struct object {
    kind what = kind::logon;
  };

  const exchange_config* server_;
  const user* owner_;
  std::map<std::uint32_t, object> objects_;  ///< server object handles
  std::uint32_t next_handle_ = 0x10;
};

}  // namespace exbridge::fake_exchange
