// The DCE/RPC connection-oriented PDU codec (see dcerpc.hpp); section numbers are C706's and [MS-RPCE]'s.
#include "common/dcerpc.hpp"

#include <stdexcept>

#include "common/le_bytes.hpp"

namespace exbridge::dcerpc {
namespace {

constexpr std::uint8_t data_representation = 0x10;  // little-endian integers, ASCII characters (C706 14.1)

void write_syntax(le_writer& w, const syntax_id& s) {
  w.bytes(s.id.data(), s.id.size());
  w.u16(s.major);
  w.u16(s.minor);
}

syntax_id read_syntax(le_reader& r) {
  syntax_id s;
  r.bytes(s.id.data(), s.id.size());
  s.major = r.u16();
  s.minor = r.u16();
  return s;
}

constexpr std::size_t syntax_size = 20;

void write_body(le_writer& w, ptype type, const body& b) {
  std::visit(
      [&](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, bind_body>) {
          w.u16(x.max_xmit_frag), w.u16(x.max_recv_frag), w.u32(x.assoc_group_id);
          w.u8(static_cast<std::uint8_t>(x.contexts.size())), w.u8(0), w.u16(0);
          for (const auto& c : x.contexts) {
            w.u16(c.context_id), w.u8(static_cast<std::uint8_t>(c.transfer.size())), w.u8(0);
            write_syntax(w, c.abstract);
            for (const auto& t : c.transfer) write_syntax(w, t);
          }
        } else if constexpr (std::is_same_v<T, bind_ack_body>) {
          w.u16(x.max_xmit_frag), w.u16(x.max_recv_frag), w.u32(x.assoc_group_id);
          // port_any_t: the length counts the terminating NUL; an absent address is length 0 (C706 12.6.3.1).
          if (x.secondary_address.empty()) {
            w.u16(0);
          } else {
            w.u16(static_cast<std::uint16_t>(x.secondary_address.size() + 1));
            w.bytes(x.secondary_address), w.u8(0);
          }
          w.align(4);  // p_result_list_t is 4-byte aligned from the start of the PDU
          w.u8(static_cast<std::uint8_t>(x.results.size())), w.u8(0), w.u16(0);
          for (const auto& r : x.results) {
            w.u16(static_cast<std::uint16_t>(r.outcome)), w.u16(r.reason);
            write_syntax(w, r.transfer);
          }
        } else if constexpr (std::is_same_v<T, bind_nak_body>) {
          w.u16(x.reject_reason), w.u8(static_cast<std::uint8_t>(x.versions.size()));
          for (const auto& [major, minor] : x.versions) w.u8(major), w.u8(minor);
          w.align(4);  // Windows pads the nak to 24 bytes
        } else if constexpr (std::is_same_v<T, request_body>) {
          w.u32(x.alloc_hint), w.u16(x.context_id), w.u16(x.opnum);
          if (x.object) w.bytes(x.object->data(), x.object->size());
          w.bytes(x.stub);
        } else if constexpr (std::is_same_v<T, response_body>) {
          w.u32(x.alloc_hint), w.u16(x.context_id), w.u8(x.cancel_count), w.u8(0);
          w.bytes(x.stub);
        } else if constexpr (std::is_same_v<T, fault_body>) {
          w.u32(x.alloc_hint), w.u16(x.context_id), w.u8(x.cancel_count), w.u8(0);
          w.u32(x.status), w.u32(0);  // reserved; its low bit would announce extended error information
        } else if (type == ptype::auth3) {
          w.zeros(4);  // [MS-RPCE] 2.2.2.10: rpc_auth_3 carries 4 pad bytes before its sec_trailer
        }
      },
      b);
}

std::optional<decode_error> read_bind(le_reader& r, bind_body& b) {
  if (!r.has(12)) return decode_error{"the bind body is cut short"};
  b.max_xmit_frag = r.u16(), b.max_recv_frag = r.u16(), b.assoc_group_id = r.u32();
  const std::uint8_t n = r.u8();
  r.skip(3);
  for (std::uint8_t i = 0; i < n; ++i) {
    if (!r.has(4 + syntax_size)) return decode_error{"presentation context " + std::to_string(i) + " is cut short"};
    context_element c;
    c.context_id = r.u16();
    const std::uint8_t transfers = r.u8();
    r.skip(1);
    c.abstract = read_syntax(r);
    if (transfers == 0) return decode_error{"presentation context " + std::to_string(c.context_id) + " offers no transfer syntax"};
    if (!r.has(transfers * syntax_size)) {
      return decode_error{"the transfer syntaxes of context " + std::to_string(c.context_id) + " are cut short"};
    }
    for (std::uint8_t t = 0; t < transfers; ++t) c.transfer.push_back(read_syntax(r));
    b.contexts.push_back(std::move(c));
  }
  return std::nullopt;
}

std::optional<decode_error> read_bind_ack(le_reader& r, bind_ack_body& b) {
  if (!r.has(10)) return decode_error{"the bind_ack body is cut short"};
  b.max_xmit_frag = r.u16(), b.max_recv_frag = r.u16(), b.assoc_group_id = r.u32();
  const std::uint16_t length = r.u16();
  if (!r.has(length)) return decode_error{"the secondary address is cut short"};
  b.secondary_address = r.text(length);
  if (!b.secondary_address.empty()) {
    if (b.secondary_address.back() != '\0') return decode_error{"the secondary address lacks its NUL"};
    b.secondary_address.pop_back();
  }
  const std::size_t pad = (4 - r.position() % 4) % 4;
  if (!r.has(pad + 4)) return decode_error{"the result list is cut short"};
  r.skip(pad);
  const std::uint8_t n = r.u8();
  r.skip(3);
  if (!r.has(n * (4 + syntax_size))) return decode_error{"the results are cut short"};
  for (std::uint8_t i = 0; i < n; ++i) {
    context_result c;
    const std::uint16_t outcome = r.u16();
    if (outcome > 3) return decode_error{"result " + std::to_string(outcome) + " is not a p_cont_def_result_t"};
    c.outcome = static_cast<result>(outcome);
    c.reason = r.u16();
    c.transfer = read_syntax(r);
    b.results.push_back(c);
  }
  return std::nullopt;
}

std::optional<decode_error> read_bind_nak(le_reader& r, bind_nak_body& b) {
  if (!r.has(2)) return decode_error{"the bind_nak body is cut short"};
  b.reject_reason = r.u16();
  if (!r.has(1)) return std::nullopt;  // the version list may be absent
  const std::uint8_t n = r.u8();
  if (!r.has(2 * std::size_t{n})) return decode_error{"the bind_nak's version list is cut short"};
  for (std::uint8_t i = 0; i < n; ++i) {
    const std::uint8_t major = r.u8();
    b.versions.emplace_back(major, r.u8());
  }
  return std::nullopt;
}

}  // namespace

uuid parse_uuid(std::string_view text) {
  // 8-4-4-4-12 hex digits; the first three groups are stored little-endian.
  if (text.size() != 36 || text[8] != '-' || text[13] != '-' || text[18] != '-' || text[23] != '-') {
    throw std::invalid_argument("not a UUID: " + std::string(text));
  }
  std::array<std::uint8_t, 16> be{};
  std::size_t o = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '-') continue;
    const auto digit = [&](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      throw std::invalid_argument("not a UUID: " + std::string(text));
    };
    const int v = digit(text[i]) * 16 + digit(text[i + 1]);
    be[o++] = static_cast<std::uint8_t>(v);
    ++i;
  }
  uuid u = be;
  std::swap(u[0], u[3]), std::swap(u[1], u[2]);
  std::swap(u[4], u[5]);
  std::swap(u[6], u[7]);
  return u;
}

std::string to_string(const uuid& wire) {
  uuid u = wire;
  std::swap(u[0], u[3]), std::swap(u[1], u[2]);
  std::swap(u[4], u[5]);
  std::swap(u[6], u[7]);
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  for (std::size_t i = 0; i < u.size(); ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out.push_back('-');
    out.push_back(digits[u[i] >> 4]);
    out.push_back(digits[u[i] & 15]);
  }
  return out;
}

syntax_id ndr20() { return {parse_uuid("8a885d04-1ceb-11c9-9fe8-08002b104860"), 2, 0}; }

std::string encode(const pdu& p) {
  le_writer w;
  w.u8(5), w.u8(0), w.u8(static_cast<std::uint8_t>(p.type)), w.u8(p.flags);
  w.u8(data_representation), w.u8(0), w.u8(0), w.u8(0);
  w.u16(0), w.u16(p.auth ? static_cast<std::uint16_t>(p.auth->token.size()) : 0), w.u32(p.call_id);
  write_body(w, p.type, p.content);
  if (p.auth) {
    const std::size_t pad = (4 - w.size() % 4) % 4;
    w.zeros(pad);
    w.u8(p.auth->type), w.u8(p.auth->level), w.u8(static_cast<std::uint8_t>(pad)), w.u8(0);
    w.u32(p.auth->context_id);
    w.bytes(p.auth->token);
  }
  if (w.size() > 0xFFFF) throw std::length_error("a DCE/RPC fragment larger than frag_length can say (65,535 bytes)");
  w.patch_u16(8, static_cast<std::uint16_t>(w.size()));
  return std::move(w.text());
}

std::variant<pdu, decode_error> decode(std::string_view bytes) { return decode(as_bytes(bytes)); }

std::variant<pdu, decode_error> decode(std::span<const std::uint8_t> bytes) {
  if (bytes.size() < header_size) return decode_error{"shorter than the 16-byte DCE/RPC header"};
  le_reader h(bytes);
  const std::uint8_t vers = h.u8(), minor = h.u8(), type = h.u8(), flags = h.u8();
  if (vers != 5 || minor != 0) return decode_error{"RPC version " + std::to_string(vers) + "." + std::to_string(minor) + ", not 5.0"};
  if (h.u8() != data_representation) return decode_error{"data representation is not little-endian ASCII (10 00 00 00)"};
  h.skip(3);
  const std::uint16_t frag_length = h.u16(), auth_length = h.u16();
  pdu p;
  p.type = static_cast<ptype>(type);
  p.flags = flags;
  p.call_id = h.u32();
  if (frag_length != bytes.size()) {
    return decode_error{"frag_length " + std::to_string(frag_length) + " differs from the PDU's " +
                        std::to_string(bytes.size()) + " bytes"};
  }
  // Where the body ends: before the auth padding, the sec_trailer and the token.
  std::size_t body_end = bytes.size();
  if (auth_length != 0) {
    if (bytes.size() < header_size + sec_trailer_size + auth_length) return decode_error{"auth_length runs past the PDU"};
    const std::size_t trailer = bytes.size() - auth_length - sec_trailer_size;
    le_reader t(bytes.subspan(trailer));
    auth_verifier a;
    a.type = t.u8(), a.level = t.u8(), a.pad_length = t.u8();
    t.skip(1);
    a.context_id = t.u32();
    a.token = t.text(auth_length);
    if (trailer < header_size + a.pad_length) return decode_error{"auth_pad_length runs past the body"};
    body_end = trailer - a.pad_length;
    p.auth = std::move(a);
  }
  le_reader r(bytes.first(body_end));
  r.skip(header_size);
  std::optional<decode_error> bad;
  switch (p.type) {
    case ptype::bind:
    case ptype::alter_context: {
      bind_body b;
      bad = read_bind(r, b);
      p.content = std::move(b);
      break;
    }
    case ptype::bind_ack:
    case ptype::alter_context_resp: {
      bind_ack_body b;
      bad = read_bind_ack(r, b);
      p.content = std::move(b);
      break;
    }
    case ptype::bind_nak: {
      bind_nak_body b;
      bad = read_bind_nak(r, b);
      r.skip(r.left());  // an MS-RPCE signature and extended error information may follow
      p.content = std::move(b);
      break;
    }
    case ptype::request: {
      if (!r.has(8)) return decode_error{"the request header is cut short"};
      request_body b;
      b.alloc_hint = r.u32(), b.context_id = r.u16(), b.opnum = r.u16();
      if ((flags & object_uuid) != 0) {
        if (!r.has(16)) return decode_error{"the object UUID is cut short"};
        b.object.emplace();
        r.bytes(b.object->data(), b.object->size());
      }
      b.stub = r.text(r.left());
      p.content = std::move(b);
      break;
    }
    case ptype::response: {
      if (!r.has(8)) return decode_error{"the response header is cut short"};
      response_body b;
      b.alloc_hint = r.u32(), b.context_id = r.u16(), b.cancel_count = r.u8();
      r.skip(1);
      b.stub = r.text(r.left());
      p.content = std::move(b);
      break;
    }
    case ptype::fault: {
      if (!r.has(16)) return decode_error{"the fault body is cut short"};
      fault_body b;
      b.alloc_hint = r.u32(), b.context_id = r.u16(), b.cancel_count = r.u8();
      r.skip(1);
      b.status = r.u32();
      r.skip(4);
      r.skip(r.left());  // optional extended error information
      p.content = b;
      break;
    }
    case ptype::auth3:
    case ptype::shutdown:
    case ptype::co_cancel:
    case ptype::orphaned:
      r.skip(r.left());
      break;
    default:
      return decode_error{"PTYPE " + std::to_string(type) + " is not a connection-oriented DCE/RPC PDU"};
  }
  if (bad) return *bad;
  if (r.left() != 0) return decode_error{std::to_string(r.left()) + " bytes after the " + std::string(ptype_name(p.type)) + " body"};
  return p;
}

std::vector<pdu> split_call(ptype type, std::uint32_t call_id, std::uint16_t context_id, std::uint16_t opnum,
                            std::string_view stub, std::size_t room) {
  if (room == 0) throw std::invalid_argument("max_frag leaves no room for stub data");
  std::vector<pdu> out;
  std::size_t at = 0;
  do {
    const std::size_t n = std::min(room, stub.size() - at);
    pdu p;
    p.type = type;
    p.call_id = call_id;
    p.flags = static_cast<std::uint8_t>((at == 0 ? first_frag : 0) | (at + n == stub.size() ? last_frag : 0));
    const auto hint = static_cast<std::uint32_t>(stub.size() - at);
    if (type == ptype::request) {
      p.content = request_body{hint, context_id, opnum, std::nullopt, std::string(stub.substr(at, n))};
    } else {
      p.content = response_body{hint, context_id, 0, std::string(stub.substr(at, n))};
    }
    out.push_back(std::move(p));
    at += n;
  } while (at < stub.size());
  return out;
}

std::vector<std::string> fragment_response(std::uint32_t call_id, std::uint16_t context_id, std::string_view stub,
                                           std::uint16_t max_frag) {
  if (max_frag <= call_header_size) throw std::invalid_argument("max_frag leaves no room for stub data");
  std::vector<std::string> out;
  for (const auto& p : split_call(ptype::response, call_id, context_id, 0, stub, max_frag - call_header_size)) {
    out.push_back(encode(p));
  }
  return out;
}

std::string encode_fault(std::uint32_t call_id, std::uint16_t context_id, std::uint32_t status, bool did_not_execute) {
  pdu p;
  p.type = ptype::fault;
  p.call_id = call_id;
  p.flags = static_cast<std::uint8_t>(first_frag | last_frag | (did_not_execute ? pfc::did_not_execute : 0));
  p.content = fault_body{call_header_size, context_id, 0, status};  // alloc_hint as Samba and Windows send it
  return encode(p);
}

std::string_view ptype_name(ptype t) {
  switch (t) {
    case ptype::request: return "request";
    case ptype::response: return "response";
    case ptype::fault: return "fault";
    case ptype::bind: return "bind";
    case ptype::bind_ack: return "bind_ack";
    case ptype::bind_nak: return "bind_nak";
    case ptype::alter_context: return "alter_context";
    case ptype::alter_context_resp: return "alter_context_resp";
    case ptype::auth3: return "rpc_auth_3";
    case ptype::shutdown: return "shutdown";
    case ptype::co_cancel: return "co_cancel";
    case ptype::orphaned: return "orphaned";
  }
  return "unknown PTYPE";
}

}  // namespace exbridge::dcerpc
