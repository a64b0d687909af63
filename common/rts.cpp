// The RTS PDU codec (see rts.hpp); sections are [MS-RPCH]'s.
#include "common/rts.hpp"

#include <stdexcept>
#include <utility>

#include "common/le_bytes.hpp"

namespace exbridge::rts {
namespace {

enum command_type : std::uint32_t {
  t_receive_window_size = 0x0,
  t_flow_control_ack = 0x1,
  t_connection_timeout = 0x2,
  t_cookie = 0x3,
  t_channel_lifetime = 0x4,
  t_client_keepalive = 0x5,
  t_version = 0x6,
  t_empty = 0x7,
  t_padding = 0x8,
  t_negative_ance = 0x9,
  t_ance = 0xA,
  t_client_address = 0xB,
  t_association_group_id = 0xC,
  t_destination = 0xD,
  t_ping_traffic_sent_notify = 0xE,
};

constexpr std::uint32_t max_padding = 0xFFFF;  // 2.2.3.5.9: ConformanceCount 0 to 0xFFFF
constexpr std::size_t client_address_padding = 12;  // 2.2.3.2: 12 zero bytes after the address

using writer = le_writer;
using reader = le_reader;

void write_command(writer& w, const command& c) {
  std::visit(
      [&w](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, receive_window_size>) {
          w.u32(t_receive_window_size), w.u32(x.bytes);
        } else if constexpr (std::is_same_v<T, flow_control_ack>) {
          w.u32(t_flow_control_ack), w.u32(x.bytes_received), w.u32(x.available_window);
          w.bytes(x.channel_cookie.data(), x.channel_cookie.size());
        } else if constexpr (std::is_same_v<T, connection_timeout>) {
          w.u32(t_connection_timeout), w.u32(x.milliseconds);
        } else if constexpr (std::is_same_v<T, cookie_command>) {
          w.u32(t_cookie), w.bytes(x.value.data(), x.value.size());
        } else if constexpr (std::is_same_v<T, channel_lifetime>) {
          w.u32(t_channel_lifetime), w.u32(x.bytes);
        } else if constexpr (std::is_same_v<T, client_keepalive>) {
          w.u32(t_client_keepalive), w.u32(x.milliseconds);
        } else if constexpr (std::is_same_v<T, version>) {
          w.u32(t_version), w.u32(x.value);
        } else if constexpr (std::is_same_v<T, empty>) {
          w.u32(t_empty);
        } else if constexpr (std::is_same_v<T, padding>) {
          w.u32(t_padding), w.u32(x.count), w.zeros(x.count);
        } else if constexpr (std::is_same_v<T, negative_ance>) {
          w.u32(t_negative_ance);
        } else if constexpr (std::is_same_v<T, ance>) {
          w.u32(t_ance);
        } else if constexpr (std::is_same_v<T, client_address>) {
          w.u32(t_client_address), w.u32(x.ipv6 ? 1 : 0);
          w.bytes(x.address.data(), x.ipv6 ? 16 : 4);
          w.zeros(client_address_padding);
        } else if constexpr (std::is_same_v<T, association_group_id>) {
          w.u32(t_association_group_id), w.bytes(x.value.data(), x.value.size());
        } else if constexpr (std::is_same_v<T, destination>) {
          w.u32(t_destination), w.u32(static_cast<std::uint32_t>(x.to));
        } else if constexpr (std::is_same_v<T, ping_traffic_sent_notify>) {
          w.u32(t_ping_traffic_sent_notify), w.u32(x.bytes);
        }
      },
      c);
}

/// Reads one command, or says why it cannot.
std::variant<command, decode_error> read_command(reader& r) {
  if (!r.has(4)) return decode_error{"a command is cut short before its type"};
  const std::uint32_t type = r.u32();
  const auto need = [&r](std::size_t n, const char* name) -> std::optional<decode_error> {
    if (r.has(n)) return std::nullopt;
    return decode_error{std::string(name) + " command is cut short"};
  };
  switch (type) {
    case t_receive_window_size:
      if (auto e = need(4, "ReceiveWindowSize")) return *e;
      return receive_window_size{r.u32()};
    case t_flow_control_ack: {
      if (auto e = need(24, "FlowControlAck")) return *e;
      flow_control_ack a;
      a.bytes_received = r.u32();
      a.available_window = r.u32();
      r.bytes(a.channel_cookie.data(), a.channel_cookie.size());
      return a;
    }
    case t_connection_timeout:
      if (auto e = need(4, "ConnectionTimeout")) return *e;
      return connection_timeout{r.u32()};
    case t_cookie: {
      if (auto e = need(16, "Cookie")) return *e;
      cookie_command c;
      r.bytes(c.value.data(), c.value.size());
      return c;
    }
    case t_channel_lifetime:
      if (auto e = need(4, "ChannelLifetime")) return *e;
      return channel_lifetime{r.u32()};
    case t_client_keepalive:
      if (auto e = need(4, "ClientKeepalive")) return *e;
      return client_keepalive{r.u32()};
    case t_version:
      if (auto e = need(4, "Version")) return *e;
      return version{r.u32()};
    case t_empty:
      return empty{};
    case t_padding: {
      if (auto e = need(4, "Padding")) return *e;
      const std::uint32_t count = r.u32();
      if (count > max_padding) return decode_error{"Padding's ConformanceCount " + std::to_string(count) + " is over 0xFFFF"};
      if (auto e = need(count, "Padding")) return *e;
      r.skip(count);
      return padding{count};
    }
    case t_negative_ance:
      return negative_ance{};
    case t_ance:
      return ance{};
    case t_client_address: {
      if (auto e = need(4, "ClientAddress")) return *e;
      const std::uint32_t address_type = r.u32();
      if (address_type > 1) return decode_error{"ClientAddress has AddressType " + std::to_string(address_type)};
      client_address a;
      a.ipv6 = address_type == 1;
      const std::size_t n = a.ipv6 ? 16 : 4;
      if (auto e = need(n + client_address_padding, "ClientAddress")) return *e;
      r.bytes(a.address.data(), n);
      r.skip(client_address_padding);
      return a;
    }
    case t_association_group_id: {
      if (auto e = need(16, "AssociationGroupId")) return *e;
      association_group_id g;
      r.bytes(g.value.data(), g.value.size());
      return g;
    }
    case t_destination: {
      if (auto e = need(4, "Destination")) return *e;
      const std::uint32_t to = r.u32();
      if (to > 3) return decode_error{"Destination " + std::to_string(to) + " is not one of FDClient..FDOutProxy"};
      return destination{static_cast<forward_destination>(to)};
    }
    case t_ping_traffic_sent_notify:
      if (auto e = need(4, "PingTrafficSentNotify")) return *e;
      return ping_traffic_sent_notify{r.u32()};
    default:
      return decode_error{"unknown RTS command type " + std::to_string(type)};
  }
}

template <class T>
const T* get(const pdu& p, std::size_t i) {
  return i < p.commands.size() ? std::get_if<T>(&p.commands[i]) : nullptr;
}

}  // namespace

std::uint32_t sender_available_window(const flow_control_ack& ack, std::uint32_t bytes_sent) {
  // 3.2.1.5.1.2. Byte counts wrap modulo 2^32 alike on both sides, so the difference stays right.
  return ack.available_window - (bytes_sent - ack.bytes_received);
}

std::string encode(const pdu& p) {
  writer w;
  w.u8(5), w.u8(0), w.u8(ptype_rts), w.u8(0x03);  // rpc_vers, rpc_vers_minor, PTYPE, PFC_FIRST_FRAG|PFC_LAST_FRAG
  w.u8(0x10), w.u8(0), w.u8(0), w.u8(0);            // packed_drep: little-endian, ASCII, IEEE
  w.u16(0), w.u16(0), w.u32(0);                     // frag_length (below), auth_length, call_id
  w.u16(p.flags), w.u16(static_cast<std::uint16_t>(p.commands.size()));
  for (const auto& c : p.commands) write_command(w, c);
  std::string& out = w.text();
  if (out.size() > 0xFFFF) throw std::length_error("an RTS PDU larger than frag_length can say (65,535 bytes)");
  w.patch_u16(8, static_cast<std::uint16_t>(out.size()));
  return out;
}

std::variant<pdu, decode_error> decode(std::string_view bytes) {
  return decode(as_bytes(bytes));
}

std::variant<pdu, decode_error> decode(std::span<const std::uint8_t> bytes) {
  if (bytes.size() < header_size) return decode_error{"shorter than the 20-byte RTS header"};
  reader r(bytes);
  const std::uint8_t vers = r.u8(), minor = r.u8(), type = r.u8(), pfc = r.u8();
  if (vers != 5 || minor != 0) return decode_error{"RPC version " + std::to_string(vers) + "." + std::to_string(minor) + ", not 5.0"};
  if (type != ptype_rts) return decode_error{"PTYPE " + std::to_string(type) + ", not RTS (20)"};
  if (pfc != 0x03) return decode_error{"pfc_flags must be FIRST_FRAG|LAST_FRAG: RTS PDUs are never fragmented"};
  const std::uint32_t drep = r.u32();
  if (drep != 0x10) return decode_error{"data representation is not little-endian ASCII IEEE (10 00 00 00)"};
  const std::uint16_t frag_length = r.u16(), auth_length = r.u16();
  const std::uint32_t call_id = r.u32();
  if (frag_length != bytes.size()) {
    return decode_error{"frag_length " + std::to_string(frag_length) + " differs from the PDU's " +
                        std::to_string(bytes.size()) + " bytes"};
  }
  if (auth_length != 0) return decode_error{"an RTS PDU carries no authentication"};
  if (call_id != 0) return decode_error{"call_id must be 0 in an RTS PDU"};
  pdu p;
  p.flags = r.u16();
  const std::uint16_t count = r.u16();
  p.commands.reserve(count);
  for (std::uint16_t i = 0; i < count; ++i) {
    auto c = read_command(r);
    if (auto* e = std::get_if<decode_error>(&c)) return decode_error{"command " + std::to_string(i + 1) + ": " + e->what};
    p.commands.push_back(std::get<command>(std::move(c)));
  }
  if (r.left() != 0) return decode_error{std::to_string(r.left()) + " bytes after the last command"};
  return p;
}

std::optional<std::size_t> pdu_length(std::span<const std::uint8_t> bytes) {
  if (bytes.size() < 10) return std::nullopt;
  return static_cast<std::size_t>(bytes[8] | (bytes[9] << 8));
}

std::optional<std::uint8_t> pdu_type(std::span<const std::uint8_t> bytes) {
  if (bytes.size() < 3) return std::nullopt;
  return bytes[2];
}

std::optional<std::string> pdu_splitter::next() {
  if (bad_) return std::nullopt;
  const auto rest = as_bytes(std::string_view(pending_).substr(used_));
  const auto length = pdu_length(rest);
  if (!length) return std::nullopt;
  if (*length < 16) {
    bad_ = true;
    return std::nullopt;
  }
  if (*length > rest.size()) {
    if (used_ > 0) pending_.erase(0, std::exchange(used_, 0));  // keep the buffer from growing
    return std::nullopt;
  }
  std::string out = pending_.substr(used_, *length);
  used_ += *length;
  if (used_ == pending_.size()) pending_.clear(), used_ = 0;
  return out;
}

kind identify(const pdu& p) {
  const std::size_t n = p.commands.size();
  if (p.flags == ping && n == 0) return kind::ping;
  if (p.flags == echo && n == 0) return kind::echo;
  if (p.flags == none) {
    if (n == 4 && get<version>(p, 0) && get<cookie_command>(p, 1) && get<cookie_command>(p, 2) &&
        get<receive_window_size>(p, 3)) {
      return kind::conn_a1;
    }
    if (n == 1 && get<connection_timeout>(p, 0)) return kind::conn_a3;
    if (n == 6 && get<version>(p, 0) && get<cookie_command>(p, 1) && get<cookie_command>(p, 2) &&
        get<channel_lifetime>(p, 3) && get<client_keepalive>(p, 4) && get<association_group_id>(p, 5)) {
      return kind::conn_b1;
    }
    if (n == 3 && get<version>(p, 0) && get<receive_window_size>(p, 1) && get<connection_timeout>(p, 2)) {
      return kind::conn_c2;
    }
    if (n == 1 && get<destination>(p, 0)) return kind::in_r2_a4;
    if (n == 1 && get<cookie_command>(p, 0)) return kind::in_r1_a5;
    if (n == 2 && get<destination>(p, 0) && get<ance>(p, 1)) return kind::out_r2_a6;
  }
  if (p.flags == recycle_channel) {
    if (n == 4 && get<version>(p, 0) && get<cookie_command>(p, 1) && get<cookie_command>(p, 2) && get<cookie_command>(p, 3)) {
      return kind::in_r1_a1;
    }
    if (n == 5 && get<version>(p, 0) && get<cookie_command>(p, 1) && get<cookie_command>(p, 2) &&
        get<cookie_command>(p, 3) && get<receive_window_size>(p, 4)) {
      return kind::out_r1_a3;
    }
    if (n == 1 && get<destination>(p, 0)) return kind::out_r2_a2;
  }
  if (p.flags == out_channel && n == 3 && get<destination>(p, 0) && get<cookie_command>(p, 1) && get<version>(p, 2)) {
    return kind::out_r2_a7;
  }
  if (p.flags == eof && n == 1 && get<ance>(p, 0)) return kind::out_r2_b3;
  if (p.flags == ping && n == 1 && (get<empty>(p, 0) || get<padding>(p, 0))) return kind::out_r2_c1;
  if (p.flags == other_cmd) {
    if (n == 1 && get<client_keepalive>(p, 0)) return kind::keep_alive;
    if (n == 1 && get<flow_control_ack>(p, 0)) return kind::flow_control_ack;
    if (n == 2 && get<destination>(p, 0) && get<flow_control_ack>(p, 1)) return kind::flow_control_ack_with_destination;
    if (n == 1 && get<ping_traffic_sent_notify>(p, 0)) return kind::ping_traffic_sent_notify;
  }
  return kind::unknown;
}

std::string_view kind_name(kind k) {
  switch (k) {
    case kind::unknown: return "unknown RTS PDU";
    case kind::conn_a1: return "CONN/A1";
    case kind::conn_a3: return "CONN/A3";
    case kind::conn_b1: return "CONN/B1";
    case kind::conn_c2: return "CONN/C2";
    case kind::keep_alive: return "Keep-Alive";
    case kind::ping: return "Ping";
    case kind::echo: return "Echo";
    case kind::flow_control_ack: return "FlowControlAck";
    case kind::flow_control_ack_with_destination: return "FlowControlAckWithDestination";
    case kind::ping_traffic_sent_notify: return "PingTrafficSentNotify";
    case kind::in_r1_a1: return "IN_R1/A1";
    case kind::in_r2_a4: return "IN_R2/A4";
    case kind::in_r1_a5: return "IN_R1/A5";
    case kind::out_r2_a2: return "OUT_R2/A2";
    case kind::out_r1_a3: return "OUT_R1/A3";
    case kind::out_r2_a6: return "OUT_R2/A6";
    case kind::out_r2_a7: return "OUT_R2/A7";
    case kind::out_r2_b3: return "OUT_R2/B3";
    case kind::out_r2_c1: return "OUT_R2/C1";
  }
  return "?";
}

pdu conn_a1(const cookie& virtual_connection, const cookie& out_channel, std::uint32_t receive_window) {
  return {none, {version{1}, cookie_command{virtual_connection}, cookie_command{out_channel},
                 receive_window_size{receive_window}}};
}

pdu conn_a3(std::uint32_t connection_timeout_ms) { return {none, {connection_timeout{connection_timeout_ms}}}; }

pdu conn_b1(const cookie& virtual_connection, const cookie& in_channel, std::uint32_t channel_lifetime_bytes,
            std::uint32_t client_keepalive_ms, const cookie& association_group) {
  return {none,
          {version{1}, cookie_command{virtual_connection}, cookie_command{in_channel}, channel_lifetime{channel_lifetime_bytes},
           client_keepalive{client_keepalive_ms}, association_group_id{association_group}}};
}

pdu conn_c2(std::uint32_t receive_window, std::uint32_t connection_timeout_ms) {
  return {none, {version{1}, receive_window_size{receive_window}, connection_timeout{connection_timeout_ms}}};
}

pdu ping_pdu() { return {ping, {}}; }
pdu echo_pdu() { return {echo, {}}; }

pdu flow_control_ack_pdu(const flow_control_ack& ack) { return {other_cmd, {ack}}; }

pdu flow_control_ack_with_destination_pdu(forward_destination to, const flow_control_ack& ack) {
  return {other_cmd, {destination{to}, ack}};
}

std::optional<conn_a1_fields> as_conn_a1(const pdu& p) {
  if (identify(p) != kind::conn_a1) return std::nullopt;
  return conn_a1_fields{get<cookie_command>(p, 1)->value, get<cookie_command>(p, 2)->value,
                        get<receive_window_size>(p, 3)->bytes};
}

std::optional<conn_b1_fields> as_conn_b1(const pdu& p) {
  if (identify(p) != kind::conn_b1) return std::nullopt;
  return conn_b1_fields{get<cookie_command>(p, 1)->value, get<cookie_command>(p, 2)->value,
                        get<channel_lifetime>(p, 3)->bytes, get<client_keepalive>(p, 4)->milliseconds,
                        get<association_group_id>(p, 5)->value};
}

pdu in_r1_a1(const cookie& virtual_connection, const cookie& predecessor, const cookie& successor) {
  return {recycle_channel,
          {version{1}, cookie_command{virtual_connection}, cookie_command{predecessor}, cookie_command{successor}}};
}
pdu in_r2_a4() { return {none, {destination{forward_destination::client}}}; }
pdu in_r1_a5(const cookie& successor) { return {none, {cookie_command{successor}}}; }
pdu out_r2_a2() { return {recycle_channel, {destination{forward_destination::client}}}; }
pdu out_r1_a3(const cookie& virtual_connection, const cookie& predecessor, const cookie& successor,
              std::uint32_t receive_window) {
  return {recycle_channel, {version{1}, cookie_command{virtual_connection}, cookie_command{predecessor},
                            cookie_command{successor}, receive_window_size{receive_window}}};
}
pdu out_r2_a6() { return {none, {destination{forward_destination::client}, ance{}}}; }
pdu out_r2_a7(const cookie& successor) {
  return {out_channel, {destination{forward_destination::server}, cookie_command{successor}, version{1}}};
}
pdu out_r2_b3() { return {eof, {ance{}}}; }
pdu out_r2_c1() { return {ping, {empty{}}}; }

std::optional<recycle_fields> as_in_r1_a1(const pdu& p) {
  if (identify(p) != kind::in_r1_a1) return std::nullopt;
  return recycle_fields{get<cookie_command>(p, 1)->value, get<cookie_command>(p, 2)->value,
                        get<cookie_command>(p, 3)->value, 0};
}

std::optional<recycle_fields> as_out_r1_a3(const pdu& p) {
  if (identify(p) != kind::out_r1_a3) return std::nullopt;
  return recycle_fields{get<cookie_command>(p, 1)->value, get<cookie_command>(p, 2)->value,
                        get<cookie_command>(p, 3)->value, get<receive_window_size>(p, 4)->bytes};
}

std::optional<cookie> successor_of(const pdu& p) {
  const auto k = identify(p);
  if (k == kind::in_r1_a5) return get<cookie_command>(p, 0)->value;
  if (k == kind::out_r2_a7) return get<cookie_command>(p, 1)->value;
  return std::nullopt;
}

std::optional<cookie> virtual_connection_of(const pdu& p) {
  switch (identify(p)) {
    case kind::conn_a1:
    case kind::conn_b1:
    case kind::in_r1_a1:
    case kind::out_r1_a3:
      return get<cookie_command>(p, 1)->value;
    default:
      return std::nullopt;
  }
}

std::string to_hex(const cookie& c) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(32);
  for (const std::uint8_t b : c) {
    out.push_back(digits[b >> 4]);
    out.push_back(digits[b & 15]);
  }
  return out;
}

}  // namespace exbridge::rts
