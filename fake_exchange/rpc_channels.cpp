// The IN and OUT channel coroutines (see rpc_channels.hpp).
#include "fake_exchange/rpc_channels.hpp"

#include <boost/asio/experimental/awaitable_operators.hpp>

#include <algorithm>
#include <array>
#include <deque>
#include <limits>
#include <vector>

namespace exbridge::fake_exchange {
namespace {

using namespace boost::asio::experimental::awaitable_operators;

// [MS-RPCH] 3.2.5.2.1: the server waits 15 minutes for a virtual connection's second channel.
constexpr auto connection_setup_timeout = std::chrono::minutes(15);

vc_settings settings_for(const server_options& o) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(o.rpc_ping_interval).count();
  vc_settings s;
  s.server = &o.exchange;
  s.connection_timeout_ms = static_cast<std::uint32_t>(std::clamp<long long>(ms, 1, std::numeric_limits<std::uint32_t>::max()));
  s.out_channel_length = o.rpc_out_channel_length;
  return s;
}

/// Finds or creates the virtual connection a channel's first PDU names. Returns the protocol error, if any.
std::optional<std::string> join(channel_env& env, std::shared_ptr<virtual_connection>& vc, const rts::cookie& id,
                                std::uint16_t port) {
  vc = env.connections->find_or_create(id, port, settings_for(env.options));
  if (vc->port() != port) {
    return "the channels of one virtual connection name ports " + std::to_string(vc->port()) + " and " + std::to_string(port);
  }
  return std::nullopt;
}

/// The first PDU of a channel's body, decoded; nullopt if it is not an RTS PDU.
std::optional<rts::pdu> first_rts(const std::optional<std::string>& bytes) {
  if (!bytes) return std::nullopt;
  auto decoded = rts::decode(*bytes);
  if (auto* p = std::get_if<rts::pdu>(&decoded)) return std::move(*p);
  return std::nullopt;
}

/// On leaving a channel: unless its successor replaced it (channel recycling), its virtual connection hears that
/// the channel is gone and closes (a channel that ends otherwise ends the connection, 3.2.3.5.10, 3.2.4.5.14).
struct leave_channel {
  std::shared_ptr<virtual_connection>& vc;
  std::shared_ptr<vc_table> table;
  const char* name;
  std::string& why;
  const rts::cookie& channel;
  ~leave_channel() {
    if (!vc) return;
    vc->forget_waker(channel);
    if (vc->retired(channel)) return;
    vc->close(std::string("the ") + name + " channel ended (" + why + ")");
    table->forget(*vc);
  }
};

/// Completes when the client closes the OUT channel's connection (it sends nothing more on it).
net::awaitable<void> until_closed(connection& c) {
  std::array<char, 1024> sink;
  for (;;) {
    auto [ec, n] = co_await c.stream.async_read_some(net::buffer(sink), use_tuple);
    if (ec) co_return;
  }
}

/// Reads a request body until `split` holds a whole PDU. Returns it, or nullopt (and `ec`) when the body or the
/// connection ends first.
net::awaitable<std::optional<std::string>> read_pdu(connection& c, http::request_parser<http::buffer_body>& parser,
                                                    rts::pdu_splitter& split, std::uint64_t& received, error_code& ec) {
  std::array<char, 512> chunk;
  for (;;) {
    if (auto pdu = split.next()) co_return pdu;
    if (parser.is_done() || split.bad()) co_return std::nullopt;
    parser.get().body().data = chunk.data();
    parser.get().body().size = chunk.size();
    auto [e, n] = co_await http::async_read_some(c.stream, c.buffer, parser, use_tuple);
    const std::size_t got = chunk.size() - parser.get().body().size;
    received += got;
    split.append(chunk.data(), got);
    if (e && e != http::error::need_buffer) {
      ec = e;
      if (auto pdu = split.next()) co_return pdu;
      co_return std::nullopt;
    }
  }
}

/// Writes one PDU on the OUT channel. Returns why the channel must end, if it must.
net::awaitable<std::optional<std::string>> send_pdu(channel_env env, body_writer& writer, const std::string& pdu) {
  if (auto ec = co_await writer.write(pdu.data(), pdu.size())) co_return "write failed: " + ec.message();
  // The write armed the idle timeout (IIS's 120 s) for a client that stops reading; once a PDU is out, the
  // channel is idle by design until the next one.
  env.c.dog.disarm();
  co_return std::nullopt;
}

/// Sends the virtual connection's PDUs on OUT channel `me` as they come, and a ping whenever the channel was
/// quiet for the ping interval. Returns why the channel ended.
net::awaitable<std::string> pump_out(channel_env env, virtual_connection& vc, rts::cookie me, body_writer& writer,
                                     exbridge::timer& wake) {
  auto last_sent = scaled_clock::now();
  const auto setup_deadline = last_sent + connection_setup_timeout;
  for (;;) {
    while (auto pdu = vc.next_out(me)) {
      if (auto why = co_await send_pdu(env, writer, *pdu)) co_return *why;
      last_sent = scaled_clock::now();
    }
    if (vc.retired(me)) co_return "channel recycled: OUT_R2/B3 sent, its successor carries the OUT traffic";
    if (vc.closed()) co_return "virtual connection closed: " + vc.close_reason();
    if (vc.finished_sending()) {
      vc.close("the RPC endpoint refused the association: " + vc.endpoint().error());
      continue;
    }
    wake.expires_at(vc.established() ? last_sent + env.options.rpc_ping_interval : setup_deadline);
    if (auto [ec] = co_await wake.async_wait(use_tuple); ec) continue;  // woken: something to send, or closed
    if (!vc.established()) {
      vc.close("its other channel did not come within 15 minutes");
      continue;
    }
    const auto ping = vc.ping_out(me);
    if (!ping) {
      co_return "the OUT channel's Content-Length is used up: the client did not replace it after OUT_R2/A2";
    }
    if (auto why = co_await send_pdu(env, writer, *ping)) co_return *why;
    last_sent = scaled_clock::now();
    env.stats.rpc_ping();
  }
}

}  // namespace

net::awaitable<connection_end> serve_in_channel(channel_env env, http::request_parser<http::buffer_body>& parser,
                                                std::uint16_t port, const std::optional<fault_hit>& hit,
                                                request_record& rec) {
  connection& c = env.c;
  // The channel is idle between the client's keep-alives (720 s by default): it has no idle timeout.
  c.dog.disarm();
  if (hit && hit->action.kind == fault_kind::delay) co_await c.pause(hit->action.duration);
  const fault_action* cut = hit && cuts_body(hit->action.kind) ? &hit->action : nullptr;
  const std::uint64_t cut_at = cut != nullptr ? cut->after_bytes.value_or(0) : 0;
  // A throttled or stalled IN channel is read slowly: TCP's window pushes back on the client.
  pacer pace(c, hit ? &hit->action : nullptr);
  std::vector<char> chunk(64 * 1024);
  rts::pdu_splitter split;
  std::shared_ptr<virtual_connection> vc;
  rts::cookie me{};
  std::deque<std::string> held;  // PDUs of this channel not consumed yet: a successor's, before its switch
  exbridge::timer resume(c.stream.get_executor());
  std::string why;
  const leave_channel leave{vc, env.connections, "IN", why, me};

  // The first PDU opens the channel: CONN/B1 on a new virtual connection, IN_R1/A1 for a replacement channel.
  const auto open = [&](const std::string& pdu) -> std::optional<std::string> {
    const auto p = first_rts(pdu);
    const auto b1 = p ? rts::as_conn_b1(*p) : std::nullopt;
    const auto a1 = p ? rts::as_in_r1_a1(*p) : std::nullopt;
    if (!b1 && !a1) return std::string("the IN channel did not begin with CONN/B1 or IN_R1/A1");
    if (auto e = join(env, vc, b1 ? b1->virtual_connection : a1->virtual_connection, port)) return e;
    me = b1 ? b1->in_channel : a1->successor;
    vc->on_wake(me, [&resume, &c, v = vc.get()] {
      resume.cancel();
      if (v->closed()) c.stream.cancel();  // stop reading: the connection is gone
    });
    return b1 ? vc->open_in(*b1) : vc->open_in_successor(*a1);
  };
  // Hands the PDUs that arrived to the virtual connection while this channel is its IN channel.
  const auto take_pdus = [&]() -> std::optional<std::string> {
    while (auto pdu = split.next()) {
      if (!vc) {
        if (auto e = open(*pdu)) return e;
        continue;
      }
      held.push_back(std::move(*pdu));
    }
    if (split.bad()) return std::string("a PDU's frag_length is shorter than a PDU header");
    while (vc && !held.empty() && vc->in_channel() == me && !vc->retired(me)) {
      const std::string pdu = std::move(held.front());
      held.pop_front();
      if (auto e = vc->receive_in(me, pdu)) return e;
    }
    return std::nullopt;
  };

  connection_end end = connection_end::graceful;
  for (;;) {
    if (vc && vc->retired(me)) {
      why = "channel recycled: IN_R1/A5 received, its successor carries the IN traffic";
      break;
    }
    if (vc && vc->closed()) {
      why = "virtual connection closed: " + vc->close_reason();
      break;
    }
    // Back-pressure: while the client does not take its responses, its requests wait in TCP; and a replacement
    // channel is not read while it waits for its predecessor's IN_R1/A5.
    if (vc && (vc->in_paused() || vc->in_channel() != me)) {
      resume.expires_after(std::chrono::hours(24));
      co_await resume.async_wait(use_tuple);
      if (auto e = take_pdus()) {
        why = "protocol error: " + *e;
        break;
      }
      continue;
    }
    if (parser.is_done()) {
      why = "channel complete";  // all it declared, without a successor: the connection ends with it
      break;
    }
    std::size_t room = chunk.size();
    if (cut != nullptr) room = static_cast<std::size_t>(std::min<std::uint64_t>(room, cut_at - rec.bytes_in));
    room = co_await pace.next(rec.bytes_in, room);
    parser.get().body().data = chunk.data();
    parser.get().body().size = room;
    // read_some: a PDU must be handled when it arrives, not when 64 KiB have gathered behind it.
    auto [ec, n] = co_await http::async_read_some(c.stream, c.buffer, parser, use_tuple);
    const std::size_t got = room - parser.get().body().size;
    rec.bytes_in += got;
    env.stats.rpc_in(got);
    env.stats.received(got);
    split.append(chunk.data(), got);
    if (auto e = take_pdus()) {
      why = "protocol error: " + *e;
      break;
    }
    if (ec && ec != http::error::need_buffer) {
      if (vc && vc->retired(me)) continue;  // the client closed the old channel after IN_R1/A5, as it should
      if (vc && vc->closed()) {
        why = "virtual connection closed: " + vc->close_reason();
      } else {
        why = peer_closed(ec) ? "channel closed by the client" : "channel ended: " + ec.message();
      }
      break;
    }
    // A fault "after N bytes" on an IN channel cuts it once N request bytes have arrived.
    if (cut != nullptr && rec.bytes_in >= cut_at) {
      why = "channel cut by fault";
      end = end_for(cut->kind);
      break;
    }
  }
  rec.error = why;
  if (vc) rec.rpc = vc->endpoint().summary();
  co_return end;
}

net::awaitable<connection_end> serve_out_channel(channel_env env, http::request_parser<http::buffer_body>& parser,
                                                 response_t& header, std::uint16_t port,
                                                 const std::optional<fault_hit>& hit, request_record& rec) {
  connection& c = env.c;
  std::shared_ptr<virtual_connection> vc;
  rts::cookie me{};
  std::string why;
  const leave_channel leave{vc, env.connections, "OUT", why, me};
  exbridge::timer wake(c.stream.get_executor());
  // The request's body is CONN/A1 (76 bytes), or for a replacement channel OUT_R1/A3 and, once the server has
  // answered on the old channel, OUT_R2/C1 (120 bytes, 2.1.2.1.2).
  if (parser.content_length().value_or(0) > 4096) {
    rec.error = why = "protocol error: an OUT channel request declares " + std::to_string(*parser.content_length()) +
                      " body bytes, not CONN/A1's 76 or a replacement's 120";
    co_return connection_end::graceful;
  }
  rts::pdu_splitter split;
  error_code read_ec;
  const auto first = first_rts(co_await read_pdu(c, parser, split, rec.bytes_in, read_ec));
  const auto a1 = first ? rts::as_conn_a1(*first) : std::nullopt;
  const auto a3 = first ? rts::as_out_r1_a3(*first) : std::nullopt;
  std::optional<std::string> refused;
  if (!a1 && !a3) {
    refused = read_ec ? "the client left before the OUT channel's first PDU"
                      : "the OUT channel did not begin with CONN/A1 or OUT_R1/A3";
  } else if (auto e = join(env, vc, a1 ? a1->virtual_connection : a3->virtual_connection, port)) {
    refused = e;
  } else {
    me = a1 ? a1->out_channel : a3->successor;
    vc->on_wake(me, [&wake, &c, v = vc.get()] {
      wake.cancel();
      if (v->closed()) c.stream.cancel();
    });
    refused = a1 ? vc->open_out(*a1) : vc->open_out_successor(*a3);
  }
  if (!refused && a3) {
    // A replacement: plugged until the switch. The client sends OUT_R2/C1 once OUT_R2/A6 reached it on the old
    // channel; the 200 header goes when B3 has ended the old channel too (3.2.4.5.10, 3.2.4.5.11).
    const auto c1 = first_rts(co_await read_pdu(c, parser, split, rec.bytes_in, read_ec));
    if (vc->closed()) refused = "virtual connection closed: " + vc->close_reason();
    else if (!c1 || rts::identify(*c1) != rts::kind::out_r2_c1) refused = "the replacement OUT channel's second PDU is not OUT_R2/C1";
    else refused = vc->successor_out_ready(me);
    while (!refused && !vc->out_header_due(me) && !vc->closed()) {
      wake.expires_after(std::chrono::hours(24));
      co_await wake.async_wait(use_tuple);
    }
    if (!refused && vc->closed()) refused = "virtual connection closed: " + vc->close_reason();
  }
  env.stats.received(rec.bytes_in);
  if (refused) {
    // A protocol error: the outbound proxy closes without an answer (3.2.4.5.14).
    rec.error = why = "protocol error: " + *refused;
    co_return connection_end::graceful;
  }

  if (hit && hit->action.kind == fault_kind::delay) co_await c.pause(hit->action.duration);
  header.content_length(env.options.rpc_out_channel_length);
  rec.status = header.result_int();
  c.dog.arm(env.options.idle_timeout, server_timeout::idle);
  http::response<http::buffer_body> res{header.base()};
  http::response_serializer<http::buffer_body> sr{res};
  auto [ec, n] = co_await http::async_write_header(c.stream, sr, use_tuple);
  rec.bytes_out = n;
  if (ec) {
    rec.error = why = "write failed: " + ec.message();
    co_return connection_end::graceful;
  }
  c.dog.disarm();
  body_writer writer(c, hit ? &hit->action : nullptr, env.options.idle_timeout);
  auto outcome = co_await (pump_out(env, *vc, me, writer, wake) || until_closed(c));
  rec.bytes_out += writer.written();
  env.stats.served(rec.bytes_out);
  why = outcome.index() == 0 ? std::get<0>(outcome) : std::string("channel closed by the client");
  rec.error = why;
  rec.rpc = vc->endpoint().summary();
  if (writer.cut() != connection_end::keep_alive) co_return writer.cut();
  co_return connection_end::graceful;
}

}  // namespace exbridge::fake_exchange
