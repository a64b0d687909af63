// Upstream pools: server choice, connection slots and their queue (see pool.hpp).
#include "proxy/upstream/pool.hpp"

#include <algorithm>

#include "common/errors.hpp"

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

/// A finaliser (splitmix64's) over a hash before it is reduced modulo the pool's size: FNV-1a's low bits are
/// the XOR of its input's low bits, so with two servers the modulo would see only that one bit.
std::size_t mix(std::size_t h) {
  std::uint64_t x = h;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return static_cast<std::size_t>(x ^ (x >> 31));
}

}  // namespace

std::vector<host_port> pool_servers(const upstream_settings& u) {
  return u.servers.empty() ? std::vector<host_port>{u.address} : u.servers;
}

std::size_t stable_hash(std::string_view bytes) {
  // FNV-1a: the same on every thread and after a restart.
  std::uint64_t h = 1469598103934665603ull;
  for (const char c : bytes) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ull;
  }
  return static_cast<std::size_t>(h);
}

std::size_t client_address_hash(const std::string& client) {
  return stable_hash(std::string_view(client).substr(0, client.rfind(':')));  // the address without its port
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

// --- upstream_pool ----------------------------------------------------------------------------------------

upstream_pool::upstream_pool(upstream_settings s, state_observer observer)
    : settings(std::move(s)),
      tls(make_tls_context(tls_profile::upstream_legacy, upstream_tls_settings(settings))),
      checks_(*this, std::move(observer)) {
  for (const auto& address : pool_servers(settings)) {
    auto server = std::make_unique<server_state>();
    server->pool = this;
    server->address = address;
    server->name = address.to_string();
    servers.push_back(std::move(server));
  }
}

server_state* upstream_pool::find(std::string_view name) const {
  for (const auto& s : servers) {
    if (s->name == name) return s.get();
  }
  return nullptr;
}

server_state* upstream_pool::pick(persistence how, std::size_t client_hash, const std::vector<server_state*>& tried,
                                  server_state* prefer, bool& any_healthy_untried) {
  const std::size_t n = servers.size();
  const auto limit = static_cast<std::int64_t>(settings.max_connections_per_server);
  if (prefer != nullptr && prefer->up.load() && std::find(tried.begin(), tried.end(), prefer) == tried.end()) {
    // The server holding the channel's virtual connection, or nothing yet: another server cannot serve it.
    any_healthy_untried = true;
    return limit > 0 && prefer->active.load() >= limit ? nullptr : prefer;
  }
  const std::size_t start = how == persistence::connection ? next_.fetch_add(1) % n : mix(client_hash) % n;
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
                                                                             const std::vector<server_state*>& tried,
                                                                             server_state* prefer) {
  const auto deadline = scaled_clock::now() + settings.queue_timeout;
  std::shared_ptr<waiter> me;
  for (;;) {
    {
      std::lock_guard lock(mutex_);
      if (me) waiters_.remove(me);
      bool any = false;
      if (server_state* s = pick(how, client_hash, tried, prefer, any)) {
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

}  // namespace exbridge::proxy
