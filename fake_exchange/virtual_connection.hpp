// One RPC over HTTP v2 virtual connection as Exchange 2007's Client Access server holds it: the inbound proxy
// (IN channel), the outbound proxy (OUT channel) and the mailbox server's RPC endpoint, all in one process
// ([MS-RPCH] 3.2.3-3.2.5, with the proxy-server hops internal). Pure state, no I/O: the server's channel
// coroutines feed it the PDUs they read and send what next_out() gives, so every decision is unit-tested.
//
// What the client sees, as from Windows:
// - CONN/A1 on the OUT request -> the 200 header, then CONN/A3 at once (3.2.4.5.3); once CONN/B1 has come on
//   the IN channel too, CONN/C2 (3.2.4.5.4) carrying the inbound proxy's receive window for the client's IN
//   traffic and the connection timeout. Nothing else goes out before C2 (clients read A3 and C2 by position).
// - Flow control both ways (3.2.1.4, 3.2.1.5.1): RPC PDUs on OUT stop when the client's window (its CONN/A1
//   ReceiveWindowSize, then each FlowControlAckWithDestination(FDOutProxy) it sends on IN) is used up; the
//   client's RPC PDUs on IN are acknowledged with FlowControlAckWithDestination(FDClient) on OUT -- the ack
//   the inbound proxy forwards to the client through the server and the outbound proxy (3.2.1.5.2) -- each time
//   half the advertised window has been consumed. While responses wait for window, the IN side pauses, so a
//   client that stops reading stalls the whole connection as on Windows.
// - Anything out of order is a protocol error (3.2.3.5.10, 3.2.4.5.14): the virtual connection closes.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/rts.hpp"
#include "fake_exchange/rpc_endpoint.hpp"

namespace exbridge::fake_exchange {

struct vc_settings {
  std::uint32_t connection_timeout_ms = 900'000;  ///< sent in CONN/A3 and CONN/C2: the OUT ping interval
  std::uint32_t in_receive_window = 65'536;       ///< the inbound proxy's window, sent in CONN/C2 (Windows: 64 KiB)
  /// RPC bytes that may wait for OUT window before the IN side stops reading.
  std::size_t out_backlog_limit = 256 * 1024;
  /// The server behind the endpoint: who may log on at the RPC level, what mailboxes hold (nullptr: nobody may
  /// log on); outlives the connection.
  const exchange_config* server = nullptr;
};

/// Counters of one virtual connection, for the log line and the server's stats.
struct vc_counters {
  std::uint64_t rpc_in_bytes = 0;   ///< RPC PDU bytes the client sent on IN
  std::uint64_t rpc_out_bytes = 0;  ///< RPC PDU bytes sent on OUT
  std::uint64_t acks_sent = 0;      ///< FlowControlAcks for the client's IN traffic
  std::uint64_t acks_received = 0;  ///< the client's FlowControlAcks for OUT traffic
  std::uint64_t window_stalls = 0;  ///< times an RPC PDU waited for OUT window
};

class virtual_connection {
 public:
  virtual_connection(const rts::cookie& id, std::uint16_t port, vc_settings settings);

  const rts::cookie& id() const { return id_; }
  std::uint16_t port() const { return port_; }

  /// CONN/A1 arrived on a new OUT channel: queues CONN/A3 (and CONN/C2 when the IN channel is there).
  /// Returns the protocol error, if any (a second OUT channel, a zero window).
  std::optional<std::string> open_out(const rts::conn_a1_fields& a1);
  /// CONN/B1 arrived on a new IN channel.
  std::optional<std::string> open_in(const rts::conn_b1_fields& b1);
  bool has_out() const { return out_open_; }
  bool has_in() const { return in_open_; }
  bool established() const { return out_open_ && in_open_; }

  /// One whole PDU the client sent on the IN channel after CONN/B1 (RTS or DCE/RPC). Returns the protocol
  /// error, if any; the caller then closes the virtual connection.
  std::optional<std::string> receive_in(std::string_view pdu);

  /// The next PDU the OUT channel may send now: RTS PDUs first, then RPC PDUs while the client's window allows.
  /// nullopt when nothing can go (nothing queued, or only RPC PDUs waiting for window).
  std::optional<std::string> next_out();
  /// True while RPC PDUs wait for the client's window.
  bool waiting_for_window() const { return !rpc_queue_.empty() && rts_queue_.empty() && rpc_queue_.front().size() > out_window_; }
  /// True while so many response bytes wait that the IN side must stop reading (back-pressure).
  bool in_paused() const { return backlog_ > settings_.out_backlog_limit; }

  /// True once the endpoint refused the association (bind_nak) and everything queued has gone out: the
  /// channels close then, as Windows closes the connection after a bind_nak.
  bool finished_sending() const { return endpoint_.closing() && rts_queue_.empty() && rpc_queue_.empty(); }

  void close(std::string why);
  bool closed() const { return closed_; }
  const std::string& close_reason() const { return close_reason_; }

  const vc_counters& counters() const { return counters_; }
  const rpc_endpoint& endpoint() const { return endpoint_; }
  std::uint32_t out_window() const { return out_window_; }

  /// Called whenever next_out() may have something new or the connection closed (the OUT channel's waker);
  /// and whenever the IN side may resume or must stop (the IN channel's waker).
  std::function<void()> wake_out;
  std::function<void()> wake_in;

 private:
  void queue_rts(const rts::pdu& p);
  void notify();
  // The protocol's BytesSent and BytesReceived (RPC PDUs only) count modulo 2^32 on both sides (3.2.1.1.4).
  std::uint32_t out_bytes_sent() const { return static_cast<std::uint32_t>(counters_.rpc_out_bytes); }
  std::uint32_t in_bytes_received() const { return static_cast<std::uint32_t>(counters_.rpc_in_bytes); }

  rts::cookie id_;
  std::uint16_t port_;
  vc_settings settings_;
  bool out_open_ = false, in_open_ = false, c2_sent_ = false;
  rts::cookie out_cookie_{}, in_cookie_{};
  std::deque<std::string> rts_queue_;
  std::deque<std::string> rpc_queue_;
  std::size_t backlog_ = 0;          ///< bytes in rpc_queue_
  std::uint32_t out_window_ = 0;     ///< Sender AvailableWindow of the OUT channel
  std::uint32_t in_acked_at_ = 0;    ///< BytesReceived in the last ack sent
  rpc_endpoint endpoint_;
  vc_counters counters_;
  bool stalled_ = false;              ///< the front RPC PDU is waiting for window
  bool closed_ = false;
  std::string close_reason_;
};

/// The server's virtual connections by cookie: where the second channel finds the first.
class vc_table {
 public:
  /// The connection `id` names, created when this is its first channel.
  std::shared_ptr<virtual_connection> find_or_create(const rts::cookie& id, std::uint16_t port, const vc_settings& s);
  void forget(const virtual_connection& vc);
  std::size_t size() const { return table_.size(); }

 private:
  std::map<rts::cookie, std::shared_ptr<virtual_connection>> table_;
};

}  // namespace exbridge::fake_exchange
