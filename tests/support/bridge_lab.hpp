// An in-process lab for integration tests: fake-exchange (TLS 1.0) and exbridge in front of it, both on
// one test io_context at port 0, with the lab PKI; plus the settings for a client playing Exchange Online.
// With EXBRIDGE_TEST_THREADS=N the bridge gets its own loop on N threads instead (see bridge_test_threads).
#pragma once

#include <optional>

#include "fake_exchange/server.hpp"
#include "proxy/bridge.hpp"
#include "rehearse/clients/exo_client.hpp"
#include "tests/support/test_support.hpp"

namespace exbridge::test {

class bridge_lab {
 public:
  /// Starts fake-exchange with `exchange` (certificate filled in) and exbridge towards it.
  explicit bridge_lab(fake_exchange::server_options exchange = {}) {
    if (const unsigned n = bridge_test_threads(); n > 0) bridge_io_.emplace(n);
    const auto& pki = test_pki();
    exchange.identity = {.cert_file = pki.exchange_cert.string(), .key_file = pki.exchange_key.string()};
    options_ = exchange;
    exchange_.emplace(io_.context(), exchange);
    exchange_->start();
    proxy::bridge_options bo;
    bo.listen = {"127.0.0.1", 0};
    bo.identity = {.cert_file = pki.bridge_cert.string(), .key_file = pki.bridge_key.string()};
    bo.upstream.address = {"127.0.0.1", exchange_->local_endpoint().port()};
    bo.upstream.verify = tls_verify::ca_file;
    bo.upstream.ca_file = pki.ca_cert.string();
    bo.upstream.sni = "ex2007.contoso.example";
    bo.threads = bridge_io().threads();  // one: connections run without strands, as in exbridge's main
    bridge_.emplace(bridge_io().context(), bo);
    bridge_->start();
  }
  ~bridge_lab() {  // the loops stop before the servers: their coroutines refer to them
    io_.stop();
    if (bridge_io_) bridge_io_->stop();
  }

  /// A client that reaches the bridge as mail.contoso.example and trusts the lab CA.
  rehearse::client_settings client(const fake_exchange::user& u) const {
    rehearse::client_settings cs;
    cs.host = "127.0.0.1";
    cs.port = bridge_->local_endpoint().port();
    cs.server_name = "mail.contoso.example";
    cs.ca_file = test_pki().ca_cert.string();
    cs.email = u.email;
    cs.password = u.password;
    return cs;
  }

  /// The loop of the clients and fake-exchange.
  io_thread& io() { return io_; }
  /// The bridge's loop: io(), or its own multi-threaded one under EXBRIDGE_TEST_THREADS.
  io_thread& bridge_io() { return bridge_io_ ? *bridge_io_ : io_; }
  proxy::bridge& bridge() { return *bridge_; }
  fake_exchange::server& exchange() { return *exchange_; }
  unsigned short exchange_port() const { return exchange_->local_endpoint().port(); }
  const fake_exchange::server_options& exchange_options() const { return options_; }

 private:
  io_thread io_;
  std::optional<io_thread> bridge_io_;
  fake_exchange::server_options options_;
  std::optional<fake_exchange::server> exchange_;
  std::optional<proxy::bridge> bridge_;
};

}  // namespace exbridge::test
