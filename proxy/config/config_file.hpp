// exbridge --config FILE (TOML): every data-path setting of the command line, for deployments with several
// certificates, response headers and tuned timeouts. The schema, with comments, is proxy/exbridge.example.toml:
//
//   threads, user, group, chroot, drain_timeout
//   [listen]                     address, max_connections, certificate_watch; [[listen.certificate]] cert, key
//                                (first = default, others by SNI); [listen.response_headers] "Name" = "value"
//   [upstream]                   the default pool: address or servers, sni, tls_min, tls_max, ciphers,
//                                security_level, verify, persistence, max_connections_per_server, queue_timeout,
//                                retries; [upstream.health_check] type, interval, timeout, rise, fall, path,
//                                expect_status
//   [[pool]]                     name plus the keys of [upstream]
//   [[route]]                    prefix, pool, persistence; [route.timeouts] overrides of [timeouts]
//   [timeouts]                   every field of proxy::timeouts as "30s"/"15m"/"1h", min_throughput (bytes/s)
//   [log]                        format = "text" | "json"
//   [admin]                      address, user, password or password_file, cert and key (HTTPS)
//
// Values go through the same validation as the command line (options.hpp). Every mistake -- unknown key,
// wrong type, bad value, missing required key -- is a config_error naming FILE:LINE:COLUMN and the key.
#pragma once

#include <string>

#include "proxy/config/options.hpp"

namespace exbridge::proxy {

struct loaded_config {
  bridge_options options;
  setting_origins origins;  ///< "FILE:LINE" of each key the file sets
};

/// Reads FILE into a complete bridge_options (absent optional keys keep the command line's defaults).
loaded_config load_config_file(const std::string& file);

}  // namespace exbridge::proxy
