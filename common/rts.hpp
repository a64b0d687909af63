// RTS PDUs of RPC over HTTP v2 ([MS-RPCH] 2.2.3.6, 2.2.4): the control PDUs that open, keep alive,
// flow-control and recycle an Outlook Anywhere virtual connection. A pure codec over bytes, used by
// fake-exchange's RPC proxy, rehearse's Outlook Anywhere client and exbridge (which reads the virtual-
// connection cookie of CONN/A1 and CONN/B1 to pair a connection's channels on one server).
//
// Wire facts (all little-endian): a 20-byte header -- the common DCE/RPC header (rpc_vers 5, minor 0,
// PTYPE 20, pfc_flags FIRST|LAST, data representation 10 00 00 00, frag_length, auth_length 0, call_id 0)
// then Flags u16 and NumberOfCommands u16 -- and the commands back to back, each a u32 type and a fixed-size
// body (2.2.3.5), in an order that identifies the PDU (2.2.4). RTS PDUs are never fragmented.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace exbridge::rts {

/// The header's Flags ([MS-RPCH] 2.2.3.6.1).
enum flag : std::uint16_t {
  none = 0x0000,
  ping = 0x0001,
  other_cmd = 0x0002,
  recycle_channel = 0x0004,
  in_channel = 0x0008,
  out_channel = 0x0010,
  eof = 0x0020,
  echo = 0x0040,
};

/// An RTS cookie (2.2.3.1): 16 opaque bytes; Windows uses a UUID.
using cookie = std::array<std::uint8_t, 16>;

/// The commands ([MS-RPCH] 2.2.3.5.1 - 2.2.3.5.15), each with its body.
struct receive_window_size { std::uint32_t bytes = 0; };
struct flow_control_ack {
  std::uint32_t bytes_received = 0;
  std::uint32_t available_window = 0;
  cookie channel_cookie{};
};
struct connection_timeout { std::uint32_t milliseconds = 0; };
struct cookie_command { cookie value{}; };
struct channel_lifetime { std::uint32_t bytes = 0; };
struct client_keepalive { std::uint32_t milliseconds = 0; };
struct version { std::uint32_t value = 1; };
struct empty {};
struct padding { std::uint32_t count = 0; };  ///< followed by `count` bytes on the wire (their value is ignored)
struct negative_ance {};
struct ance {};
struct client_address {
  bool ipv6 = false;
  std::array<std::uint8_t, 16> address{};  ///< the first 4 bytes for IPv4
};
struct association_group_id { cookie value{}; };
/// Forwarding destinations (2.2.3.3).
enum class forward_destination : std::uint32_t { client = 0, in_proxy = 1, server = 2, out_proxy = 3 };
struct destination { forward_destination to = forward_destination::client; };
struct ping_traffic_sent_notify { std::uint32_t bytes = 0; };

using command = std::variant<receive_window_size, flow_control_ack, connection_timeout, cookie_command, channel_lifetime,
                             client_keepalive, version, empty, padding, negative_ance, ance, client_address,
                             association_group_id, destination, ping_traffic_sent_notify>;

/// One RTS PDU: its flags and commands, in order.
struct pdu {
  std::uint16_t flags = none;
  std::vector<command> commands;
};

inline constexpr std::size_t header_size = 20;
inline constexpr std::uint8_t ptype_rts = 20;

/// A sender's available window on a channel once an ack arrives ([MS-RPCH] 3.2.1.5.1.2):
/// AvailableWindow from the ack minus what was sent since the ack's BytesReceived.
std::uint32_t sender_available_window(const flow_control_ack& ack, std::uint32_t bytes_sent);

/// The wire form of `p`. Throws std::length_error past 65,535 bytes (frag_length is 16 bits).
std::string encode(const pdu& p);

/// Why bytes are not an RTS PDU (decode's error).
struct decode_error {
  std::string what;
};

/// Parses one whole RTS PDU (exactly frag_length bytes). Refuses anything 2.2.3.6 does not allow: another
/// version or PTYPE, fragment flags other than FIRST|LAST, another data representation, an auth trailer, a
/// frag_length other than the input's size, a call_id other than 0, unknown command types, truncated or extra
/// bytes, padding above 0xFFFF.
std::variant<pdu, decode_error> decode(std::span<const std::uint8_t> bytes);
std::variant<pdu, decode_error> decode(std::string_view bytes);

/// The size of the PDU (of any type: RTS or DCE/RPC) at the start of `bytes`, from the common header's
/// frag_length, once its first 10 bytes are there; nullopt before. RPC over HTTP sends PDUs back to back in
/// a channel's body, so this is how a body is cut into PDUs.
std::optional<std::size_t> pdu_length(std::span<const std::uint8_t> bytes);
/// The PTYPE of the PDU at the start of `bytes` (nullopt when fewer than 3 bytes are there).
std::optional<std::uint8_t> pdu_type(std::span<const std::uint8_t> bytes);

/// Cuts a channel's body into whole PDUs as its bytes arrive in pieces of any size.
class pdu_splitter {
 public:
  void append(const char* data, std::size_t n) { pending_.append(data, n); }
  /// The next whole PDU, or nullopt until more bytes arrive. A frag_length shorter than the 16-byte common
  /// header cannot be framed: bad() turns true and nothing more comes out.
  std::optional<std::string> next();
  bool bad() const { return bad_; }
  std::size_t buffered() const { return pending_.size() - used_; }

 private:
  std::string pending_;
  std::size_t used_ = 0;
  bool bad_ = false;
};

// --- the named PDUs of [MS-RPCH] 2.2.4 that the client, the proxies and the server exchange ----------------------

/// Which named PDU a decoded one is (by its flags, command count and command types, 2.2.4).
enum class kind {
  unknown,
  conn_a1,        ///< client -> outbound proxy: Version, Cookie(VC), Cookie(OUT channel), ReceiveWindowSize
  conn_a3,        ///< outbound proxy -> client: ConnectionTimeout
  conn_b1,        ///< client -> inbound proxy: Version, Cookie(VC), Cookie(IN channel), ChannelLifetime,
                  ///< ClientKeepalive, AssociationGroupId
  conn_c2,        ///< outbound proxy -> client: Version, ReceiveWindowSize, ConnectionTimeout
  keep_alive,     ///< client -> inbound proxy: ClientKeepalive (flags OTHER_CMD)
  ping,           ///< no commands, flags PING
  echo,           ///< no commands, flags ECHO
  flow_control_ack,                   ///< FlowControlAck (flags OTHER_CMD)
  flow_control_ack_with_destination,  ///< Destination, FlowControlAck (flags OTHER_CMD)
  ping_traffic_sent_notify,           ///< PingTrafficSentNotify (flags OTHER_CMD)
  // Channel recycling (2.2.4.10 - 2.2.4.45). A client always sends the R1-named PDUs; a proxy that holds the
  // virtual connection itself (as one Client Access server does) answers with the R2 sequence, and the R1 and R2
  // forms of these PDUs are byte-identical.
  in_r1_a1,   ///< client -> inbound proxy, first on a new IN channel (RECYCLE_CHANNEL): Version, Cookie(VC),
              ///< Cookie(predecessor IN channel), Cookie(successor IN channel)
  in_r2_a4,   ///< outbound proxy -> client on OUT: Destination(FDClient) -- the successor IN channel is ready
  in_r1_a5,   ///< client -> inbound proxy, last on the old IN channel: Cookie(successor IN channel)
  out_r2_a2,  ///< outbound proxy -> client on OUT (RECYCLE_CHANNEL): Destination(FDClient) -- open a new OUT channel
  out_r1_a3,  ///< client -> outbound proxy, first on the new OUT channel (RECYCLE_CHANNEL): Version, Cookie(VC),
              ///< Cookie(predecessor OUT channel), Cookie(successor OUT channel), ReceiveWindowSize
  out_r2_a6,  ///< outbound proxy -> client on the old OUT channel: Destination(FDClient), ANCE
  out_r2_a7,  ///< client -> inbound proxy on IN (OUT_CHANNEL): Destination(FDServer), Cookie(successor), Version
  out_r2_b3,  ///< outbound proxy -> client, last on the old OUT channel (EOF): ANCE
  out_r2_c1,  ///< client -> outbound proxy, second on the new OUT channel (PING): Empty (or Padding)
};
kind identify(const pdu& p);
std::string_view kind_name(kind k);

pdu conn_a1(const cookie& virtual_connection, const cookie& out_channel, std::uint32_t receive_window);
pdu conn_a3(std::uint32_t connection_timeout_ms);
pdu conn_b1(const cookie& virtual_connection, const cookie& in_channel, std::uint32_t channel_lifetime_bytes,
            std::uint32_t client_keepalive_ms, const cookie& association_group);
pdu conn_c2(std::uint32_t receive_window, std::uint32_t connection_timeout_ms);
pdu ping_pdu();
pdu echo_pdu();
pdu flow_control_ack_pdu(const flow_control_ack& ack);
pdu flow_control_ack_with_destination_pdu(forward_destination to, const flow_control_ack& ack);

pdu in_r1_a1(const cookie& virtual_connection, const cookie& predecessor, const cookie& successor);
pdu in_r2_a4();
pdu in_r1_a5(const cookie& successor);
pdu out_r2_a2();
pdu out_r1_a3(const cookie& virtual_connection, const cookie& predecessor, const cookie& successor,
              std::uint32_t receive_window);
pdu out_r2_a6();
pdu out_r2_a7(const cookie& successor);
pdu out_r2_b3();
pdu out_r2_c1();

/// The fields of IN_R1/A1 and OUT_R1/A3: which channel a new one replaces.
struct recycle_fields {
  cookie virtual_connection{};
  cookie predecessor{};
  cookie successor{};
  std::uint32_t receive_window = 0;  ///< OUT_R1/A3 only
};
std::optional<recycle_fields> as_in_r1_a1(const pdu& p);
std::optional<recycle_fields> as_out_r1_a3(const pdu& p);
/// The successor channel's cookie IN_R1/A5 and OUT_R2/A7 carry.
std::optional<cookie> successor_of(const pdu& p);
/// The virtual-connection cookie of a channel's first PDU -- CONN/A1, CONN/B1, IN_R1/A1 or OUT_R1/A3 -- what a
/// proxy pairs a virtual connection's channels by; nullopt for any other PDU.
std::optional<cookie> virtual_connection_of(const pdu& p);

/// The fields of CONN/A1 and CONN/B1 that the receiving side acts on.
struct conn_a1_fields {
  cookie virtual_connection{};
  cookie out_channel{};
  std::uint32_t receive_window = 0;
};
struct conn_b1_fields {
  cookie virtual_connection{};
  cookie in_channel{};
  std::uint32_t channel_lifetime = 0;
  std::uint32_t client_keepalive = 0;
  cookie association_group{};
};
std::optional<conn_a1_fields> as_conn_a1(const pdu& p);
std::optional<conn_b1_fields> as_conn_b1(const pdu& p);

/// "0123…": a cookie as 32 hex digits, for logs.
std::string to_hex(const cookie& c);

}  // namespace exbridge::rts
