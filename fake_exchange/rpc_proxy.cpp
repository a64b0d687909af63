// Outlook Anywhere request decisions and RTS PDUs.
#include "fake_exchange/rpc_proxy.hpp"

#include <boost/algorithm/string/predicate.hpp>

#include <charconv>
#include <cstdio>

#include "common/rts.hpp"
#include "fake_exchange/virtual_connection.hpp"

namespace exbridge::fake_exchange {
namespace {

using response_t = http::response<http::string_body>;

// rpcproxy's answer for a server:port outside ValidPorts. MS-RPCH leaves the code implementation-specific;
// the stub says 5 (ERROR_ACCESS_DENIED). Not checked against a capture of a real 2007 CAS.
constexpr std::uint32_t rpc_access_denied = 0x5;

/// The port of `server:port` when rpcproxy lets it through, else nullopt.
std::optional<std::uint16_t> valid_port(std::string_view query, const organisation& org) {
  const auto colon = query.rfind(':');
  if (colon == std::string_view::npos) return std::nullopt;
  const std::string_view server = query.substr(0, colon);
  const std::string_view port_text = query.substr(colon + 1);
  unsigned port = 0;
  const auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || end != port_text.data() + port_text.size()) return std::nullopt;
  // Exchange 2007 writes ValidPorts with the mailbox server's NetBIOS name and FQDN, ports 6001-6002 and 6004.
  const bool known_server =
      boost::algorithm::iequals(server, org.server_name) || boost::algorithm::iequals(server, org.server_fqdn());
  if (!known_server || (port != 6001 && port != 6002 && port != 6004)) return std::nullopt;
  return static_cast<std::uint16_t>(port);
}

}  // namespace

bool is_rpc_path(std::string_view target) { return boost::algorithm::istarts_with(target, "/rpc/"); }

std::string rts_echo_pdu() { return rts::encode(rts::echo_pdu()); }
std::string rts_ping_pdu() { return rts::encode(rts::ping_pdu()); }

response_t rpc_error_response(std::uint32_t code) {
  response_t res{http::status::service_unavailable, 10};
  char reason[32];
  std::snprintf(reason, sizeof reason, "RPC Error: %x", static_cast<unsigned>(code));
  res.reason(reason);
  res.set(http::field::server, "Microsoft-IIS/7.0");
  res.keep_alive(false);
  res.prepare_payload();
  return res;
}

rpc_decision route_rpc(const http::request_header<>& req, std::optional<std::uint64_t> content_length,
                       const exchange_config& config, connection_auth& connection) {
  const unsigned v = req.version();
  const std::string_view target = req.target();
  const std::string method(req.method_string());
  const std::string host = req[http::field::host].empty() ? config.org.server_fqdn() : std::string(req[http::field::host]);
  auto auth = authenticate(req, config, connection);
  if (auth.challenge) return {rpc_channel::none, std::move(*auth.challenge), "", method};
  if (auth.who == nullptr) return {rpc_channel::none, unauthorized(v, host), "", method};
  const std::string user = auth.who->email;

  const auto question = target.find('?');
  if (!boost::algorithm::iequals(target.substr(0, question), "/rpc/rpcproxy.dll")) {
    return {rpc_channel::none,
            html_error(v, http::status::not_found, "404 - File or directory not found.",
                       "The resource you are looking for might have been removed, had its name changed, or is "
                       "temporarily unavailable."),
            user, method};
  }
  const bool in = method == "RPC_IN_DATA";
  if (!in && method != "RPC_OUT_DATA") {
    return {rpc_channel::none,
            html_error(v, http::status::method_not_allowed, "405 - HTTP verb used to access this page is not allowed.",
                       "The RPC proxy accepts RPC_IN_DATA and RPC_OUT_DATA."),
            user, method};
  }
  const std::string_view query = question == std::string_view::npos ? std::string_view() : target.substr(question + 1);
  // RPC over HTTP never chunks: its channels are framed by Content-Length alone.
  const auto port = valid_port(query, config.org);
  if (!port || !content_length) {
    return {rpc_channel::none, rpc_error_response(rpc_access_denied), user, method};
  }
  if (*content_length <= rpc_echo_max_length) {
    response_t res{http::status::ok, v};
    res.reason("Success");
    res.set(http::field::server, "Microsoft-IIS/7.0");
    res.set(http::field::content_type, "application/rpc");
    res.body() = rts_echo_pdu();
    res.prepare_payload();
    return {rpc_channel::echo, std::move(res), user, method, *port};
  }
  if (in) return {rpc_channel::in, response_t{}, user, method, *port};
  response_t res{http::status::ok, v};
  res.reason("Success");
  res.set(http::field::server, "Microsoft-IIS/7.0");
  res.set(http::field::content_type, "application/rpc");
  res.content_length(default_out_channel_length);  // the channel sets the configured length
  return {rpc_channel::out, std::move(res), user, method, *port};
}

}  // namespace exbridge::fake_exchange
