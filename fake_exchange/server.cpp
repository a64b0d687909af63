// fake-exchange connection handling: one coroutine per TCP connection reads a request header, then either
// reads the (bounded) body and answers through the router, or -- under /rpc/ -- streams an Outlook Anywhere
// channel. Fault rules shape the answer: delays, slow or cut bodies, error pages, abrupt closes.
#include "fake_exchange/server.hpp"

#include <boost/asio/experimental/awaitable_operators.hpp>

#include <boost/algorithm/string/predicate.hpp>

#include <algorithm>
#include <array>

#include "common/lab_pki.hpp"
#include "common/listener.hpp"
#include "common/log.hpp"
#include "common/tls_diagnosis.hpp"
#include "common/tls_socket.hpp"
#include "common/watchdog.hpp"
#include "fake_exchange/rpc_proxy.hpp"
#include "fake_exchange/streamed_body.hpp"

namespace exbridge::fake_exchange {
namespace {

using namespace boost::asio::experimental::awaitable_operators;

tls_identity identity_or_generated(const server_options& o) {
  if (!o.identity.empty()) return o.identity;
  const std::string host = o.exchange.org.server_fqdn();
  const pem_pair pair = make_certificate({.common_name = host,
                                          .dns_names = {host, "autodiscover." + o.exchange.org.domain, "localhost"},
                                          .ip_addresses = {"127.0.0.1", "::1"}},
                                         nullptr);
  return {.cert_pem = pair.cert_pem, .key_pem = pair.key_pem};
}

enum class server_timeout { handshake, idle };

/// How a connection goes on after a request.
enum class connection_end {
  keep_alive,  ///< read the next request
  graceful,    ///< close with TLS close_notify (IIS's normal close; also the truncate fault)
  reset,       ///< TCP RST: SO_LINGER 0, then close
  abrupt,      ///< TCP FIN without close_notify
};

using tls_stream = tls_socket;  // OpenSSL on the socket itself (common/tls_socket.hpp): two copies fewer per byte
using response_t = http::response<http::string_body>;

bool peer_closed(const error_code& ec) {
  return ec == http::error::end_of_stream || ec == ssl::error::stream_truncated || ec == net::error::eof ||
         ec == net::error::connection_reset;
}

/// Virtual directory names as ASP.NET prints them in its error pages.
std::string application_of(std::string_view target) {
  if (boost::algorithm::istarts_with(target, "/ews/")) return "/EWS";
  if (boost::algorithm::istarts_with(target, "/autodiscover/")) return "/Autodiscover";
  if (boost::algorithm::istarts_with(target, "/rpc/")) return "/rpc";
  return "/";
}

bool cuts_body(fault_kind k) {
  return k == fault_kind::reset || k == fault_kind::truncate || k == fault_kind::no_close_notify;
}

connection_end end_for(fault_kind k) {
  if (k == fault_kind::reset) return connection_end::reset;
  if (k == fault_kind::no_close_notify) return connection_end::abrupt;
  return connection_end::graceful;
}

/// One TCP connection: the TLS stream, its idle watchdog, the read buffer and the NTLM state.
struct connection {
  connection(tcp::socket socket, ssl::context& tls)
      : stream(std::move(socket), tls), dog(stream.get_executor(), [this] {
          error_code ignored;
          stream.next_layer().close(ignored);
        }) {}

  /// Waits `d` of virtual time with the idle timeout off (a fault's own wait must not trip it).
  net::awaitable<void> pause(scaled_clock::duration d) {
    dog.disarm();
    exbridge::timer t(stream.get_executor());
    t.expires_after(d);
    co_await t.async_wait(use_tuple);
  }

  tls_stream stream;
  watchdog<server_timeout> dog;
  beast::flat_buffer buffer;
  connection_auth auth;  // NTLM authenticates this TCP connection, not a request
};

/// Paces a body in either direction by a throttle or stall fault (other faults pass through): before
/// `done` bytes have moved it waits as the fault says, then tells how many more may move now.
class pacer {
 public:
  pacer(connection& c, const fault_action* fault)
      : c_(c),
        fault_(fault != nullptr && (fault->kind == fault_kind::throttle || fault->kind == fault_kind::stall) ? fault
                                                                                                              : nullptr),
        start_(scaled_clock::now()) {}

  net::awaitable<std::size_t> next(std::uint64_t done, std::size_t wanted) {
    if (fault_ == nullptr || stalled_) co_return wanted;
    if (fault_->kind == fault_kind::stall) {
      const std::uint64_t after = fault_->after_bytes.value_or(0);
      if (done < after) co_return static_cast<std::size_t>(std::min<std::uint64_t>(wanted, after - done));
      co_await c_.pause(fault_->duration);
      stalled_ = true;
      co_return wanted;
    }
    // Throttle: pieces of 1/20 s at the rate, each moving when the rate allows it (virtual time).
    const auto piece = static_cast<std::size_t>(std::clamp(fault_->rate / 20, 1.0, 65536.0));
    const std::size_t take = std::min(wanted, piece);
    const auto due = start_ + std::chrono::duration_cast<scaled_clock::duration>(
                                  std::chrono::duration<double>(static_cast<double>(done + take) / fault_->rate));
    if (due > scaled_clock::now()) {
      c_.dog.disarm();
      exbridge::timer t(c_.stream.get_executor());
      t.expires_at(due);
      co_await t.async_wait(use_tuple);
    }
    co_return take;
  }

 private:
  connection& c_;
  const fault_action* fault_;
  scaled_clock::time_point start_;
  bool stalled_ = false;
};

/// Writes response body bytes, applying a body-shaping fault (throttle, stall, reset/truncate/no-close-notify
/// after N bytes). Each piece re-arms the idle timeout, so only a client that stops reading is cut off.
class body_writer {
 public:
  body_writer(connection& c, const fault_action* fault, scaled_clock::duration idle)
      : c_(c), fault_(fault), idle_(idle), pace_(c, fault) {}

  /// Writes `n` bytes, or fewer when the fault cuts the body (then `cut()` says how the connection ends).
  net::awaitable<error_code> write(const char* data, std::size_t n) {
    while (n > 0) {
      std::size_t take = n;
      if (fault_ != nullptr && cuts_body(fault_->kind) && fault_->after_bytes) {
        if (written_ >= *fault_->after_bytes) {
          cut_ = end_for(fault_->kind);
          co_return net::error::connection_aborted;
        }
        take = static_cast<std::size_t>(std::min<std::uint64_t>(take, *fault_->after_bytes - written_));
      }
      take = co_await pace_.next(written_, take);
      c_.dog.arm(idle_, server_timeout::idle);
      auto [ec, done] = co_await net::async_write(c_.stream, net::buffer(data, take), use_tuple);
      written_ += done;
      if (ec) co_return ec;
      data += take;
      n -= take;
    }
    co_return error_code{};
  }

  std::uint64_t written() const { return written_; }
  connection_end cut() const { return cut_; }

 private:
  connection& c_;
  const fault_action* fault_;
  scaled_clock::duration idle_;
  pacer pace_;
  std::uint64_t written_ = 0;
  connection_end cut_ = connection_end::keep_alive;
};

/// The largest request body read and discarded to keep a connection after an answer that did not need it
/// (an echo's, an OUT channel's opening PDUs, a body refused before it was sent); a larger one closes it.
constexpr std::uint64_t small_body_limit = 64 * 1024;

/// http.sys's answer to a request it cannot parse.
response_t bad_request() {
  response_t res{http::status::bad_request, 11};
  res.set(http::field::content_type, "text/html; charset=us-ascii");
  res.set(http::field::server, "Microsoft-HTTPAPI/2.0");
  res.body() = "<h2>Bad Request</h2>";
  res.keep_alive(false);
  res.prepare_payload();
  return res;
}

/// Reads and discards a small request body (an echo's or an OUT channel's opening PDUs); returns its size.
net::awaitable<std::tuple<error_code, std::uint64_t>> drain_body(connection& c,
                                                                  http::request_parser<http::buffer_body>& parser) {
  std::array<char, 16 * 1024> chunk;
  std::uint64_t total = 0;
  while (!parser.is_done()) {
    parser.get().body().data = chunk.data();
    parser.get().body().size = chunk.size();
    auto [ec, n] = co_await http::async_read(c.stream, c.buffer, parser, use_tuple);
    total += chunk.size() - parser.get().body().size;
    if (ec && ec != http::error::need_buffer) co_return std::make_tuple(ec, total);
  }
  co_return std::make_tuple(error_code{}, total);
}

/// The per-connection request loop; a class so that the steps share the connection and the server's parts.
class session {
 public:
  session(connection& c, const server_options& o, server_stats& stats, fault_injector& faults, std::string client)
      : c_(c), options_(o), stats_(stats), faults_(faults), client_(std::move(client)) {}

  /// Serves requests until the connection ends; returns how it is to be closed.
  net::awaitable<connection_end> run() {
    for (;;) {
      c_.dog.arm(options_.idle_timeout, server_timeout::idle);
      http::request_parser<http::buffer_body> head;
      head.header_limit(16 * 1024);  // http.sys MaxRequestBytes default
      head.body_limit(boost::none);  // decided per virtual directory once the header is known
      started_ = std::chrono::steady_clock::now();
      auto [ec, n] = co_await http::async_read_header(c_.stream, c_.buffer, head, use_tuple);
      // A connection closed or reset before any byte of a request (health checks do this) is not a request.
      if ((peer_closed(ec) || c_.dog.fired()) && !head.got_some()) co_return connection_end::graceful;
      if (peer_closed(ec)) co_return connection_end::graceful;  // mid-request: nobody is left to answer
      request_record rec;
      rec.method = std::string(head.get().method_string());
      rec.target = std::string(head.get().target());
      connection_end end = connection_end::graceful;
      if (ec) {
        rec.error = "parse_error=" + ec.message();
        const auto hit = match(rec);
        end = co_await respond(bad_request(), nullptr, hit, rec);
      } else if (is_rpc_path(rec.target)) {
        end = co_await serve_rpc(head, rec);
      } else {
        end = co_await serve_http(head, rec);
      }
      finish(rec);
      if (end != connection_end::keep_alive) co_return end;
    }
  }

 private:
  std::optional<fault_hit> match(const request_record& rec) {
    const std::string_view target = rec.target;
    auto hit = faults_.match_request(target.substr(0, target.find('?')), rec.operation, rec.user);
    if (hit) {
      rec_fault_ = hit->describe();
      stats_.fault(hit->rule, std::string(fault_kind_name(hit->action.kind)));
    }
    return hit;
  }

  /// Autodiscover and EWS: the body is read whole (it is bounded by IIS's limit), then routed.
  net::awaitable<connection_end> serve_http(http::request_parser<http::buffer_body>& head, request_record& rec) {
    const auto declared = head.content_length();
    const unsigned version = head.get().version();
    if (declared && *declared > ews_max_request_bytes) {
      rec.error = "body over maxAllowedContentLength";
      const auto hit = match(rec);
      co_return co_await respond(content_too_large_response(version), nullptr, hit, rec);
    }
    // A client that sends "Expect: 100-continue" holds its body back until the request is admitted on its
    // header (http.sys sends 100 Continue once IIS lets the request through to the handler; a refusal goes
    // out instead and the body is never asked for).
    std::optional<admission> admitted;
    if (expects_continue(head.get(), declared ? std::optional<std::uint64_t>(*declared) : std::nullopt, head.chunked())) {
      admitted = admit_request(head.get(), options_.exchange, c_.auth);
      if (admitted->refusal) {
        rec.user = admitted->email;
        rec.operation = admitted->operation;
        const auto hit = match(rec);
        co_return co_await refuse_before_body(std::move(*admitted->refusal), head, hit, rec);
      }
      if (!co_await send_continue(rec)) co_return connection_end::graceful;
    }
    http::request_parser<http::string_body> parser{std::move(head)};
    parser.body_limit(ews_max_request_bytes);  // for chunked bodies, whose size shows only while read
    if (!parser.is_done()) {
      auto [ec, n] = co_await http::async_read(c_.stream, c_.buffer, parser, use_tuple);
      rec.bytes_in = parser.get().body().size();
      if (peer_closed(ec) || c_.dog.fired()) {
        rec.error = "client gone mid-request";
        co_return connection_end::graceful;
      }
      if (ec == http::error::body_limit) {
        rec.error = "body over maxAllowedContentLength";
        const auto hit = match(rec);
        co_return co_await respond(content_too_large_response(version), nullptr, hit, rec);
      }
      if (ec) {
        rec.error = "parse_error=" + ec.message();
        const auto hit = match(rec);
        co_return co_await respond(bad_request(), nullptr, hit, rec);
      }
    }
    rec.bytes_in = parser.get().body().size();
    stats_.received(rec.bytes_in);
    auto routed = admitted ? answer_request(parser.get(), options_.exchange, *admitted->who)
                           : route_request(parser.get(), options_.exchange, c_.auth);
    routed.response.keep_alive(parser.get().keep_alive());
    rec.user = std::move(routed.user);
    rec.operation = std::move(routed.operation);
    const auto hit = match(rec);
    co_return co_await respond(std::move(routed.response), std::move(routed.stream), hit, rec);
  }

  /// Outlook Anywhere: the header decides; bodies are never buffered (an IN channel declares 1 GB).
  net::awaitable<connection_end> serve_rpc(http::request_parser<http::buffer_body>& head, request_record& rec) {
    std::optional<std::uint64_t> length;
    if (head.content_length()) length = *head.content_length();
    auto decision = route_rpc(head.get(), length, options_.exchange, c_.auth);
    rec.user = decision.user;
    rec.operation = decision.operation;
    const auto hit = match(rec);
    const bool proceeds = decision.channel != rpc_channel::none && !(hit && replaces_response(hit->action.kind));
    if (expects_continue(head.get(), length, head.chunked())) {
      // rpcproxy lets the channel through: 100 Continue, and the client starts its body (an IN channel's
      // PDUs, the OUT request's CONN/A1). Refused: the answer instead, before any body byte.
      if (!proceeds) {
        co_return co_await refuse_before_body(std::move(decision.response), head, hit, rec);
      }
      if (!co_await send_continue(rec)) co_return connection_end::graceful;
    }
    if (decision.channel == rpc_channel::in && proceeds) co_return co_await consume_in_channel(head, hit, rec);
    // Answers and OUT channels: a small body is read first (it cannot hold more than the opening PDUs);
    // a large one is left unread and the connection closes after the answer.
    const auto declared = head.content_length().value_or(0);
    if (declared <= small_body_limit) {
      auto [ec, n] = co_await drain_body(c_, head);
      rec.bytes_in = n;
      stats_.received(n);
      if (ec) {
        rec.error = "client gone mid-request";
        co_return connection_end::graceful;
      }
    }
    if (decision.channel == rpc_channel::out && proceeds) {
      co_return co_await serve_out_channel(decision.response, hit, rec);
    }
    // rpcproxy's 503 always closes; so does any answer that leaves a body unread.
    const bool unread = declared > small_body_limit;
    const bool rpc_error = decision.response.result() == http::status::service_unavailable;
    decision.response.keep_alive(head.get().keep_alive() && !unread && !rpc_error);
    co_return co_await respond(std::move(decision.response), nullptr, hit, rec);
  }

  /// http.sys's interim answer to "Expect: 100-continue" for an admitted request. False when the client is gone.
  net::awaitable<bool> send_continue(request_record& rec) {
    static constexpr std::string_view interim = "HTTP/1.1 100 Continue\r\n\r\n";
    auto [ec, n] = co_await net::async_write(c_.stream, net::buffer(interim), use_tuple);
    if (ec) rec.error = "client gone before its body";
    co_return !ec;
  }

  /// Answers a request that waits for 100 Continue with a refusal instead, before any of its body was read.
  /// Then, as http.sys does after an answer sent ahead of the body, a small body (the client may still send
  /// it) is read and discarded so that the connection carries the next request -- NTLM's next leg; a large
  /// or chunked one would hold the connection for nothing: it closes.
  net::awaitable<connection_end> refuse_before_body(response_t refusal, http::request_parser<http::buffer_body>& head,
                                                    const std::optional<fault_hit>& hit, request_record& rec) {
    const bool drainable = !head.chunked() && head.content_length().value_or(0) <= small_body_limit;
    refusal.keep_alive(refusal.keep_alive() && head.get().keep_alive() && drainable);
    const connection_end end = co_await respond(std::move(refusal), nullptr, hit, rec);
    if (end != connection_end::keep_alive) co_return end;
    auto [ec, n] = co_await drain_body(c_, head);
    if (ec) co_return connection_end::graceful;
    rec.bytes_in = n;
    stats_.received(n);
    co_return end;
  }

  /// A healthy IN channel: its body is counted as it streams and never answered. It ends when the
  /// client closes it (or sends all it declared: the client then recycles the channel on a new connection).
  net::awaitable<connection_end> consume_in_channel(http::request_parser<http::buffer_body>& parser,
                                                    const std::optional<fault_hit>& hit, request_record& rec) {
    // The channel is idle between the client's keep-alives (720 s by default): it has no idle timeout.
    c_.dog.disarm();
    if (hit && hit->action.kind == fault_kind::delay) co_await c_.pause(hit->action.duration);
    const fault_action* cut = hit && cuts_body(hit->action.kind) ? &hit->action : nullptr;
    const std::uint64_t cut_at = cut != nullptr ? cut->after_bytes.value_or(0) : 0;
    // A throttled or stalled IN channel is read slowly: TCP's window pushes back on the client.
    pacer pace(c_, hit ? &hit->action : nullptr);
    std::vector<char> chunk(64 * 1024);
    while (!parser.is_done()) {
      std::size_t room = chunk.size();
      if (cut != nullptr) room = static_cast<std::size_t>(std::min<std::uint64_t>(room, cut_at - rec.bytes_in));
      room = co_await pace.next(rec.bytes_in, room);
      parser.get().body().data = chunk.data();
      parser.get().body().size = room;
      auto [ec, n] = co_await http::async_read(c_.stream, c_.buffer, parser, use_tuple);
      const std::size_t got = room - parser.get().body().size;
      rec.bytes_in += got;
      stats_.rpc_in(got);
      stats_.received(got);
      if (ec && ec != http::error::need_buffer) {
        rec.error = peer_closed(ec) ? "channel closed by the client" : "channel ended: " + ec.message();
        co_return connection_end::graceful;
      }
      // A fault "after N bytes" on an IN channel cuts it once N request bytes have arrived.
      if (cut != nullptr && rec.bytes_in >= cut_at) {
        rec.error = "channel cut by fault";
        co_return end_for(cut->kind);
      }
    }
    rec.error = "channel complete";
    co_return connection_end::graceful;
  }

  /// An OUT channel: the 200 header with a 1 GB Content-Length, then a ping PDU every rpc_ping_interval
  /// until the client closes the channel (or a fault cuts it).
  net::awaitable<connection_end> serve_out_channel(response_t& header, const std::optional<fault_hit>& hit,
                                                   request_record& rec) {
    if (hit && hit->action.kind == fault_kind::delay) co_await c_.pause(hit->action.duration);
    rec.status = header.result_int();
    c_.dog.arm(options_.idle_timeout, server_timeout::idle);
    http::response<http::buffer_body> res{header.base()};
    http::response_serializer<http::buffer_body> sr{res};
    auto [ec, n] = co_await http::async_write_header(c_.stream, sr, use_tuple);
    rec.bytes_out = n;
    if (ec) {
      rec.error = "write failed: " + ec.message();
      co_return connection_end::graceful;
    }
    // The pings are the channel's keep-alive; between them it is idle by design.
    c_.dog.disarm();
    body_writer writer(c_, hit ? &hit->action : nullptr, options_.idle_timeout);
    auto outcome = co_await (send_pings(writer) || until_closed());
    rec.bytes_out += writer.written();
    stats_.served(rec.bytes_out);
    rec.error = outcome.index() == 0 ? "channel ended: " + std::get<0>(outcome).message() : "channel closed by the client";
    if (writer.cut() != connection_end::keep_alive) co_return writer.cut();
    co_return connection_end::graceful;
  }

  net::awaitable<error_code> send_pings(body_writer& writer) {
    const std::string ping = rts_ping_pdu();
    exbridge::timer t(c_.stream.get_executor());
    for (std::uint64_t sent = 0; sent + ping.size() <= rpc_out_channel_length; sent += ping.size()) {
      t.expires_after(options_.rpc_ping_interval);
      if (auto [ec] = co_await t.async_wait(use_tuple); ec) co_return ec;
      if (auto ec = co_await writer.write(ping.data(), ping.size()); ec) co_return ec;
      // The write armed the idle timeout (IIS's 120 s) for a client that stops reading; once the ping is
      // out, the channel is idle by design until the next one.
      c_.dog.disarm();
      stats_.rpc_ping();
    }
    co_return error_code{};
  }

  /// Completes when the client closes the connection (it sends nothing more on an OUT channel).
  net::awaitable<void> until_closed() {
    std::array<char, 1024> sink;
    for (;;) {
      auto [ec, n] = co_await c_.stream.async_read_some(net::buffer(sink), use_tuple);
      if (ec) co_return;
    }
  }

  static bool replaces_response(fault_kind k) {
    return k == fault_kind::error500 || k == fault_kind::error503 || k == fault_kind::execution_timeout;
  }

  /// Sends `response` (its body from `body` when set), shaped by `hit`.
  net::awaitable<connection_end> respond(response_t response, std::shared_ptr<streamed_body> body,
                                         const std::optional<fault_hit>& hit, request_record& rec) {
    const fault_action* shaping = nullptr;
    if (hit) {
      const unsigned v = response.version() == 10 ? 10 : 11;
      const bool keep = response.keep_alive();
      switch (hit->action.kind) {
        case fault_kind::delay:
          co_await c_.pause(hit->action.duration);
          break;
        case fault_kind::error500:
          response = aspnet_error_page(v, application_of(rec.target), false);
          break;
        case fault_kind::error503:
          // Under /rpc/ it is rpcproxy that refuses: 0x6BA is RPC_S_SERVER_UNAVAILABLE (backend down).
          response = is_rpc_path(rec.target) ? rpc_error_response(0x6ba) : service_unavailable_page(v);
          break;
        case fault_kind::execution_timeout:
          // ASP.NET aborts the request when executionTimeout (110 s for EWS) passes, and answers 500.
          co_await c_.pause(hit->action.duration);
          response = aspnet_error_page(v, application_of(rec.target), true);
          break;
        default:
          shaping = &hit->action;
          break;
      }
      if (replaces_response(hit->action.kind)) {
        body.reset();
        if (!keep) response.keep_alive(false);
      }
    }
    rec.status = response.result_int();
    c_.dog.arm(options_.idle_timeout, server_timeout::idle);  // a client that stops reading is cut off
    connection_end end = response.keep_alive() ? connection_end::keep_alive : connection_end::graceful;
    if (body == nullptr && shaping == nullptr) {
      auto [ec, n] = co_await http::async_write(c_.stream, response, use_tuple);
      rec.bytes_out = n;
      if (ec) {
        rec.error = "write failed: " + ec.message();
        end = connection_end::graceful;
      }
    } else {
      if (body == nullptr) {  // a fault shapes a small body: send it through the same writer as large ones
        body = std::make_shared<streamed_body>(nullptr);
        body->text(std::move(response.body()));
        response.content_length(body->size());
      }
      http::response<http::buffer_body> res{response.base()};
      http::response_serializer<http::buffer_body> sr{res};
      auto [ec, n] = co_await http::async_write_header(c_.stream, sr, use_tuple);
      rec.bytes_out = n;
      body_writer writer(c_, shaping, options_.idle_timeout);
      std::vector<char> chunk(64 * 1024);
      while (!ec) {
        const std::size_t got = body->read(chunk.data(), chunk.size());
        if (got == 0) break;
        ec = co_await writer.write(chunk.data(), got);
      }
      rec.bytes_out += writer.written();
      if (writer.cut() != connection_end::keep_alive) {
        rec.error = "body cut by fault after " + std::to_string(writer.written()) + " bytes";
        end = writer.cut();
      } else if (ec) {
        rec.error = "write failed: " + ec.message();
        end = connection_end::graceful;
      } else if (writer.written() < body->size()) {
        rec.error = "the body producer fell short of Content-Length";  // the framing is broken: close
        end = connection_end::graceful;
      } else if (shaping != nullptr && cuts_body(shaping->kind)) {
        end = end_for(shaping->kind);  // N was at least the body: the close follows the whole response
      }
    }
    stats_.served(rec.bytes_out);
    co_return end;
  }

  void finish(request_record& rec) {
    rec.duration = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started_);
    rec.fault = std::move(rec_fault_);
    rec_fault_.clear();
    stats_.request(rec.operation);
    log_info(cat(client_, " \"", rec.method, ' ', rec.target, "\" op=", rec.operation.empty() ? "-" : rec.operation,
                 " user=", rec.user.empty() ? "-" : rec.user, " status=", rec.status == 0 ? "-" : std::to_string(rec.status),
                 " in=", rec.bytes_in, " bytes=", rec.bytes_out, " ms=", rec.duration.count(),
                 rec.fault.empty() ? "" : " fault=" + rec.fault, rec.error.empty() ? "" : " (" + rec.error + ")"));
    if (options_.on_request) options_.on_request(rec);
  }

  connection& c_;
  const server_options& options_;
  server_stats& stats_;
  fault_injector& faults_;
  std::string client_;
  std::string rec_fault_;
  std::chrono::steady_clock::time_point started_;
};

}  // namespace

server::server(net::io_context& ioc, server_options options)
    : options_(std::move(options)),
      tls_(make_tls_context(tls_profile::exchange2007, {.identity = identity_or_generated(options_),
                                                        .cipher_list = schannel_ciphers(options_.windows)})),
      acceptor_(bind_listener(ioc, options_.listen, "fake-exchange --listen")) {
  faults_.replace(options_.faults);
}

void server::start() {
  start_accepting(acceptor_, [this](tcp::socket s) { return serve(std::move(s)); });
}

void server::stop() {
  error_code ec;
  acceptor_.close(ec);
}

net::awaitable<void> server::serve(tcp::socket socket) {
  const std::string client = [&] {
    error_code ec;
    const auto ep = socket.remote_endpoint(ec);
    return ec ? std::string("?") : ep.address().to_string() + ":" + std::to_string(ep.port());
  }();
  connection c(std::move(socket), tls_);

  if (auto hit = faults_.match_connection()) {
    stats_.fault(hit->rule, std::string(fault_kind_name(hit->action.kind)));
    log_info(cat("fault ", hit->describe(), ": the TLS handshake with ", client, " waits ",
                 format_duration(hit->action.duration)));
    co_await c.pause(hit->action.duration);
  }
  c.dog.arm(options_.handshake_timeout, server_timeout::handshake);
  if (auto [ec] = co_await c.stream.async_handshake(ssl::stream_base::server, use_tuple); ec) {
    const auto d = diagnose_tls_failure(c.dog.fired() ? net::error::timed_out : ec, c.stream.native_handle(), "the client");
    log_info(cat("tls handshake from ", client, " failed: ", d.to_string()));
    co_return;
  }

  session s(c, options_, stats_, faults_, client);
  const connection_end end = co_await s.run();
  c.dog.disarm();
  error_code ignored;
  auto& tcp_socket = c.stream.next_layer();
  switch (end) {
    case connection_end::reset:
      tcp_socket.set_option(net::socket_base::linger(true, 0), ignored);
      tcp_socket.close(ignored);
      break;
    case connection_end::abrupt:
      tcp_socket.shutdown(tcp::socket::shutdown_both, ignored);
      tcp_socket.close(ignored);
      break;
    default: {
      // A real IIS sends close_notify; an abrupt close is a fault to inject, not the default. The peer's
      // close_notify is awaited only briefly.
      c.dog.arm(std::chrono::seconds(5), server_timeout::handshake);
      co_await c.stream.async_shutdown(use_tuple);
      break;
    }
  }
}

}  // namespace exbridge::fake_exchange
