// Routing, Basic authentication and IIS-shaped error pages.
#include "fake_exchange/router.hpp"

#include <boost/algorithm/string/predicate.hpp>

#include "common/base64.hpp"
#include "common/ntlm.hpp"
#include "fake_exchange/ews.hpp"

namespace exbridge::fake_exchange {
namespace {

using response_t = http::response<http::string_body>;

void iis_headers(response_t& res) {
  res.set(http::field::server, "Microsoft-IIS/7.0");
  res.set("X-Powered-By", "ASP.NET");
}

}  // namespace

response_t html_error(unsigned version, http::status status, const std::string& title, const std::string& text) {
  response_t res{status, version};
  iis_headers(res);
  res.set(http::field::content_type, "text/html");
  res.body() = "<!DOCTYPE html PUBLIC \"-//W3C//DTD XHTML 1.0 Strict//EN\" "
               "\"http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd\">\r\n<html><head><title>" +
               title + "</title></head><body><h1>Server Error</h1><h2>" + title + "</h2><p>" + text +
               "</p></body></html>\r\n";
  res.prepare_payload();
  return res;
}

namespace {

/// IIS's 401 page, without WWW-Authenticate (the callers add the offer or the NTLM challenge).
response_t unauthorized_page(unsigned version) {
  return html_error(version, http::status::unauthorized, "401 - Unauthorized: Access is denied due to invalid credentials.",
                    "You do not have permission to view this directory or page using the credentials that you supplied.");
}

}  // namespace

response_t unauthorized(unsigned version, const std::string& host) {
  response_t res = unauthorized_page(version);
  // IIS lists each enabled provider in its own header, in this order.
  res.insert(http::field::www_authenticate, "Negotiate");
  res.insert(http::field::www_authenticate, "NTLM");
  res.insert(http::field::www_authenticate, "Basic realm=\"" + host + "\"");
  return res;
}

namespace {

const user* check_basic(std::string_view token, const organisation& org) {
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  const auto decoded = base64_decode(token);
  if (!decoded) return nullptr;
  const auto colon = decoded->find(':');
  if (colon == std::string::npos) return nullptr;
  const user* u = org.find_logon(std::string_view(*decoded).substr(0, colon));
  if (u == nullptr || u->password != std::string_view(*decoded).substr(colon + 1)) return nullptr;
  return u;
}

/// NTLM as IIS runs it: Type 1 -> 401 carrying Type 2 (state kept on the connection) -> Type 3 verified
/// against that challenge. Once it succeeds the *connection* is authenticated, so later requests on it
/// need no Authorization header -- unless they carry Via: http.sys then re-challenges every request,
/// because a proxy may be sharing the connection between users.
auth_outcome check_ntlm(const http::request_header<>& req, std::string_view value,
                        const exchange_config& config, connection_auth& conn) {
  const auto raw = decode_http_token(value);
  const std::string scheme(value.substr(0, value.find(' ')));
  if (!raw || raw->size() < 12) return {};
  const auto type = static_cast<unsigned char>((*raw)[8]);
  if (type == 1) {
    const auto negotiate = parse_negotiate(*raw);
    if (!negotiate) return {};
    conn.pending_challenge = ntlm_random_challenge();
    const auto& org = config.org;
    ntlm_server_names names{org.netbios_domain, org.server_name, org.domain, org.server_fqdn()};
    response_t res = unauthorized_page(req.version());
    res.set(http::field::www_authenticate,
            http_token(scheme, make_challenge(*negotiate, *conn.pending_challenge, names, ntlm_filetime_now())));
    return {nullptr, std::move(res)};
  }
  if (type != 3 || !conn.pending_challenge) return {};
  const auto challenge = *conn.pending_challenge;
  conn.pending_challenge.reset();
  const auto authenticate = parse_authenticate(*raw);
  if (!authenticate) return {};
  const std::string logon =
      authenticate->domain.empty() ? authenticate->user : authenticate->domain + "\\" + authenticate->user;
  const user* u = config.org.find_logon(logon);
  if (u == nullptr || !verify_ntlmv2(*authenticate, u->password, challenge)) return {};
  if (req.find(http::field::via) == req.end()) conn.ntlm_user = u;
  return {u, std::nullopt};
}

}  // namespace

auth_outcome authenticate(const http::request_header<>& req, const exchange_config& config, connection_auth& conn) {
  const auto it = req.find(http::field::authorization);
  if (it == req.end()) {
    const bool proxied = req.find(http::field::via) != req.end();
    return {proxied ? nullptr : conn.ntlm_user, std::nullopt};
  }
  const std::string_view value = it->value();
  if (boost::algorithm::istarts_with(value, "Basic ")) return {check_basic(value.substr(6), config.org), std::nullopt};
  if (boost::algorithm::istarts_with(value, "NTLM ") || boost::algorithm::istarts_with(value, "Negotiate ")) {
    return check_ntlm(req, value, config, conn);
  }
  return {};
}

namespace {

response_t xml_response(unsigned version, http::status status, std::string body) {
  response_t res{status, version};
  iis_headers(res);
  res.set("X-AspNet-Version", "2.0.50727");
  res.set(http::field::cache_control, "private");
  res.set(http::field::content_type, "text/xml; charset=utf-8");
  res.body() = std::move(body);
  res.prepare_payload();
  return res;
}

}  // namespace

http::response<http::string_body> content_too_large_response(unsigned version) {
  auto res = html_error(version, http::status::not_found, "404.13 - Content Length Too Large",
                        "The request filtering module is configured to deny a request that exceeds the request content "
                        "length.");
  res.keep_alive(false);
  return res;
}

response_t aspnet_error_page(unsigned version, const std::string& application, bool timed_out) {
  response_t res{http::status::internal_server_error, version};
  iis_headers(res);
  res.set("X-AspNet-Version", "2.0.50727");
  res.set(http::field::cache_control, "private");
  res.set(http::field::content_type, "text/html; charset=utf-8");
  const std::string error = timed_out ? "Request timed out." : "Runtime Error";
  const std::string description =
      timed_out ? "An unhandled exception occurred during the execution of the current web request. "
                  "Exception Details: System.Web.HttpException: Request timed out."
                : "An application error occurred on the server. The current custom error settings for this "
                  "application prevent the details of the application error from being viewed remotely (for "
                  "security reasons).";
  res.body() = "<html>\r\n    <head>\r\n        <title>" + error +
               "</title>\r\n    </head>\r\n    <body bgcolor=\"white\">\r\n\r\n            <span><H1>Server Error "
               "in '" + application + "' Application.<hr width=100% size=1 color=silver></H1>\r\n\r\n            "
               "<h2> <i>" + error + "</i> </h2></span>\r\n\r\n            <b> Description: </b>" + description +
               "\r\n    </body>\r\n</html>\r\n";
  res.prepare_payload();
  return res;
}

response_t service_unavailable_page(unsigned version) {
  response_t res{http::status::service_unavailable, version};
  res.set(http::field::server, "Microsoft-HTTPAPI/2.0");
  res.set(http::field::content_type, "text/html; charset=us-ascii");
  res.body() = "<!DOCTYPE HTML PUBLIC \"-//W3C//DTD HTML 4.01//EN\"\"http://www.w3.org/TR/html4/strict.dtd\">\r\n"
               "<HTML><HEAD><TITLE>Service Unavailable</TITLE>\r\n<META HTTP-EQUIV=\"Content-Type\" "
               "Content=\"text/html; charset=us-ascii\"></HEAD>\r\n<BODY><h2>Service Unavailable</h2>\r\n<hr><p>HTTP "
               "Error 503. The service is unavailable.</p>\r\n</BODY></HTML>\r\n";
  res.keep_alive(false);
  res.prepare_payload();
  return res;
}

admission admit_request(const http::request_header<>& req, const exchange_config& config, connection_auth& connection) {
  const unsigned v = req.version();
  const std::string_view target = req.target();
  const std::string_view path = target.substr(0, target.find('?'));
  const std::string host = req[http::field::host].empty() ? config.org.server_fqdn() : std::string(req[http::field::host]);
  const bool is_autodiscover = boost::algorithm::iequals(path, "/autodiscover/autodiscover.xml");
  const bool is_ews = boost::algorithm::iequals(path, "/EWS/Exchange.asmx");
  if (!is_autodiscover && !is_ews) {
    // Includes /autodiscover/autodiscover.svc: SOAP Autodiscover exists only from Exchange 2010.
    return {html_error(v, http::status::not_found, "404 - File or directory not found.",
                       "The resource you are looking for might have been removed, had its name changed, or is "
                       "temporarily unavailable."),
            nullptr, ""};
  }
  const std::string operation = is_ews ? "" : "autodiscover";
  auto auth = authenticate(req, config, connection);
  if (auth.challenge) return {std::move(*auth.challenge), nullptr, operation};
  if (auth.who == nullptr) return {unauthorized(v, host), nullptr, operation};
  if (is_ews && req.method() != http::verb::post) {
    // ASMX answers a GET without ?wsdl with its service help page; clients never rely on it.
    return {html_error(v, http::status::method_not_allowed, "405 - HTTP verb used to access this page is not allowed.",
                       "EWS accepts SOAP requests by POST."),
            auth.who, ""};
  }
  return {std::nullopt, auth.who, operation};
}

routed_response answer_request(const http::request<http::string_body>& req, const exchange_config& config,
                               const user& who) {
  const unsigned v = req.version();
  const std::string_view target = req.target();
  const std::string_view path = target.substr(0, target.find('?'));
  const std::string host = req[http::field::host].empty() ? config.org.server_fqdn() : std::string(req[http::field::host]);
  const std::string public_host = config.public_host.empty() ? host : config.public_host;
  if (boost::algorithm::iequals(path, "/autodiscover/autodiscover.xml")) {
    auto result = answer_autodiscover(req.body(), config.org, *config.version, public_host, host);
    return {xml_response(v, http::status::ok, std::move(result.body)), who.email, "autodiscover"};
  }
  auto result = answer_ews(req.body(), who, *config.version, config.mailboxes, config.org);
  routed_response out{xml_response(v, static_cast<http::status>(result.status), std::move(result.body)), who.email,
                      std::move(result.operation), std::move(result.stream)};
  if (out.stream) out.response.content_length(out.stream->size());
  return out;
}

routed_response route_request(const http::request<http::string_body>& req, const exchange_config& config,
                              connection_auth& connection) {
  auto admitted = admit_request(req, config, connection);
  if (admitted.refusal) return {std::move(*admitted.refusal), admitted.email(), std::move(admitted.operation)};
  return answer_request(req, config, *admitted.who);
}

bool expects_continue(const http::request_header<>& req, std::optional<std::uint64_t> content_length, bool chunked) {
  if (req.version() < 11 || (!chunked && content_length.value_or(0) == 0)) return false;
  for (const auto& field : req) {
    if (field.name() == http::field::expect && boost::algorithm::iequals(field.value(), "100-continue")) return true;
  }
  return false;
}

}  // namespace exbridge::fake_exchange
