// Bridge set-up: TLS contexts for both legs, the listener, start-up warnings.
#include "proxy/bridge.hpp"

#include "common/listener.hpp"
#include "common/log.hpp"

namespace exbridge::proxy {
namespace {

ssl::context make_upstream_tls(const upstream_settings& u) {
  return make_tls_context(tls_profile::upstream_legacy,
                          {.verify = u.verify, .ca_file = u.ca_file, .min_version = u.min_tls, .max_version = u.max_tls});
}

}  // namespace

bridge::bridge(net::io_context& ioc, bridge_options options)
    : context_(std::make_shared<bridge_context>(options,
                                                make_tls_context(tls_profile::downstream, {.identity = options.identity}),
                                                make_upstream_tls(options.upstream))),
      acceptor_(bind_listener(ioc, options.listen, "exbridge --listen")) {
  if (options.upstream.verify == tls_verify::none) {
    log_warn(cat("upstream ", options.upstream.address.to_string(),
                 ": certificate verification is off (--upstream-verify none); anyone on the path to the Exchange "
                 "2007 server could read mailboxes. Use --upstream-verify ca:FILE with the server's CA or certificate"));
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
