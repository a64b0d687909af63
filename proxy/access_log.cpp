// Access log formatting.
#include "proxy/access_log.hpp"

#include "common/log.hpp"

namespace exbridge::proxy {

std::string format_access_line(const request_record& r) {
  const auto& t = info(r.end);
  std::string line = cat(r.client, " \"", r.method, ' ', r.target, "\" ", r.status, ' ', r.bytes_to_client, ' ',
                         r.bytes_from_client, ' ', r.t_request, '/', r.t_connect, '/', r.t_upstream_tls, '/',
                         r.t_response, '/', r.t_total, ' ', t.code, ' ', t.reason, " auth=", r.auth_scheme,
                         " pinned=", r.pinned ? 1 : 0, " upreq=", r.upstream_requests, " down_tls=\"", r.down_tls,
                         "\" up_tls=\"", r.up_tls, '"');
  if (!r.detail.empty()) line += cat(" detail=\"", r.detail, '"');
  return line;
}

void log_access(const request_record& r) {
  log_line(r.end == termination::normal ? log_level::info : log_level::warn, "access " + format_access_line(r));
}

}  // namespace exbridge::proxy
