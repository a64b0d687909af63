// exbridge's downstream sessions: the session template (session.hpp) on TLS sockets, with the TLS connector
// towards the upstream.
#include "proxy/session/session.hpp"

#include "common/tls_socket.hpp"
#include "proxy/upstream/connector.hpp"

namespace exbridge::proxy {

namespace {

std::string peer_of(const tcp::socket& s) {
  error_code ec;
  const auto ep = s.remote_endpoint(ec);
  return ec ? std::string("?") : ep.address().to_string() + ":" + std::to_string(ep.port());
}

}  // namespace

net::awaitable<void> run_downstream_session(std::shared_ptr<bridge_context> context,
                                            std::shared_ptr<const downstream_certs> certs, tcp::socket socket) {
  std::string client = peer_of(socket);
  const unsigned short listen_port = socket.local_endpoint().port();
  // OpenSSL on the socket itself (common/tls_socket.hpp): no record buffers while a connection idles, no extra
  // copies, and a response's header and the start of its body leave as one TLS record and one send(). `certs`
  // stays alive as long as the connection: its SNI alternatives are chosen during the handshake.
  tls_socket down(std::move(socket), certs->primary);
  tls_connector connector;
  downstream_session<tls_socket, tls_connector> session(std::move(context), down, connector, std::move(client),
                                                        listen_port);
  co_await session.run();
}

}  // namespace exbridge::proxy
