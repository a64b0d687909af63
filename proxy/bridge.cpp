// Bridge set-up: TLS contexts for both legs, the listener, start-up warnings.
#include "proxy/bridge.hpp"

#include "common/listener.hpp"
#include "common/log.hpp"
#include "proxy/upstream_tls.hpp"

namespace exbridge::proxy {
namespace {

tls_settings downstream_settings(const tls_identity& identity) { return {.identity = identity}; }

tls_settings upstream_tls_settings(const upstream_settings& u) {
  return {.verify = u.verify,
          .ca_file = u.ca_file,
          .min_version = u.min_tls,
          .max_version = u.max_tls,
          .cipher_list = u.ciphers,
          .security_level = u.security_level};
}

}  // namespace

std::string upstream_server_name(const upstream_settings& u) { return u.sni.empty() ? u.address.host : u.sni; }

void prepare_upstream_tls(SSL* ssl, const upstream_settings& u) {
  prepare_client_tls(ssl, upstream_server_name(u), u.verify == tls_verify::ca_file || u.verify == tls_verify::system);
}

std::optional<tls_diagnosis> upstream_handshake_failure(const error_code& ec, SSL* ssl, const upstream_settings& u) {
  if (ec) return diagnose_tls_failure(ec, ssl, "the upstream");
  if (u.verify == tls_verify::pin) return check_certificate_pin(ssl, u.pin_sha256, "the upstream");
  return std::nullopt;
}

bridge_context::bridge_context(bridge_options o)
    : options(std::move(o)),
      downstream_tls(make_tls_context(tls_profile::downstream, downstream_settings(options.identity))),
      upstream_tls(make_tls_context(tls_profile::upstream_legacy, upstream_tls_settings(options.upstream))) {
  if (!options.sni_identities.empty()) {
    sni_tls.reserve(options.sni_identities.size());
    for (const auto& identity : options.sni_identities) {
      sni_tls.push_back(make_tls_context(tls_profile::downstream, downstream_settings(identity)));
    }
    select_certificate_by_sni(downstream_tls, sni_tls);
  }
}

bridge::bridge(net::io_context& ioc, bridge_options options)
    : context_(std::make_shared<bridge_context>(std::move(options))),
      acceptor_(bind_listener(ioc, context_->options.listen, "exbridge --listen")) {
  const auto& u = context_->options.upstream;
  if (u.verify == tls_verify::none) {
    log_warn(cat("upstream ", u.address.to_string(),
                 ": certificate verification is off (--upstream-verify none, or verify = \"none\" in [upstream]); "
                 "anyone on the path to the Exchange 2007 server could read mailboxes. Use ca:FILE with the server's "
                 "CA, or pin:SHA256 with its certificate's fingerprint"));
  }
}

void bridge::start() {
  start_accepting(acceptor_, [ctx = context_](tcp::socket s) { return run_downstream_session(ctx, std::move(s)); });
}

void bridge::stop() {
  error_code ec;
  acceptor_.close(ec);
}

}  // namespace exbridge::proxy
