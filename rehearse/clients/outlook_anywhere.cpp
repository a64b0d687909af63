// Outlook Anywhere client: channel setup exactly as Windows' RPC runtime sends it (MS-RPCH; reference
// section 5), then an idle hold that measures whether a proxy keeps both channels open between pings.
#include "rehearse/clients/outlook_anywhere.hpp"

#include <boost/algorithm/string/predicate.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>

#include <array>
#include <cmath>
#include <random>

#include "common/rts.hpp"
#include "rehearse/clients/rpc_proxy_requests.hpp"

namespace exbridge::rehearse {
namespace {

using namespace boost::asio::experimental::awaitable_operators;

// What Windows declares: the IN channel's request body is 1 GB (recycled after that), the OUT channel's
// request carries exactly CONN/A1 (76 bytes).
constexpr std::uint64_t in_channel_length = 1'073'741'824;
// Exchange 2007's RPC proxy pings the OUT channel every 900 s unless MinimumConnectionTimeout lowers it.
constexpr auto exchange_default_ping = std::chrono::seconds(900);
// A channel that closes after this long without traffic was closed for idleness, not by a fault.
constexpr auto idle_close_threshold = std::chrono::seconds(60);
// After one channel closes, how long (virtual) to watch whether the other one closes with it.
constexpr auto close_grace = std::chrono::seconds(30);

rts::cookie random_cookie(std::mt19937& rng) {
  rts::cookie c;
  for (auto& b : c) b = static_cast<std::uint8_t>(rng() & 0xff);
  return c;
}

/// CONN/B1, the IN channel's first PDU (104 bytes): the virtual connection and IN channel cookies,
/// ChannelLifetime (the 1 GB), ClientKeepalive (the ping interval, in ms) and an association group id.
std::string conn_b1(std::mt19937& rng, const rts::cookie& vc, std::chrono::milliseconds keepalive) {
  return rts::encode(rts::conn_b1(vc, random_cookie(rng), static_cast<std::uint32_t>(in_channel_length),
                                  static_cast<std::uint32_t>(keepalive.count()), random_cookie(rng)));
}

/// CONN/A1, the OUT channel's request body (76 bytes): the two cookies, ReceiveWindowSize 64 KiB.
std::string conn_a1(std::mt19937& rng, const rts::cookie& vc) {
  return rts::encode(rts::conn_a1(vc, random_cookie(rng), 65536));
}

/// Counts the Ping RTS PDUs among the whole PDUs that arrived; a partial one waits in `split` for the next read.
unsigned count_pings(rts::pdu_splitter& split) {
  unsigned pings = 0;
  while (const auto pdu = split.next()) {
    const auto decoded = rts::decode(*pdu);
    if (const auto* p = std::get_if<rts::pdu>(&decoded); p != nullptr && rts::identify(*p) == rts::kind::ping) ++pings;
  }
  return pings;
}

long long whole_seconds(scaled_clock::duration d) {
  return std::llround(std::chrono::duration<double>(d).count());
}

/// Seconds as people say them after a measurement on a compressed clock: to the nearest 10 s from 100 s up
/// (a few real milliseconds of scheduling are whole virtual seconds at time scale 100).
long long about_seconds(scaled_clock::duration d) {
  const long long s = whole_seconds(d);
  return s >= 100 ? (s + 5) / 10 * 10 : s;
}

/// A measured interval for people: "15 min" rather than "899 s".
std::string about(scaled_clock::duration d) { return format_duration(std::chrono::seconds(about_seconds(d))); }

/// One channel's life during the idle hold.
struct channel_state {
  const char* name;
  scaled_clock::time_point opened{};
  scaled_clock::time_point last_traffic{};
  std::optional<scaled_clock::time_point> closed_at;
  std::string why;     ///< the error that ended it
  std::string answer;  ///< what arrived on an IN channel (which is never answered while healthy)
  unsigned pings = 0;  ///< IN: sent by the client; OUT: received from the server
  scaled_clock::duration idle_at_close() const { return *closed_at - last_traffic; }
};

class outlook_anywhere_client {
 public:
  outlook_anywhere_client(net::any_io_executor ex, ssl::context& tls, const client_settings& s)
      : s_(s), http_(s, 6001), in_(ex, tls, s), out_(ex, tls, s), wake_(ex), ping_timer_(ex), rng_(std::random_device{}()) {}

  net::awaitable<probe_result> run() {
    // (a) Unauthenticated probe: a zero-length RPC_IN_DATA learns the schemes the RPC virtual directory offers.
    if (auto f = co_await http_.probe(in_)) co_return fail(*f);
    // (b) NTLM authenticates each channel's connection on zero-length requests of that connection, as
    // Windows does; with Basic every channel request carries the credentials itself.
    if (auto f = co_await http_.authenticate(in_, "RPC_IN_DATA")) co_return fail(*f);
    if (auto f = co_await http_.authenticate(out_, "RPC_OUT_DATA")) co_return fail(*f);

    // (d) Echo, as the Remote Connectivity Analyzer and the migration service's RPC check send it: a
    // 4-byte RPC_IN_DATA must get 200, application/rpc and a 20-byte echo RTS PDU.
    auto echo_request = http_.small_request("RPC_IN_DATA", std::string(4, '\0'), http_.credentials());
    auto echo = co_await in_.exchange(std::move(echo_request));
    if (auto* f = std::get_if<failure>(&echo)) co_return fail(*f);
    const auto& echoed = std::get<response_t>(echo);
    if (echoed.result() == http::status::unauthorized) co_return fail(refused());
    if (echoed.result() != http::status::ok) co_return fail(rpc_failure(echoed, "RPC echo probe"));
    if (!boost::algorithm::iequals(echoed[http::field::content_type], "application/rpc") ||
        echoed.body() != rts::encode(rts::echo_pdu())) {
      co_return probe_result{"bad-response", "the RPC echo probe got 200 but not a 20-byte echo RTS PDU as "
                                             "application/rpc; something between the client and rpcproxy.dll "
                                             "rewrites the answer"};
    }

    // (c) The channels, each on its own connection: IN first (no answer is ever expected), then OUT.
    const rts::cookie vc = random_cookie(rng_);
    const auto keepalive = std::chrono::duration_cast<std::chrono::milliseconds>(s_.ping_interval);
    auto in_header = http_.channel_header("RPC_IN_DATA", in_channel_length);
    const std::string b1 = conn_b1(rng_, vc, keepalive);
    const unsigned in_serial = in_.serial(), out_serial = out_.serial();
    if (auto f = co_await in_.send_header(in_header, b1)) co_return fail(*f);
    if (ntlm() && in_.serial() != in_serial) co_return fail(rpc_proxy_requests::lost_ntlm_connection("IN"));
    in_state_.opened = in_state_.last_traffic = scaled_clock::now();

    auto out_header = http_.channel_header("RPC_OUT_DATA", 76);
    const std::string a1 = conn_a1(rng_, vc);
    if (auto f = co_await out_.send_header(out_header, a1)) co_return fail(*f);
    if (ntlm() && out_.serial() != out_serial) co_return fail(rpc_proxy_requests::lost_ntlm_connection("OUT"));
    out_parser_.body_limit(boost::none);
    if (auto f = co_await out_.read_header(out_parser_)) co_return fail(*f);
    if (out_parser_.get().result() != http::status::ok) {
      response_t res{out_parser_.get().base()};
      res.body() = co_await read_small_body();
      if (res.result() == http::status::unauthorized) co_return fail(refused());
      co_return fail(rpc_failure(res, "RPC OUT channel"));
    }
    out_state_.opened = out_state_.last_traffic = scaled_clock::now();
    const auto declared = out_parser_.content_length().value_or(0);

    // (e) Hold both channels idle: the client pings IN every ping_interval, the server pings OUT.
    co_await (supervise() && ping_in() && watch_in() && watch_out());
    co_return verdict(declared);
  }

 private:
  bool ntlm() const { return http_.ntlm(); }
  static probe_result fail(const failure& f) { return {f.outcome, f.explanation}; }
  failure refused() const { return http_.refused(); }
  failure rpc_failure(const response_t& res, const std::string& what) const { return http_.rpc_failure(res, what); }

  /// The body of a non-200 OUT channel answer, enough to explain it.
  net::awaitable<std::string> read_small_body() {
    std::string body;
    std::array<char, 4096> chunk;
    while (!out_parser_.is_done() && body.size() < 64 * 1024) {
      auto [ec, n] = co_await out_.read_body(out_parser_, chunk.data(), chunk.size());
      body.append(chunk.data(), n);
      if (ec) break;
    }
    co_return body;
  }

  void closed(channel_state& c, const std::string& why) {
    if (stopping_ || c.closed_at) return;
    c.closed_at = scaled_clock::now();
    c.why = why;
    wake_.cancel();
  }

  /// Ends the hold at the idle deadline, or once the channels that closed have had a moment to close together.
  net::awaitable<void> supervise() {
    const auto deadline = in_state_.opened + s_.idle;
    std::optional<scaled_clock::time_point> grace_end;
    for (;;) {
      const auto first_close = in_state_.closed_at ? in_state_.closed_at : out_state_.closed_at;
      if (first_close && !grace_end) grace_end = *first_close + close_grace;
      if (in_state_.closed_at && out_state_.closed_at) break;
      const auto until = grace_end ? *grace_end : deadline;
      if (scaled_clock::now() >= until) break;
      wake_.expires_at(until);
      co_await wake_.async_wait(use_tuple);
    }
    stopping_ = true;
    ping_timer_.cancel();
    in_.close();
    out_.close();
  }

  /// The client's keep-alive: a ping RTS PDU on the IN channel after ping_interval without traffic.
  net::awaitable<void> ping_in() {
    const std::string ping = rts::encode(rts::ping_pdu());
    while (!stopping_ && !in_state_.closed_at) {
      ping_timer_.expires_at(in_state_.last_traffic + s_.ping_interval);
      co_await ping_timer_.async_wait(use_tuple);
      if (stopping_ || in_state_.closed_at) break;
      if (auto ec = co_await in_.send_body(ping)) {
        closed(in_state_, "the ping could not be sent (" + ec.message() + ")");
        break;
      }
      ++in_state_.pings;
      in_state_.last_traffic = scaled_clock::now();
    }
  }

  /// A healthy IN channel gets nothing back; anything that arrives (an error answer) or a close ends it.
  net::awaitable<void> watch_in() {
    std::array<char, 4096> chunk;
    for (;;) {
      auto [ec, n] = co_await in_.read_raw(chunk.data(), chunk.size());
      if (n > 0) {
        if (in_state_.answer.size() < 64 * 1024) in_state_.answer.append(chunk.data(), n);
        closed(in_state_, "answered");
      }
      if (ec) {
        closed(in_state_, ec.message());
        co_return;
      }
    }
  }

  /// The OUT channel: count the server's ping PDUs until the channel ends.
  net::awaitable<void> watch_out() {
    std::array<char, 4096> chunk;
    rts::pdu_splitter split;
    for (;;) {
      auto [ec, n] = co_await out_.read_body(out_parser_, chunk.data(), chunk.size());
      if (n > 0 && !stopping_) {
        out_state_.last_traffic = scaled_clock::now();
        split.append(chunk.data(), n);
        out_state_.pings += count_pings(split);
      }
      if (ec || out_parser_.is_done()) {
        closed(out_state_, ec ? ec.message() : std::string("the response ended"));
        co_return;
      }
    }
  }

  /// How often the server pinged, as observed (or Exchange's default when no ping came).
  scaled_clock::duration server_interval() const {
    if (out_state_.pings == 0) return exchange_default_ping;
    return (out_state_.last_traffic - out_state_.opened) / out_state_.pings;
  }

  probe_result verdict(std::uint64_t declared) const {
    const std::string preamble = in_.tls_description() + " to " + s_.server_name + ", " + s_.auth + " auth, " +
                                 "echo ok, OUT channel 200 with Content-Length " + std::to_string(declared) + "; ";
    if (!in_state_.closed_at && !out_state_.closed_at) {
      return {"ok", preamble + "IN and OUT channels survived " + format_duration(s_.idle) + " idle with client pings "
                               "every " + format_duration(s_.ping_interval) + " and server pings about every " +
                               about(server_interval()) + ": " + std::to_string(in_state_.pings) +
                               " pings sent on IN, " + std::to_string(out_state_.pings) + " received on OUT"};
    }
    // The channels that closed, the first one first.
    std::vector<const channel_state*> gone;
    for (const auto* c : {&in_state_, &out_state_}) {
      if (c->closed_at) gone.push_back(c);
    }
    if (gone.size() == 2 && *out_state_.closed_at < *in_state_.closed_at) std::swap(gone[0], gone[1]);
    const std::string names = gone.size() == 2 ? std::string("IN and OUT channels") : std::string(gone[0]->name) + " channel";
    const auto idle = gone[0]->idle_at_close();
    // What the proxy said, if it answered the IN channel with its own page.
    std::string said;
    if (!in_state_.answer.empty()) {
      const auto status_end = in_state_.answer.find("\r\n");
      const auto body = in_state_.answer.find("\r\n\r\n");
      const std::string reason = body == std::string::npos ? "" : proxy_reason(in_state_.answer.substr(body + 4));
      said = " (it answered the IN channel with \"" + in_state_.answer.substr(0, status_end) + "\"" +
             (reason.empty() ? std::string() : ": " + reason) + ")";
    }
    if (idle < idle_close_threshold && in_state_.answer.rfind("HTTP/", 0) == 0) {
      // The IN channel was refused outright (nginx's 413 for the 1 GB Content-Length, a 401, a 503 RPC Error).
      http::response_parser<http::string_body> parser;
      parser.eager(true);
      error_code ec;
      parser.put(net::buffer(in_state_.answer), ec);
      if (parser.is_header_done()) {
        const response_t res{parser.release()};
        if (res.result() == http::status::unauthorized) return fail(refused());
        const failure f = rpc_failure(res, "RPC IN channel (1 GB RPC_IN_DATA)");
        return {f.outcome, f.explanation};
      }
    }
    if (idle < idle_close_threshold) {
      return {"connection-lost", "the " + names + " closed " + std::to_string(whole_seconds(idle)) +
                                     " s after its last traffic (" + gone[0]->why + ")" + said +
                                     "; not an idle timeout: check the proxy's and the server's logs"};
    }
    // Who keeps each closed channel alive, and so the idle timeout the proxy needs.
    std::string pingers;
    auto needed = scaled_clock::duration::zero();
    for (const auto* c : gone) {
      const bool in = c == &in_state_;
      const auto every = in ? s_.ping_interval : server_interval();
      needed = std::max(needed, every);
      if (!pingers.empty()) pingers += " and ";
      pingers += in ? "the client pings the IN channel every " + std::to_string(whole_seconds(every)) + " s"
                    : "Exchange pings the OUT channel every " + std::to_string(about_seconds(every)) + " s" +
                          (out_state_.pings == 0 ? std::string(" (its default; none came in time)") : std::string());
    }
    return {"proxy-idle-timeout",
            "the proxy closed the idle " + names + " after " + std::to_string(about_seconds(idle)) +
                " s without traffic" + said + "; " + pingers + ": raise the proxy's idle timeout for /rpc/ above " +
                format_duration(needed) + " (exbridge --timeout-rpc-idle, HAProxy timeout client and timeout server)"};
  }

  const client_settings& s_;
  rpc_proxy_requests http_;
  exo_connection in_;
  exo_connection out_;
  exbridge::timer wake_;
  exbridge::timer ping_timer_;
  std::mt19937 rng_;
  http::response_parser<http::buffer_body> out_parser_;
  channel_state in_state_{"IN"};
  channel_state out_state_{"OUT"};
  bool stopping_ = false;
};

}  // namespace

net::awaitable<probe_result> run_outlook_anywhere(client_settings s) {
  ssl::context tls = make_tls_context(tls_profile::exchange_online_client, {.verify = s.trust, .ca_file = s.ca_file});
  outlook_anywhere_client client(co_await net::this_coro::executor, tls, s);
  co_return co_await client.run();
}

}  // namespace exbridge::rehearse
