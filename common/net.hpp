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

}  // namespace exbridge
