// Outlook Anywhere's HTTP requests and their refusals (see rpc_proxy_requests.hpp).
#include "rehearse/clients/rpc_proxy_requests.hpp"

#include <boost/algorithm/string/predicate.hpp>

namespace exbridge::rehearse {

rpc_proxy_requests::rpc_proxy_requests(const client_settings& s, unsigned port)
    : s_(s), port_(port), target_("/rpc/rpcproxy.dll?" + s.rpc_server + ":" + std::to_string(port)) {}

std::string rpc_proxy_requests::credentials() const { return ntlm() ? std::string() : basic_authorization(s_); }

template <class Request>
void rpc_proxy_requests::windows_headers(Request& req, const std::string& authorization) const {
  req.set(http::field::host, s_.server_name);
  req.set(http::field::accept, "application/rpc");
  req.set(http::field::user_agent, "MSRPC");
  req.set(http::field::cache_control, "no-cache");
  req.set(http::field::pragma, "No-cache");
  req.set(http::field::connection, "Keep-Alive");
  if (!authorization.empty()) req.set(http::field::authorization, authorization);
}

http::request<http::string_body> rpc_proxy_requests::small_request(const char* method, std::string body,
                                                                   const std::string& authorization) const {
  http::request<http::string_body> req{http::verb::unknown, target_, 11};
  req.method_string(method);
  windows_headers(req, authorization);
  req.body() = std::move(body);
  return req;
}

http::request<http::empty_body> rpc_proxy_requests::channel_header(const char* method, std::uint64_t length) const {
  http::request<http::empty_body> req{http::verb::unknown, target_, 11};
  req.method_string(method);
  windows_headers(req, credentials());
  req.content_length(length);
  return req;
}

net::awaitable<std::optional<failure>> rpc_proxy_requests::probe(exo_connection& conn) {
  // (Requests are built as named locals: GCC 12 mis-handles string temporaries inside co_await.)
  auto request = small_request("RPC_IN_DATA", "", "");
  auto answer = co_await conn.exchange(std::move(request));
  if (auto* f = std::get_if<failure>(&answer)) co_return *f;
  const auto& challenge = std::get<response_t>(answer);
  if (challenge.result() != http::status::unauthorized) {
    co_return rpc_failure(challenge, "RPC proxy probe (expected 401)");
  }
  offered_ = offered_schemes(challenge);
  const std::string scheme = ntlm() ? "NTLM" : "Basic";
  if (!offers(offered_, scheme)) {
    co_return failure{"auth-refused", "the RPC proxy (/rpc/) does not offer " + scheme +
                                          " authentication; set Outlook Anywhere's client authentication method "
                                          "(Set-OutlookAnywhere -ClientAuthenticationMethod) to it"};
  }
  co_return std::nullopt;
}

net::awaitable<std::optional<failure>> rpc_proxy_requests::authenticate(exo_connection& conn, const char* method) {
  if (!ntlm()) co_return std::nullopt;
  auto leg = small_request(method, "", "");
  auto r = co_await ntlm_exchange(conn, std::move(leg), s_);
  if (auto* f = std::get_if<failure>(&r)) co_return *f;
  const auto& res = std::get<response_t>(r);
  if (res.result() == http::status::unauthorized) {
    auto check = small_request(method, std::string(4, '\0'), "");
    co_return co_await explain_ntlm_refusal(conn, std::move(check), s_, offers(offered_, "Basic"));
  }
  if (res.result() != http::status::ok) co_return rpc_failure(res, std::string("NTLM on ") + method);
  co_return std::nullopt;
}

failure rpc_proxy_requests::refused() const {
  return {"auth-refused", "the RPC proxy refused the " + std::string(ntlm() ? "NTLM" : "Basic") + " credentials of " +
                              s_.email + "; check the user name and password"};
}

failure rpc_proxy_requests::lost_ntlm_connection(const char* channel) {
  return {"ntlm-connection-broken", std::string("the connection that NTLM authenticated was closed before the ") +
                                        channel + " channel request could use it; NTLM authenticates the TCP "
                                        "connection, so the proxy must keep it open and on one server connection "
                                        "(exbridge pins /rpc/ pairs; HAProxy: no 'option http-server-close')"};
}

failure rpc_proxy_requests::rpc_failure(const response_t& res, const std::string& what) const {
  if (res.result() == http::status::service_unavailable && boost::algorithm::starts_with(res.reason(), "RPC Error")) {
    return {"http-error", what + ": rpcproxy.dll answered 503 " + std::string(res.reason()) + " for " + s_.rpc_server +
                              ":" + std::to_string(port_) + ": that server and port are not in its ValidPorts list or "
                              "the mailbox server is down; name the mailbox server as Outlook Anywhere's settings do"};
  }
  return http_failure(res, what);
}

}  // namespace exbridge::rehearse
