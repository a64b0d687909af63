// fake-exchange connection handling: one coroutine per TCP connection reads a request header, then either
// reads the (bounded) body and answers through the router, or -- under /rpc/ -- streams an Outlook Anywhere
// channel. Fault rules shape the answer: delays, slow or cut bodies, error pages, abrupt closes.
#include "fake_exchange/server.hpp"

#include <boost/algorithm/string/predicate.hpp>

#include <algorithm>
#include <array>

#include "common/lab_pki.hpp"
#include "common/listener.hpp"
#include "common/log.hpp"
#include "common/tls_diagnosis.hpp"
#include "common/tls_socket.hpp"
#include "common/watchdog.hpp"
#include "fake_exchange/connection.hpp"
#include "fake_exchange/rpc_channels.hpp"
#include "fake_exchange/rpc_proxy.hpp"
#include "fake_exchange/streamed_body.hpp"

namespace exbridge::fake_exchange {
namespace {

tls_identity identity_or_generated(const server_options& o) {
  if (!o.identity.empty()) return o.identity;
  const std::string host = o.exchange.org.server_fqdn();
  const pem_pair pair = make_certificate({.common_name = host,
                                          .dns_names = {host, "autodiscover." + o.exchange.org.domain, "localhost"},
                                          .ip_addresses = {"127.0.0.1", "::1"}},
                                         nullptr);
  return {.cert_pem = pair.cert_pem, .key_pem = pair.key_pem};
}

/// Virtual directory names as ASP.NET prints them in its error pages.
std::string application_of(std::string_view target) {
  if (boost::algorithm::istarts_with(target, "/ews/")) return "/EWS";
  if (boost::algorithm::istarts_with(target, "/autodiscover/")) return "/Autodiscover";
  if (boost::algorithm::istarts_with(target, "/rpc/")) return "/rpc";
  return "/";
}

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

/// The per-connection request loop; a class so that the steps share the connection and the server's parts.
class session {
 public:
  session(connection& c, const server_options& o, server_stats& stats, fault_injector& faults,
          std::shared_ptr<vc_table> connections, std::string client)
      : c_(c), options_(o), stats_(stats), faults_(faults), connections_(std::move(connections)), client_(std::move(client)) {}

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
        rec.user = admitted->email();
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
    const channel_env env{c_, options_, stats_, connections_};
    if (decision.channel == rpc_channel::in && proceeds) {
      co_return co_await serve_in_channel(env, head, decision.port, hit, rec);
    }
    if (decision.channel == rpc_channel::out && proceeds) {
      co_return co_await serve_out_channel(env, head, decision.response, decision.port, hit, rec);
    }
    // Answers: a small body is read first (an echo's); a large one is left unread and the connection closes
    // after the answer.
    const auto declared = head.content_length().value_or(0);
    if (declared <= small_body_limit) {
      auto [ec, body] = co_await read_small_body(c_, head);
      rec.bytes_in = body.size();
      stats_.received(body.size());
      if (ec) {
        rec.error = "client gone mid-request";
        co_return connection_end::graceful;
      }
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
    auto [ec, body] = co_await read_small_body(c_, head);
    if (ec) co_return connection_end::graceful;
    rec.bytes_in = body.size();
    stats_.received(body.size());
    co_return end;
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
                 rec.fault.empty() ? "" : " fault=" + rec.fault, rec.rpc.empty() ? "" : " rpc=[" + rec.rpc + "]",
                 rec.error.empty() ? "" : " (" + rec.error + ")"));
    if (options_.on_request) options_.on_request(rec);
  }

  connection& c_;
  const server_options& options_;
  server_stats& stats_;
  fault_injector& faults_;
  std::shared_ptr<vc_table> connections_;  ///< Outlook Anywhere's virtual connections, shared by all connections
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

  session s(c, options_, stats_, faults_, connections_, client);
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
