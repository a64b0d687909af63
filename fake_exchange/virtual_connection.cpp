// The virtual connection's state machine (see virtual_connection.hpp); sections are [MS-RPCH]'s.
#include "fake_exchange/virtual_connection.hpp"

#include <variant>

#include "common/le_bytes.hpp"

namespace exbridge::fake_exchange {

virtual_connection::virtual_connection(const rts::cookie& id, std::uint16_t port, vc_settings settings)
    : id_(id), port_(port), settings_(settings), endpoint_(port, settings.server) {}

void virtual_connection::notify() {
  if (wake_out) wake_out();
  if (wake_in) wake_in();
}

void virtual_connection::queue_rts(const rts::pdu& p) {
  rts_queue_.push_back(rts::encode(p));
  if (wake_out) wake_out();
}

std::optional<std::string> virtual_connection::open_out(const rts::conn_a1_fields& a1) {
  if (out_open_) return "a second CONN/A1 for an open virtual connection (OUT channel recycling is not offered)";
  // 2.2.3.5.1: a receive window below 8 KiB cannot hold a fragment; Windows refuses it.
  if (a1.receive_window < 8192) return "CONN/A1's ReceiveWindowSize " + std::to_string(a1.receive_window) + " is under 8 KiB";
  out_open_ = true;
  out_cookie_ = a1.out_channel;
  out_window_ = a1.receive_window;
  queue_rts(rts::conn_a3(settings_.connection_timeout_ms));  // 3.2.4.5.3: A3 at once, before C1 comes back
  if (in_open_ && !c2_sent_) {
    c2_sent_ = true;
    queue_rts(rts::conn_c2(settings_.in_receive_window, settings_.connection_timeout_ms));
  }
  return std::nullopt;
}

std::optional<std::string> virtual_connection::open_in(const rts::conn_b1_fields& b1) {
  if (in_open_) return "a second CONN/B1 for an open virtual connection (IN channel recycling is not offered)";
  in_open_ = true;
  in_cookie_ = b1.in_channel;
  if (out_open_ && !c2_sent_) {
    c2_sent_ = true;
    queue_rts(rts::conn_c2(settings_.in_receive_window, settings_.connection_timeout_ms));
  }
  return std::nullopt;
}

std::optional<std::string> virtual_connection::receive_in(std::string_view bytes) {
  if (closed_) return close_reason_;
  const auto span = as_bytes(bytes);
  if (rts::pdu_type(span) == rts::ptype_rts) {
    auto decoded = rts::decode(span);
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
        // 3.2.1.5.1.2: an ack for a channel this connection does not have is dropped.
        if (ack.channel_cookie != out_cookie_) return std::nullopt;
        ++counters_.acks_received;
        out_window_ = rts::sender_available_window(ack, out_bytes_sent());
        if (wake_out) wake_out();
        return std::nullopt;
      }
      default:
        return "an RTS PDU the inbound proxy does not accept here (" + std::string(rts::kind_name(k)) + ")";
    }
  }
  // A DCE/RPC PDU: only on an established connection (the client waits for CONN/C2 before it binds).
  if (!established()) return "an RPC PDU before CONN/C2 was sent";
  counters_.rpc_in_bytes += bytes.size();
  auto replies = endpoint_.receive(span);
  if (!replies) return "RPC: " + endpoint_.error();
  for (auto& r : *replies) {
    backlog_ += r.size();
    rpc_queue_.push_back(std::move(r));
  }
  // The PDU is consumed once the endpoint has it: the whole window is free again. Ack when half of it was
  // used since the last ack (Windows' rule, 3.2.1.4.1.1 <27>).
  if (in_bytes_received() - in_acked_at_ >= settings_.in_receive_window / 2) {
    in_acked_at_ = in_bytes_received();
    ++counters_.acks_sent;
    queue_rts(rts::flow_control_ack_with_destination_pdu(
        rts::forward_destination::client, {in_bytes_received(), settings_.in_receive_window, in_cookie_}));
  }
  if (!rpc_queue_.empty() && wake_out) wake_out();
  return std::nullopt;
}

std::optional<std::string> virtual_connection::next_out() {
  if (!rts_queue_.empty()) {
    std::string p = std::move(rts_queue_.front());
    rts_queue_.pop_front();
    return p;
  }
  // Before CONN/C2 only RTS PDUs go out; after it RPC PDUs within the client's window (3.2.1.4.1.3).
  if (rpc_queue_.empty() || !c2_sent_) return std::nullopt;
  if (rpc_queue_.front().size() > out_window_) {
    if (!stalled_) ++counters_.window_stalls;
    stalled_ = true;
    return std::nullopt;
  }
  stalled_ = false;
  std::string p = std::move(rpc_queue_.front());
  rpc_queue_.pop_front();
  const bool was_paused = in_paused();
  backlog_ -= p.size();
  out_window_ -= static_cast<std::uint32_t>(p.size());
  counters_.rpc_out_bytes += p.size();
  if (was_paused && !in_paused() && wake_in) wake_in();
  return p;
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
