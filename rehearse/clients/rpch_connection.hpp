// One RPC over HTTP v2 virtual connection as the client end sees it ([MS-RPCH] 3.2.2): an IN channel (RPC_IN_DATA,
// 1 GB declared) that carries the client's PDUs and an OUT channel (RPC_OUT_DATA) whose streaming answer carries
// the server's, each on its own TLS connection through the proxy under test. It opens them (CONN/A1, CONN/B1,
// then CONN/A3 and CONN/C2), honours flow control both ways (2.2.3.4, 3.2.1.5.1), acknowledges the OUT channel
// as Windows does, and replaces either channel when its declared length runs out (IN: IN_R1/A1, A4, A5; OUT:
// OUT_R2/A2, A3, A6, C1 and A7, B3) -- so a mailbox of any size moves over one virtual connection.
//
// One coroutine drives it: send() then receive(), in turn. Anything the proxy answers on the IN channel (a 413,
// a 401, a close) is caught by a watcher and explains the failure the OUT side then sees.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <variant>
#include <vector>

#include "common/rts.hpp"
#include "rehearse/clients/exo_connection.hpp"
#include "rehearse/clients/rpc_proxy_requests.hpp"

namespace exbridge::rehearse {

/// What one virtual connection did, for the progress line and the report.
struct rpch_counters {
  unsigned in_recycled = 0;         ///< IN channels replaced
  unsigned out_recycled = 0;        ///< OUT channels replaced
  unsigned flow_stalls = 0;         ///< sends that waited for the IN proxy's flow-control ack
  std::uint64_t rpc_bytes_out = 0;  ///< RPC PDU bytes the client sent
  std::uint64_t rpc_bytes_in = 0;   ///< RPC PDU bytes the server sent
  unsigned pings = 0;               ///< the server's keep-alive pings on the OUT channel
  rpch_counters& operator+=(const rpch_counters& o);
};

class rpch_connection {
 public:
  /// A virtual connection to rpcproxy.dll?<rpc_server>:<port>; `in_channel_bytes` is the IN channel's declared
  /// length (Windows: 1 GB), `out_window` the client's OUT receive window (Windows: 64 KiB).
  rpch_connection(net::any_io_executor ex, ssl::context& tls, const client_settings& s, unsigned port,
                  std::uint64_t in_channel_bytes, std::uint32_t out_window = 65536);
  ~rpch_connection();
  rpch_connection(const rpch_connection&) = delete;
  rpch_connection& operator=(const rpch_connection&) = delete;

  /// Probe, authenticate both channel connections, open both channels; nullopt once CONN/C2 has arrived.
  net::awaitable<std::optional<failure>> open();
  /// Sends one RPC PDU on the IN channel (replacing the channel first when it would not fit, waiting for flow
  /// control when the IN proxy's window is full).
  net::awaitable<std::optional<failure>> send(std::string pdu);
  /// The server's next RPC PDU, within `limit` of virtual time.
  net::awaitable<std::variant<std::string, failure>> receive(scaled_clock::duration limit);
  /// Holds the open virtual connection for `d` without calls, reading the OUT channel (the server's pings are
  /// counted); the connection is closed afterwards. A channel that ends meanwhile is the failure.
  net::awaitable<std::optional<failure>> hold(scaled_clock::duration d);
  void close();

  const rpch_counters& counters() const { return counters_; }
  std::string tls_description() const;
  std::uint64_t out_declared() const { return out_declared_; }

 private:
  struct channel;
  enum class vc_timeout { call };

  net::awaitable<std::optional<failure>> connect(const char* method, std::shared_ptr<channel>& out);
  net::awaitable<std::optional<failure>> write_in(const std::string& bytes);
  /// Opens the OUT response: 200 and its declared length; anything else explained.
  net::awaitable<std::optional<failure>> read_out_header();
  net::awaitable<std::variant<std::string, failure>> next_out_pdu();
  net::awaitable<std::optional<failure>> handle(std::string pdu);
  net::awaitable<std::optional<failure>> recycle_in();
  net::awaitable<std::optional<failure>> recycle_out();
  /// Why the virtual connection failed: the IN channel's answer when the proxy gave one, else `f`.
  failure explain(failure f) const;
  rts::cookie fresh_cookie();
  void watch_in();

  const client_settings& s_;
  net::any_io_executor executor_;
  ssl::context& tls_;
  rpc_proxy_requests http_;
  std::uint64_t in_length_;
  std::uint32_t out_window_;
  std::mt19937_64 rng_;
  rts::cookie vc_{}, in_cookie_{}, out_cookie_{};
  std::shared_ptr<channel> in_, out_;
  /// IN channels replaced but left for the inbound proxy to close (each watcher ends when it does).
  std::vector<std::shared_ptr<channel>> retired_;
  std::unique_ptr<http::response_parser<http::buffer_body>> out_parser_;
  rts::pdu_splitter split_;
  std::uint64_t out_declared_ = 0;
  std::uint64_t in_sent_ = 0;            ///< body bytes sent on the current IN channel (its lifetime)
  std::uint32_t in_rpc_sent_ = 0;        ///< RPC bytes sent on the current IN channel (flow control)
  std::uint32_t peer_window_ = 0;        ///< the IN proxy's receive window (CONN/C2)
  std::optional<rts::flow_control_ack> in_ack_;
  std::uint32_t out_received_ = 0, out_acked_ = 0;
  std::deque<std::string> rpc_;
  bool a4_ = false;
  bool recycling_in_ = false;
  rpch_counters counters_;
  watchdog<vc_timeout> dog_;
  scaled_clock::duration limit_{};
};

}  // namespace exbridge::rehearse
