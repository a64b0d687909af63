// exbridge-bench-hold: opens N TLS connections to a proxy, sends one keep-alive request on each, reads its
// answer and then holds every connection idle, so that ci/bench.sh can read the proxy's memory per idle
// keep-alive TLS connection and the most connections it holds (issue 7, item 4). One thread; at most
// --parallel handshakes in flight. Once every attempt has ended it prints why any failed (stderr) and
// "held H of N" (stdout), then waits for SIGTERM/SIGINT (or --hold-ms) and closes everything.
//
//   exbridge-bench-hold --connect 127.0.0.1:8443 --count 10000 [--path /1k] [--sni mail.contoso.example]
//                       [--parallel 100] [--timeout-ms 15000] [--hold-ms 0]
#include <csignal>
#include <iostream>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "common/net.hpp"
#include "common/tls_context.hpp"

namespace {

using namespace exbridge;
using tls_stream = ssl::stream<tcp::socket>;

struct settings {
  std::string host = "127.0.0.1";
  std::string port;
  std::string path = "/1k";
  std::string sni = "mail.contoso.example";
  unsigned count = 1000;
  unsigned parallel = 100;
  unsigned timeout_ms = 15000;
  unsigned hold_ms = 0;  // 0 = until a signal
};

struct tally {
  unsigned held = 0;
  unsigned ended = 0;
  std::map<std::string, unsigned> failures;  // why, how many
};

// One connection: connect, TLS, one request, its whole answer; on success the stream joins `held`.
net::awaitable<void> open_one(const settings& s, const tcp::endpoint& to, ssl::context& tls,
                              std::list<tls_stream>& held, tally& t) {
  auto ex = co_await net::this_coro::executor;
  tls_stream stream(ex, tls);
  // The limit's handler may already be queued when the attempt ends: it checks `over` before touching
  // the socket, which by then may have moved into `held`.
  net::steady_timer limit(ex, std::chrono::milliseconds(s.timeout_ms));
  auto over = std::make_shared<bool>(false);
  auto timed_out = std::make_shared<bool>(false);
  limit.async_wait([over, timed_out, socket = &stream.next_layer()](error_code ec) {
    if (ec || *over) return;
    *timed_out = true;
    error_code ignored;
    socket->close(ignored);
  });
  const auto fail = [&](const char* step, const error_code& ec) {
    ++t.failures[std::string(step) + ": " + (*timed_out ? std::string("no answer in time") : ec.message())];
  };
  if (auto [ec] = co_await stream.next_layer().async_connect(to, use_tuple); ec) {
    fail("connect", ec);
  } else {
    prepare_client_tls(stream.native_handle(), s.sni, false);
    if (auto [hec] = co_await stream.async_handshake(ssl::stream_base::client, use_tuple); hec) {
      fail("TLS handshake", hec);
    } else {
      http::request<http::empty_body> req{http::verb::get, s.path, 11};
      req.set(http::field::host, s.sni);
      if (auto [wec, n] = co_await http::async_write(stream, req, use_tuple); wec) {
        fail("request", wec);
      } else {
        beast::flat_buffer buffer;
        http::response<http::string_body> res;
        if (auto [rec, m] = co_await http::async_read(stream, buffer, res, use_tuple); rec) {
          fail("response", rec);
        } else if (!res.keep_alive()) {  // any status will do (an IIS 401 too) if the connection stays open
          ++t.failures["HTTP " + std::to_string(res.result_int()) + " closing the connection"];
        } else {
          *over = true;
          held.push_back(std::move(stream));
          ++t.held;
        }
      }
    }
  }
  *over = true;
  limit.cancel();
  ++t.ended;
}

net::awaitable<void> open_all(const settings& s, ssl::context& tls, std::list<tls_stream>& held, tally& t) {
  auto ex = co_await net::this_coro::executor;
  const tcp::endpoint to(net::ip::make_address(s.host), static_cast<unsigned short>(std::stoi(s.port)));
  unsigned started = 0;
  net::steady_timer wake(ex);
  // Keeps `parallel` attempts in flight; each one's end wakes this loop to start the next.
  while (t.ended < s.count) {
    while (started < s.count && started - t.ended < s.parallel) {
      ++started;
      net::co_spawn(ex, open_one(s, to, tls, held, t), [&wake](std::exception_ptr) { wake.cancel_one(); });
    }
    wake.expires_after(std::chrono::seconds(1));
    co_await wake.async_wait(use_tuple);
  }
}

int usage(const std::string& why) {
  std::cerr << "exbridge-bench-hold: " << why
            << "\nusage: exbridge-bench-hold --connect HOST:PORT --count N [--path /1k] [--sni NAME] [--parallel 100]"
               " [--timeout-ms 15000] [--hold-ms 0]\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  settings s;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (i + 1 >= argc) return usage("missing value after " + arg);
    const std::string value = argv[++i];
    try {
      if (arg == "--connect") {
        const auto colon = value.rfind(':');
        if (colon == std::string::npos) return usage("--connect wants HOST:PORT");
        s.host = value.substr(0, colon);
        s.port = value.substr(colon + 1);
      } else if (arg == "--count") {
        s.count = static_cast<unsigned>(std::stoul(value));
      } else if (arg == "--path") {
        s.path = value;
      } else if (arg == "--sni") {
        s.sni = value;
      } else if (arg == "--parallel") {
        s.parallel = std::max(1u, static_cast<unsigned>(std::stoul(value)));
      } else if (arg == "--timeout-ms") {
        s.timeout_ms = static_cast<unsigned>(std::stoul(value));
      } else if (arg == "--hold-ms") {
        s.hold_ms = static_cast<unsigned>(std::stoul(value));
      } else {
        return usage("unknown option " + arg);
      }
    } catch (const std::exception&) {
      return usage("'" + value + "' is not a number for " + arg);
    }
  }
  if (s.port.empty()) return usage("--connect is required");

  net::io_context ioc(1);
  tls_settings ts;
  ts.verify = tls_verify::none;  // the client's CPU is not measured; the proxy's certificate is the lab's
  ssl::context tls = make_tls_context(tls_profile::exchange_online_client, ts);
  std::list<tls_stream> held;
  tally t;
  try {
    net::co_spawn(ioc, open_all(s, tls, held, t), net::detached);
    ioc.run();
    ioc.restart();
  } catch (const std::exception& e) {
    std::cerr << "exbridge-bench-hold: " << e.what() << '\n';
    return 1;
  }
  // The failures go to stderr first, so that a reader of stdout can stop at the "held" line.
  for (const auto& [why, n] : t.failures) std::cerr << "failed " << n << ": " << why << '\n';
  std::cerr << std::flush;
  std::cout << "held " << t.held << " of " << s.count << std::endl;

  // Hold until told to stop. The connections stay idle: nothing is read or written on them.
  net::signal_set stop(ioc, SIGTERM, SIGINT);
  net::steady_timer deadline(ioc);
  stop.async_wait([&](error_code, int) { deadline.cancel(); });
  if (s.hold_ms > 0) {
    deadline.expires_after(std::chrono::milliseconds(s.hold_ms));
    deadline.async_wait([&](error_code) { stop.cancel(); });
  }
  ioc.run();
  return t.held == s.count ? 0 : 3;
}
