// The IN and OUT channel coroutines (see rpc_channels.hpp).
#include "fake_exchange/rpc_channels.hpp"

#include <boost/asio/experimental/awaitable_operators.hpp>

#include <algorithm>
#include <array>
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

/// On leaving a channel: its virtual connection hears that the channel is gone and closes (a channel that ends
/// without being recycled ends the connection, 3.2.3.5.10 and 3.2.4.5.14).
struct leave_channel {
  std::shared_ptr<virtual_connection>& vc;
  std::shared_ptr<vc_table> table;
  const char* name;
  std::string& why;
  std::function<void()> virtual_connection::*waker;
  ~leave_channel() {
    if (!vc) return;
    vc.get()->*waker = nullptr;
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

/// Writes one PDU on the OUT channel within its declared length. Returns why the channel must end, if it must.
net::awaitable<std::optional<std::string>> send_pdu(channel_env& env, body_writer& writer, const std::string& pdu,
                                                    std::uint64_t room) {
  if (writer.written() + pdu.size() > room) {
    co_return "the OUT channel's Content-Length is used up (OUT channel recycling is not offered yet)";
  }
  if (auto ec = co_await writer.write(pdu.data(), pdu.size())) co_return "write failed: " + ec.message();
  // The write armed the idle timeout (IIS's 120 s) for a client that stops reading; once a PDU is out, the
  // channel is idle by design until the next one.
  env.c.dog.disarm();
  co_return std::nullopt;
}

/// Sends the virtual connection's PDUs on the OUT channel as they come, and a ping whenever the channel was
/// quiet for the ping interval. Returns why the channel ended.
net::awaitable<std::string> pump_out(channel_env env, virtual_connection& vc, body_writer& writer, exbridge::timer& wake,
                                     std::uint64_t room) {
  const std::string ping = rts::encode(rts::ping_pdu());
  auto last_sent = scaled_clock::now();
  const auto setup_deadline = last_sent + connection_setup_timeout;
  for (;;) {
    while (auto pdu = vc.next_out()) {
      if (auto why = co_await send_pdu(env, writer, *pdu, room)) co_return *why;
      last_sent = scaled_clock::now();
    }
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
    if (auto why = co_await send_pdu(env, writer, ping, room)) co_return *why;
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
  exbridge::timer resume(c.stream.get_executor());
  std::string why;
  const leave_channel leave{vc, env.connections, "IN", why, &virtual_connection::wake_in};

  // Hands every whole PDU that arrived to the virtual connection; the first must be CONN/B1.
  const auto take_pdus = [&]() -> std::optional<std::string> {
    while (auto pdu = split.next()) {
      if (vc) {
        if (auto e = vc->receive_in(*pdu)) return e;
        continue;
      }
      const auto decoded = rts::decode(*pdu);
      const auto* p = std::get_if<rts::pdu>(&decoded);
      const auto b1 = p != nullptr ? rts::as_conn_b1(*p) : std::nullopt;
      if (!b1) return std::string("the IN channel did not begin with CONN/B1");
      if (auto e = join(env, vc, b1->virtual_connection, port)) return e;
      if (auto e = vc->open_in(*b1)) return e;
      vc->wake_in = [&resume, &c, v = vc.get()] {
        resume.cancel();
        if (v->closed()) c.stream.cancel();  // stop reading: the connection is gone
      };
    }
    if (split.bad()) return std::string("a PDU's frag_length is shorter than a PDU header");
    return std::nullopt;
  };

  connection_end end = connection_end::graceful;
  while (!parser.is_done()) {
    // Back-pressure: while the client does not take its responses, its requests wait in TCP.
    while (vc && vc->in_paused() && !vc->closed()) {
      resume.expires_after(std::chrono::hours(24));
      co_await resume.async_wait(use_tuple);
    }
    if (vc && vc->closed()) {
      why = "virtual connection closed: " + vc->close_reason();
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
  if (why.empty()) why = "channel complete";  // all it declared: the client goes on with a new IN channel
  rec.error = why;
  if (vc) rec.rpc = vc->endpoint().summary();
  co_return end;
}

net::awaitable<connection_end> serve_out_channel(channel_env env, http::request_parser<http::buffer_body>& parser,
                                                 response_t& header, std::uint16_t port,
                                                 const std::optional<fault_hit>& hit, request_record& rec) {
  connection& c = env.c;
  std::shared_ptr<virtual_connection> vc;
  std::string why;
  const leave_channel leave{vc, env.connections, "OUT", why, &virtual_connection::wake_out};
  // The request's body is CONN/A1 (76 bytes; 120 for a replacement channel's two PDUs, 2.1.2.1.2).
  if (parser.content_length().value_or(0) > 4096) {
    rec.error = why = "protocol error: an OUT channel request declares " + std::to_string(*parser.content_length()) +
                      " body bytes, not CONN/A1's 76";
    co_return connection_end::graceful;
  }
  auto [read_ec, body] = co_await read_small_body(c, parser);
  rec.bytes_in = body.size();
  env.stats.received(body.size());
  if (read_ec) {
    rec.error = why = "client gone mid-request";
    co_return connection_end::graceful;
  }
  rts::pdu_splitter split;
  split.append(body.data(), body.size());
  const auto first = split.next();
  const auto decoded = first ? rts::decode(*first) : std::variant<rts::pdu, rts::decode_error>(rts::decode_error{"empty"});
  const auto* p = std::get_if<rts::pdu>(&decoded);
  const auto a1 = p != nullptr ? rts::as_conn_a1(*p) : std::nullopt;
  std::optional<std::string> refused;
  if (!a1) {
    refused = "the OUT channel did not begin with CONN/A1";
  } else if (auto e = join(env, vc, a1->virtual_connection, port)) {
    refused = e;
  } else {
    refused = vc->open_out(*a1);
  }
  if (refused) {
    // A protocol error: the outbound proxy closes without an answer (3.2.4.5.14).
    rec.error = why = "protocol error: " + *refused;
    co_return connection_end::graceful;
  }

  if (hit && hit->action.kind == fault_kind::delay) co_await c.pause(hit->action.duration);
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
  exbridge::timer wake(c.stream.get_executor());
  vc->wake_out = [&wake] { wake.cancel(); };
  body_writer writer(c, hit ? &hit->action : nullptr, env.options.idle_timeout);
  auto outcome = co_await (pump_out(env, *vc, writer, wake, rpc_out_channel_length) ||
                           until_closed(c));
  rec.bytes_out += writer.written();
  env.stats.served(rec.bytes_out);
  why = outcome.index() == 0 ? std::get<0>(outcome) : std::string("channel closed by the client");
  rec.error = why;
  rec.rpc = vc->endpoint().summary();
  if (writer.cut() != connection_end::keep_alive) co_return writer.cut();
  co_return connection_end::graceful;
}

}  // namespace exbridge::fake_exchange
