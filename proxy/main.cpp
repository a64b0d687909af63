// exbridge: the TLS 1.2/1.3 -> TLS 1.0 bridge between Exchange Online and Exchange 2007.
#include <iostream>
#include <optional>
#include <thread>

#include "common/main_guard.hpp"
#include "common/listener.hpp"
#include "common/log.hpp"
#include "proxy/bridge.hpp"
#include "proxy/config_check.hpp"

using namespace exbridge;

int main(int argc, char** argv) {
  return guarded_main("exbridge", [&] {
    auto invocation = proxy::parse_invocation(argc, argv);
    if (!invocation) return static_cast<int>(exit_ok);
    if (invocation->check) return proxy::run_check(*invocation, std::cout);
    const auto options = proxy::resolve_options(*invocation);
    scaled_clock::set_scale(options.time_scale);
    const unsigned threads = options.threads != 0 ? options.threads : std::max(1u, std::thread::hardware_concurrency());

    net::io_context ioc(static_cast<int>(threads));
    std::optional<proxy::bridge> started;
    try {
      started.emplace(ioc, options);
    } catch (const config_error& e) {
      throw config_error(
          proxy::locate_startup_error(e.what(), options, invocation->origins, invocation->config_file));
    }
    proxy::bridge& bridge = *started;
    bridge.start();
    const auto ep = bridge.local_endpoint();
    log_info(cat("bridging TLS 1.2/1.3 on ", ep.address().to_string(), ':', ep.port(), " to upstream ",
                 options.upstream.address.to_string(), " (TLS ", options.upstream.min_tls, "-",
                 options.upstream.max_tls, "), ", threads, " thread(s)"));
    announce_listening("https", ep.address().to_string(), ep.port());
    run_until_signalled(ioc, threads, [&] { bridge.stop(); });
    return static_cast<int>(exit_ok);
  });
}
