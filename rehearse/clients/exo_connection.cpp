// Exchange Online client connection: connect, TLS, keep-alive exchanges, long-lived requests, NTLM.
#include "rehearse/clients/exo_connection.hpp"

#include <boost/algorithm/string/predicate.hpp>

#include <iomanip>
#include <set>
#include <sstream>

#include "common/base64.hpp"
#include "common/ntlm.hpp"
#include "common/tls_diagnosis.hpp"
#include "rehearse/runner/timeline.hpp"

namespace exbridge::rehearse {
namespace {

constexpr std::size_t max_kept_body = 64 * 1024 * 1024;  // small answers (Autodiscover, FindItem) are kept whole

}  // namespace

exo_connection::exo_connection(net::any_io_executor ex, ssl::context& tls, const client_settings& s)
    : settings_(s), tls_(tls), executor_(ex), dog_(ex, [this] { close(); }) {}

exo_connection::~exo_connection() { record_connection_end(); }

void exo_connection::record_connection_end() {
  if (opened_ms_ < 0) return;
  timeline::current().span(timeline_event::kind::connection, opened_ms_,
                           "connection " + std::to_string(lane_) + " " + tls_description_, lane_);
  opened_ms_ = -1;
}

const failure& exo_connection::record(const failure& f) {
  timeline::current().instant(timeline_event::kind::failure, f.outcome + ": " + f.explanation, lane_, false);
  return f;
}

net::awaitable<std::optional<failure>> exo_connection::ensure_connected() {
  if (stream_ && stream_->next_layer().is_open()) co_return std::nullopt;
  record_connection_end();
  ++serial_;
  lane_ = timeline::current().next_connection();
  opened_ms_ = timeline::current().now_ms();
  stream_.emplace(executor_, tls_);
  buffer_.clear();
  tcp::resolver resolver(executor_);
  dog_.arm(settings_.connect_timeout, client_timeout::connect);
  auto [rec, endpoints] = co_await resolver.async_resolve(settings_.host, std::to_string(settings_.port), use_tuple);
  if (rec) {
    dog_.disarm();
    co_return record(failure{"connect-failed", "cannot resolve " + settings_.host + ": " + rec.message()});
  }
  auto [cec, ep] = co_await net::async_connect(stream_->next_layer(), endpoints, use_tuple);
  dog_.disarm();
  if (cec) {
    std::string cause = dog_.fired() ? std::string("no answer in time") : cec.message();
    co_return record(failure{"connect-failed", "cannot connect to " + settings_.host + ":" +
                                                   std::to_string(settings_.port) + ": " + cause +
                                                   "; is the endpoint up and reachable?"});
  }
  prepare_client_tls(stream_->native_handle(), settings_.server_name, settings_.trust != tls_verify::none);
  dog_.arm(settings_.connect_timeout, client_timeout::connect);
  auto [hec] = co_await stream_->async_handshake(ssl::stream_base::client, use_tuple);
  dog_.disarm();
  if (hec) {
    const auto d = diagnose_tls_failure(dog_.fired() ? net::error::timed_out : hec, stream_->native_handle(),
                                        "the server");
    close();
    co_return record(failure{std::string(failure_name(d.kind)), d.to_string()});
  }
  tls_description_ = describe_session(stream_->native_handle());
  co_return std::nullopt;
}

net::awaitable<std::variant<response_t, failure>> exo_connection::exchange(http::request<http::string_body> req) {
  co_return co_await exchange_streaming(std::move(req), nullptr);
}

net::awaitable<std::variant<response_t, failure>> exo_connection::exchange_streaming(
    http::request<http::string_body> req, body_sink sink) {
  if (auto f = co_await ensure_connected()) co_return *f;
  req.set(http::field::host, settings_.server_name);
  if (req[http::field::user_agent].empty()) req.set(http::field::user_agent, "MSExchangeMigration (exbridge rehearse)");
  req.prepare_payload();
  // Beast drops "Content-Length: 0" for methods it does not know; RPC over HTTP frames every request by
  // Content-Length (an RPC_IN_DATA without one is refused), so it stays.
  if (req.method() == http::verb::unknown && !req.has_content_length()) req.content_length(req.body().size());
  dog_.arm(settings_.request_timeout, client_timeout::request);
  const double request_ms = timeline::current().now_ms();
  const unsigned lane = lane_;
  const std::string request_line = std::string(req.method_string()) + " " + std::string(req.target());
  auto [wec, wn] = co_await http::async_write(*stream_, req, use_tuple);
  http::response_parser<http::buffer_body> parser;
  parser.body_limit(boost::none);
  error_code rec = wec;
  if (!rec) std::tie(rec, std::ignore) = co_await http::async_read_header(*stream_, buffer_, parser, use_tuple);
  std::string kept;
  std::vector<char> chunk(64 * 1024);
  const auto request_deadline = scaled_clock::now() + settings_.request_timeout;
  while (!rec && !parser.is_done()) {
    // Stall detection: each read waits at most the read/write timeout, and never past the request's limit.
    const auto left = request_deadline - scaled_clock::now();
    if (settings_.read_write_timeout < left) {
      dog_.arm(settings_.read_write_timeout, client_timeout::read_write);
    } else {
      dog_.arm(std::max(left, scaled_clock::duration::zero()), client_timeout::request);
    }
    parser.get().body().data = chunk.data();
    parser.get().body().size = chunk.size();
    std::tie(rec, std::ignore) = co_await http::async_read(*stream_, buffer_, parser, use_tuple);
    if (rec == http::error::need_buffer) rec = {};
    const std::size_t got = chunk.size() - parser.get().body().size;
    if (sink) sink(chunk.data(), got);
    const std::size_t keep_limit = sink ? 64 * 1024 : max_kept_body;
    if (kept.size() < keep_limit) kept.append(chunk.data(), std::min(got, keep_limit - kept.size()));
  }
  dog_.disarm();
  {
    // Recorded before anything else goes on the timeline (the event is a reference into it).
    auto& event = timeline::current().span(timeline_event::kind::request, request_ms, request_line, lane);
    event.ok = !rec;
    event.status = rec ? 0 : static_cast<int>(parser.get().result_int());
    event.text += rec ? std::string(" -> no complete response") : " -> " + std::to_string(event.status);
  }
  if (rec) {
    close();
    if (dog_.fired() == client_timeout::request) {
      co_return record(failure{"client-timeout", "no complete response within " + format_duration(settings_.request_timeout) +
                                              ", Exchange Online's per-request limit (.NET HttpWebRequest.Timeout, "
                                              "100 s for the migration service), so the client gave up and will "
                                              "retry; the server or a proxy took longer than that: find which in "
                                              "the proxy's access log (exbridge's timers show the server's think "
                                              "time)"});
    }
    if (dog_.fired() == client_timeout::read_write) {
      co_return record(failure{"client-timeout", "no data for " + format_duration(settings_.read_write_timeout) +
                                                     " in the middle of the response (the client's read/write "
                                                     "timeout, .NET ReadWriteTimeout): the server or a proxy "
                                                     "stalled mid-body; the client gives up on the connection and "
                                                     "retries"});
    }
    co_return record(
        failure{"connection-lost", "the connection closed before a complete response to " + request_line + " (" +
                                       rec.message() + ")"});
  }
  response_t res{std::move(parser.get().base())};
  res.body() = std::move(kept);
  if (!res.keep_alive()) close();
  co_return res;
}

std::optional<failure> exo_connection::io_failure(error_code ec, const char* doing) {
  if (!ec) return std::nullopt;
  close();
  const auto fired = dog_.fired();
  if (fired == client_timeout::request || fired == client_timeout::read_write) {
    const auto limit = fired == client_timeout::request ? settings_.request_timeout : settings_.read_write_timeout;
    return record(failure{"client-timeout", std::string("no progress ") + doing + " within " + format_duration(limit) +
                                                " (the client's limit); the server or a proxy stalled"});
  }
  return record(failure{"connection-lost", std::string("the connection closed ") + doing + " (" + ec.message() + ")"});
}

net::awaitable<std::optional<failure>> exo_connection::send_header(const http::request<http::empty_body>& req,
                                                                   std::string_view body_start) {
  if (auto f = co_await ensure_connected()) co_return f;
  http::request_serializer<http::empty_body> sr{req};
  dog_.arm(settings_.read_write_timeout, client_timeout::read_write);
  auto [ec, n] = co_await http::async_write_header(*stream_, sr, use_tuple);
  dog_.disarm();
  if (ec) co_return io_failure(ec, "while sending a request header");
  if (auto sec = co_await send_body(body_start)) co_return io_failure(sec, "while sending a request body");
  co_return std::nullopt;
}

net::awaitable<error_code> exo_connection::send_body(std::string_view bytes) {
  if (bytes.empty()) co_return error_code{};
  if (!stream_) co_return net::error::not_connected;
  dog_.arm(settings_.read_write_timeout, client_timeout::read_write);
  auto [ec, n] = co_await net::async_write(*stream_, net::buffer(bytes.data(), bytes.size()), use_tuple);
  dog_.disarm();
  co_return ec;
}

net::awaitable<std::optional<failure>> exo_connection::read_header(http::response_parser<http::buffer_body>& parser) {
  if (!stream_) co_return failure{"connection-lost", "the connection is not open"};
  dog_.arm(settings_.request_timeout, client_timeout::request);
  auto [ec, n] = co_await http::async_read_header(*stream_, buffer_, parser, use_tuple);
  dog_.disarm();
  co_return io_failure(ec, "before the response header");
}

net::awaitable<std::pair<error_code, std::size_t>> exo_connection::read_body(
    http::response_parser<http::buffer_body>& parser, char* data, std::size_t size) {
  if (!stream_) co_return std::make_pair(error_code(net::error::not_connected), std::size_t{0});
  parser.get().body().data = data;
  parser.get().body().size = size;
  // read_some: a ping is 20 bytes and must count when it arrives, not when `size` bytes have piled up.
  auto [ec, n] = co_await http::async_read_some(*stream_, buffer_, parser, use_tuple);
  if (ec == http::error::need_buffer) ec = {};
  co_return std::make_pair(ec, size - parser.get().body().size);
}

net::awaitable<std::pair<error_code, std::size_t>> exo_connection::read_raw(char* data, std::size_t size) {
  if (!stream_) co_return std::make_pair(error_code(net::error::not_connected), std::size_t{0});
  if (buffer_.size() > 0) {  // bytes already read past the last response
    const std::size_t n = net::buffer_copy(net::buffer(data, size), buffer_.data());
    buffer_.consume(n);
    co_return std::make_pair(error_code{}, n);
  }
  auto [ec, n] = co_await stream_->async_read_some(net::buffer(data, size), use_tuple);
  co_return std::make_pair(ec, n);
}

void exo_connection::close() {
  record_connection_end();
  if (!stream_) return;
  error_code ignored;
  stream_->next_layer().close(ignored);
}

bool transient(const failure& f) {
  static const std::set<std::string> kinds{"connection-lost", "tls-reset",     "client-timeout", "connect-failed",
                                           "proxy-error",     "proxy-timeout", "http-error"};
  if (f.http_status >= 400 && f.http_status < 500) return false;
  return kinds.count(f.outcome) != 0;
}

std::string megabytes(std::uint64_t bytes) {
  std::ostringstream out;
  out << std::fixed << std::setprecision(1) << static_cast<double>(bytes) / 1e6 << " MB";
  return out.str();
}

std::string megabytes_per_second(std::uint64_t bytes, double seconds) {
  std::ostringstream out;
  out << std::fixed << std::setprecision(1) << static_cast<double>(bytes) / 1e6 / seconds << " MB/s";
  return out.str();
}

std::string basic_authorization(const client_settings& s) {
  return "Basic " + base64_encode(s.email + ":" + s.password);
}

std::string proxy_reason(const std::string& body) {
  if (body.rfind("exbridge: ", 0) == 0) return body.substr(0, body.find('\n'));
  return "";
}

failure http_failure(const response_t& res, const std::string& what) {
  const std::string reason = proxy_reason(res.body());
  // A 504 from the proxy itself: it gave up waiting for the server. The fix is a proxy timeout above the
  // server's think time, not anything on the server.
  if (res.result() == http::status::gateway_timeout) {
    if (reason.find(": response-headers-timeout:") != std::string::npos) {
      return {"proxy-timeout", what + ": the proxy stopped waiting for the server's answer and sent 504 (" + reason +
                                   "); the server thinks longer than that on this request: raise exbridge "
                                   "--timeout-response-headers above the server's think time"};
    }
    if (!reason.empty() && reason.find("-timeout:") != std::string::npos) {
      return {"proxy-timeout", what + ": the proxy timed out and sent 504 (" + reason +
                                   "); raise the exbridge timeout it names above what the server needs"};
    }
    if (res.body().find("504 Gateway Time-out") != std::string::npos) {
      return {"proxy-timeout", what + ": HAProxy sent its \"504 Gateway Time-out\" page: the server did not answer "
                                   "within HAProxy's 'timeout server'; raise it above the server's think time"};
    }
  }
  if (res.result_int() >= 502 && res.result_int() <= 504 && !reason.empty()) {
    return {"proxy-error", what + ": the proxy answered " + std::to_string(res.result_int()) + ": " + reason};
  }
  if (res.result() == http::status::payload_too_large) {
    // nginx's client_max_body_size (1m by default) meets Outlook Anywhere's 1 GB RPC_IN_DATA.
    return {"request-too-large", what + ": the proxy answered 413 Request Entity Too Large: its request body limit "
                                        "is below what the request declares (an Outlook Anywhere IN channel declares "
                                        "1 GB); lift the limit for /rpc/ (nginx: client_max_body_size 0;)",
            413};
  }
  return {"http-error", what + ": unexpected HTTP " + std::to_string(res.result_int()) + " " + std::string(res.reason()),
          static_cast<unsigned>(res.result_int())};
}

std::vector<std::string> offered_schemes(const response_t& challenge) {
  std::vector<std::string> offered;
  const auto [first, last] = challenge.equal_range(http::field::www_authenticate);
  for (auto it = first; it != last; ++it) {
    const std::string_view v = it->value();
    offered.emplace_back(v.substr(0, v.find(' ')));
  }
  return offered;
}

bool offers(const std::vector<std::string>& offered, std::string_view scheme) {
  for (const auto& o : offered) {
    if (boost::algorithm::iequals(o, scheme)) return true;
  }
  return false;
}

net::awaitable<std::variant<response_t, failure>> ntlm_exchange(exo_connection& conn,
                                                                 http::request<http::string_body> req,
                                                                 const client_settings& s) {
  auto type1 = req;
  type1.set(http::field::authorization, http_token("NTLM", make_negotiate()));
  auto r1 = co_await conn.exchange(type1);
  if (auto* f = std::get_if<failure>(&r1)) co_return *f;
  const auto& challenge = std::get<response_t>(r1);
  const auto type2 = decode_http_token(challenge[http::field::www_authenticate]);
  if (challenge.result() != http::status::unauthorized || !type2) {
    if (challenge.result() != http::status::unauthorized) co_return challenge;
    co_return failure{"auth-refused", "the server answered the NTLM negotiate message without a challenge"};
  }
  if (!challenge.keep_alive()) {
    co_return failure{"ntlm-connection-broken",
                      "the connection was closed right after the NTLM challenge; NTLM authenticates the TCP "
                      "connection, so the handshake cannot complete: the proxy must keep each client connection "
                      "on one server connection (HAProxy: drop 'option http-server-close'; exbridge pins pairs)"};
  }
  // "user@domain" logs on as a UPN with an empty domain; "DOMAIN\\user" splits.
  const std::string user = s.ntlm_domain.empty() ? s.email : s.email.substr(0, s.email.find('@'));
  const std::string type3 =
      make_authenticate(*type2, user, s.ntlm_domain, s.password, "EXO-MIGRATION", ntlm_random_challenge(),
                        ntlm_filetime_now());
  req.set(http::field::authorization, http_token("NTLM", type3));
  co_return co_await conn.exchange(std::move(req));
}

net::awaitable<failure> explain_ntlm_refusal(exo_connection& conn, http::request<http::string_body> check,
                                             const client_settings& s, bool basic_offered) {
  if (basic_offered) {
    check.set(http::field::authorization, basic_authorization(s));
    auto rb = co_await conn.exchange(std::move(check));
    if (auto* res = std::get_if<response_t>(&rb); res != nullptr && res->result() == http::status::ok) {
      co_return failure{"ntlm-connection-broken",
                        "the password is right (Basic accepts it) but the NTLM handshake fails: the proxy sends the "
                        "NTLM messages of one client connection over different server connections (HAProxy "
                        "'option http-server-close' or connection pooling); keep each client connection on one "
                        "server connection, as exbridge does"};
    }
  }
  co_return failure{"auth-refused", "the server refused the NTLM credentials of " + s.email +
                                        "; check the migration endpoint's user name and password"};
}

}  // namespace exbridge::rehearse
