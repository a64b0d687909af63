// Admin listener: rendering of the stats page, JSON and Prometheus metrics, and the authenticated server.
#include "proxy/stats/admin.hpp"

#include <httplib.h>
#include <openssl/crypto.h>

#include <boost/algorithm/string/predicate.hpp>
#include <boost/json.hpp>

#include <cstdio>
#include <sstream>

#include "common/base64.hpp"
#include "common/errors.hpp"
#include "common/log.hpp"
#include "common/sha256.hpp"
#include "common/xml.hpp"

namespace exbridge::proxy {
namespace {

/// Prometheus label values: backslash, double quote and line feed escaped.
std::string label(std::string_view v) {
  std::string out;
  for (const char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

std::string number(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

bool is_gauge(std::string_view counter_name) { return counter_name.ends_with("_active"); }

/// What every page shows about one server.
struct server_view {
  std::string pool, name, last_check;
  bool up;
  std::int64_t active, connections, connect_failures, checks, checks_failed, went_down, bytes_in, bytes_out;
  std::int64_t since_change_s;
};

std::vector<server_view> servers_of(const bridge& b) {
  std::vector<server_view> out;
  const auto now = std::chrono::system_clock::now();
  for (const auto& pool : b.context()->pools) {
    for (const auto& s : pool->servers) {
      out.push_back({pool->settings.name, s->name, s->last_check(), s->up.load(), s->active.load(),
                     s->connections.load(), s->connect_failures.load(), s->checks.load(), s->checks_failed.load(),
                     s->went_down.load(), s->bytes_in.load(), s->bytes_out.load(),
                     std::chrono::duration_cast<std::chrono::seconds>(now - s->last_change()).count()});
    }
  }
  return out;
}

/// One open connection as the pages show it.
struct connection_view {
  std::string client, server, target;
  bool pinned;
  double age_s;
  std::int64_t requests, bytes_up, bytes_down;
  double idle_up_s, idle_down_s;  ///< since the last byte in that direction; -1 = none yet
};

std::vector<connection_view> connections_of(const bridge& b) {
  std::vector<connection_view> out;
  const auto now = std::chrono::system_clock::now();
  const auto now_ms = live_connection::now_ms();
  const auto idle = [now_ms](std::int64_t last) {
    return last == 0 ? -1.0 : static_cast<double>(now_ms - last) / 1000.0;
  };
  for (const auto& c : b.shared()->live.snapshot()) {
    auto [server, target] = c->server_and_target();
    out.push_back({c->client, server, target, c->pinned.load(),
                   std::chrono::duration<double>(now - c->opened).count(), c->requests.load(), c->bytes_up.load(),
                   c->bytes_down.load(), idle(c->last_up_ms.load()), idle(c->last_down_ms.load())});
  }
  return out;
}

}  // namespace

std::string render_metrics(const bridge& b) {
  std::ostringstream m;
  const auto& stats = b.stats();
  for (std::size_t i = 0; i < counter_names.size(); ++i) {
    const std::string_view n = counter_names[i];
    const bool gauge = is_gauge(n);
    const std::string name = "exbridge_" + std::string(n) + (gauge || n.ends_with("_total") ? "" : "_total");
    m << "# HELP " << name << " exbridge counter " << n << "\n# TYPE " << name << (gauge ? " gauge\n" : " counter\n");
    m << name << ' ' << stats.get(static_cast<counter>(i)) << '\n';
  }
  m << "# HELP exbridge_terminations_total Requests and connections ended, by termination reason\n"
       "# TYPE exbridge_terminations_total counter\n";
  for (std::size_t i = 0; i < termination_count; ++i) {
    const auto t = static_cast<termination>(i);
    m << "exbridge_terminations_total{code=\"" << label(info(t).code) << "\",reason=\"" << label(info(t).reason)
      << "\"} " << stats.get(t) << '\n';
  }
  const auto servers = servers_of(b);
  struct family {
    const char* name;
    const char* type;
    const char* help;
    std::int64_t server_view::*field;
  };
  const family families[] = {
      {"exbridge_server_active_connections", "gauge", "Open upstream connections", &server_view::active},
      {"exbridge_server_connections_total", "counter", "Upstream connections opened", &server_view::connections},
      {"exbridge_server_connect_failures_total", "counter", "Connect or TLS handshake failures",
       &server_view::connect_failures},
      {"exbridge_server_health_checks_total", "counter", "Health checks run", &server_view::checks},
      {"exbridge_server_health_checks_failed_total", "counter", "Health checks failed", &server_view::checks_failed},
      {"exbridge_server_down_transitions_total", "counter", "Times the server was marked down", &server_view::went_down},
      {"exbridge_server_received_bytes_total", "counter", "Response bytes from the server", &server_view::bytes_in},
      {"exbridge_server_sent_bytes_total", "counter", "Request body bytes to the server", &server_view::bytes_out},
  };
  m << "# HELP exbridge_server_up 1 when the server passes its health checks\n# TYPE exbridge_server_up gauge\n";
  for (const auto& s : servers) {
    m << "exbridge_server_up{pool=\"" << label(s.pool) << "\",server=\"" << label(s.name) << "\"} " << (s.up ? 1 : 0)
      << '\n';
  }
  for (const auto& f : families) {
    m << "# HELP " << f.name << ' ' << f.help << "\n# TYPE " << f.name << ' ' << f.type << '\n';
    for (const auto& s : servers) {
      m << f.name << "{pool=\"" << label(s.pool) << "\",server=\"" << label(s.name) << "\"} " << s.*f.field << '\n';
    }
  }
  std::int64_t pinned = 0;
  const auto connections = connections_of(b);
  for (const auto& c : connections) pinned += c.pinned ? 1 : 0;
  m << "# HELP exbridge_pinned_connections Open client connections pinned to one upstream connection (NTLM, RPC)\n"
       "# TYPE exbridge_pinned_connections gauge\nexbridge_pinned_connections "
    << pinned << '\n';
  m << "# HELP exbridge_timer_seconds Request timers (the access log's Th TR Tc Ts Tr Tt)\n"
       "# TYPE exbridge_timer_seconds histogram\n";
  const auto& h = b.shared()->histograms;
  for (std::size_t i = 0; i < timer_names.size(); ++i) {
    const auto snap = h.get(static_cast<timer_id>(i));
    const std::string t = "timer=\"" + std::string(timer_names[i]) + "\"";
    for (std::size_t k = 0; k < histogram_bounds.size(); ++k) {
      m << "exbridge_timer_seconds_bucket{" << t << ",le=\"" << number(histogram_bounds[k]) << "\"} " << snap.buckets[k]
        << '\n';
    }
    m << "exbridge_timer_seconds_bucket{" << t << ",le=\"+Inf\"} " << snap.count << '\n';
    m << "exbridge_timer_seconds_sum{" << t << "} " << number(snap.sum_seconds) << '\n';
    m << "exbridge_timer_seconds_count{" << t << "} " << snap.count << '\n';
  }
  return m.str();
}

std::string render_json(const bridge& b) {
  namespace json = boost::json;
  json::object root;
  json::object counters;
  for (std::size_t i = 0; i < counter_names.size(); ++i) counters[counter_names[i]] = b.stats().get(static_cast<counter>(i));
  root["counters"] = std::move(counters);
  json::object ends;
  for (std::size_t i = 0; i < termination_count; ++i) {
    const auto t = static_cast<termination>(i);
    if (const auto n = b.stats().get(t)) ends[info(t).reason] = n;
  }
  root["terminations"] = std::move(ends);
  json::array servers;
  for (const auto& s : servers_of(b)) {
    servers.push_back(json::object{{"pool", s.pool},
                                   {"server", s.name},
                                   {"up", s.up},
                                   {"last_check", s.last_check},
                                   {"seconds_since_change", s.since_change_s},
                                   {"active", s.active},
                                   {"connections", s.connections},
                                   {"connect_failures", s.connect_failures},
                                   {"checks", s.checks},
                                   {"checks_failed", s.checks_failed},
                                   {"bytes_in", s.bytes_in},
                                   {"bytes_out", s.bytes_out}});
  }
  root["servers"] = std::move(servers);
  json::array connections;
  for (const auto& c : connections_of(b)) {
    connections.push_back(json::object{{"client", c.client},
                                       {"server", c.server},
                                       {"last_request", c.target},
                                       {"pinned", c.pinned},
                                       {"age_seconds", c.age_s},
                                       {"requests", c.requests},
                                       {"bytes_client_to_server", c.bytes_up},
                                       {"bytes_server_to_client", c.bytes_down},
                                       {"idle_client_to_server_seconds", c.idle_up_s},
                                       {"idle_server_to_client_seconds", c.idle_down_s}});
  }
  root["connections"] = std::move(connections);
  return json::serialize(root);
}

std::string render_html(const bridge& b) {
  std::ostringstream h;
  const auto seconds = [](double s) {
    if (s < 0) return std::string("-");
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f s", s);
    return std::string(buf);
  };
  h << "<!doctype html><html><head><meta charset=\"utf-8\"><meta http-equiv=\"refresh\" content=\"5\">"
       "<title>exbridge</title><style>body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse;"
       "margin-bottom:1.5em}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left}.up{background:#dfd}"
       ".down{background:#fdd}</style></head><body><h1>exbridge</h1>";
  h << "<h2>Servers</h2><table><tr><th>pool</th><th>server</th><th>state</th><th>since</th><th>last check</th>"
       "<th>open</th><th>connections</th><th>failures</th><th>checks failed</th><th>bytes in</th><th>bytes out</th></tr>";
  for (const auto& s : servers_of(b)) {
    h << "<tr class=\"" << (s.up ? "up" : "down") << "\"><td>" << xml_escape(s.pool) << "</td><td>" << xml_escape(s.name)
      << "</td><td>" << (s.up ? "UP" : "DOWN") << "</td><td>" << s.since_change_s << " s</td><td>"
      << xml_escape(s.last_check) << "</td><td>" << s.active << "</td><td>" << s.connections << "</td><td>"
      << s.connect_failures << "</td><td>" << s.checks_failed << '/' << s.checks << "</td><td>" << s.bytes_in
      << "</td><td>" << s.bytes_out << "</td></tr>";
  }
  h << "</table><h2>Open connections</h2><table><tr><th>client</th><th>server</th><th>pinned</th><th>age</th>"
       "<th>requests</th><th>last request</th><th>bytes client&rarr;server</th><th>idle</th>"
       "<th>bytes server&rarr;client</th><th>idle</th></tr>";
  for (const auto& c : connections_of(b)) {
    h << "<tr><td>" << xml_escape(c.client) << "</td><td>" << xml_escape(c.server) << "</td><td>"
      << (c.pinned ? "yes" : "no") << "</td><td>" << seconds(c.age_s) << "</td><td>" << c.requests << "</td><td>"
      << xml_escape(c.target) << "</td><td>" << c.bytes_up << "</td><td>" << seconds(c.idle_up_s) << "</td><td>"
      << c.bytes_down << "</td><td>" << seconds(c.idle_down_s) << "</td></tr>";
  }
  h << "</table><h2>Counters</h2><table>";
  for (std::size_t i = 0; i < counter_names.size(); ++i) {
    h << "<tr><td>" << counter_names[i] << "</td><td>" << b.stats().get(static_cast<counter>(i)) << "</td></tr>";
  }
  h << "</table><h2>Terminations</h2><table><tr><th>code</th><th>reason</th><th>count</th></tr>";
  for (std::size_t i = 0; i < termination_count; ++i) {
    const auto t = static_cast<termination>(i);
    if (const auto n = b.stats().get(t)) {
      h << "<tr><td>" << info(t).code << "</td><td>" << info(t).reason << "</td><td>" << n << "</td></tr>";
    }
  }
  h << "</table><p><a href=\"/stats.json\">JSON</a> &middot; <a href=\"/metrics\">Prometheus metrics</a></p>"
       "</body></html>";
  return h.str();
}

bool basic_auth_matches(const std::string& authorization, const std::string& user, const std::string& password) {
  if (!boost::algorithm::istarts_with(authorization, "Basic ")) return false;
  const auto decoded = base64_decode(std::string_view(authorization).substr(6));
  if (!decoded) return false;
  // Digests have a fixed length, so CRYPTO_memcmp's time does not depend on where a guess differs.
  const auto digest = [](std::string_view text) {
    sha256 h;
    h.update(text);
    return h.hex_digest();
  };
  const std::string got = digest(*decoded);
  const std::string want = digest(user + ":" + password);
  return CRYPTO_memcmp(got.data(), want.data(), got.size()) == 0;
}

admin_server::admin_server(const bridge& b, const admin_settings& settings) {
  if (!settings.address) throw config_error("admin: no address");
  if (settings.user.empty() || settings.password.empty()) {
    throw config_error("[admin] needs user and password (the stats page lists every client and mailbox server); "
                       "add user = \"admin\" and password_file = \"/etc/exbridge/admin.password\"");
  }
  if (!settings.identity.empty()) {
    http_ = std::make_unique<httplib::SSLServer>(settings.identity.cert_file.c_str(), settings.identity.key_file.c_str());
    if (!http_->is_valid()) {
      throw config_error("[admin] cannot load the certificate " + settings.identity.cert_file + " and key " +
                         settings.identity.key_file + "; check both files (PEM, unencrypted key)");
    }
    tls_ = true;
  } else {
    http_ = std::make_unique<httplib::Server>();
  }
  auto& h = *http_;
  h.set_pre_routing_handler([settings](const httplib::Request& req, httplib::Response& res) {
    if (basic_auth_matches(req.get_header_value("Authorization"), settings.user, settings.password)) {
      return httplib::Server::HandlerResponse::Unhandled;
    }
    res.status = 401;
    res.set_header("WWW-Authenticate", "Basic realm=\"exbridge admin\"");
    res.set_content("exbridge admin: credentials required\n", "text/plain");
    return httplib::Server::HandlerResponse::Handled;
  });
  h.Get("/", [&b](const httplib::Request&, httplib::Response& res) {
    res.set_content(render_html(b), "text/html; charset=utf-8");
  });
  h.Get("/stats.json", [&b](const httplib::Request&, httplib::Response& res) {
    res.set_content(render_json(b), "application/json");
  });
  h.Get("/metrics", [&b](const httplib::Request&, httplib::Response& res) {
    res.set_content(render_metrics(b), "text/plain; version=0.0.4; charset=utf-8");
  });
  const auto& where = *settings.address;
  const int port = where.port == 0 ? h.bind_to_any_port(where.host) : (h.bind_to_port(where.host, where.port) ? where.port : -1);
  if (port <= 0) {
    throw config_error("[admin] cannot listen on " + where.to_string() +
                       "; another process may use that port, or the address is not on this machine");
  }
  port_ = static_cast<unsigned short>(port);
  thread_ = std::thread([this] { http_->listen_after_bind(); });
}

admin_server::~admin_server() {
  http_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace exbridge::proxy
