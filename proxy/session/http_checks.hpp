// The proxy's decisions about one HTTP message that need no socket: is a request's header block complete,
// is it framed unambiguously (request smuggling), which headers exbridge adds or rewrites on the way through,
// and which upstream responses it refuses. session.cpp calls these on the live data path; the fuzz targets
// (tests/fuzz/) call the same functions, so what is fuzzed is what runs.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/net.hpp"

namespace exbridge::proxy {

/// The request (and response) header block limit given to Beast's parsers.
inline constexpr std::size_t max_header_bytes = 64 * 1024;
/// As HAProxy's tune.http.maxhdr (101 with the request line).
inline constexpr std::ptrdiff_t max_header_fields = 100;

/// True once `buffered` holds a whole header block (CRLFCRLF or a bare LFLF, which the parser then refuses)
/// or has reached max_header_bytes (the parser then answers header_limit).
bool header_block_complete(std::string_view buffered);

/// Obsolete line folding (a header line starting with SP or HTAB) in the header block at the start of
/// `buffered`. Checked on the raw bytes because Beast unfolds it silently, and a folded header is a classic
/// way to make two HTTP parsers disagree.
bool has_obs_fold(std::string_view buffered);

/// A parse error in a message (not the peer going away mid-message): the sender broke HTTP's framing.
bool is_malformed(const error_code& ec);

/// Why a parsed request header is refused before anything reaches the upstream, and with which status.
struct request_rejection {
  http::status status;
  std::string detail;
};

/// Framing rules Beast's parser leaves to the application (CR/LF/NUL in values, duplicate Host,
/// Transfer-Encoding other than exactly "chunked" or on HTTP/1.0) and the header-field count limit.
/// Anything here could make exbridge and the upstream (IIS) disagree about where a request ends.
std::optional<request_rejection> check_request_header(const http::request_header<>& req);

/// The scheme of the Authorization header ("NTLM", "Basic"), "-" without one.
std::string auth_scheme_of(const http::request_header<>& req);

/// True for a request on an Outlook Anywhere channel (/rpc/...): pinned, with the RPC idle timeout.
bool is_rpc_target(std::string_view target);

/// Adds X-Forwarded-For (appended to an existing list), X-Forwarded-Proto and X-Forwarded-Port.
/// `client` is "ADDRESS:PORT" as the session names its peer.
void add_forwarding_headers(http::request_header<>& req, std::string_view client, unsigned short listen_port);

/// Why an upstream response header is refused (nullopt: relay it). A 101 is refused: after it both sides
/// would speak another protocol through a proxy that relays HTTP/1.1 only. More than one Transfer-Encoding
/// line is refused: Beast's parser joins them ("gzip" + "chunked" = chunked) but its serializer reads only
/// the first, so the client would get the body unframed under a header that says chunked.
std::optional<std::string> check_response_header(const http::response_header<>& res);

/// An interim (1xx) response, passed on before the final one.
bool is_interim(const http::response_header<>& res);

/// Whether a message's header must be sent before any of its body is parsed: for a chunked body, Beast adds
/// the trailer fields to the message's header when it parses them, and a header still waiting to go out
/// with the first body piece would carry them (a second Host, a Content-Length beside chunked) past
/// check_request_header. Other bodies have no trailers, so their header may wait and share the first write.
bool header_goes_first(bool chunked);

/// A response that has no body whatever its headers say (RFC 9112 section 6.3): the answer to a HEAD, a 1xx,
/// 204 or 304. Its header is the whole message: nothing may follow it -- not even the last chunk a
/// serializer would add for "Transfer-Encoding: chunked", which the client would read as the start of the
/// next response.
bool response_has_no_body(const http::response_header<>& res, bool head);

/// A 401 offering a connection-bound scheme: from here on the upstream connection belongs to this client.
bool offers_connection_auth(const http::response_header<>& res);

/// Sets the configured headers (--response-header) on a final response.
void apply_response_headers(http::response_header<>& res,
                            const std::vector<std::pair<std::string, std::string>>& headers);

}  // namespace exbridge::proxy
