// What an RPC over HTTP v2 client sends, for tests that open Outlook Anywhere channels by hand: the channel
// requests, CONN/A1 and CONN/B1 ([MS-RPCH] 2.2.4.2, 2.2.4.5), an IN channel body of a given size, and a
// DCE/RPC bind.
#pragma once

#include <cstdint>
#include <string>

#include "common/dcerpc.hpp"
#include "common/rts.hpp"

namespace exbridge::test {

/// A virtual connection's cookies, distinct per `seed`.
struct vc_cookies {
  rts::cookie vc{}, in{}, out{}, group{};
  explicit vc_cookies(std::uint8_t seed = 1) {
    for (std::size_t i = 0; i < 16; ++i) {
      vc[i] = static_cast<std::uint8_t>(seed * 16 + i);
      in[i] = static_cast<std::uint8_t>(0x40 + seed + i);
      out[i] = static_cast<std::uint8_t>(0x80 + seed + i);
      group[i] = static_cast<std::uint8_t>(0xc0 + seed + i);
    }
  }
};

/// An RPC_IN_DATA or RPC_OUT_DATA request header for rpcproxy.dll?ex2007.contoso.example:<port>.
inline std::string rpc_request(const std::string& method, const std::string& port, std::uint64_t length,
                               const std::string& authorization) {
  std::string r = method + " /rpc/rpcproxy.dll?ex2007.contoso.example:" + port +
                  " HTTP/1.1\r\nHost: mail.contoso.example\r\nAccept: application/rpc\r\nUser-Agent: MSRPC\r\n"
                  "Cache-Control: no-cache\r\nPragma: No-cache\r\nConnection: Keep-Alive\r\n";
  if (!authorization.empty()) r += "Authorization: " + authorization + "\r\n";
  return r + "Content-Length: " + std::to_string(length) + "\r\n\r\n";
}

/// CONN/A1: the OUT channel request's whole body (76 bytes), with the client's OUT receive window.
inline std::string conn_a1(const vc_cookies& c, std::uint32_t window = 65536) {
  return rts::encode(rts::conn_a1(c.vc, c.out, window));
}

/// CONN/B1: the IN channel body's first PDU (104 bytes), keep-alive 300 s.
inline std::string conn_b1(const vc_cookies& c) {
  return rts::encode(rts::conn_b1(c.vc, c.in, 1'073'741'824, 300'000, c.group));
}

/// `bytes` of an IN channel body: CONN/B1, then pings (the client's keep-alive), cut at `bytes`.
inline std::string in_channel_body(const vc_cookies& c, std::size_t bytes) {
  std::string body = conn_b1(c);
  const std::string ping = rts::encode(rts::ping_pdu());
  while (body.size() < bytes) body += ping;
  body.resize(bytes);
  return body;
}

/// A bind to one interface with NDR 2.0, without authentication (what impacket sends by default).
inline std::string bind_pdu(std::uint32_t call_id, const dcerpc::syntax_id& interface, std::uint16_t frag = 4280) {
  dcerpc::pdu p;
  p.type = dcerpc::ptype::bind;
  p.call_id = call_id;
  p.content = dcerpc::bind_body{frag, frag, 0, {{0, interface, {dcerpc::ndr20()}}}};
  return dcerpc::encode(p);
}

inline dcerpc::syntax_id emsmdb_interface() { return {dcerpc::parse_uuid("a4f1db00-ca47-1067-b31f-00dd010662da"), 0, 81}; }
inline dcerpc::syntax_id nspi_interface() { return {dcerpc::parse_uuid("f5cc5a18-4264-101a-8c59-08002b2f8426"), 56, 0}; }

}  // namespace exbridge::test
