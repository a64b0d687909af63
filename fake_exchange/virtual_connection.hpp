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
// - Channel recycling, the R2 sequences of a proxy that holds the virtual connection itself (3.2.3.5.5.1,
//   3.2.4.5.6.1; the proxy-server hops are internal):
//   IN: a new IN channel opens with IN_R1/A1 naming its predecessor; it is plugged (nothing it carries is
//   consumed) and IN_R2/A4 goes to the client on OUT; IN_R1/A5 on the old channel switches: the new one
//   becomes the IN channel, its flow-control count starting at 0, and the old one is retired.
//   OUT: before an RPC PDU would leave less than `recycle_reserve` bytes of the OUT channel's declared length,
//   OUT_R2/A2 goes out and RPC PDUs wait; the client's new OUT channel opens with OUT_R1/A3 and is plugged;
//   OUT_R2/A6 goes on the old one; on OUT_R2/A7 (on IN) OUT_R2/B3 ends the old channel; once B3 is out and the
//   new channel's OUT_R2/C1 has come, the new channel sends its 200 header and carries on (3.2.4.5.10-11).
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
#include <vector>

#include "common/rts.hpp"
#include "fake_exchange/rpc_endpoint.hpp"

namespace exbridge::fake_exchange {

/// What an OUT channel's response declares as its Content-Length on Windows: 1 GB.
inline constexpr std::uint64_t default_out_channel_length = 1'073'741'824;

struct vc_settings {
  std::uint32_t connection_timeout_ms = 900'000;  ///< sent in CONN/A3 and CONN/C2: the OUT ping interval
  std::uint32_t in_receive_window = 65'536;       ///< the inbound proxy's window, sent in CONN/C2 (Windows: 64 KiB)
  /// RPC bytes that may wait for OUT window before the IN side stops reading.
  std::size_t out_backlog_limit = 256 * 1024;
  /// The Content-Length every OUT channel's response declares: what one OUT channel can carry before the
  /// server recycles it (Windows and Exchange: 1 GiB; the lab can make it small so recycling happens often).
  std::uint64_t out_channel_length = default_out_channel_length;
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
  std::uint64_t in_recycled = 0;    ///< IN channels replaced by a successor
  std::uint64_t out_recycled = 0;   ///< OUT channels replaced by a successor
};

/// Bytes an OUT channel keeps for the recycling PDUs and keep-alive pings once OUT_R2/A2 is out.
inline constexpr std::uint64_t recycle_reserve = 2048;
/// The smallest OUT channel length the lab accepts: room for CONN/A3, CONN/C2, the largest fragment a bind
/// can agree and the reserve.
inline constexpr std::uint64_t min_out_channel_length = 16 * 1024;

class virtual_connection {
 public:
  virtual_connection(const rts::cookie& id, std::uint16_t port, vc_settings settings);

  const rts::cookie& id() const { return id_; }
  std::uint16_t port() const { return port_; }
  const vc_settings& settings() const { return settings_; }

  /// CONN/A1 arrived on a new OUT channel: queues CONN/A3 (and CONN/C2 when the IN channel is there).
  /// Returns the protocol error, if any (a second OUT channel, a zero window).
  std::optional<std::string> open_out(const rts::conn_a1_fields& a1);
  /// CONN/B1 arrived on a new IN channel.
  std::optional<std::string> open_in(const rts::conn_b1_fields& b1);
  /// OUT_R1/A3 arrived on a new OUT channel: the successor of the OUT channel, after OUT_R2/A2. It is plugged
  /// until the switch; OUT_R2/A6 goes on the old channel.
  std::optional<std::string> open_out_successor(const rts::recycle_fields& a3);
  /// OUT_R2/C1 arrived on the successor OUT channel.
  std::optional<std::string> successor_out_ready(const rts::cookie& channel);
  /// IN_R1/A1 arrived on a new IN channel: the successor of the IN channel; IN_R2/A4 goes to the client.
  std::optional<std::string> open_in_successor(const rts::recycle_fields& a1);

  bool has_out() const { return out_open_; }
  bool has_in() const { return in_open_; }
  bool established() const { return out_open_ && in_open_; }

  /// The OUT channel that carries the connection's bytes now, and the IN channel whose PDUs are consumed now.
  const rts::cookie& out_channel() const { return out_.cookie; }
  const rts::cookie& in_channel() const { return in_.cookie; }
  /// True once `channel` was replaced by its successor: it ends without ending the connection.
  bool retired(const rts::cookie& channel) const;
  /// True once the successor OUT channel `channel` is the OUT channel and may send its response header.
  bool out_header_due(const rts::cookie& channel) const { return channel == out_.cookie && !out_.plugged; }

  /// One whole PDU the client sent on the IN channel `channel` (RTS or DCE/RPC). Returns the protocol error,
  /// if any; the caller then closes the virtual connection. PDUs of a successor IN channel are held by its
  /// caller until it is the IN channel.
  std::optional<std::string> receive_in(const rts::cookie& channel, std::string_view pdu);
  std::optional<std::string> receive_in(std::string_view pdu) { return receive_in(in_.cookie, pdu); }

  /// The next PDU OUT channel `channel` may send now: its RTS PDUs first, then RPC PDUs while the client's
  /// window and the channel's length allow. nullopt when nothing can go.
  std::optional<std::string> next_out(const rts::cookie& channel);
  std::optional<std::string> next_out() { return next_out(out_.cookie); }
  /// A keep-alive ping for `channel` if its length has room for one (counted as sent); nullopt when the channel
  /// is used up -- the client did not recycle it in time.
  std::optional<std::string> ping_out(const rts::cookie& channel);
  /// True while RPC PDUs wait for the client's window.
  bool waiting_for_window() const {
    return !rpc_queue_.empty() && out_.rts.empty() && rpc_queue_.front().size() > out_.window;
  }
  /// True while so many response bytes wait that the IN side must stop reading (back-pressure).
  bool in_paused() const { return backlog_ > settings_.out_backlog_limit; }

  /// True once the endpoint refused the association (bind_nak) and everything queued has gone out: the
  /// channels close then, as Windows closes the connection after a bind_nak.
  bool finished_sending() const { return endpoint_.closing() && out_.rts.empty() && rpc_queue_.empty(); }

  void close(std::string why);
  bool closed() const { return closed_; }
  const std::string& close_reason() const { return close_reason_; }

  const vc_counters& counters() const { return counters_; }
  const rpc_endpoint& endpoint() const { return endpoint_; }
  std::uint32_t out_window() const { return out_.window; }

  /// Wakers: called whenever an OUT channel may have something new to send or the connection closed, and
  /// whenever an IN channel may resume, must stop or became the IN channel. Keyed by channel cookie.
  void on_wake(const rts::cookie& channel, std::function<void()> waker) { wakers_[channel] = std::move(waker); }
  void forget_waker(const rts::cookie& channel) { wakers_.erase(channel); }

 private:
  /// One OUT channel's sending side.
  struct out_state {
    rts::cookie cookie{};
    std::uint64_t sent = 0;        ///< bytes written on it (RTS and RPC), against the declared length
    std::uint32_t rpc_sent = 0;    ///< BytesSent: RPC PDUs only, modulo 2^32 (3.2.1.1.4)
    std::uint32_t window = 0;      ///< Sender AvailableWindow
    std::deque<std::string> rts;   ///< RTS PDUs to send on it
    bool plugged = false;          ///< a successor before the switch: sends nothing
    bool c1 = false;               ///< a successor: OUT_R2/C1 has come
  };
  /// One IN channel's receiving side.
  struct in_state {
    rts::cookie cookie{};
    std::uint32_t received = 0;    ///< BytesReceived: RPC PDUs only
    std::uint32_t acked_at = 0;    ///< BytesReceived in the last ack sent
  };
  enum class recycling { none, a2_queued, a2_sent, a6_queued, b3_queued };

  void queue_rts(const rts::pdu& p);
  void notify();
  std::optional<std::string> receive_rts(std::string_view bytes);
  std::optional<std::string> take(out_state& ch, std::deque<std::string>& q);
  /// Queues OUT_R2/A2 (and returns true) when `bytes` more would leave the OUT channel less than the reserve.
  bool recycle_out_before(std::size_t bytes);

  rts::cookie id_;
  std::uint16_t port_;
  vc_settings settings_;
  bool out_open_ = false, in_open_ = false, c2_sent_ = false;
  out_state out_;
  std::optional<out_state> out_next_;
  recycling out_recycling_ = recycling::none;
  in_state in_;
  std::optional<rts::cookie> in_next_;
  std::vector<rts::cookie> retired_;
  std::deque<std::string> rpc_queue_;
  std::size_t backlog_ = 0;          ///< bytes in rpc_queue_
  rpc_endpoint endpoint_;
  vc_counters counters_;
  bool stalled_ = false;              ///< the front RPC PDU is waiting for window
  bool closed_ = false;
  std::string close_reason_;
  std::map<rts::cookie, std::function<void()>> wakers_;
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
