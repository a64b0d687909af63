// The address book (NSPI, [MS-OXNSPI]) as a 2007 mailbox server answers it over RPC over HTTP on port 6004:
// NspiBind opens a session and returns its context handle, NspiUnbind closes it. Pure: NDR request stubs in,
// NDR response stubs (or an RPC fault status) out, so the decisions are unit-tested without a connection.
//
// Not served yet: the table and property calls (NspiUpdateStat onward, opnums 2-20). They get the fault
// nca_s_op_rng_error, which clients report as "the procedure number is out of range" -- a clean refusal, where a
// real 2007 server would answer; rehearse's migration does not need them (it reaches the mailbox by EMSMDB).
#pragma once

#include <array>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <variant>

#include "fake_exchange/rpc_call.hpp"

namespace exbridge::fake_exchange {

/// Error codes NSPI returns ([MS-OXNSPI] 2.2.1.2, values from [MS-OXCDATA] 2.4).
namespace nspi_ec {
inline constexpr std::uint32_t success = 0;
inline constexpr std::uint32_t unbind_success = 1;
inline constexpr std::uint32_t invalid_codepage = 0x8004011E;
}  // namespace nspi_ec

/// One association's NSPI sessions.
class nspi_server {
 public:
  /// `server_guid`: the GUID NspiBind hands back (stable per server).
  explicit nspi_server(const std::array<std::uint8_t, 16>& server_guid) : server_guid_(server_guid) {}

  call_result call(std::uint16_t opnum, std::string_view stub);
  std::size_t sessions() const { return handles_.size(); }

 private:
  call_result bind(std::string_view stub);
  call_result unbind(std::string_view stub);

  std::array<std::uint8_t, 16> server_guid_;
  std::set<context_handle> handles_;
};

/// NSPI's opnums run 0 (NspiBind) to 20 (NspiResolveNamesW).
inline constexpr std::uint16_t nspi_last_opnum = 20;

}  // namespace exbridge::fake_exchange
