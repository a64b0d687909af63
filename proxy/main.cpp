// exbridge: the TLS 1.2/1.3 -> TLS 1.0 bridge between Exchange Online and Exchange 2007.
// Signals: SIGHUP reloads (the config file with --config, else the certificates); SIGTERM/SIGINT drain
// (stop accepting, let open connections finish for drain_timeout) and exit; a second one exits at once.
#include <unistd.h>

#include <csignal>
#include <iostream>
#include <optional>
#include <thread>

#include "common/listener.hpp"
#include "common/log.hpp"
#include "common/main_guard.hpp"
#include "proxy/stats/admin.hpp"
#include "proxy/bridge.hpp"
#include "proxy/config/config_check.hpp"
#include "proxy/service/privileges.hpp"
#include "proxy/service/service_notify.hpp"

using namespace exbridge;

namespace {

/// SIGHUP. Returns the outcome for systemd's status line.
std::string on_reload(proxy::bridge& bridge, proxy::invocation& invocation) {
  if (invocation.config_file.empty()) {
    log_info("SIGHUP: reloading the certificates");
    const auto refused = bridge.reload_certificates();
    return refused ? "certificate reload refused; the running certificates stay in use" : "certificates reloaded";
  }
  log_info(cat("SIGHUP: reloading ", invocation.config_file));
  try {
    auto options = proxy::resolve_options(invocation);
    proxy::fit_fd_limit(options);
    bridge.reload(std::move(options));
    return "configuration reloaded";
  } catch (const config_error& e) {
    bridge.shared()->stats.add(proxy::counter::config_reload_failures);
    // After a chroot every path (the file, its certificates) is looked up inside it.
    const std::string& jail = bridge.context()->options.chroot_dir;
    const std::string inside = jail.empty() ? "" : cat(" (exbridge runs chrooted in ", jail, ": paths are read inside it)");
    log_error(cat("reload refused: ", e.what(), inside, "; the running configuration stays in use"));
    return "reload refused; the running configuration stays in use (see the log)";
  }
}

/// While it lives, the info lines of one turn of `ioc` (the access log) go out in one write: see
/// set_log_batching. It ends before the loop does, so no flush is posted to a destroyed loop.
class log_batching {
 public:
  explicit log_batching(net::io_context& ioc) {
    loop_ = &ioc;
    set_log_batching([](void (*flush)()) { net::post(*loop_, flush); });
  }
  ~log_batching() { set_log_batching(nullptr); }
  log_batching(const log_batching&) = delete;
  log_batching& operator=(const log_batching&) = delete;

 private:
  static inline net::io_context* loop_ = nullptr;
};

}  // namespace

int main(int argc, char** argv) {
  return guarded_main("exbridge", [&] {
    auto invocation = proxy::parse_invocation(argc, argv);
    if (!invocation) return static_cast<int>(exit_ok);
    if (invocation->check) return proxy::run_check(*invocation, std::cout);
    auto options = proxy::resolve_options(*invocation);
    scaled_clock::set_scale(options.time_scale);
    proxy::fit_fd_limit(options);
    const unsigned threads = options.threads != 0 ? options.threads : std::max(1u, std::thread::hardware_concurrency());
    options.threads = threads;  // the bridge runs connections without strands when this is 1

    net::io_context ioc(static_cast<int>(threads));
    const log_batching batching(ioc);
    std::optional<proxy::bridge> started;
    try {
      started.emplace(ioc, options);
    } catch (const config_error& e) {
      throw config_error(
          proxy::locate_startup_error(e.what(), options, invocation->origins, invocation->config_file));
    }
    proxy::bridge& bridge = *started;
    std::optional<proxy::admin_server> admin;
    if (options.admin.address) admin.emplace(bridge, options.admin);
    const proxy::service_notifier service;  // before a chroot hides systemd's socket
    proxy::drop_privileges(options);
    // Signals are handled from here on: a SIGHUP right after readiness must reload, not kill.
    net::signal_set signals(ioc, SIGINT, SIGTERM, SIGHUP);
    bridge.start();
    const auto ep = bridge.local_endpoint();
    std::string upstreams;
    for (const auto& pool : bridge.context()->pools) {
      upstreams += (upstreams.empty() ? "" : "; ") + pool->settings.name + ":";
      for (const auto& s : pool->servers) upstreams += " " + s->name;
    }
    log_info(cat("bridging TLS 1.2/1.3 on ", ep.address().to_string(), ':', ep.port(), " to ", upstreams, " (TLS ",
                 options.upstream.min_tls, "-", options.upstream.max_tls, "), ", threads, " thread(s), at most ",
                 options.max_connections, " connections"));
    // The data listener's readiness line comes first: supervisors (rehearse, tests) take the first one.
    for (const auto& listening : bridge.local_endpoints()) {
      announce_listening("https", listening.address().to_string(), listening.port());
    }
    if (admin) {
      log_info(cat("admin listener on ", admin->scheme(), "://", options.admin.address->host, ':', admin->port(),
                   "/ (stats page), /stats.json, /metrics"));
      announce_listening("admin", options.admin.address->host, admin->port());
    }
    const std::string status = cat("STATUS=bridging TLS 1.2/1.3 on ", ep.address().to_string(), ':', ep.port(),
                                   " to ", upstreams);
    service.send(cat("READY=1\nMAINPID=", ::getpid(), "\n", status));

    bool draining = false;
    std::function<void()> wait_for_signal = [&] {
      signals.async_wait([&](const error_code& ec, int signal) {
        if (ec) return;
        if (signal == SIGHUP) {
          service.reloading();
          const std::string outcome = on_reload(bridge, *invocation);
          service.send(cat("READY=1\nSTATUS=", outcome));
        } else if (draining) {
          log_info("second stop signal: closing every connection now");
          ioc.stop();
          return;
        } else {
          draining = true;
          log_info(cat("signal ", signal, ": no new connections; letting open ones finish for up to ",
                       options.drain_timeout.count(), " s"));
          service.send(cat("STOPPING=1\nSTATUS=draining: open connections may finish for up to ",
                           options.drain_timeout.count(), " s"));
          bridge.drain(options.drain_timeout, [&ioc](std::int64_t still_open) {
            if (still_open > 0) log_warn(cat("drain timeout: closing ", still_open, " connection(s) still open"));
            else log_info("drained: every connection finished");
            ioc.stop();
          });
        }
        wait_for_signal();
      });
    };
    wait_for_signal();
    std::vector<std::thread> pool;
    for (unsigned i = 1; i < threads; ++i) pool.emplace_back([&ioc] { ioc.run(); });
    ioc.run();
    for (auto& t : pool) t.join();
    return static_cast<int>(exit_ok);
  });
}
