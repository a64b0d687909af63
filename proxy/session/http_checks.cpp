// The proxy's socket-free HTTP decisions (see http_checks.hpp): request framing checks, forwarding headers,
// upstream response checks.
#include "proxy/session/http_checks.hpp"

#include <boost/algorithm/string/predicate.hpp>

#include <algorithm>
#include <iterator>

namespace exbridge::proxy {

bool header_block_complete(std::string_view data) {
  return data.find("\r\n\r\n") != std::string_view::npos || data.find("\n\n") != std::string_view::npos ||
         data.size() >= max_header_bytes;
}

bool has_obs_fold(std::string_view data) {
  data = data.substr(0, std::min(data.find("\r\n\r\n"), data.find("\n\n")));
  return data.find("\n ") != std::string_view::npos || data.find("\n\t") != std::string_view::npos;
}

bool is_malformed(const error_code& ec) {
  return ec.category() == make_error_code(http::error::bad_version).category() && ec != http::error::partial_message &&
         ec != http::error::end_of_stream && ec != http::error::need_buffer;
}

namespace {

std::optional<std::string> framing_problem(const http::request_header<>& req) {
  int transfer_encodings = 0;
  int hosts = 0;
  for (const auto& field : req) {
    const std::string_view value = field.value();
    if (value.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos) {
      return "header " + std::string(field.name_string()) + " contains a line break or NUL (obsolete line folding)";
    }
    if (field.name() == http::field::transfer_encoding) ++transfer_encodings;
    if (field.name() == http::field::host) ++hosts;
  }
  if (hosts > 1) return std::string("more than one Host header");
  if (transfer_encodings == 0) return std::nullopt;
  if (req.version() < 11) return std::string("Transfer-Encoding in an HTTP/1.0 request");
  const std::string_view te = req[http::field::transfer_encoding];
  if (transfer_encodings > 1 || !boost::algorithm::iequals(te, "chunked")) {
    return "Transfer-Encoding '" + std::string(te) + "' is not exactly 'chunked'";
  }
  return std::nullopt;
}

}  // namespace

std::optional<request_rejection> check_request_header(const http::request_header<>& req) {
  if (auto problem = framing_problem(req)) return request_rejection{http::status::bad_request, std::move(*problem)};
  if (std::distance(req.begin(), req.end()) > max_header_fields) {
    return request_rejection{http::status::request_header_fields_too_large,
                             "more than " + std::to_string(max_header_fields) + " header fields"};
  }
  return std::nullopt;
}

std::string auth_scheme_of(const http::request_header<>& req) {
  const std::string_view v = req[http::field::authorization];
  if (v.empty()) return "-";
  return std::string(v.substr(0, v.find(' ')));
}

bool is_rpc_target(std::string_view target) { return boost::algorithm::istarts_with(target, "/rpc/"); }

void add_forwarding_headers(http::request_header<>& req, std::string_view client, unsigned short listen_port) {
  const std::string ip(client.substr(0, client.rfind(':')));
  const std::string_view existing = req["X-Forwarded-For"];
  if (existing.empty()) req.set("X-Forwarded-For", ip);
  else req.set("X-Forwarded-For", std::string(existing) + ", " + ip);
  req.set("X-Forwarded-Proto", "https");
  req.set("X-Forwarded-Port", std::to_string(listen_port));
}

std::optional<std::string> check_response_header(const http::response_header<>& res) {
  if (res.result() == http::status::switching_protocols) {
    return std::string("the upstream switched protocols (101); exbridge relays HTTP/1.1 only");
  }
  if (res.count(http::field::transfer_encoding) > 1) {
    return std::string("the upstream sent more than one Transfer-Encoding header");
  }
  return std::nullopt;
}

bool header_goes_first(bool chunked) { return chunked; }

bool is_interim(const http::response_header<>& res) {
  return res.result_int() / 100 == 1 && res.result() != http::status::switching_protocols;
}

bool response_has_no_body(const http::response_header<>& res, bool head) {
  const unsigned status = res.result_int();
  return head || status / 100 == 1 || status == 204 || status == 304;
}

bool offers_connection_auth(const http::response_header<>& res) {
  if (res.result() != http::status::unauthorized) return false;
  for (const auto& field : res) {
    if (field.name() != http::field::www_authenticate) continue;
    const std::string_view v = field.value();
    if (boost::algorithm::istarts_with(v, "NTLM") || boost::algorithm::istarts_with(v, "Negotiate")) return true;
  }
  return false;
}

void apply_response_headers(http::response_header<>& res,
                            const std::vector<std::pair<std::string, std::string>>& headers) {
  for (const auto& [name, value] : headers) res.set(name, value);
}

}  // namespace exbridge::proxy
