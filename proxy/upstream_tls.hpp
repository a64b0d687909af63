// The two per-connection steps of the upstream TLS handshake that a session and --check --probe-upstream
// must do identically, so that a probe that passes means sessions will pass: SNI and the name check
// before it, and after it the classified failure or the pin check.
#pragma once

#include <optional>

#include "common/tls_diagnosis.hpp"
#include "proxy/options.hpp"

namespace exbridge::proxy {

/// The name sent as SNI and checked in the certificate: the pool's sni, else the server's host.
std::string upstream_server_name(const upstream_settings& u, const host_port& server);

/// Before the handshake: sends SNI (upstream_server_name) and, with a CA, requires the name.
void prepare_upstream_tls(SSL* ssl, const upstream_settings& u, const host_port& server);

/// After the handshake: why the upstream is not accepted (`ec` classified, or a certificate that is not the
/// pinned one), or nullopt. `ec` = timed_out when the caller's timer ended the handshake.
std::optional<tls_diagnosis> upstream_handshake_failure(const error_code& ec, SSL* ssl, const upstream_settings& u);

}  // namespace exbridge::proxy
