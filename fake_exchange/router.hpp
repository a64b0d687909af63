// IIS-like request routing for fake-exchange: authentication per virtual directory, then Autodiscover
// or EWS. A pure function of the request, so it is unit-tested without sockets.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>

#include "common/net.hpp"
#include "fake_exchange/autodiscover.hpp"
#include "fake_exchange/exchange_config.hpp"
#include "fake_exchange/mailbox.hpp"
#include "fake_exchange/streamed_body.hpp"
#include "fake_exchange/organisation.hpp"

namespace exbridge::fake_exchange {

/// Authentication state that belongs to one TCP connection, as NTLM's does in IIS: a pending challenge
/// between the Type 2 and Type 3 messages, then the user the connection authenticated as.
struct connection_auth {
  const user* ntlm_user = nullptr;
  std::optional<std::array<std::uint8_t, 8>> pending_challenge;
};

struct routed_response {
  http::response<http::string_body> response;
  std::string user;       ///< who authenticated ("" when nobody did)
  std::string operation;  ///< EWS operation or "autodiscover"
  std::shared_ptr<streamed_body> stream;  ///< when set, the body is produced while sent (Content-Length is set)
};

/// The result of looking at a request's credentials: a user, or the 401 to send instead.
struct auth_outcome {
  const user* who = nullptr;
  std::optional<http::response<http::string_body>> challenge;  ///< a Type 2 answer (NTLM handshake in progress)
};

/// IIS authentication of one request (Basic per request, NTLM per connection). Only the header is needed,
/// so a request whose body streams (Outlook Anywhere's IN channel) is authenticated before it is read.
auth_outcome authenticate(const http::request_header<>& request, const exchange_config& config,
                          connection_auth& connection);

/// IIS's 401 offering Negotiate, NTLM and Basic (realm = `host`), one header per provider.
http::response<http::string_body> unauthorized(unsigned version, const std::string& host);

/// IIS's HTML error page with `status`.
http::response<http::string_body> html_error(unsigned version, http::status status, const std::string& title,
                                             const std::string& text);

/// ASP.NET 2.0's error page for remote clients ("Server Error in '<application>' Application."), HTTP 500:
/// a "Runtime Error", or "Request timed out." when executionTimeout ended the request.
http::response<http::string_body> aspnet_error_page(unsigned version, const std::string& application, bool timed_out);

/// http.sys's 503 "Service Unavailable" (application pool down or queue full); it closes the connection.
http::response<http::string_body> service_unavailable_page(unsigned version);

/// IIS limit on EWS request bodies (maxAllowedContentLength, Exchange 2007 default).
inline constexpr std::uint64_t ews_max_request_bytes = 30'000'000;

/// What IIS decides from a request's header alone, before any of its body is read: the virtual directory
/// (404 for an unknown path), authentication (IIS's 401, or an NTLM challenge), then the method (405 for EWS
/// without POST). A refusal is the answer; else the request runs as `who`. http.sys sends "100 Continue" to a
/// request that expects it only once it is admitted (see expects_continue).
struct admission {
  std::optional<http::response<http::string_body>> refusal;
  const user* who = nullptr;  ///< who authenticated (nullptr when nobody did)
  std::string operation;      ///< "autodiscover", or "" for EWS (its operation is in the body)
  std::string email() const { return who != nullptr ? who->email : std::string(); }
};
admission admit_request(const http::request_header<>& request, const exchange_config& config,
                        connection_auth& connection);

/// Answers an admitted Autodiscover or EWS request, its body read, as `who`.
routed_response answer_request(const http::request<http::string_body>& request, const exchange_config& config,
                               const user& who);

/// admit_request, then answer_request. `connection` carries NTLM state across the requests of one
/// connection; pass a fresh one per TCP connection.
routed_response route_request(const http::request<http::string_body>& request, const exchange_config& config,
                              connection_auth& connection);

/// Whether a request waits for "100 Continue" before it sends its body: HTTP/1.1, "Expect: 100-continue"
/// and a body to send (a zero-length body needs no go-ahead).
bool expects_continue(const http::request_header<>& request, std::optional<std::uint64_t> content_length, bool chunked);

/// IIS's answer to a request body over maxAllowedContentLength (HTTP 404.13).
http::response<http::string_body> content_too_large_response(unsigned version);

}  // namespace exbridge::fake_exchange
