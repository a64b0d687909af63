// Upstream pools: server choice, connection slots and their queue, and active health checks (see pool.hpp).
#include "proxy/pool.hpp"

#include <boost/algorithm/string/predicate.hpp>

#include <algorithm>
#include <functional>

#include "common/errors.hpp"
#include "common/log.hpp"

namespace exbridge::proxy {
namespace {

tls_settings upstream_tls_settings(const upstream_settings& u) {
  return {.verify = u.verify,
          .ca_file = u.ca_file,
          .min_version = u.min_tls,
          .max_version = u.max_tls,
          .cipher_list = u.ciphers,
          .security_level = u.security_level};
}

}  // namespace

std::vector<host_port> pool_servers(const upstream_settings& u) {
  return u.servers.empty() ? std::vector<host_port>{u.address} : u.servers;
}

std::string_view check_name(check_type t) {
  switch (t) {
    case check_type::none: return "none";
    case check_type::tcp: return "L4 TCP";
    case check_type::tls: return "L6 TLS";
    case check_type::http: return "L7 HTTP";
  }
  return "?";
}

std::size_t client_address_hash(const std::string& client) {
  // FNV-1a over the address without its port: stable across restarts and identical on every thread.
  const std::string_view ip = std::string_view(client).substr(0, client.rfind(':'));
  std::uint64_t h = 1469598103934665603ull;
  for (const char c : ip) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ull;
  }
  return static_cast<std::size_t>(h);
}

// --- server_state, server_lease ---------------------------------------------------------------------------

std::string server_state::last_check() const {
  std::lock_guard lock(mutex_);
  return last_check_;
}

std::chrono::system_clock::time_point server_state::last_change() const {
  std::lock_guard lock(mutex_);
  return last_change_;
}

void server_state::set_check(std::string text, bool changed) {
  std::lock_guard lock(mutex_);
  last_check_ = std::move(text);
  if (changed) last_change_ = std::chrono::system_clock::now();
}

server_lease& server_lease::operator=(server_lease&& o) noexcept {
  if (this != &o) {
    release();
    server_ = std::exchange(o.server_, nullptr);
  }
  return *this;
}

void server_lease::release() {
  if (server_ == nullptr) return;
  server_state* s = std::exchange(server_, nullptr);
  s->active.fetch_sub(1, std::memory_order_relaxed);
  s->pool->released();
}

// --- socket_deadline, connect_server ----------------------------------------------------------------------

socket_deadline::socket_deadline(net::any_io_executor ex, tcp::socket& socket, scaled_clock::duration limit)
    : timer_(std::move(ex)) {
  timer_.expires_after(limit);
  // Runs on the caller's strand; `state` says whether the operation already finished (then the socket may
  // belong to a healthy connection and must not be touched).
  timer_.async_wait([st = state_, &socket](error_code ec) {
    if (ec || st->done) return;
    st->fired = true;
    error_code ignored;
    socket.close(ignored);
  });
}

void socket_deadline::done() {
  if (state_->done) return;
  state_->done = true;
  timer_.cancel();
}

net::awaitable<connect_result> connect_server(tcp::socket& socket, const server_state& server,
                                              scaled_clock::duration limit) {
  connect_result r;
  auto executor = co_await net::this_coro::executor;
  tcp::resolver resolver(executor);
  socket_deadline deadline(executor, socket, limit);
  // The deadline closes the socket; a pending resolve is not on the socket, so cancel it as well.
  exbridge::timer resolve_guard(executor);
  resolve_guard.expires_after(limit);
  resolve_guard.async_wait([&resolver](error_code ec) {
    if (!ec) resolver.cancel();
  });
  auto [rec, endpoints] =
      co_await resolver.async_resolve(server.address.host, std::to_string(server.address.port), use_tuple);
  resolve_guard.cancel();
  if (rec) {
    deadline.done();
    r.failed_at = connect_result::resolve;
    r.timed_out = deadline.fired() || rec == net::error::operation_aborted;
    r.ec = rec;
    r.message = "cannot resolve " + server.address.host + ": " + rec.message();
    r.fix = "check the server's host name and this machine's DNS";
    co_return r;
  }
  auto [cec, ep] = co_await net::async_connect(socket, endpoints, use_tuple);
  deadline.done();
  if (cec || deadline.fired()) {
    r.failed_at = connect_result::connect;
    r.timed_out = deadline.fired();
    r.ec = r.timed_out ? error_code(net::error::timed_out) : cec;
    const std::string cause = r.timed_out ? "no answer within " + format_duration(limit) : cec.message();
    r.message = "cannot connect to upstream " + server.name + ": " + cause;
    r.fix = "check that the Exchange server is up and reachable from this host";
  }
  co_return r;
}

// --- upstream_pool ----------------------------------------------------------------------------------------

upstream_pool::upstream_pool(upstream_settings s, state_observer observer)
    : settings(std::move(s)),
      tls(make_tls_context(tls_profile::upstream_legacy, upstream_tls_settings(settings))),
      observer_(std::move(observer)) {
  for (const auto& address : pool_servers(settings)) {
    auto server = std::make_unique<server_state>();
    server->pool = this;
    server->address = address;
    server->name = address.to_string();
    servers.push_back(std::move(server));
  }
}

server_state* upstream_pool::pick(persistence how, std::size_t client_hash, const std::vector<server_state*>& tried,
                                  bool& any_healthy_untried) {
  const std::size_t n = servers.size();
  const std::size_t start = how == persistence::source ? client_hash % n : next_.fetch_add(1) % n;
  const auto limit = static_cast<std::int64_t>(settings.max_connections_per_server);
  any_healthy_untried = false;
  for (std::size_t i = 0; i < n; ++i) {
    server_state* s = servers[(start + i) % n].get();
    if (!s->up.load() || std::find(tried.begin(), tried.end(), s) != tried.end()) continue;
    any_healthy_untried = true;
    if (limit > 0 && s->active.load() >= limit) continue;
    return s;
  }
  return nullptr;
}

net::awaitable<std::variant<server_lease, no_server>> upstream_pool::acquire(persistence how, std::size_t client_hash,
                                                                             const std::vector<server_state*>& tried) {
  const auto deadline = scaled_clock::now() + settings.queue_timeout;
  std::shared_ptr<waiter> me;
  for (;;) {
    {
      std::lock_guard lock(mutex_);
      if (me) waiters_.remove(me);
      bool any = false;
      if (server_state* s = pick(how, client_hash, tried, any)) {
        s->active.fetch_add(1);
        s->connections.fetch_add(1);
        co_return server_lease(s);
      }
      if (!any) {
        std::string detail = "no server of pool '" + settings.name + "' is available: ";
        if (tried.empty()) {
          detail += "all " + std::to_string(servers.size()) + " are down (health check: " +
                    std::string(check_name(settings.check.type)) + ", last result: " + servers.front()->last_check() +
                    ")";
        } else {
          detail += "every healthy server was tried";
        }
        co_return no_server{.queue_timeout = false, .detail = detail};
      }
      if (scaled_clock::now() >= deadline) {
        co_return no_server{
            .queue_timeout = true,
            .detail = "every server of pool '" + settings.name + "' stayed at its limit of " +
                      std::to_string(settings.max_connections_per_server) + " connections for the queue timeout (" +
                      format_duration(settings.queue_timeout) +
                      "); raise max_connections_per_server or add servers"};
      }
      // Queue: a released slot wakes the first waiter, which then picks again.
      me = std::make_shared<waiter>(co_await net::this_coro::executor);
      me->wake.expires_at(deadline);
      waiters_.push_back(me);
    }
    co_await me->wake.async_wait(use_tuple);
  }
}

void upstream_pool::released() {
  std::shared_ptr<waiter> w;
  {
    std::lock_guard lock(mutex_);
    if (waiters_.empty()) return;
    w = waiters_.front();
    waiters_.pop_front();
    w->woken = true;
  }
  // The timer belongs to the waiting session's strand: cancel it there.
  net::post(w->wake.get_executor(), [w] { w->wake.cancel(); });
}

void upstream_pool::start_health_checks(net::io_context& ioc) {
  if (settings.check.type == check_type::none) return;
  for (auto& server : servers) {
    auto strand = net::make_strand(ioc);
    net::co_spawn(strand, [self = shared_from_this(), s = server.get()]() { return self->check_loop(*s); },
                  net::detached);
  }
}

void upstream_pool::stop() {
  stopping_ = true;
  std::lock_guard lock(mutex_);
  for (auto& t : check_timers_) net::post(t->get_executor(), [t] { t->cancel(); });
}

net::awaitable<void> upstream_pool::check_loop(server_state& server) {
  auto timer = std::make_shared<exbridge::timer>(co_await net::this_coro::executor);
  {
    std::lock_guard lock(mutex_);
    check_timers_.push_back(timer);
  }
  const auto& c = settings.check;
  unsigned good = 0, bad = 0;
  while (!stopping_) {
    const std::string problem = co_await check_once(server);
    if (stopping_) break;
    server.checks.fetch_add(1);
    const bool was_up = server.up.load();
    bool changed = false;
    if (problem.empty()) {
      bad = 0;
      if (!was_up && ++good >= c.rise) {
        server.up = true;
        changed = true;
        log_info(cat("upstream ", server.name, " (pool ", settings.name, ") is UP again after ", good,
                     " good health checks (", check_name(c.type), ")"));
      }
    } else {
      server.checks_failed.fetch_add(1);
      good = 0;
      if (was_up && ++bad >= c.fall) {
        server.up = false;
        server.went_down.fetch_add(1);
        changed = true;
        log_warn(cat("upstream ", server.name, " (pool ", settings.name, ") is DOWN after ", bad, " failed ",
                     check_name(c.type), " health checks: ", problem, "; new connections go to the pool's other servers"));
      }
    }
    const std::string result = problem.empty() ? std::string(check_name(c.type)) + " ok" : problem;
    server.set_check(result, changed);
    if (changed && observer_) observer_(settings.name, server.name, server.up.load());
    timer->expires_after(c.interval);
    co_await timer->async_wait(use_tuple);
  }
}

net::awaitable<std::string> upstream_pool::check_once(server_state& server) {
  const auto& c = settings.check;
  auto executor = co_await net::this_coro::executor;
  ssl::stream<tcp::socket> stream(executor, tls);
  auto r = co_await connect_server(stream.next_layer(), server, c.timeout);
  if (r.failed_at == connect_result::ok && c.type != check_type::tcp) {
    r = co_await handshake_server(stream, server, settings, c.timeout);
  }
  if (r.failed_at != connect_result::ok) co_return r.to_string();
  std::string problem;
  if (c.type == check_type::http) {
    socket_deadline deadline(executor, stream.next_layer(), c.timeout);
    http::request<http::empty_body> req{http::verb::get, c.path, 11};
    req.set(http::field::host, upstream_server_name(settings, server.address));
    req.set(http::field::user_agent, "exbridge-health-check");
    req.set(http::field::connection, "close");
    auto [wec, wn] = co_await http::async_write(stream, req, use_tuple);
    beast::flat_buffer buffer;
    http::response_parser<http::empty_body> parser;
    parser.skip(true);
    error_code rec = wec;
    if (!wec) std::tie(rec, std::ignore) = co_await http::async_read_header(stream, buffer, parser, use_tuple);
    deadline.done();
    const unsigned status = parser.get().result_int();
    if (rec) {
      problem = "GET " + c.path + " on " + server.name + ": " +
                (deadline.fired() ? "no response within " + format_duration(c.timeout) : rec.message());
    } else if (status < c.status_min || status > c.status_max) {
      problem = "GET " + c.path + " on " + server.name + " answered " + std::to_string(status) + ", expected " +
                std::to_string(c.status_min) + "-" + std::to_string(c.status_max);
    }
  }
  error_code ignored;
  stream.next_layer().close(ignored);
  co_return problem;
}

}  // namespace exbridge::proxy
