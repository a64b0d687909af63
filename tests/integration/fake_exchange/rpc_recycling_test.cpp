// Outlook Anywhere channel recycling over real TLS 1.0 ([MS-RPCH] 3.2.2.5.12, 3.2.5.5): a client that keeps one
// virtual connection open while both its channels are replaced many times -- IN channels of 8 KiB declared
// (IN_R1/A1 on a new connection, IN_R2/A4 back on OUT, IN_R1/A5 on the old one) and OUT channels of the lab's
// 16 KiB (OUT_R2/A2, OUT_R1/A3 on a new connection, OUT_R2/A6, OUT_R2/C1 and OUT_R2/A7, OUT_R2/B3, then the new
// channel's 200 header), with flow control acknowledged per channel. Every call must be answered exactly once
// and in order, and every IN byte the client sent must be one the server counted.
//
// Size knob: EXBRIDGE_RECYCLE_CALLS (default 3000 calls; slow.rpc_recycling_30000 runs 30,000, and the full
// run, by hand, 100,000: EXBRIDGE_RECYCLE_CALLS=100000 build/tests/integration_tests --gtest_filter=RpcRecycling.*).
#include <gtest/gtest.h>

#include <deque>
#include <memory>

#include "tests/support/exchange_lab.hpp"
#include "tests/support/rpc_over_http.hpp"

namespace exbridge {
namespace rpc_recycling_test {

constexpr std::uint64_t in_length = 8 * 1024;
constexpr std::uint32_t client_window = 8192;  // the smallest window: acks are needed every 4 KiB
constexpr std::uint64_t a5_size = 40, a7_size = 56;

rts::kind kind_of(const std::string& pdu) {
  const auto decoded = rts::decode(pdu);
  const auto* p = std::get_if<rts::pdu>(&decoded);
  return p == nullptr ? rts::kind::unknown : rts::identify(*p);
}

/// A client of one virtual connection that replaces its channels as Windows' RPC runtime does.
class recycling_client {
 public:
  explicit recycling_client(test::exchange_lab& lab) : lab_(lab) {}

  net::awaitable<void> open() {
    in_cookie_ = cookies_.in;
    out_cookie_ = cookies_.out;
    in_ = co_await connect();
    const std::string in_head =
        test::rpc_request("RPC_IN_DATA", "6001", in_length, test::demo_basic_auth()) + test::conn_b1(cookies_);
    co_await test::send_text(*in_, in_head);
    in_sent_ = in_total_ = 104;  // CONN/B1
    out_ = co_await connect();
    const std::string out_head = test::rpc_request("RPC_OUT_DATA", "6001", 76, test::demo_basic_auth()) +
                                 rts::encode(rts::conn_a1(cookies_.vc, cookies_.out, client_window));
    co_await test::send_text(*out_, out_head);
    reader_ = std::make_unique<test::out_reader>(*out_);
    if (co_await reader_->read_header() != 200) throw std::runtime_error("the OUT channel was not accepted");
    for (const auto expected : {rts::kind::conn_a3, rts::kind::conn_c2}) {
      if (kind_of(co_await reader_->next()) != expected) throw std::runtime_error("CONN/A3 or CONN/C2 missing");
    }
  }

  /// Sends one PDU on the IN channel, replacing the channel first if the PDU and the PDUs a replacement of
  /// either channel needs on it would not fit what it declared.
  net::awaitable<void> send(std::string pdu) {
    if (in_sent_ + pdu.size() + a5_size + a7_size > in_length) co_await recycle_in();
    co_await test::send_text(*in_, pdu);
    in_sent_ += pdu.size();
    in_total_ += pdu.size();
  }

  /// The next RPC PDU on the OUT channel, acknowledging OUT traffic and following the server's RTS PDUs.
  net::awaitable<std::string> next_rpc() {
    while (rpc_.empty()) co_await handle(co_await reader_->next());
    std::string p = std::move(rpc_.front());
    rpc_.pop_front();
    co_return p;
  }

  void close() {
    in_->next_layer().close();
    out_->next_layer().close();
  }

  unsigned in_recycled = 0, out_recycled = 0;
  std::uint64_t in_total() const { return in_total_; }

 private:
  /// A channel's connection; small PDUs go at once, as the RPC runtime sends them (TCP_NODELAY).
  net::awaitable<std::unique_ptr<test::tls_stream>> connect() {
    auto s = std::make_unique<test::tls_stream>(co_await lab_.connect());
    s->next_layer().set_option(tcp::no_delay(true));
    co_return s;
  }

  rts::cookie fresh_cookie() {
    rts::cookie c = cookies_.vc;
    c[0] = static_cast<std::uint8_t>(++generation_);
    c[1] = static_cast<std::uint8_t>(generation_ >> 8);
    c[15] ^= 0x5A;
    return c;
  }

  net::awaitable<void> handle(std::string pdu) {
    if (rts::pdu_type(as_bytes(pdu)) != rts::ptype_rts) {
      out_received_ += static_cast<std::uint32_t>(pdu.size());
      rpc_.push_back(std::move(pdu));
      // Windows' rule: acknowledge once half the window is used (3.2.1.4.1.1), naming this OUT channel.
      if (out_received_ - out_acked_ >= client_window / 2) {
        out_acked_ = out_received_;
        co_await send(rts::encode(rts::flow_control_ack_with_destination_pdu(
            rts::forward_destination::out_proxy, {out_received_, client_window, out_cookie_})));
      }
      co_return;
    }
    switch (kind_of(pdu)) {
      case rts::kind::ping:
      case rts::kind::flow_control_ack_with_destination:  // the server's acks of IN traffic
        co_return;
      case rts::kind::in_r2_a4:
        a4_ = true;
        co_return;
      case rts::kind::out_r2_a2:
        co_await recycle_out();
        co_return;
      default:
        throw std::runtime_error("unexpected on OUT: " + std::string(rts::kind_name(kind_of(pdu))));
    }
  }

  net::awaitable<void> recycle_in() {
    const rts::cookie successor = fresh_cookie();
    auto next = co_await connect();
    const std::string head = test::rpc_request("RPC_IN_DATA", "6001", in_length, test::demo_basic_auth()) +
                             rts::encode(rts::in_r1_a1(cookies_.vc, in_cookie_, successor));
    co_await test::send_text(*next, head);
    a4_ = false;
    while (!a4_) co_await handle(co_await reader_->next());
    const std::string a5 = rts::encode(rts::in_r1_a5(successor));
    co_await test::send_text(*in_, a5);
    in_total_ += a5.size() + 88;  // A5 on the old channel, A1 on the new one
    in_->next_layer().close();
    in_ = std::move(next);
    in_cookie_ = successor;
    in_sent_ = 88;
    ++in_recycled;
  }

  net::awaitable<void> recycle_out() {
    const rts::cookie successor = fresh_cookie();
    auto next = co_await connect();
    const std::string head = test::rpc_request("RPC_OUT_DATA", "6001", 120, test::demo_basic_auth()) +
                             rts::encode(rts::out_r1_a3(cookies_.vc, out_cookie_, successor, client_window));
    co_await test::send_text(*next, head);
    // The old channel: OUT_R2/A6, then (after C1 and A7) OUT_R2/B3, its last PDU.
    for (const auto wanted : {rts::kind::out_r2_a6, rts::kind::out_r2_b3}) {
      for (;;) {
        std::string pdu = co_await reader_->next();
        if (kind_of(pdu) == wanted) break;
        co_await handle(std::move(pdu));
      }
      if (wanted == rts::kind::out_r2_a6) {
        const std::string c1 = rts::encode(rts::out_r2_c1());
        co_await test::send_text(*next, c1);
        co_await send(rts::encode(rts::out_r2_a7(successor)));
      }
    }
    out_->next_layer().close();
    out_ = std::move(next);
    reader_ = std::make_unique<test::out_reader>(*out_);
    if (co_await reader_->read_header() != 200) throw std::runtime_error("the replacement OUT channel was not accepted");
    if (reader_->declared() != 16 * 1024) throw std::runtime_error("the replacement OUT channel declares another length");
    out_cookie_ = successor;
    out_received_ = out_acked_ = 0;  // flow control counts per channel (2.2.3.4)
    ++out_recycled;
  }

  test::exchange_lab& lab_;
  test::vc_cookies cookies_;
  rts::cookie in_cookie_{}, out_cookie_{};
  std::unique_ptr<test::tls_stream> in_, out_;
  std::unique_ptr<test::out_reader> reader_;
  std::uint64_t in_sent_ = 0, in_total_ = 0;
  std::uint32_t out_received_ = 0, out_acked_ = 0;
  std::deque<std::string> rpc_;
  bool a4_ = false;
  unsigned generation_ = 0;
};

/// An EcDoConnectEx-sized request without RPC authentication: EMSMDB answers each with a 32-byte fault.
std::string call(std::uint32_t id, std::size_t stub) {
  dcerpc::pdu p;
  p.type = dcerpc::ptype::request;
  p.call_id = id;
  p.content = dcerpc::request_body{static_cast<std::uint32_t>(stub), 0, 10, std::nullopt, std::string(stub, 'x')};
  return dcerpc::encode(p);
}

TEST(RpcRecycling, BothChannelsAreReplacedManyTimesAndEveryCallIsAnsweredOnceInOrder) {
  fake_exchange::server_options options;
  options.rpc_out_channel_length = 16 * 1024;
  test::exchange_lab lab(options);
  const auto calls = static_cast<std::uint32_t>(test::env_knob("EXBRIDGE_RECYCLE_CALLS", 3000));
  recycling_client client(lab);
  std::uint32_t answered = 0;
  std::string mismatch;
  lab.io().run([&]() -> net::awaitable<void> {
    co_await client.open();
    co_await client.send(test::bind_pdu(1, test::emsmdb_interface()));
    if (dcerpc::decode(co_await client.next_rpc()).index() != 0) mismatch = "no bind_ack";
    for (std::uint32_t id = 2; id < 2 + calls && mismatch.empty(); ++id) {
      co_await client.send(call(id, 100 + (id * 37) % 1000));
      const auto decoded = dcerpc::decode(co_await client.next_rpc());
      const auto* p = std::get_if<dcerpc::pdu>(&decoded);
      if (p == nullptr || p->type != dcerpc::ptype::fault || p->call_id != id) {
        mismatch = "call " + std::to_string(id) + " was not answered by its fault";
      } else {
        ++answered;
      }
    }
    client.close();
  }());
  std::printf("%u calls answered; %u IN and %u OUT channels replaced\n", answered, client.in_recycled, client.out_recycled);
  ASSERT_EQ(mismatch, "");
  EXPECT_EQ(answered, calls);
  EXPECT_GE(client.in_recycled, calls / 15);
  EXPECT_GE(client.out_recycled, calls / 600);
  // The server's records: one per channel. Every replaced channel ended as recycled, never with an error; the
  // IN bytes it read are the bytes the client sent; no OUT channel wrote past what its header declared.
  const std::size_t channels = 2 + client.in_recycled + client.out_recycled;
  std::uint64_t in_bytes = 0;
  unsigned in_recycled = 0, out_recycled = 0;
  for (std::size_t n = 1; n <= channels; ++n) {
    const auto r = lab.wait_for_request(n);
    if (r.operation == "RPC_IN_DATA") {
      in_bytes += r.bytes_in;
      in_recycled += r.error.starts_with("channel recycled: IN_R1/A5 received");
    } else {
      out_recycled += r.error.starts_with("channel recycled: OUT_R2/B3 sent");
      EXPECT_LE(r.bytes_out, 16u * 1024 + 200) << r.error;
    }
  }
  EXPECT_EQ(in_recycled, client.in_recycled);
  EXPECT_EQ(out_recycled, client.out_recycled);
  EXPECT_EQ(in_bytes, client.in_total());
}

}  // namespace rpc_recycling_test
}  // namespace exbridge
