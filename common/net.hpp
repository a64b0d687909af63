// Namespace aliases and the "errors as values" completion token used on every data path.
#pragma once

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace exbridge {

namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = net::ip::tcp;
using error_code = boost::system::error_code;

/// Every co_await on the data path yields a tuple (error_code, ...): network events are values, not exceptions.
inline constexpr auto use_tuple = net::as_tuple(net::use_awaitable);

/// The address of an sd_notify socket named as NOTIFY_SOCKET names it: a path, or a name starting with '@' in
/// the abstract namespace (no file to clean up, no 108-byte path limit for deep run folders). exbridge sends to
/// it and rehearse's supervisor binds it: one rule keeps an abstract name's exact length the same on both
/// sides. Throws system_error when the name is too long.
inline net::local::datagram_protocol::endpoint notify_socket_endpoint(const std::string& name) {
  return {name.front() == '@' ? std::string(1, '\0') + name.substr(1) : name};
}

}  // namespace exbridge
