// Bridge set-up and life cycle: contexts and pools, the listener with its connection limit, certificate
// reloads (SIGHUP or a renewal on disk), configuration reloads, and draining on shutdown.
#include "proxy/bridge.hpp"

#include "common/errors.hpp"
#include "common/listener.hpp"
#include "common/log.hpp"

namespace exbridge::proxy {

// --- certificates -----------------------------------------------------------------------------------------

std::string certificate_stamp(const std::vector<std::string>& files) {
  std::string stamp;
  for (const auto& f : files) {
    struct stat st {};
    if (::stat(f.c_str(), &st) != 0) {
      stamp += f + ":missing;";
      continue;
    }
    stamp += f + ":" + std::to_string(st.st_ino) + ":" + std::to_string(st.st_size) + ":" +
             std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec) + ";";
  }
  return stamp;
}

downstream_certs::downstream_certs(const bridge_options& o)
    : primary(make_tls_context(tls_profile::downstream, {.identity = o.identity})) {
  sni_tls.reserve(o.sni_identities.size());  // the SNI callback keeps pointers into it: never reallocate
  for (const auto& identity : o.sni_identities) {
    sni_tls.push_back(make_tls_context(tls_profile::downstream, {.identity = identity}));
  }
  if (!sni_tls.empty()) select_certificate_by_sni(primary, sni_tls);
  std::vector<const tls_identity*> identities{&o.identity};
  for (const auto& id : o.sni_identities) identities.push_back(&id);
  for (const auto* id : identities) {
    for (const auto* f : {&id->cert_file, &id->key_file}) {
      if (!f->empty()) files.push_back(*f);
    }
  }
  stamp = certificate_stamp(files);
}

// --- bridge_context ---------------------------------------------------------------------------------------

bridge_context::bridge_context(bridge_options o, std::shared_ptr<bridge_shared> s)
    : options(std::move(o)), shared(s ? std::move(s) : std::make_shared<bridge_shared>()), stats(shared->stats) {
  pools.push_back(std::make_shared<upstream_pool>(options.upstream, options.on_server_state));
  for (const auto& p : options.pools) pools.push_back(std::make_shared<upstream_pool>(p, options.on_server_state));
  for (const auto& r : options.routes) {
    const bool known = std::any_of(pools.begin(), pools.end(), [&](const auto& p) { return p->settings.name == r.pool; });
    if (!known) throw config_error("route '" + r.prefix + "' names pool '" + r.pool + "', which is not defined; add a [[pool]] with name = \"" + r.pool + "\"");
  }
}

bridge_context::route_choice bridge_context::route_for(std::string_view target) const {
  const auto m = route_of(options, target);
  return {pools[m.pool_index].get(), m.persistence, m.timeouts, m.route};
}

// --- bridge -----------------------------------------------------------------------------------------------

namespace {

void warn_about(const bridge_context& ctx) {
  for (const auto& pool : ctx.pools) {
    if (pool->settings.verify != tls_verify::none) continue;
    log_warn(cat("pool ", pool->settings.name,
                 ": certificate verification is off (--upstream-verify none, or verify = \"none\"); anyone on the path "
                 "to the Exchange 2007 server could read mailboxes. Use ca:FILE with the server's CA, or pin:SHA256 "
                 "with its certificate's fingerprint"));
  }
}

}  // namespace

bridge::bridge(net::io_context& ioc, bridge_options options)
    : ioc_(ioc),
      shared_(std::make_shared<bridge_shared>()),
      context_(std::make_shared<bridge_context>(std::move(options), shared_)),
      certs_(std::make_shared<downstream_certs>(context_->options)),
      strand_(net::make_strand(ioc)),
      one_loop_thread_(context_->options.threads == 1),
      watcher_(strand_) {
  listeners_.push_back(std::make_unique<listener>(bind_listener(ioc, context_->options.listen, "exbridge --listen"), strand_));
  for (const auto& where : context_->options.also_listen) {
    listeners_.push_back(std::make_unique<listener>(bind_listener(ioc, where, "exbridge listen.address"), strand_));
  }
  warn_about(*context_);
}

std::vector<tcp::endpoint> bridge::local_endpoints() const {
  std::vector<tcp::endpoint> out;
  for (const auto& l : listeners_) out.push_back(l->acceptor.local_endpoint());
  return out;
}

bridge::~bridge() { stop(); }

std::shared_ptr<bridge_context> bridge::context() const {
  std::lock_guard lock(mutex_);
  return context_;
}

std::shared_ptr<const downstream_certs> bridge::certificates() const {
  std::lock_guard lock(mutex_);
  return certs_;
}

void bridge::start() {
  for (const auto& pool : context()->pools) pool->start_health_checks(ioc_);
  for (auto& l : listeners_) net::co_spawn(strand_, accept_loop(*l), net::detached);
  watch_certificates();
}

void bridge::stop() {
  if (stopped_.exchange(true)) return;
  net::post(strand_, [this] {
    error_code ignored;
    for (auto& l : listeners_) {
      l->acceptor.close(ignored);
      l->gate.cancel();
    }
    watcher_.cancel();
  });
  for (const auto& pool : context()->pools) pool->stop();
}

net::awaitable<void> bridge::accept_loop(listener& l) {
  while (!stopped_) {
    const std::int64_t limit = context()->options.max_connections;
    if (limit > 0 && l.open >= limit) {
      // At the limit: further clients wait in the kernel's backlog. A closing connection wakes this; the
      // timer only bounds a missed wake-up.
      l.gate.expires_after(std::chrono::seconds(1));
      co_await l.gate.async_wait(use_tuple);
      continue;
    }
    // A connection's handlers must never run at once. With several loop threads a strand sees to that; with
    // one (fixed at start: a reload cannot change the thread count) the loop itself does, and the strand would
    // only cost a lock, a queue and a type-erased copy per hop (about 5 % of a keep-alive request's CPU).
    const net::any_io_executor conn_strand =
        one_loop_thread_ ? net::any_io_executor(ioc_.get_executor()) : net::any_io_executor(net::make_strand(ioc_));
    auto [ec, socket] = co_await l.acceptor.async_accept(conn_strand, use_tuple);
    if (ec == net::error::operation_aborted || !l.acceptor.is_open()) co_return;
    if (ec) {
      // EMFILE and friends: say so, pause briefly (the condition clears as connections close), keep accepting.
      log_warn(cat("accept failed: ", ec.message(), " (raise the file-descriptor limit, or lower listen.max_connections)"));
      l.gate.expires_after(std::chrono::milliseconds(100));
      co_await l.gate.async_wait(use_tuple);
      continue;
    }
    ++l.open;
    shared_->stats.add(counter::downstream_cx_active);
    auto ctx = context();  // once per connection: it takes the reload lock
    auto closed = ctx->options.on_connection_closed;
    net::co_spawn(conn_strand, run_downstream_session(std::move(ctx), certificates(), std::move(socket)),
                  [this, &l, shared = shared_, closed = std::move(closed)](std::exception_ptr e) {
                    shared->stats.add(counter::downstream_cx_active, -1);
                    --l.open;
                    if (!stopped_) net::post(strand_, [&l] { l.gate.cancel(); });
                    log_connection_failure(e);
                    if (closed) closed();
                  });
  }
}

std::optional<std::string> bridge::reload_certificates() {
  try {
    auto fresh = std::make_shared<const downstream_certs>(context()->options);
    {
      std::lock_guard lock(mutex_);
      certs_ = fresh;
    }
    shared_->stats.add(counter::certificate_reloads);
    log_info("certificates reloaded: new TLS handshakes use them; open connections keep theirs");
    return std::nullopt;
  } catch (const config_error& e) {
    shared_->stats.add(counter::certificate_reload_failures);
    log_error(cat("certificate reload refused: ", e.what(), "; still serving the previous certificate"));
    return std::string(e.what());
  }
}

void bridge::reload(bridge_options options) {
  const auto old = context();
  const auto addresses = [](const bridge_options& o) {
    std::string text = o.listen.to_string();
    for (const auto& a : o.also_listen) text += " " + a.to_string();
    return text;
  };
  if (addresses(options) != addresses(old->options)) {
    log_warn(cat("reload: the listen addresses stay ", addresses(old->options), " (new addresses need a restart)"));
    options.listen = old->options.listen;
    options.also_listen = old->options.also_listen;
  }
  auto fresh = std::make_shared<bridge_context>(std::move(options), shared_);  // throws: nothing changed
  auto certs = std::make_shared<const downstream_certs>(fresh->options);
  warn_about(*fresh);
  {
    std::lock_guard lock(mutex_);
    context_ = fresh;
    certs_ = certs;
  }
  for (const auto& pool : old->pools) pool->stop();
  for (const auto& pool : fresh->pools) pool->start_health_checks(ioc_);
  shared_->stats.add(counter::config_reloads);
  log_info("configuration reloaded: new connections use it; open connections finish on the previous one");
}

void bridge::watch_certificates() {
  if (context()->options.certificate_watch.count() <= 0) return;
  net::co_spawn(strand_, watch_loop(), net::detached);
}

net::awaitable<void> bridge::watch_loop() {
  std::string refused;  // the stamp of files already refused: tried again only once they change again
  while (!stopped_) {
    // Real seconds, not the scaled clock: a renewal on disk is not part of a scenario's compressed time.
    watcher_.expires_after(context()->options.certificate_watch);
    co_await watcher_.async_wait(use_tuple);
    if (stopped_) co_return;
    const auto current = certificates();
    const std::string now = certificate_stamp(current->files);
    if (now == current->stamp || now == refused) continue;
    log_info("certificate files changed on disk: reloading");
    refused = reload_certificates() ? now : std::string();
  }
}

void bridge::drain(std::chrono::seconds limit, std::function<void(std::int64_t)> done) {
  shared_->draining = true;
  stop();
  const auto deadline = std::chrono::steady_clock::now() + limit;
  net::co_spawn(
      strand_,
      [this, deadline, done = std::move(done)]() -> net::awaitable<void> {
        net::steady_timer tick(strand_);
        std::int64_t open = shared_->stats.get(counter::downstream_cx_active);
        while (open > 0 && std::chrono::steady_clock::now() < deadline) {
          // Idle keep-alive connections would wait for a next request that should not come: close them (a
          // connection in the middle of a request closes once it is done).
          for (const auto& c : shared_->live.snapshot()) c->drain();
          tick.expires_after(std::chrono::milliseconds(100));
          co_await tick.async_wait(use_tuple);
          open = shared_->stats.get(counter::downstream_cx_active);
        }
        done(open);
      },
      net::detached);
}

}  // namespace exbridge::proxy
