// Access log formatting: HAProxy-like text or JSON lines, one record per request.
#include "proxy/session/access_log.hpp"

#include <boost/json.hpp>

#include "common/log.hpp"

namespace exbridge::proxy {

std::string format_access_line(const request_record& r) {
  const auto& t = info(r.end);
  std::string line = cat(r.client, " \"", r.method, ' ', r.target, "\" ", r.status, ' ', r.bytes_to_client, ' ',
                         r.bytes_from_client, ' ', r.t_handshake, '/', r.t_request, '/', r.t_connect, '/',
                         r.t_upstream_tls, '/', r.t_response, '/', r.t_total, ' ', t.code, ' ', t.reason,
                         " auth=", r.auth_scheme, " pinned=", r.pinned ? 1 : 0, " upreq=", r.upstream_requests,
                         " down_tls=\"", r.down_tls, "\" up_tls=\"", r.up_tls, "\" server=", r.server);
  if (r.pairing != "-") line += cat(" pair=", r.pairing, " vc=", r.vc);
  if (!r.detail.empty()) line += cat(" detail=\"", r.detail, '"');
  return line;
}

std::string format_access_json(const request_record& r) {
  const auto& t = info(r.end);
  boost::json::object o;
  o["client"] = r.client;
  o["method"] = r.method;
  o["target"] = r.target;
  o["status"] = r.status;
  o["bytes_to_client"] = r.bytes_to_client;
  o["bytes_from_client"] = r.bytes_from_client;
  o["ms_downstream_tls"] = r.t_handshake;
  o["ms_request"] = r.t_request;
  o["ms_connect"] = r.t_connect;
  o["ms_upstream_tls"] = r.t_upstream_tls;
  o["ms_response_headers"] = r.t_response;
  o["ms_total"] = r.t_total;
  o["termination"] = t.code;
  o["reason"] = t.reason;
  o["detail"] = r.detail;
  o["auth"] = r.auth_scheme;
  o["pinned"] = r.pinned;
  o["upstream_requests"] = r.upstream_requests;
  o["downstream_tls"] = r.down_tls;
  o["upstream_tls"] = r.up_tls;
  o["server"] = r.server;
  o["pairing"] = r.pairing;
  o["vc"] = r.vc;
  return boost::json::serialize(o);
}

void log_access(const request_record& r, log_format format) {
  const auto level = r.end == termination::normal ? log_level::info : log_level::warn;
  if (format == log_format::json) log_line(level, "access " + format_access_json(r));
  else log_line(level, "access " + format_access_line(r));
}

}  // namespace exbridge::proxy
