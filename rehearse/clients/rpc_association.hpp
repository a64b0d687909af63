// A DCE/RPC association over one Outlook Anywhere virtual connection, as the migration service's MAPI provider
// opens it: a bind to the interface with NTLM as its security provider (the bind's NEGOTIATE, the bind_ack's
// CHALLENGE, rpc_auth_3's AUTHENTICATE; [MS-RPCE] 3.3.1.5.2), then calls whose fragments are signed and sealed
// at PKT_PRIVACY, each response reassembled from its fragments ([MS-RPCE] 2.2.2.6). Exchange 2007's EMSMDB
// refuses every call without RPC-level authentication.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "common/dcerpc.hpp"
#include "common/dcerpc_auth.hpp"
#include "rehearse/clients/rpch_connection.hpp"

namespace exbridge::rehearse {

class rpc_association {
 public:
  rpc_association(rpch_connection& vc, const client_settings& s) : vc_(vc), s_(s) {}

  /// Binds to `interface` and authenticates the association with the step's credentials at `level`.
  net::awaitable<std::optional<failure>> bind(const dcerpc::syntax_id& interface,
                                              std::uint8_t level = dcerpc::authn::level_privacy);
  /// One call: its response stub, or why there is none (a fault is "rpc-fault" with its status).
  net::awaitable<std::variant<std::string, failure>> call(std::uint16_t opnum, std::string_view stub,
                                                          scaled_clock::duration limit);

 private:
  rpch_connection& vc_;
  const client_settings& s_;
  dcerpc::security_context sec_{dcerpc::authn::winnt, dcerpc::authn::level_privacy, 1};
  std::optional<ntlm_session> session_;
  std::uint16_t max_xmit_ = 4280;
  std::uint32_t next_call_ = 1;
};

/// What an RPC fault status is ("rpc_s_access_denied (0x00000005)").
std::string rpc_status_name(std::uint32_t status);

}  // namespace exbridge::rehearse
