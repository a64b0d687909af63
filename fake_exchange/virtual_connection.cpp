// The virtual connection's state machine (see virtual_connection.hpp); sections are [MS-RPCH]'s.
#include "fake_exchange/virtual_connection.hpp"

#include <algorithm>
#include <variant>

#include "common/le_bytes.hpp"

namespace exbridge::fake_exchange {
namespace {

const std::string& b3_bytes() {
  static const std::string b3 = rts::encode(rts::out_r2_b3());
  return b3;
}
const std::string& a2_bytes() {
  static const std::string a2 = rts::encode(rts::out_r2_a2());
  return a2;
}
const std::string& ping_bytes() {
  static const std::string ping = rts::encode(rts::ping_pdu());
  return ping;
}

std::string short_cookie(const rts::cookie& c) { return rts::to_hex(c).substr(0, 8); }

}  // namespace

virtual_connection::virtual_connection(const rts::cookie& id, std::uint16_t port, vc_settings settings)
    : id_(id), port_(port), settings_(settings), endpoint_(port, settings.server) {}

void virtual_connection::notify() {
  // A copy: a waker may end its channel, which forgets the waker.
  const auto wakers = wakers_;
  for (const auto& [channel, wake] : wakers) {
    if (wake) wake();
  }
}

void virtual_connection::queue_rts(const rts::pdu& p) {
  // Once OUT_R2/B3 waits on the old OUT channel, nothing may follow it there: later PDUs go on the successor.
  if (out_recycling_ == recycling::b3_queued && out_next_) out_next_->rts.push_back(rts::encode(p));
  else out_.rts.push_back(rts::encode(p));
  notify();
}

bool virtual_connection::retired(const rts::cookie& channel) const {
  return std::find(retired_.begin(), retired_.end(), channel) != retired_.end();
}

std::optional<std::string> virtual_connection::open_out(const rts::conn_a1_fields& a1) {
  if (out_open_) return "a second CONN/A1 for an open virtual connection (a replacement OUT channel opens with OUT_R1/A3)";
  // 2.2.3.5.1: a receive window below 8 KiB cannot hold a fragment; Windows refuses it.
  if (a1.receive_window < 8192) return "CONN/A1's ReceiveWindowSize " + std::to_string(a1.receive_window) + " is under 8 KiB";
  out_open_ = true;
  out_.cookie = a1.out_channel;
  out_.window = a1.receive_window;
  queue_rts(rts::conn_a3(settings_.connection_timeout_ms));  // 3.2.4.5.3: A3 at once, before C1 comes back
  if (in_open_ && !c2_sent_) {
    c2_sent_ = true;
    queue_rts(rts::conn_c2(settings_.in_receive_window, settings_.connection_timeout_ms));
  }
  return std::nullopt;
}

std::optional<std::string> virtual_connection::open_in(const rts::conn_b1_fields& b1) {
  if (in_open_) return "a second CONN/B1 for an open virtual connection (a replacement IN channel opens with IN_R1/A1)";
  in_open_ = true;
  in_.cookie = b1.in_channel;
  if (out_open_ && !c2_sent_) {
    c2_sent_ = true;
    queue_rts(rts::conn_c2(settings_.in_receive_window, settings_.connection_timeout_ms));
  }
  return std::nullopt;
}

std::optional<std::string> virtual_connection::open_out_successor(const rts::recycle_fields& a3) {
  if (closed_) return close_reason_;
  // 3.2.4.5.6.1: only after the server asked for it (OUT_R2/A2), naming the OUT channel it replaces.
  if (out_recycling_ != recycling::a2_sent) {
    return std::string("OUT_R1/A3 when the server had not asked for a new OUT channel (no OUT_R2/A2 was sent") +
           (out_recycling_ == recycling::none ? ")" : ", or a successor already opened)");
  }
  if (a3.predecessor != out_.cookie) {
    return "OUT_R1/A3 names predecessor " + short_cookie(a3.predecessor) + "…, not the OUT channel " +
           short_cookie(out_.cookie) + "…";
  }
  if (a3.receive_window < 8192) return "OUT_R1/A3's ReceiveWindowSize " + std::to_string(a3.receive_window) + " is under 8 KiB";
  out_state next;
  next.cookie = a3.successor;
  next.window = a3.receive_window;  // the successor's PeerReceiveWindow (3.2.4.5.6.1)
  next.plugged = true;
  out_next_ = std::move(next);
  out_recycling_ = recycling::a6_queued;
  queue_rts(rts::out_r2_a6());
  return std::nullopt;
}

std::optional<std::string> virtual_connection::successor_out_ready(const rts::cookie& channel) {
  if (closed_) return close_reason_;
  if (out_next_ && out_next_->cookie == channel) {
    out_next_->c1 = true;
    return std::nullopt;
  }
  if (out_.cookie == channel && out_.plugged) {  // C1 after the switch: the header may go now (3.2.4.5.11)
    out_.c1 = true;
    out_.plugged = false;
    notify();
    return std::nullopt;
  }
  return "OUT_R2/C1 on an OUT channel that is not replacing another";
}

std::optional<std::string> virtual_connection::open_in_successor(const rts::recycle_fields& a1) {
  if (closed_) return close_reason_;
  if (!established()) return "IN_R1/A1 before the virtual connection was open";
  if (in_next_) return "IN_R1/A1 while a replacement IN channel is already opening";
  if (a1.predecessor != in_.cookie) {
    return "IN_R1/A1 names predecessor " + short_cookie(a1.predecessor) + "…, not the IN channel " +
           short_cookie(in_.cookie) + "…";
  }
  // 3.2.3.5.5.1: the successor is plugged until the client ends the old channel with IN_R1/A5; the client hears
  // that it may do so from IN_R2/A4 on the OUT channel.
  in_next_ = a1.successor;
  queue_rts(rts::in_r2_a4());
  return std::nullopt;
}

std::optional<std::string> virtual_connection::receive_rts(std::string_view bytes) {
  auto decoded = rts::decode(as_bytes(bytes));
  if (auto* e = std::get_if<rts::decode_error>(&decoded)) return "a malformed RTS PDU on the IN channel: " + e->what;
  const auto& p = std::get<rts::pdu>(decoded);
  const auto k = rts::identify(p);
  switch (k) {
    case rts::kind::ping:        // the client's keep-alive: traffic is all it is for
    case rts::kind::keep_alive:  // the inbound proxy's keep-alive towards the server: internal here
      return std::nullopt;
    case rts::kind::flow_control_ack_with_destination:
    case rts::kind::flow_control_ack: {
      const auto& ack = std::get<rts::flow_control_ack>(p.commands.back());
      // 3.2.1.5.1.2: the ack names the channel it is for (the old or the new one while recycling); an ack for a
      // channel this connection does not have is dropped.
      out_state* ch = ack.channel_cookie == out_.cookie                  ? &out_
                      : out_next_ && ack.channel_cookie == out_next_->cookie ? &*out_next_
                                                                              : nullptr;
      if (ch == nullptr) return std::nullopt;
      ++counters_.acks_received;
      ch->window = rts::sender_available_window(ack, ch->rpc_sent);
      notify();
      return std::nullopt;
    }
    case rts::kind::in_r1_a5: {
      const auto successor = rts::successor_of(p);
      if (!in_next_ || *successor != *in_next_) return "IN_R1/A5 names a successor IN channel that did not open";
      // The switch: PDUs from now on come on the successor, acknowledged by its own count (2.2.3.4).
      retired_.push_back(in_.cookie);
      in_ = in_state{*in_next_};
      in_next_.reset();
      ++counters_.in_recycled;
      notify();
      return std::nullopt;
    }
    case rts::kind::out_r2_a7: {
      if (out_recycling_ != recycling::a6_queued || !out_next_) return "OUT_R2/A7 before the server sent OUT_R2/A6";
      if (*rts::successor_of(p) != out_next_->cookie) return "OUT_R2/A7 names another successor OUT channel";
      // 3.2.4.5.10: OUT_R2/B3 is the old channel's last PDU; the switch happens as it goes out.
      out_.rts.push_back(b3_bytes());
      out_recycling_ = recycling::b3_queued;
      notify();
      return std::nullopt;
    }
    default:
      return "an RTS PDU the inbound proxy does not accept here (" + std::string(rts::kind_name(k)) + ")";
  }
}

std::optional<std::string> virtual_connection::receive_in(const rts::cookie& channel, std::string_view bytes) {
  if (closed_) return close_reason_;
  if (channel != in_.cookie) {
    return retired(channel) ? "a PDU on an IN channel after its IN_R1/A5" : "a PDU on an IN channel that is not open";
  }
  const auto span = as_bytes(bytes);
  if (rts::pdu_type(span) == rts::ptype_rts) return receive_rts(bytes);
  // A DCE/RPC PDU: only on an established connection (the client waits for CONN/C2 before it binds).
  if (!established()) return "an RPC PDU before CONN/C2 was sent";
  counters_.rpc_in_bytes += bytes.size();
  in_.received += static_cast<std::uint32_t>(bytes.size());
  auto replies = endpoint_.receive(span);
  if (!replies) return "RPC: " + endpoint_.error();
  for (auto& r : *replies) {
    backlog_ += r.size();
    rpc_queue_.push_back(std::move(r));
  }
  // The PDU is consumed once the endpoint has it: the whole window is free again. Ack when half of it was
  // used since the last ack (Windows' rule, 3.2.1.4.1.1 <27>).
  if (in_.received - in_.acked_at >= settings_.in_receive_window / 2) {
    in_.acked_at = in_.received;
    ++counters_.acks_sent;
    queue_rts(rts::flow_control_ack_with_destination_pdu(rts::forward_destination::client,
                                                         {in_.received, settings_.in_receive_window, in_.cookie}));
  }
  if (!rpc_queue_.empty()) notify();
  return std::nullopt;
}

std::optional<std::string> virtual_connection::take(out_state& ch, std::deque<std::string>& q) {
  std::string p = std::move(q.front());
  q.pop_front();
  ch.sent += p.size();
  return p;
}

std::optional<std::string> virtual_connection::next_out(const rts::cookie& channel) {
  if (channel != out_.cookie || out_.plugged) return std::nullopt;  // a successor before its switch, or retired
  if (!out_.rts.empty()) {
    auto p = take(out_, out_.rts);
    if (out_recycling_ == recycling::a2_queued && *p == a2_bytes()) out_recycling_ = recycling::a2_sent;
    if (out_recycling_ == recycling::b3_queued && out_.rts.empty() && *p == b3_bytes()) {
      // B3 is out: the successor is the OUT channel now, plugged until its OUT_R2/C1 has come (3.2.4.5.10).
      retired_.push_back(out_.cookie);
      out_ = std::move(*out_next_);
      out_next_.reset();
      out_.plugged = !out_.c1;
      out_recycling_ = recycling::none;
      ++counters_.out_recycled;
      notify();
    }
    return p;
  }
  // Before CONN/C2 only RTS PDUs go out; after it RPC PDUs within the client's window (3.2.1.4.1.3), and not
  // while the channel is being replaced: they wait for the successor.
  if (rpc_queue_.empty() || !c2_sent_ || out_recycling_ != recycling::none) return std::nullopt;
  const std::string& front = rpc_queue_.front();
  if (recycle_out_before(front.size())) return next_out(channel);  // OUT_R2/A2 goes first
  if (front.size() > out_.window) {
    if (!stalled_) ++counters_.window_stalls;
    stalled_ = true;
    return std::nullopt;
  }
  stalled_ = false;
  const bool was_paused = in_paused();
  auto p = take(out_, rpc_queue_);
  backlog_ -= p->size();
  out_.window -= static_cast<std::uint32_t>(p->size());
  out_.rpc_sent += static_cast<std::uint32_t>(p->size());
  counters_.rpc_out_bytes += p->size();
  if (was_paused && !in_paused()) notify();
  return p;
}

bool virtual_connection::recycle_out_before(std::size_t bytes) {
  // 3.2.5.5 (OUT channel recycling): the channel's length is nearly used: ask the client for a new one.
  if (out_recycling_ != recycling::none || out_.sent + bytes + recycle_reserve <= settings_.out_channel_length) {
    return false;
  }
  out_recycling_ = recycling::a2_queued;
  out_.rts.push_back(a2_bytes());
  return true;
}

std::optional<std::string> virtual_connection::ping_out(const rts::cookie& channel) {
  if (channel != out_.cookie || out_.plugged) return std::nullopt;
  // An idle channel nearly used up by its pings is recycled too.
  if (established() && recycle_out_before(ping_bytes().size())) notify();
  if (out_.sent + ping_bytes().size() > settings_.out_channel_length) return std::nullopt;
  out_.sent += ping_bytes().size();
  return ping_bytes();
}

void virtual_connection::close(std::string why) {
  if (closed_) return;
  closed_ = true;
  close_reason_ = std::move(why);
  notify();
}

std::shared_ptr<virtual_connection> vc_table::find_or_create(const rts::cookie& id, std::uint16_t port,
                                                             const vc_settings& s) {
  auto& slot = table_[id];
  if (!slot) slot = std::make_shared<virtual_connection>(id, port, s);
  return slot;
}

void vc_table::forget(const virtual_connection& vc) {
  const auto it = table_.find(vc.id());
  if (it != table_.end() && it->second.get() == &vc) table_.erase(it);
}

}  // namespace exbridge::fake_exchange
