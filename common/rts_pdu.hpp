// The 20-byte RTS PDUs of RPC over HTTP v2 (MS-RPCH 2.2.3.6) that carry no commands -- the echo answer
// to proxy discovery and the keep-alive ping -- shared by fake-exchange (which sends them on its OUT
// channels) and rehearse's Outlook Anywhere client (which pings its IN channel and checks what it reads).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace exbridge {

inline constexpr std::uint16_t rts_flag_ping = 0x0001;  // RTS_FLAG_PING
inline constexpr std::uint16_t rts_flag_echo = 0x0040;  // RTS_FLAG_ECHO
inline constexpr std::size_t rts_pdu_size = 20;

/// The common RPC header (version 5.0, PTYPE rts = 20, PFC_FIRST_FRAG | PFC_LAST_FRAG, little-endian data
/// representation, frag_length 20), then Flags and NumberOfCommands = 0.
inline std::string rts_pdu(std::uint16_t flags) {
  const unsigned char bytes[rts_pdu_size] = {5, 0, 20, 3, 0x10, 0, 0, 0, 20, 0, 0, 0, 0, 0, 0, 0,
                                             static_cast<unsigned char>(flags & 0xff),
                                             static_cast<unsigned char>(flags >> 8), 0, 0};
  return std::string(reinterpret_cast<const char*>(bytes), sizeof bytes);
}

/// True when `pdu` is a command-less RTS PDU carrying `flags`.
inline bool is_rts_pdu(std::string_view pdu, std::uint16_t flags) { return pdu == rts_pdu(flags); }

}  // namespace exbridge
