// The client end of an RPC over HTTP v2 virtual connection (see rpch_connection.hpp).
#include "rehearse/clients/rpch_connection.hpp"

#include <array>

#include "common/le_bytes.hpp"

namespace exbridge::rehearse {
namespace {

/// Room kept on an IN channel for what replacing either channel sends on it: IN_R1/A5 (40 bytes), OUT_R2/A7
/// (56) and the flow-control acks sent while waiting (56 each). Windows starts at 4 KiB left ([MS-RPCH] <32>).
constexpr std::uint64_t in_reserve = 1024;
/// OUT_R1/A3 (96 bytes) and OUT_R2/C1 (24): a replacement OUT channel's whole request body.
constexpr std::uint64_t out_recycle_body = 120;

rts::kind kind_of(const rts::pdu& p) { return rts::identify(p); }

}  // namespace

rpch_counters& rpch_counters::operator+=(const rpch_counters& o) {
  in_recycled += o.in_recycled;
  pings += o.pings;
  out_recycled += o.out_recycled;
  flow_stalls += o.flow_stalls;
  rpc_bytes_out += o.rpc_bytes_out;
  rpc_bytes_in += o.rpc_bytes_in;
  return *this;
}

/// One channel's connection and what became of it. Shared with the IN channel's watcher, which may outlive the
/// virtual connection by a moment.
struct rpch_connection::channel {
  channel(net::any_io_executor ex, ssl::context& tls, const client_settings& s) : conn(std::move(ex), tls, s) {}
  exo_connection conn;
  std::string answer;   ///< what arrived on an IN channel (a healthy one never answers)
  std::string ended;    ///< why it closed, when it did
  bool retired = false;  ///< replaced or closed by the client: its end is no failure
  std::shared_ptr<channel> partner;  ///< an IN channel's OUT channel, closed to wake the reader when IN fails
};

rpch_connection::rpch_connection(net::any_io_executor ex, ssl::context& tls, const client_settings& s, unsigned port,
                                 std::uint64_t in_channel_bytes, std::uint32_t out_window)
    : s_(s),
      executor_(ex),
      tls_(tls),
      http_(s, port),
      in_length_(in_channel_bytes),
      out_window_(out_window),
      rng_(std::random_device{}()),
      dog_(ex, [this] { close(); }) {
  vc_ = fresh_cookie();
}

rpch_connection::~rpch_connection() { close(); }

std::string rpch_connection::tls_description() const { return in_ ? in_->conn.tls_description() : std::string(); }

rts::cookie rpch_connection::fresh_cookie() {
  rts::cookie c;
  for (std::size_t i = 0; i < c.size(); i += 8) {
    const std::uint64_t r = rng_();
    for (std::size_t k = 0; k < 8; ++k) c[i + k] = static_cast<std::uint8_t>(r >> (8 * k));
  }
  return c;
}

void rpch_connection::close() {
  for (auto* ch : {&in_, &out_}) {
    if (!*ch) continue;
    (*ch)->retired = true;
    (*ch)->partner.reset();
    (*ch)->conn.close();
  }
  for (auto& old : retired_) old->conn.close();
  retired_.clear();
}

net::awaitable<std::optional<failure>> rpch_connection::connect(const char* method, std::shared_ptr<channel>& out) {
  out = std::make_shared<channel>(executor_, tls_, s_);
  if (auto f = co_await out->conn.ensure_connected()) co_return f;
  // Small PDUs go at once, as the RPC runtime sends them.
  co_return co_await http_.authenticate(out->conn, method);
}

void rpch_connection::watch_in() {
  // A healthy IN channel is never answered; an answer (nginx's 413, a 401, a proxy's error page) or a close that
  // the client did not ask for ends the virtual connection, and the reader of the OUT channel learns why.
  net::co_spawn(executor_, [ch = in_]() -> net::awaitable<void> {
    std::array<char, 4096> chunk;
    for (;;) {
      auto [ec, n] = co_await ch->conn.read_raw(chunk.data(), chunk.size());
      if (n > 0 && ch->answer.size() < 64 * 1024) ch->answer.append(chunk.data(), n);
      if (!ec && n == 0) continue;
      if (ec) ch->ended = ec.message();
      if (ch->retired) co_return;
      if (ch->ended.empty()) ch->ended = "answered";
      if (auto out = std::exchange(ch->partner, nullptr)) out->conn.close();
      co_return;
    }
  }, net::detached);
}

net::awaitable<std::optional<failure>> rpch_connection::open() {
  {
    auto probe = std::make_shared<channel>(executor_, tls_, s_);
    if (auto f = co_await http_.probe(probe->conn)) co_return f;
    // The probe's connection carries on as the IN channel's (Windows reuses it too).
    in_ = std::move(probe);
  }
  if (auto f = co_await http_.authenticate(in_->conn, "RPC_IN_DATA")) co_return f;
  in_cookie_ = fresh_cookie();
  out_cookie_ = fresh_cookie();
  const unsigned in_serial = in_->conn.serial();
  auto in_header = http_.channel_header("RPC_IN_DATA", in_length_);
  const auto keepalive = std::chrono::duration_cast<std::chrono::milliseconds>(s_.ping_interval);
  const std::string b1 = rts::encode(rts::conn_b1(vc_, in_cookie_, static_cast<std::uint32_t>(std::min<std::uint64_t>(in_length_, 0xFFFFFFFF)),
                                                  static_cast<std::uint32_t>(keepalive.count()), fresh_cookie()));
  if (auto f = co_await in_->conn.send_header(in_header, b1)) co_return f;
  if (http_.ntlm() && in_->conn.serial() != in_serial) co_return rpc_proxy_requests::lost_ntlm_connection("IN");
  in_sent_ = b1.size();

  if (auto f = co_await connect("RPC_OUT_DATA", out_)) co_return f;
  in_->partner = out_;
  watch_in();
  const unsigned out_serial = out_->conn.serial();
  auto out_header = http_.channel_header("RPC_OUT_DATA", 76);
  const std::string a1 = rts::encode(rts::conn_a1(vc_, out_cookie_, out_window_));
  if (auto f = co_await out_->conn.send_header(out_header, a1)) co_return explain(*f);
  if (http_.ntlm() && out_->conn.serial() != out_serial) co_return rpc_proxy_requests::lost_ntlm_connection("OUT");
  if (auto f = co_await read_out_header()) co_return f;
  // CONN/A3, then CONN/C2 with the IN proxy's receive window.
  for (const auto wanted : {rts::kind::conn_a3, rts::kind::conn_c2}) {
    limit_ = s_.request_timeout;
    auto next = co_await next_out_pdu();
    if (auto* f = std::get_if<failure>(&next)) co_return *f;
    const auto decoded = rts::decode(std::get<std::string>(next));
    const auto* p = std::get_if<rts::pdu>(&decoded);
    if (p == nullptr || kind_of(*p) != wanted) {
      co_return failure{"bad-response", std::string("the OUT channel's ") + (wanted == rts::kind::conn_a3 ? "first" : "second") +
                                            " PDU is not CONN/" + (wanted == rts::kind::conn_a3 ? "A3" : "C2") +
                                            "; something between the client and rpcproxy.dll rewrites the channel"};
    }
    if (wanted == rts::kind::conn_c2) {
      for (const auto& c : p->commands) {
        if (const auto* w = std::get_if<rts::receive_window_size>(&c)) peer_window_ = w->bytes;
      }
    }
  }
  co_return std::nullopt;
}

net::awaitable<std::optional<failure>> rpch_connection::read_out_header() {
  out_parser_ = std::make_unique<http::response_parser<http::buffer_body>>();
  out_parser_->body_limit(boost::none);
  split_ = rts::pdu_splitter();
  if (auto f = co_await out_->conn.read_header(*out_parser_)) co_return explain(*f);
  const auto& head = out_parser_->get();
  if (head.result() != http::status::ok) {
    response_t res{head.base()};
    std::array<char, 4096> chunk;
    while (!out_parser_->is_done() && res.body().size() < 64 * 1024) {
      auto [ec, n] = co_await out_->conn.read_body(*out_parser_, chunk.data(), chunk.size());
      res.body().append(chunk.data(), n);
      if (ec) break;
    }
    if (res.result() == http::status::unauthorized) co_return http_.refused();
    co_return http_.rpc_failure(res, "RPC OUT channel");
  }
  out_declared_ = out_parser_->content_length().value_or(0);
  co_return std::nullopt;
}

net::awaitable<std::optional<failure>> rpch_connection::write_in(const std::string& bytes) {
  if (auto ec = co_await in_->conn.send_body(bytes)) {
    co_return explain({"connection-lost", "the IN channel closed while the client was sending (" + ec.message() + ")"});
  }
  in_sent_ += bytes.size();
  co_return std::nullopt;
}

net::awaitable<std::optional<failure>> rpch_connection::send(std::string pdu) {
  if (!recycling_in_ && in_sent_ + pdu.size() + in_reserve > in_length_) {
    if (auto f = co_await recycle_in()) co_return f;
  }
  const bool rpc = rts::pdu_type(as_bytes(pdu)) != rts::ptype_rts;
  if (rpc && peer_window_ != 0) {
    // Flow control (3.2.1.5.1.2): RPC PDUs may go while the IN proxy's window has room for them.
    auto available = [&] {
      if (!in_ack_) return in_rpc_sent_ >= peer_window_ ? 0u : peer_window_ - in_rpc_sent_;
      return rts::sender_available_window(*in_ack_, in_rpc_sent_);
    };
    if (available() < pdu.size()) {
      ++counters_.flow_stalls;
      while (available() < pdu.size()) {
        limit_ = s_.read_write_timeout;
        auto next = co_await next_out_pdu();
        if (auto* f = std::get_if<failure>(&next)) co_return *f;
        if (auto f = co_await handle(std::move(std::get<std::string>(next)))) co_return f;
      }
    }
  }
  if (auto f = co_await write_in(pdu)) co_return f;
  if (rpc) {
    in_rpc_sent_ += static_cast<std::uint32_t>(pdu.size());
    counters_.rpc_bytes_out += pdu.size();
  }
  co_return std::nullopt;
}

net::awaitable<std::variant<std::string, failure>> rpch_connection::receive(scaled_clock::duration limit) {
  while (rpc_.empty()) {
    limit_ = limit;
    auto next = co_await next_out_pdu();
    if (auto* f = std::get_if<failure>(&next)) co_return *f;
    if (auto f = co_await handle(std::move(std::get<std::string>(next)))) co_return *f;
  }
  std::string p = std::move(rpc_.front());
  rpc_.pop_front();
  co_return p;
}

net::awaitable<std::optional<failure>> rpch_connection::hold(scaled_clock::duration d) {
  const auto until = scaled_clock::now() + d;
  while (scaled_clock::now() < until) {
    limit_ = until - scaled_clock::now();
    auto next = co_await next_out_pdu();
    if (auto* f = std::get_if<failure>(&next)) {
      if (dog_.fired()) co_return std::nullopt;  // the hold's own end: nothing closed the channels before it
      co_return *f;
    }
    if (auto f = co_await handle(std::move(std::get<std::string>(next)))) co_return f;
  }
  close();
  co_return std::nullopt;
}

net::awaitable<std::variant<std::string, failure>> rpch_connection::next_out_pdu() {
  std::array<char, 16 * 1024> chunk;
  for (;;) {
    if (auto p = split_.next()) co_return std::move(*p);
    if (split_.bad()) co_return failure{"bad-response", "the OUT channel carries bytes that are not RPC PDUs"};
    if (out_parser_->is_done()) {
      co_return explain({"bad-response", "the OUT channel's response ended after its " + std::to_string(out_declared_) +
                                             " bytes without the server asking for a new channel (OUT_R2/A2)"});
    }
    auto guard = dog_.scoped(limit_, vc_timeout::call);
    auto [ec, n] = co_await out_->conn.read_body(*out_parser_, chunk.data(), chunk.size());
    if (n > 0) split_.append(chunk.data(), n);
    if (!ec) continue;
    if (dog_.fired()) {
      co_return failure{"client-timeout", "no answer on the OUT channel within " + format_duration(limit_) +
                                              " (the client's limit for an RPC call); the server or a proxy stalled"};
    }
    co_return explain({"connection-lost", "the OUT channel closed (" + ec.message() + ")"});
  }
}

net::awaitable<std::optional<failure>> rpch_connection::handle(std::string pdu) {
  if (rts::pdu_type(as_bytes(pdu)) != rts::ptype_rts) {
    out_received_ += static_cast<std::uint32_t>(pdu.size());
    counters_.rpc_bytes_in += pdu.size();
    rpc_.push_back(std::move(pdu));
    // Windows acknowledges once half the window is consumed (3.2.1.4.1.1), naming this OUT channel.
    if (out_received_ - out_acked_ >= out_window_ / 2) {
      out_acked_ = out_received_;
      co_return co_await send(rts::encode(rts::flow_control_ack_with_destination_pdu(
          rts::forward_destination::out_proxy, {out_received_, out_window_, out_cookie_})));
    }
    co_return std::nullopt;
  }
  const auto decoded = rts::decode(pdu);
  const auto* p = std::get_if<rts::pdu>(&decoded);
  if (p == nullptr) co_return failure{"bad-response", "the OUT channel carried an RTS PDU that does not parse"};
  switch (kind_of(*p)) {
    case rts::kind::ping:
      ++counters_.pings;
      co_return std::nullopt;
    case rts::kind::flow_control_ack:
    case rts::kind::flow_control_ack_with_destination:
      for (const auto& c : p->commands) {
        if (const auto* a = std::get_if<rts::flow_control_ack>(&c); a != nullptr && a->channel_cookie == in_cookie_) in_ack_ = *a;
      }
      co_return std::nullopt;
    case rts::kind::in_r2_a4:
      a4_ = true;
      co_return std::nullopt;
    case rts::kind::out_r2_a2:
      co_return co_await recycle_out();
    default:
      co_return failure{"bad-response", "the OUT channel carried " + std::string(rts::kind_name(kind_of(*p))) +
                                            ", which a client does not expect there"};
  }
}

net::awaitable<std::optional<failure>> rpch_connection::recycle_in() {
  // IN_R1/A1 opens the successor; IN_R2/A4 on OUT says it is ready; IN_R1/A5, the old channel's last PDU,
  // switches ([MS-RPCH] 3.2.2.5.12).
  recycling_in_ = true;
  const rts::cookie successor = fresh_cookie();
  std::shared_ptr<channel> next;
  auto done = [&](std::optional<failure> f) {
    recycling_in_ = false;
    return f;
  };
  if (auto f = co_await connect("RPC_IN_DATA", next)) co_return done(std::move(f));
  auto header = http_.channel_header("RPC_IN_DATA", in_length_);
  const std::string a1 = rts::encode(rts::in_r1_a1(vc_, in_cookie_, successor));
  if (auto f = co_await next->conn.send_header(header, a1)) co_return done(std::move(f));
  a4_ = false;
  while (!a4_) {
    limit_ = s_.request_timeout;
    auto pdu = co_await next_out_pdu();
    if (auto* f = std::get_if<failure>(&pdu)) co_return done(*f);
    if (auto f = co_await handle(std::move(std::get<std::string>(pdu)))) co_return done(std::move(f));
  }
  if (auto f = co_await write_in(rts::encode(rts::in_r1_a5(successor)))) co_return done(std::move(f));
  // The old channel is the inbound proxy's to close once IN_R1/A5 has arrived: closing it here could lose A5 in a
  // proxy that drops a request's unforwarded body when its client goes (nginx does).
  in_->retired = true;
  in_->partner.reset();
  std::erase_if(retired_, [](const auto& old) { return !old->ended.empty(); });  // closed by now
  retired_.push_back(std::move(in_));
  in_ = std::move(next);
  in_->partner = out_;
  watch_in();
  in_cookie_ = successor;
  in_sent_ = a1.size();
  in_rpc_sent_ = 0;  // flow control counts per channel (2.2.3.4)
  in_ack_.reset();
  ++counters_.in_recycled;
  co_return done(std::nullopt);
}

net::awaitable<std::optional<failure>> rpch_connection::recycle_out() {
  // OUT_R1/A3 on a new connection; the old channel sends OUT_R2/A6; OUT_R2/C1 on the new one and OUT_R2/A7 on IN;
  // the old channel ends with OUT_R2/B3, then the new one sends its 200 ([MS-RPCH] 3.2.2.5.5).
  const rts::cookie successor = fresh_cookie();
  std::shared_ptr<channel> next;
  if (auto f = co_await connect("RPC_OUT_DATA", next)) co_return f;
  auto header = http_.channel_header("RPC_OUT_DATA", out_recycle_body);
  const std::string a3 = rts::encode(rts::out_r1_a3(vc_, out_cookie_, successor, out_window_));
  if (auto f = co_await next->conn.send_header(header, a3)) co_return f;
  for (const auto wanted : {rts::kind::out_r2_a6, rts::kind::out_r2_b3}) {
    for (;;) {
      limit_ = s_.request_timeout;
      auto pdu = co_await next_out_pdu();
      if (auto* f = std::get_if<failure>(&pdu)) co_return *f;
      auto& bytes = std::get<std::string>(pdu);
      if (rts::pdu_type(as_bytes(bytes)) == rts::ptype_rts) {
        const auto decoded = rts::decode(bytes);
        if (const auto* p = std::get_if<rts::pdu>(&decoded); p != nullptr && kind_of(*p) == wanted) break;
      }
      if (auto f = co_await handle(std::move(bytes))) co_return f;
    }
    if (wanted == rts::kind::out_r2_a6) {
      if (auto ec = co_await next->conn.send_body(rts::encode(rts::out_r2_c1()))) {
        co_return failure{"connection-lost", "the replacement OUT channel closed (" + ec.message() + ")"};
      }
      if (auto f = co_await send(rts::encode(rts::out_r2_a7(successor)))) co_return f;
    }
  }
  out_->retired = true;
  out_->conn.close();
  out_ = std::move(next);
  in_->partner = out_;
  out_cookie_ = successor;
  out_received_ = out_acked_ = 0;  // per channel (2.2.3.4)
  if (auto f = co_await read_out_header()) co_return f;
  ++counters_.out_recycled;
  co_return std::nullopt;
}

failure rpch_connection::explain(failure f) const {
  if (!in_ || in_->retired || in_->ended.empty()) return f;
  const std::string& answer = in_->answer;
  if (answer.rfind("HTTP/", 0) == 0) {
    // The proxy refused the IN channel outright: nginx's 413 for the 1 GB Content-Length, a 401, a 503 RPC Error.
    http::response_parser<http::string_body> parser;
    parser.eager(true);
    error_code ec;
    parser.put(net::buffer(answer), ec);
    if (parser.is_header_done()) {
      const response_t res{parser.release()};
      if (res.result() == http::status::unauthorized) return http_.refused();
      return http_.rpc_failure(res, "RPC IN channel (" + std::to_string(in_length_) + "-byte RPC_IN_DATA)");
    }
  }
  return {"connection-lost", "the IN channel closed (" + in_->ended + "), then " + f.explanation};
}

}  // namespace exbridge::rehearse
