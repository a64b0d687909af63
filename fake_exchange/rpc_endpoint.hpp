// The mailbox server's RPC endpoint behind fake-exchange's RPC proxy: one DCE/RPC association per virtual
// connection. It takes the client's DCE/RPC PDUs as they leave the IN channel and returns the PDUs to send on
// the OUT channel -- pure, without I/O, so its decisions are unit-tested.
//
// What Exchange 2007's endpoints offer over RPC over HTTP: port 6001 is the store (EMSMDB
// a4f1db00-ca47-1067-b31f-00dd010662da v0.81), 6004 the directory proxy (NSPI f5cc5a18-4264-101a-8c59-08002b2f8426
// v56.0), 6002 the referral service (RFR 1544f5e0-613c-11d1-93df-00c04fd7bd09 v1.0). A bind to an interface the
// port does not serve gets, as from Windows, a bind_ack whose context is provider_rejection /
// abstract_syntax_not_supported ([MS-RPCE] 3.3.1.5.6).
//
// Authentication: both interfaces are registered secure-only, so a call on an association without RPC
// authentication is refused with fault ERROR_ACCESS_DENIED (5), flagged did-not-execute. NTLM (auth_type 10) is
// offered at every level a 2007 store accepts: CONNECT (the association is authenticated, PDUs carry no
// verifier), CALL and PKT (taken as PKT, each fragment signed), PKT_INTEGRITY (signed) and PKT_PRIVACY (signed
// and encrypted). The three legs are bind (NEGOTIATE) -> bind_ack (CHALLENGE) -> rpc_auth_3 (AUTHENTICATE).
// What is refused, and how:
//   * another authentication service -- SPNEGO (9), Kerberos (16), ... -- gets bind_nak 8 "authentication type
//     not recognized" (a real 2007 server offers SPNEGO too, which needs a domain controller the lab lacks);
//   * an authentication level outside 2-6, or a bind token that is not an NTLM NEGOTIATE, gets bind_nak 0;
//   * a wrong password or unknown user in rpc_auth_3 (which has no answer of its own) leaves the association
//     unauthenticated: its calls get fault 5, as Windows answers them;
//   * a client without NTLMv2's extended session security at a signing level is refused the same way;
//   * a fragment whose verifier is missing or does not verify gets fault 5 or RPC_S_SEC_PKG_ERROR (0x721) and
//     the association closes, as Windows drops a connection whose integrity failed.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/dcerpc.hpp"
#include "common/dcerpc_auth.hpp"
#include "common/ntlm.hpp"
#include "common/ntlm_session.hpp"
#include "fake_exchange/nspi.hpp"
#include "fake_exchange/emsmdb.hpp"
#include "fake_exchange/exchange_config.hpp"

namespace exbridge::fake_exchange {

/// The interfaces of Exchange 2007's mailbox server that RPC over HTTP reaches.
enum class rpc_interface { emsmdb, nspi, rfr };
std::string_view interface_name(rpc_interface i);

/// Which interfaces a port serves (6001: EMSMDB; 6002: RFR; 6004: NSPI and RFR).
std::vector<rpc_interface> interfaces_on_port(std::uint16_t port);

class rpc_endpoint {
 public:
  /// `server`: who may log on and what the mailboxes hold (nullptr: nobody may); it outlives the endpoint.
  rpc_endpoint(std::uint16_t port, const exchange_config* server);

  /// One whole DCE/RPC PDU from the client. Returns the PDUs to send back, in order (none for auth3 or a
  /// fragment that is not the last). A PDU that breaks the protocol (undecodable, a request before bind,
  /// a second bind) returns nullopt: the caller closes the virtual connection, as Windows closes the
  /// association.
  std::optional<std::vector<std::string>> receive(std::span<const std::uint8_t> pdu);

  /// Why the last receive() returned nullopt, or why the association is closing.
  const std::string& error() const { return error_; }
  /// True once a bind_nak went out: Windows closes the connection after it.
  bool closing() const { return closing_; }
  /// The fragment size agreed at bind: what the server sends at most.
  std::uint16_t max_xmit_frag() const { return max_xmit_frag_; }
  bool bound() const { return bound_; }
  std::uint64_t calls() const { return calls_; }
  /// One line for the channel's log: the association's authentication and calls, e.g. "NTLM PKT_PRIVACY
  /// alex.wilber@contoso.example, 4 calls", "no RPC authentication, 1 call", or why the logon failed; then why
  /// the association closed, if it did.
  std::string summary() const;
  /// Why RPC-level authentication failed or was refused (empty when it did not).
  const std::string& auth_error() const { return auth_error_; }
  /// The user RPC-level NTLM authenticated, once rpc_auth_3 succeeded.
  const user* authenticated_user() const { return user_; }
  /// The association's authentication level (0 without RPC authentication).
  std::uint8_t auth_level() const { return security_ ? security_->level : 0; }

  /// The largest fragment either side may use (Windows' default for connection-oriented transports).
  static constexpr std::uint16_t max_fragment = 5840;

 private:
  std::optional<std::vector<std::string>> bind(const dcerpc::pdu& p);
  std::optional<std::vector<std::string>> request(const dcerpc::pdu& p);
  /// The CHALLENGE_MESSAGE for a bind's NEGOTIATE, or nullopt with the bind_nak reason and auth_error_ set.
  std::optional<std::string> start_authentication(const dcerpc::auth_verifier& a, std::uint16_t& nak_reason);
  void complete_authentication(const dcerpc::pdu& p);
  std::vector<std::string> answer(const dcerpc::pdu& p, const std::string& stub);
  std::vector<std::string> fault_and_close(std::uint32_t call_id, std::uint16_t context_id, std::uint32_t status,
                                           std::string why);
  std::optional<std::vector<std::string>> fail(std::string why);
  std::optional<std::vector<std::string>> nak_and_close(std::uint32_t call_id, std::uint16_t why, std::string error);

  std::uint16_t port_;
  const exchange_config* server_;
  bool bound_ = false;
  // RPC-level NTLM: the context the bind asked for, the challenge sent, and once rpc_auth_3 verified, the session.
  std::optional<dcerpc::security_context> security_;
  std::optional<ntlm_negotiate> negotiate_;
  std::array<std::uint8_t, 8> challenge_{};
  std::optional<ntlm_session> session_;
  const user* user_ = nullptr;
  std::string auth_error_;
  nspi_server nspi_;
  emsmdb_server emsmdb_;
  std::uint32_t assoc_group_id_ = 0;
  std::uint16_t max_xmit_frag_ = max_fragment;
  std::uint16_t max_recv_frag_ = max_fragment;
  std::map<std::uint16_t, rpc_interface> contexts_;  ///< accepted presentation contexts
  std::optional<std::uint32_t> partial_call_;  ///< a fragmented request being reassembled
  std::string partial_stub_;
  std::uint64_t calls_ = 0;
  bool closing_ = false;
  std::string error_;
};

}  // namespace exbridge::fake_exchange
