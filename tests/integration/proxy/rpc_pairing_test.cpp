// Outlook Anywhere channel pairing in process: a pool of two fake-exchange servers behind exbridge, clients whose
// IN and OUT channels come from different source addresses (127.0.0.2 and 127.0.0.1), as behind a NAT pool or
// from Exchange Online's migration servers, and a replacement IN channel from a third address. Each channel must
// reach the server its virtual connection is on -- CONN/C2 (and IN_R2/A4 for the replacement) come only from a
// server that holds both channels -- while new virtual connections still spread over the pool. And with NTLM,
// which binds a client connection to its server before any cookie is seen, a channel on another server than its
// session's is counted as a conflict.
#include <gtest/gtest.h>

#include <boost/asio/experimental/awaitable_operators.hpp>

#include <deque>
#include <map>
#include <mutex>

#include "common/base64.hpp"
#include "common/ntlm.hpp"
#include "common/rts.hpp"
#include "fake_exchange/server.hpp"
#include "tests/support/bridge_fixture.hpp"
#include "tests/support/rpc_over_http.hpp"

namespace exbridge::proxy::test {
namespace rpc_pairing_test {

/// A fake-exchange that remembers which channels it served.
struct recording_exchange {
  explicit recording_exchange(net::io_context& ioc) {
    fake_exchange::server_options o;
    o.identity = {.cert_file = test_pki().exchange_cert.string(), .key_file = test_pki().exchange_key.string()};
    o.on_request = [this](const fake_exchange::request_record& r) {
      std::lock_guard lock(mutex);
      operations.push_back(r.operation);
    };
    server.emplace(ioc, o);
    server->start();
  }
  unsigned short port() const { return server->local_endpoint().port(); }
  std::size_t served(const std::string& operation) {
    std::lock_guard lock(mutex);
    return static_cast<std::size_t>(std::count(operations.begin(), operations.end(), operation));
  }
  std::mutex mutex;
  std::vector<std::string> operations;
  std::optional<fake_exchange::server> server;
};

std::string basic() {
  return "Basic " + base64_encode(std::string(fake_exchange::demo_email) + ":" + std::string(fake_exchange::demo_password));
}

/// Reads an OUT channel: its response header, then PDUs.
struct out_channel_reader {
  client& c;
  std::string pending;
  bool header_done = false;
  net::awaitable<std::string> header() {
    while (pending.find("\r\n\r\n") == std::string::npos) pending += co_await c.read_some_text();
    const auto end = pending.find("\r\n\r\n") + 4;
    std::string h = pending.substr(0, end);
    pending.erase(0, end);
    co_return h;
  }
  /// The next PDU's kind; unknown after 10 s without one (a channel on the wrong server waits for ever).
  net::awaitable<rts::kind> next_kind() {
    using namespace boost::asio::experimental::awaitable_operators;
    net::steady_timer limit(co_await net::this_coro::executor, std::chrono::seconds(10));
    auto r = co_await (read_kind() || limit.async_wait(net::use_awaitable));
    co_return r.index() == 0 ? std::get<0>(r) : rts::kind::unknown;
  }
  net::awaitable<rts::kind> read_kind() {
    for (;;) {
      const auto length = rts::pdu_length(as_bytes(pending));
      if (length && pending.size() >= *length) {
        const auto decoded = rts::decode(pending.substr(0, *length));
        pending.erase(0, *length);
        const auto* p = std::get_if<rts::pdu>(&decoded);
        co_return p == nullptr ? rts::kind::unknown : rts::identify(*p);
      }
      std::string more = co_await c.read_some_text();
      if (more.empty()) co_return rts::kind::unknown;
      pending += more;
    }
  }
};

class RpcPairingTest : public BridgeTest {
 protected:
  std::deque<recording_exchange> exchanges_;
};

TEST_F(RpcPairingTest, ChannelsFromDifferentAddressesReachTheServerTheirVirtualConnectionIsOn) {
  recording_exchange& a = exchanges_.emplace_back(io_.context());
  recording_exchange& b = exchanges_.emplace_back(io_.context());
  bridge_options o = options_for_upstream();
  o.upstream.servers = {{"127.0.0.1", a.port()}, {"127.0.0.1", b.port()}};
  o.upstream.address = o.upstream.servers.front();
  o.upstream.persistence = persistence::cookie;  // the default, said out loud
  start_bridge(o);
  constexpr int connections = 6;
  int opened = 0, replaced = 0;
  io_.run([&]() -> net::awaitable<void> {
    for (int k = 0; k < connections; ++k) {
      const ::exbridge::test::vc_cookies cookies(static_cast<std::uint8_t>(k + 1));
      // The IN channel first, from 127.0.0.2, waiting for 100 Continue as .NET and impacket do.
      client in(io_.context());
      EXPECT_FALSE(co_await in.connect_from("127.0.0.2", port()));
      const std::string in_head = "RPC_IN_DATA /rpc/rpcproxy.dll?ex2007.contoso.example:6001 HTTP/1.1\r\n"
                                  "Host: mail.contoso.example\r\nAuthorization: " + basic() +
                                  "\r\nContent-Length: 1073741824\r\nExpect: 100-continue\r\n\r\n";
      co_await in.send(in_head);
      const std::string interim = co_await in.read_some_text();
      EXPECT_EQ(interim, "HTTP/1.1 100 Continue\r\n\r\n");
      co_await in.send(::exbridge::test::conn_b1(cookies));
      // The OUT channel from 127.0.0.1.
      client out(io_.context());
      EXPECT_FALSE(co_await out.connect_from("127.0.0.1", port()));
      const std::string out_head = ::exbridge::test::rpc_request("RPC_OUT_DATA", "6001", 76, basic()) +
                                   ::exbridge::test::conn_a1(cookies);
      co_await out.send(out_head);
      out_channel_reader reader{out};
      const std::string header = co_await reader.header();
      EXPECT_TRUE(header.starts_with("HTTP/1.1 200 Success")) << header;
      const bool a3 = co_await reader.next_kind() == rts::kind::conn_a3;
      const bool c2 = co_await reader.next_kind() == rts::kind::conn_c2;  // both channels on one server
      opened += a3 && c2;
      if (k == 0) {
        // A replacement IN channel from a third address: IN_R2/A4 comes back only from the same server.
        const rts::cookie successor = ::exbridge::test::vc_cookies(99).in;
        client next(io_.context());
        EXPECT_FALSE(co_await next.connect_from("127.0.0.3", port()));
        const std::string next_head = ::exbridge::test::rpc_request("RPC_IN_DATA", "6001", 1073741824, basic()) +
                                      rts::encode(rts::in_r1_a1(cookies.vc, cookies.in, successor));
        co_await next.send(next_head);
        rts::kind k4 = rts::kind::unknown;
        do {
          k4 = co_await reader.next_kind();
        } while (k4 == rts::kind::ping);
        replaced += k4 == rts::kind::in_r2_a4;
        next.close_sending();
      }
      in.close_sending();
      out.close_sending();
    }
  }());
  EXPECT_EQ(opened, connections);
  EXPECT_EQ(replaced, 1);
  // Every channel was placed by its virtual connection's cookie, and the virtual connections spread over the pool.
  EXPECT_EQ(bridge_->stats().get(counter::rpc_channels_paired), 2 * connections + 1);
  EXPECT_EQ(bridge_->stats().get(counter::rpc_pairing_conflicts), 0);
  const auto& servers = bridge_->context()->pools.front()->servers;
  EXPECT_GT(servers[0]->connections.load(), 0);
  EXPECT_GT(servers[1]->connections.load(), 0);
}

/// NTLM towards exbridge as Outlook sends it: Type 1 and Type 3 on zero-length requests. The client connection is
/// bound to its server then, before any channel cookie is seen.
net::awaitable<unsigned> ntlm_logon(client& c, const std::string& method) {
  const std::string type1 = ::exbridge::test::rpc_request(method, "6001", 0, http_token("NTLM", make_negotiate()));
  co_await c.send(type1);
  const auto challenge = co_await c.read_response();
  const auto type2 = decode_http_token(challenge[http::field::www_authenticate]).value_or("");
  const auto type3 = make_authenticate(type2, "alex.wilber", "CONTOSO", std::string(fake_exchange::demo_password), "WS01",
                                       ntlm_random_challenge(), ntlm_filetime_now());
  const std::string with_type3 = ::exbridge::test::rpc_request(method, "6001", 0, http_token("NTLM", type3));
  co_await c.send(with_type3);
  co_return (co_await c.read_response()).result_int();
}

TEST_F(RpcPairingTest, AnNtlmBoundChannelOnAnotherServerThanItsSessionIsCountedAndNamed) {
  recording_exchange& a = exchanges_.emplace_back(io_.context());
  recording_exchange& b = exchanges_.emplace_back(io_.context());
  bridge_options o = options_for_upstream();
  o.upstream.servers = {{"127.0.0.1", a.port()}, {"127.0.0.1", b.port()}};
  o.upstream.address = o.upstream.servers.front();
  start_bridge(o);
  // Eight sessions: every IN channel from 127.0.0.2, the OUT channels from eight other addresses. NTLM binds
  // each channel's connection to the server its address hashes to; exbridge can only notice when an OUT channel's
  // server is not its session's.
  constexpr int sessions = 8;
  int authenticated = 0;
  io_.run([&]() -> net::awaitable<void> {
    for (int k = 0; k < sessions; ++k) {
      const ::exbridge::test::vc_cookies cookies(static_cast<std::uint8_t>(k + 20));
      client in(io_.context());
      EXPECT_FALSE(co_await in.connect_from("127.0.0.2", port()));
      authenticated += co_await ntlm_logon(in, "RPC_IN_DATA") == 200;
      const std::string in_channel =
          ::exbridge::test::rpc_request("RPC_IN_DATA", "6001", 1073741824, "") + ::exbridge::test::conn_b1(cookies);
      co_await in.send(in_channel);
      client out(io_.context());
      EXPECT_FALSE(co_await out.connect_from("127.0.0." + std::to_string(3 + k), port()));
      authenticated += co_await ntlm_logon(out, "RPC_OUT_DATA") == 200;
      const std::string out_channel =
          ::exbridge::test::rpc_request("RPC_OUT_DATA", "6001", 76, "") + ::exbridge::test::conn_a1(cookies);
      co_await out.send(out_channel);
      out_channel_reader reader{out};
      const std::string header = co_await reader.header();
      EXPECT_TRUE(header.starts_with("HTTP/1.1 200 Success")) << header;
      in.close_sending();
      out.close_sending();
    }
  }());
  EXPECT_EQ(authenticated, 2 * sessions);
  // One upstream connection per channel. The IN channels share one server; every OUT channel on the other one is
  // a conflict, counted (and warned in the log, with pair=ntlm-conflict:SERVER).
  const auto& servers = bridge_->context()->pools.front()->servers;
  const auto on_a = servers[0]->connections.load(), on_b = servers[1]->connections.load();
  EXPECT_EQ(on_a + on_b, 2 * sessions);
  EXPECT_EQ(bridge_->stats().get(counter::rpc_pairing_conflicts), std::min(on_a, on_b));
  EXPECT_GE(std::min(on_a, on_b), 1) << "every OUT address hashed to the IN channels' server: pick other addresses";
  EXPECT_EQ(bridge_->stats().get(counter::rpc_channels_paired), 0);  // NTLM chose every server, not the cookie
}

}  // namespace rpc_pairing_test
}  // namespace exbridge::proxy::test
