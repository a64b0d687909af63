// One downstream connection: TLS 1.2/1.3 handshake, then a loop of HTTP/1.1 requests relayed to the
// upstream with streaming bodies (Beast's buffer_body relay, ported to coroutines).
//
// Connection model (why): NTLM and Negotiate authenticate the TCP connection, not the request
// (exchange-protocols.md §7). A downstream connection therefore owns its upstream connection for its
// whole life and never lends it to another client; when the upstream closes, the next request gets a
// fresh upstream connection and the server simply challenges again.
#include <sys/socket.h>

#include <boost/algorithm/string/predicate.hpp>

#include <array>
#include <optional>
#include <chrono>

#include "common/log.hpp"
#include "common/tls_diagnosis.hpp"
#include "common/watchdog.hpp"
#include "proxy/access_log.hpp"
#include "proxy/bridge.hpp"
#include "proxy/termination.hpp"

namespace exbridge::proxy {
namespace {

constexpr std::size_t chunk_size = 64 * 1024;
constexpr std::size_t max_header_bytes = 64 * 1024;

using tls_stream = ssl::stream<tcp::socket>;

std::string peer_of(const tcp::socket& s) {
  error_code ec;
  const auto ep = s.remote_endpoint(ec);
  return ec ? std::string("?") : ep.address().to_string() + ":" + std::to_string(ep.port());
}

bool is_peer_close(const error_code& ec) {
  return ec == http::error::end_of_stream || ec == net::error::eof || ec == ssl::error::stream_truncated ||
         ec == net::error::connection_reset || ec == net::error::broken_pipe || ec == net::error::operation_aborted ||
         ec == net::error::bad_descriptor;
}

// Framing rules Beast's parser leaves to the application. Anything here could make exbridge and the
// upstream (IIS) disagree about where a request ends -- request smuggling -- so it is refused outright.
std::optional<std::string> framing_problem(const http::request<http::buffer_body>& req) {
  int transfer_encodings = 0;
  for (const auto& field : req) {
    const std::string_view value = field.value();
    if (value.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos) {
      return "header " + std::string(field.name_string()) + " contains a line break or NUL (obsolete line folding)";
    }
    if (field.name() == http::field::transfer_encoding) ++transfer_encodings;
  }
  if (transfer_encodings == 0) return std::nullopt;
  if (req.version() < 11) return std::string("Transfer-Encoding in an HTTP/1.0 request");
  const std::string_view te = req[http::field::transfer_encoding];
  if (transfer_encodings > 1 || !boost::algorithm::iequals(te, "chunked")) {
    return "Transfer-Encoding '" + std::string(te) + "' is not exactly 'chunked'";
  }
  return std::nullopt;
}

std::string auth_scheme_of(const http::request<http::buffer_body>& req) {
  const std::string_view v = req[http::field::authorization];
  if (v.empty()) return "-";
  return std::string(v.substr(0, v.find(' ')));
}

class downstream_session {
 public:
  downstream_session(std::shared_ptr<bridge_context> ctx, tcp::socket socket)
      : ctx_(std::move(ctx)),
        options_(ctx_->options),
        client_(peer_of(socket)),
        listen_port_(socket.local_endpoint().port()),
        down_(std::move(socket), ctx_->downstream_tls),
        down_dog_(down_.get_executor(), [this] { cancel_downstream(); }),
        up_dog_(down_.get_executor(), [this] { close_upstream(); }) {
    ctx_->stats.add(counter::downstream_cx_total);
    ctx_->stats.add(counter::downstream_cx_active);
  }
  ~downstream_session() { ctx_->stats.add(counter::downstream_cx_active, -1); }
  downstream_session(const downstream_session&) = delete;
  downstream_session& operator=(const downstream_session&) = delete;

  net::awaitable<void> run() {
    down_dog_.arm(options_.timeouts.downstream_handshake, timeout_kind::downstream_handshake);
    auto [hec] = co_await down_.async_handshake(ssl::stream_base::server, use_tuple);
    down_dog_.disarm();
    if (hec) {
      ctx_->stats.add(counter::downstream_tls_handshake_fail);
      const auto d = diagnose_tls_failure(down_dog_.fired() ? net::error::timed_out : hec, down_.native_handle(),
                                          "the client");
      log_info(cat("downstream ", client_, " TLS handshake failed: ", d.to_string()));
      co_return;
    }
    down_tls_ = describe_session(down_.native_handle());

    for (bool first = true;; first = false) {
      if (!co_await wait_for_request(first)) break;
      if (!co_await serve_one_request()) break;
    }
    close_upstream();
    if (down_.next_layer().is_open()) {
      down_dog_.arm(std::chrono::seconds(5), timeout_kind::downstream_data);
      co_await down_.async_shutdown(use_tuple);
    }
  }

 private:
  // Waits for the first byte of the next request: keep-alive idle (or the header timeout on a fresh
  // connection) applies until then, the request-header timeout from then on (slowloris guard).
  net::awaitable<bool> wait_for_request(bool first) {
    if (down_buf_.size() > 0) co_return true;
    down_dog_.arm(first ? options_.timeouts.request_headers : options_.timeouts.keep_alive_idle,
                  first ? timeout_kind::request_headers : timeout_kind::keep_alive_idle);
    auto [ec, n] = co_await down_.async_read_some(down_buf_.prepare(16 * 1024), use_tuple);
    down_dog_.disarm();
    if (ec) co_return false;  // the client closed, or idled out between requests: not a request failure
    down_buf_.commit(n);
    co_return true;
  }

  // Reads until the whole header block is buffered (or the header limit is reached), so that it can be
  // checked as raw bytes before Beast parses it: Beast unfolds obsolete line folding silently, and a
  // folded header is a classic way to make two HTTP parsers disagree.
  net::awaitable<error_code> buffer_header_block() {
    for (;;) {
      const std::string_view data(static_cast<const char*>(down_buf_.data().data()), down_buf_.size());
      if (data.find("\r\n\r\n") != std::string_view::npos || data.find("\n\n") != std::string_view::npos ||
          down_buf_.size() >= max_header_bytes) {
        co_return error_code{};
      }
      auto [ec, n] = co_await down_.async_read_some(down_buf_.prepare(16 * 1024), use_tuple);
      if (ec) co_return ec;
      down_buf_.commit(n);
    }
  }

  bool has_obs_fold() const {
    std::string_view data(static_cast<const char*>(down_buf_.data().data()), down_buf_.size());
    data = data.substr(0, std::min(data.find("\r\n\r\n"), data.find("\n\n")));
    return data.find("\n ") != std::string_view::npos || data.find("\n\t") != std::string_view::npos;
  }

  net::awaitable<bool> serve_one_request() {
    request_record rec;
    rec.client = client_;
    rec.down_tls = down_tls_;
    rec.started = std::chrono::steady_clock::now();
    ctx_->stats.add(counter::downstream_rq_total);

    http::request_parser<http::buffer_body> parser;
    parser.body_limit(boost::none);  // no cap: an RPC_IN_DATA request declares 1 GB and more
    parser.header_limit(max_header_bytes);
    down_dog_.arm(options_.timeouts.request_headers, timeout_kind::request_headers);
    error_code ec = co_await buffer_header_block();
    const bool folded = !ec && has_obs_fold();
    if (!ec && !folded) std::tie(ec, std::ignore) = co_await http::async_read_header(down_, down_buf_, parser, use_tuple);
    down_dog_.disarm();
    if (folded) {
      ctx_->stats.add(counter::downstream_rq_rejected);
      const std::string detail = "obsolete line folding in the request headers";
      co_await send_error(rec, http::status::bad_request, termination::bad_request, detail);
      co_return false;
    }
    auto& req = parser.get();
    rec.method = std::string(req.method_string());
    rec.target = std::string(req.target());
    if (ec) {
      if (down_dog_.fired() == timeout_kind::request_headers) {
        std::string detail = "the request headers did not arrive within " +
                             format_duration(options_.timeouts.request_headers);
        co_await send_error(rec, http::status::request_timeout, termination::request_headers_timeout, detail);
      } else if (is_peer_close(ec)) {
        finish(rec, termination::client_closed_request, ec.message());
      } else {
        ctx_->stats.add(counter::downstream_rq_rejected);
        const auto status = ec == http::error::header_limit ? http::status::request_header_fields_too_large
                                                            : http::status::bad_request;
        std::string detail = ec.message();
        co_await send_error(rec, status, termination::bad_request, detail);
      }
      co_return false;
    }
    if (const auto problem = framing_problem(req)) {
      ctx_->stats.add(counter::downstream_rq_rejected);
      co_await send_error(rec, http::status::bad_request, termination::bad_request, *problem);
      co_return false;
    }
    rec.t_request = rec.elapsed_ms();
    rec.auth_scheme = auth_scheme_of(req);
    // Pinning is the only model here; the flag records that this pair must never be shared.
    if (rec.auth_scheme == "NTLM" || rec.auth_scheme == "Negotiate" || rec.target.rfind("/rpc/", 0) == 0) {
      pinned_ = true;
    }

    if (!co_await ensure_upstream(rec)) co_return false;
    add_forwarding_headers(req);
    rec.pinned = pinned_;
    rec.upstream_requests = ++upstream_requests_;
    ctx_->stats.add(counter::upstream_rq_total);
    if (pinned_) ctx_->stats.add(counter::upstream_rq_pinned);

    // Request: headers, then the body in chunks, client -> upstream.
    http::request_serializer<http::buffer_body> request_sr{req};
    up_dog_.arm(options_.timeouts.data_idle, timeout_kind::upstream_data);
    auto [wec, wn] = co_await http::async_write_header(*up_, request_sr, use_tuple);
    up_dog_.disarm();
    if (wec) {
      std::string detail = wec.message();
      co_await send_error(rec, http::status::bad_gateway, termination::upstream_write_failed, detail);
      co_return false;
    }
    const relay_outcome up = co_await relay_body(down_, down_buf_, parser, request_sr, *up_, down_dog_,
                                                 timeout_kind::downstream_data, up_dog_, timeout_kind::upstream_data);
    rec.bytes_from_client = up.body_bytes;
    if (up.ec) {
      if (up.failed_reading) {
        const bool timed_out = down_dog_.fired() == timeout_kind::downstream_data;
        finish(rec, timed_out ? termination::request_body_timeout : termination::client_closed_body, up.ec.message());
      } else {
        std::string detail = up.ec.message();
        co_await send_error(rec, http::status::bad_gateway, termination::upstream_write_failed, detail);
      }
      co_return false;
    }
    co_return co_await relay_response(rec, req.method() == http::verb::head, req.keep_alive());
  }

  // Response: interim 1xx responses are passed on; the final one streams upstream -> client.
  net::awaitable<bool> relay_response(request_record& rec, bool head_request, bool client_keep_alive) {
    for (;;) {
      http::response_parser<http::buffer_body> parser;
      parser.body_limit(boost::none);
      parser.header_limit(max_header_bytes);
      parser.skip(head_request);
      up_dog_.arm(options_.timeouts.response_headers, timeout_kind::response_headers);
      auto [ec, n] = co_await http::async_read_header(*up_, up_buf_, parser, use_tuple);
      up_dog_.disarm();
      if (ec) {
        auto status = http::status::bad_gateway;
        auto why = is_peer_close(ec) ? termination::upstream_closed_before_response : termination::upstream_bad_response;
        std::string detail = ec.message();
        if (up_dog_.fired() == timeout_kind::response_headers) {
          status = http::status::gateway_timeout;
          why = termination::response_headers_timeout;
          detail = "the upstream sent no response headers within " + format_duration(options_.timeouts.response_headers);
        }
        co_await send_error(rec, status, why, detail);
        co_return false;
      }
      auto& res = parser.get();
      if (rec.t_response < 0) rec.t_response = rec.elapsed_ms();
      rec.status = res.result_int();

      const bool interim = res.result_int() / 100 == 1 && res.result() != http::status::switching_protocols;
      if (!interim) {
        for (const auto& [name, value] : options_.response_headers) res.set(name, value);
      }
      http::response_serializer<http::buffer_body> sr{res};
      down_dog_.arm(options_.timeouts.data_idle, timeout_kind::downstream_data);
      auto [wec, wn] = co_await http::async_write_header(down_, sr, use_tuple);
      down_dog_.disarm();
      rec.bytes_to_client += wn;
      if (wec) {
        finish(rec, termination::client_closed_response, wec.message());
        co_return false;
      }
      if (interim) continue;

      const relay_outcome down = co_await relay_body(*up_, up_buf_, parser, sr, down_, up_dog_,
                                                     timeout_kind::upstream_data, down_dog_, timeout_kind::downstream_data);
      rec.bytes_to_client += down.wire_bytes;
      if (down.ec) {
        if (down.failed_reading) {
          const bool timed_out = up_dog_.fired() == timeout_kind::upstream_data;
          finish(rec, timed_out ? termination::response_body_timeout : termination::upstream_closed_body,
                 down.ec.message());
        } else {
          finish(rec, termination::client_closed_response, down.ec.message());
        }
        co_return false;
      }
      const bool upstream_keep_alive = res.keep_alive();
      finish(rec, termination::normal, "");
      if (!upstream_keep_alive) close_upstream();
      // The upstream's "Connection: close" went to the client too, so the client expects the close: a
      // connection-bound (NTLM) session must end on both legs together.
      co_return upstream_keep_alive && client_keep_alive;
    }
  }

  struct relay_outcome {
    error_code ec;
    bool failed_reading = false;
    std::uint64_t body_bytes = 0;
    std::uint64_t wire_bytes = 0;
  };

  // Streams one message body with a fixed buffer: never more than chunk_size bytes of it in memory.
  template <bool is_request, class In, class Out>
  net::awaitable<relay_outcome> relay_body(In& in, beast::flat_buffer& in_buffer,
                                           http::parser<is_request, http::buffer_body>& parser,
                                           http::serializer<is_request, http::buffer_body>& sr, Out& out,
                                           watchdog<timeout_kind>& in_dog, timeout_kind in_kind,
                                           watchdog<timeout_kind>& out_dog, timeout_kind out_kind) {
    relay_outcome r;
    auto& body = parser.get().body();
    do {
      const bool final_write = parser.is_done();
      if (!final_write) {
        body.data = chunk_.data();
        body.size = chunk_.size();
        in_dog.arm(options_.timeouts.data_idle, in_kind);
        auto [ec, n] = co_await http::async_read(in, in_buffer, parser, use_tuple);
        in_dog.disarm();
        if (ec == http::error::need_buffer) ec = {};
        if (ec) {
          r.ec = ec;
          r.failed_reading = true;
          co_return r;
        }
        body.size = chunk_.size() - body.size;
        body.data = chunk_.data();
        body.more = !parser.is_done();
        r.body_bytes += body.size;
      } else {
        body.data = nullptr;
        body.size = 0;
        body.more = false;
      }
      out_dog.arm(options_.timeouts.data_idle, out_kind);
      auto [ec, n] = co_await http::async_write(out, sr, use_tuple);
      out_dog.disarm();
      r.wire_bytes += n;
      if (ec == http::error::need_buffer) ec = {};
      if (ec) {
        r.ec = ec;
        co_return r;
      }
      if (final_write && !sr.is_done()) {
        r.ec = http::error::partial_message;  // the serializer cannot finish: never spin
        co_return r;
      }
    } while (!parser.is_done() || !sr.is_done());
    co_return r;
  }

  // An idle upstream connection may have been closed by the server (IIS closes idle connections after
  // 120 s, with close_notify then FIN). Peek before reuse, so such a request goes on a fresh connection
  // instead of failing; leftover bytes (anything beyond the last response) also forbid reuse.
  bool upstream_reusable() {
    if (!up_ || !up_->next_layer().is_open()) return false;
    if (up_buf_.size() > 0 || SSL_pending(up_->native_handle()) > 0) return false;
    char byte;
    const auto got = ::recv(up_->next_layer().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    return got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
  }

  net::awaitable<bool> ensure_upstream(request_record& rec) {
    if (upstream_reusable()) {
      rec.up_tls = up_tls_;
      co_return true;
    }
    close_upstream();
    up_buf_.clear();
    upstream_requests_ = 0;
    const auto& u = options_.upstream;
    ctx_->stats.add(counter::upstream_cx_total);

    resolver_.emplace(down_.get_executor());
    up_dog_.arm(options_.timeouts.upstream_connect, timeout_kind::upstream_connect);
    auto [rec_ec, endpoints] = co_await resolver_->async_resolve(u.address.host, std::to_string(u.address.port), use_tuple);
    resolver_.reset();
    if (rec_ec) {
      up_dog_.disarm();
      ctx_->stats.add(counter::upstream_cx_connect_fail);
      const bool timed_out = up_dog_.fired() == timeout_kind::upstream_connect;
      const auto why = timed_out ? termination::upstream_connect_timeout : termination::upstream_resolve_failed;
      std::string detail = "cannot resolve upstream " + u.address.host + ": " + rec_ec.message() +
                           "; check the --upstream host name and this machine's DNS";
      co_await send_error(rec, http::status::service_unavailable, why, detail);
      co_return false;
    }
    up_.emplace(down_.get_executor(), ctx_->upstream_tls);
    auto [cec, ep] = co_await net::async_connect(up_->next_layer(), endpoints, use_tuple);
    up_dog_.disarm();
    rec.t_connect = rec.elapsed_ms();
    if (cec) {
      ctx_->stats.add(counter::upstream_cx_connect_fail);
      const bool timed_out = up_dog_.fired() == timeout_kind::upstream_connect;
      const auto why = timed_out ? termination::upstream_connect_timeout : termination::upstream_connect_failed;
      std::string cause = cec.message();
      if (timed_out) cause = "no answer within " + format_duration(options_.timeouts.upstream_connect);
      std::string detail = "cannot connect to upstream " + u.address.to_string() + ": " + cause +
                           "; check that the Exchange server is up and reachable from this host";
      co_await send_error(rec, http::status::service_unavailable, why, detail);
      co_return false;
    }
    error_code ignored;
    up_->next_layer().set_option(tcp::no_delay(true), ignored);
    const std::string name = u.sni.empty() ? u.address.host : u.sni;
    prepare_client_tls(up_->native_handle(), name, u.verify != tls_verify::none);

    up_dog_.arm(options_.timeouts.upstream_handshake, timeout_kind::upstream_handshake);
    auto [hec] = co_await up_->async_handshake(ssl::stream_base::client, use_tuple);
    up_dog_.disarm();
    rec.t_upstream_tls = rec.elapsed_ms();
    if (hec) {
      ctx_->stats.add(counter::upstream_tls_handshake_fail);
      const bool timed_out = up_dog_.fired() == timeout_kind::upstream_handshake;
      const error_code cause = timed_out ? error_code(net::error::timed_out) : hec;
      const auto d = diagnose_tls_failure(cause, up_->native_handle(), "the upstream");
      const auto why = timed_out ? termination::upstream_handshake_timeout : termination::upstream_tls_failed;
      std::string detail = "upstream " + u.address.to_string() + ": " + d.to_string();
      co_await send_error(rec, http::status::bad_gateway, why, detail);
      co_return false;
    }
    up_tls_ = describe_session(up_->native_handle());
    rec.up_tls = up_tls_;
    co_return true;
  }

  void add_forwarding_headers(http::request<http::buffer_body>& req) const {
    const std::string ip = client_.substr(0, client_.rfind(':'));
    const std::string_view existing = req["X-Forwarded-For"];
    if (existing.empty()) req.set("X-Forwarded-For", ip);
    else req.set("X-Forwarded-For", std::string(existing) + ", " + ip);
    req.set("X-Forwarded-Proto", "https");
    req.set("X-Forwarded-Port", std::to_string(listen_port_));
  }

  // Answers the client with a short explanation (if nothing of the response was sent yet) and closes.
  // Callers pass a named string: GCC 12 mis-destroys string temporaries in co_await argument expressions.
  net::awaitable<void> send_error(request_record& rec, http::status status, termination why, const std::string& detail) {
    if (why != termination::bad_request && why != termination::request_headers_timeout) {
      ctx_->stats.add(counter::upstream_rq_failed);
    }
    http::response<http::string_body> res{status, 11};
    res.set(http::field::content_type, "text/plain; charset=utf-8");
    res.set(http::field::cache_control, "no-store");
    res.keep_alive(false);
    res.body() = "exbridge: " + std::string(info(why).reason) + ": " + detail + "\n";
    res.prepare_payload();
    rec.status = res.result_int();
    finish(rec, why, detail);
    if (!down_.next_layer().is_open()) co_return;
    down_dog_.arm(options_.timeouts.data_idle, timeout_kind::downstream_data);
    co_await http::async_write(down_, res, use_tuple);
    down_dog_.disarm();
  }

  void finish(request_record& rec, termination why, const std::string& detail) {
    rec.end = why;
    rec.detail = detail;
    rec.t_total = rec.elapsed_ms();
    if (is_timeout(why)) ctx_->stats.add(counter::timeouts_total);
    log_access(rec);
  }

  // A downstream timeout cancels the pending operation but keeps the socket, so that the client can still
  // be told why (408, 504); the session then ends and the socket closes with it.
  void cancel_downstream() {
    error_code ignored;
    down_.next_layer().cancel(ignored);
  }

  void close_upstream() {
    error_code ignored;
    if (resolver_) resolver_->cancel();
    if (up_) up_->next_layer().close(ignored);
  }

  std::shared_ptr<bridge_context> ctx_;
  const bridge_options& options_;
  std::string client_;
  unsigned short listen_port_;
  tls_stream down_;
  std::optional<tls_stream> up_;
  std::optional<tcp::resolver> resolver_;
  watchdog<timeout_kind> down_dog_;
  watchdog<timeout_kind> up_dog_;
  beast::flat_buffer down_buf_;
  beast::flat_buffer up_buf_;
  std::string down_tls_;
  std::string up_tls_;
  std::uint64_t upstream_requests_ = 0;
  bool pinned_ = false;
  std::array<char, chunk_size> chunk_{};
};

}  // namespace

net::awaitable<void> run_downstream_session(std::shared_ptr<bridge_context> context, tcp::socket socket) {
  downstream_session session(std::move(context), std::move(socket));
  co_await session.run();
}

}  // namespace exbridge::proxy
