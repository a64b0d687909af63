// Active health checks (see health_check.hpp).
#include "proxy/upstream/health_check.hpp"

#include "common/log.hpp"
#include "common/tls_socket.hpp"
#include "common/watchdog.hpp"
#include "proxy/upstream/connector.hpp"
#include "proxy/upstream/pool.hpp"

namespace exbridge::proxy {

std::string_view check_name(check_type t) {
  switch (t) {
    case check_type::none: return "none";
    case check_type::tcp: return "L4 TCP";
    case check_type::tls: return "L6 TLS";
    case check_type::http: return "L7 HTTP";
  }
  return "?";
}

net::awaitable<std::string> check_server(upstream_pool& pool, server_state& server) {
  const auto& c = pool.settings.check;
  auto executor = co_await net::this_coro::executor;
  tls_socket stream(executor, pool.tls);
  auto r = co_await connect_server(stream.next_layer(), server, c.timeout);
  if (r.failed_at == connect_result::ok && c.type != check_type::tcp) {
    r = co_await handshake_server(stream, server, pool.settings, c.timeout);
  }
  if (r.failed_at != connect_result::ok) co_return r.to_string();
  std::string problem;
  if (c.type == check_type::http) {
    enum class step { exchange };
    watchdog<step> deadline(executor, [&stream] { stream.close(); });
    deadline.arm(c.timeout, step::exchange);
    http::request<http::empty_body> req{http::verb::get, c.path, 11};
    req.set(http::field::host, upstream_server_name(pool.settings, server.address));
    req.set(http::field::user_agent, "exbridge-health-check");
    req.set(http::field::connection, "close");
    auto [wec, wn] = co_await http::async_write(stream, req, use_tuple);
    beast::flat_buffer buffer;
    http::response_parser<http::empty_body> parser;
    parser.skip(true);
    error_code rec = wec;
    if (!wec) std::tie(rec, std::ignore) = co_await http::async_read_header(stream, buffer, parser, use_tuple);
    deadline.disarm();
    const unsigned status = parser.get().result_int();
    if (rec) {
      problem = "GET " + c.path + " on " + server.name + ": " +
                (deadline.fired() ? "no response within " + format_duration(c.timeout) : rec.message());
    } else if (status < c.status_min || status > c.status_max) {
      problem = "GET " + c.path + " on " + server.name + " answered " + std::to_string(status) + ", expected " +
                std::to_string(c.status_min) + "-" + std::to_string(c.status_max);
    }
  }
  stream.close();
  co_return problem;
}

void health_checks::start(net::io_context& ioc, std::shared_ptr<upstream_pool> keep) {
  if (pool_.settings.check.type == check_type::none) return;
  for (auto& server : pool_.servers) {
    net::co_spawn(net::make_strand(ioc), [this, keep, s = server.get()]() { return loop(*s); }, net::detached);
  }
}

void health_checks::stop() {
  stopping_ = true;
  std::lock_guard lock(mutex_);
  for (auto& t : timers_) net::post(t->get_executor(), [t] { t->cancel(); });
}

net::awaitable<void> health_checks::loop(server_state& server) {
  auto timer = std::make_shared<exbridge::timer>(co_await net::this_coro::executor);
  {
    std::lock_guard lock(mutex_);
    timers_.push_back(timer);
  }
  const auto& c = pool_.settings.check;
  const std::string& pool_name = pool_.settings.name;
  unsigned good = 0, bad = 0;
  while (!stopping_) {
    const std::string problem = co_await check_server(pool_, server);
    if (stopping_) break;
    server.checks.fetch_add(1);
    const bool was_up = server.up.load();
    bool changed = false;
    if (problem.empty()) {
      bad = 0;
      if (!was_up && ++good >= c.rise) {
        server.up = true;
        changed = true;
        log_info(cat("upstream ", server.name, " (pool ", pool_name, ") is UP again after ", good,
                     " good health checks (", check_name(c.type), ")"));
      }
    } else {
      server.checks_failed.fetch_add(1);
      good = 0;
      if (was_up && ++bad >= c.fall) {
        server.up = false;
        server.went_down.fetch_add(1);
        changed = true;
        log_warn(cat("upstream ", server.name, " (pool ", pool_name, ") is DOWN after ", bad, " failed ",
                     check_name(c.type), " health checks: ", problem, "; new connections go to the pool's other servers"));
      }
    }
    const std::string result = problem.empty() ? std::string(check_name(c.type)) + " ok" : problem;
    server.set_check(result, changed);
    if (changed && observer_) observer_(pool_name, server.name, server.up.load());
    timer->expires_after(c.interval);
    co_await timer->async_wait(use_tuple);
  }
}

}  // namespace exbridge::proxy
