// Connecting to an Exchange server (see connector.hpp).
#include "proxy/upstream/connector.hpp"

#include "common/tls_context.hpp"
#include "common/watchdog.hpp"

namespace exbridge::proxy {

std::string upstream_server_name(const upstream_settings& u, const host_port& server) {
  return u.sni.empty() ? server.host : u.sni;
}

net::awaitable<connect_result> connect_server(tcp::socket& socket, const server_state& server,
                                              scaled_clock::duration limit) {
  connect_result r;
  auto executor = co_await net::this_coro::executor;
  tcp::resolver resolver(executor);
  // One deadline for the name and the connection. A pending resolve is not on the socket: cancel it too.
  watchdog<connect_result::stage> deadline(executor, [&resolver, &socket] {
    resolver.cancel();
    error_code ignored;
    socket.close(ignored);
  });
  deadline.arm(limit, connect_result::resolve);
  auto [rec, endpoints] =
      co_await resolver.async_resolve(server.address.host, std::to_string(server.address.port), use_tuple);
  if (rec) {
    deadline.disarm();
    r.failed_at = connect_result::resolve;
    r.timed_out = deadline.fired().has_value() || rec == net::error::operation_aborted;
    r.ec = rec;
    r.message = "cannot resolve " + server.address.host + ": " + rec.message();
    r.fix = "check the server's host name and this machine's DNS";
    co_return r;
  }
  auto [cec, ep] = co_await net::async_connect(socket, endpoints, use_tuple);
  deadline.disarm();
  if (cec || deadline.fired()) {
    r.failed_at = connect_result::connect;
    r.timed_out = deadline.fired().has_value();
    r.ec = r.timed_out ? error_code(net::error::timed_out) : cec;
    const std::string cause = r.timed_out ? "no answer within " + format_duration(limit) : cec.message();
    r.message = "cannot connect to upstream " + server.name + ": " + cause;
    r.fix = "check that the Exchange server is up and reachable from this host";
  }
  co_return r;
}

net::awaitable<connect_result> handshake_server(tls_socket& stream, server_state& server, const upstream_settings& u,
                                                scaled_clock::duration limit) {
  connect_result r;
  SSL* ssl = stream.native_handle();
  prepare_client_tls(ssl, upstream_server_name(u, server.address),
                     u.verify == tls_verify::ca_file || u.verify == tls_verify::system);
  server.sessions.offer(ssl);
  watchdog<connect_result::stage> deadline(co_await net::this_coro::executor, [&stream] { stream.close(); });
  deadline.arm(limit, connect_result::handshake);
  auto [ec] = co_await stream.async_handshake(ssl::stream_base::client, use_tuple);
  deadline.disarm();
  r.timed_out = deadline.fired().has_value();
  r.ec = r.timed_out ? error_code(net::error::timed_out) : ec;
  // The classified failure, or a certificate that is not the pinned one: no request byte goes to it.
  if (r.ec) r.tls = diagnose_tls_failure(r.ec, ssl, "the upstream");
  else if (u.verify == tls_verify::pin) r.tls = check_certificate_pin(ssl, u.pin_sha256, "the upstream");
  if (r.tls) {
    r.failed_at = connect_result::handshake;
    r.message = "upstream " + server.name + ": " + r.tls->to_string();
    co_return r;
  }
  server.sessions.remember(ssl);
  co_return r;
}

net::awaitable<connect_result> tls_connector::open(std::optional<tls_socket>& stream,
                                                   const net::any_io_executor& executor, upstream_pool& pool,
                                                   server_state& server, const struct timeouts& t,
                                                   connect_timing& timing) {
  stream.emplace(executor, pool.tls);
  auto result = co_await connect_server(stream->next_layer(), server, t.upstream_connect);
  timing.connected = std::chrono::steady_clock::now();
  if (result.failed_at != connect_result::ok) co_return result;
  error_code ignored;
  stream->next_layer().set_option(tcp::no_delay(true), ignored);
  result = co_await handshake_server(*stream, server, pool.settings, t.upstream_handshake);
  timing.handshaken = std::chrono::steady_clock::now();
  co_return result;
}

}  // namespace exbridge::proxy
