// The control API's handlers.
#include "fake_exchange/control_api.hpp"

#include <httplib.h>

#include <boost/json.hpp>

#include "common/errors.hpp"
#include "common/log.hpp"
#include "fake_exchange/manifest.hpp"

namespace exbridge::fake_exchange {

void require_loopback(const host_port& where) {
  error_code ec;
  const auto address = net::ip::make_address(where.host, ec);
  // Anyone who reaches this API can change how the server fails: it never listens beyond the machine.
  if (ec || !address.is_loopback()) {
    throw config_error("--control " + where.to_string() + ": the control API listens on loopback only; use "
                       "127.0.0.1:PORT or [::1]:PORT");
  }
}

control_api::control_api(const host_port& where, server& srv, exchange_config config)
    : http_(std::make_unique<httplib::Server>()) {
  require_loopback(where);
  auto& h = *http_;
  h.Get("/stats", [&srv](const httplib::Request&, httplib::Response& res) {
    res.set_content(srv.stats().snapshot().to_json(), "application/json");
  });
  h.Get("/faults", [&srv](const httplib::Request&, httplib::Response& res) {
    res.set_content(fault_rules_json(srv.faults().rules()), "application/json");
  });
  h.Put("/faults", [&srv](const httplib::Request& req, httplib::Response& res) {
    try {
      auto rules = parse_fault_document(req.body, "PUT /faults");
      const auto count = rules.size();
      srv.faults().replace(std::move(rules));
      log_info(cat("control: fault rules replaced (", count, " rule(s))"));
      res.set_content(fault_rules_json(srv.faults().rules()), "application/json");
    } catch (const config_error& e) {
      res.status = 400;
      res.set_content(std::string(e.what()) + "\n", "text/plain");
    }
  });
  h.Get("/manifest", [config = std::move(config)](const httplib::Request&, httplib::Response& res) {
    res.set_content(boost::json::serialize(make_manifest(config.org, config.mailboxes)), "application/json");
  });
  const int port = where.port == 0 ? h.bind_to_any_port(where.host) : (h.bind_to_port(where.host, where.port) ? where.port : -1);
  if (port <= 0) {
    throw config_error("--control " + where.to_string() + ": cannot listen there; choose another port");
  }
  port_ = static_cast<unsigned short>(port);
}

void control_api::start() {
  thread_ = std::thread([this] {
    http_->listen_after_bind();
    finished_ = true;
  });
}

control_api::~control_api() {
  // httplib's stop() does nothing until the listen loop runs, so it is repeated until the loop has ended.
  while (thread_.joinable() && !finished_) {
    http_->stop();
    std::this_thread::yield();
  }
  if (thread_.joinable()) thread_.join();
}

}  // namespace exbridge::fake_exchange
