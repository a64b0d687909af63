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
// authentication is refused with fault ERROR_ACCESS_DENIED (5), flagged did-not-execute. RPC-level NTLM
// (auth_type 10) is the next step of this endpoint; until then a bind that asks for it gets bind_nak
// "authentication type not recognized" (8), which clients report as such.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/dcerpc.hpp"

namespace exbridge::fake_exchange {

/// The interfaces of Exchange 2007's mailbox server that RPC over HTTP reaches.
enum class rpc_interface { emsmdb, nspi, rfr };
std::string_view interface_name(rpc_interface i);

/// Which interfaces a port serves (6001: EMSMDB; 6002: RFR; 6004: NSPI and RFR).
std::vector<rpc_interface> interfaces_on_port(std::uint16_t port);

class rpc_endpoint {
 public:
  explicit rpc_endpoint(std::uint16_t port) : port_(port) {}

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

  /// The largest fragment either side may use (Windows' default for connection-oriented transports).
  static constexpr std::uint16_t max_fragment = 5840;

 private:
  std::optional<std::vector<std::string>> bind(const dcerpc::pdu& p);
  std::optional<std::vector<std::string>> request(const dcerpc::pdu& p);
  std::optional<std::vector<std::string>> fail(std::string why);
  std::optional<std::vector<std::string>> nak_and_close(std::uint32_t call_id, std::uint16_t why, std::string error);

  std::uint16_t port_;
  bool bound_ = false;
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
