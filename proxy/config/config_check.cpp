// exbridge --check and --probe-upstream (see config_check.hpp for the lints and exit codes).
#include "proxy/config/config_check.hpp"

#include <sys/resource.h>

#include <openssl/asn1.h>
#include <openssl/bio.h>

#include <ctime>
#include <memory>

#include "common/errors.hpp"
#include "common/tls_diagnosis.hpp"
#include "common/tls_socket.hpp"
#include "proxy/bridge.hpp"
#include "proxy/upstream/pool.hpp"
#include "proxy/upstream/connector.hpp"

namespace exbridge::proxy {
namespace {

// Outlook Anywhere keeps idle RPC channels alive with pings: 720 s client->server, 900 s server->client.
constexpr std::chrono::seconds client_ping{720};
constexpr std::chrono::seconds server_ping{900};

std::string origin_of(const setting_origins& origins, const std::string& key) {
  const auto it = origins.find(key);
  return it == origins.end() ? std::string() : it->second;
}

std::string name_text(const X509_NAME* name) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
  X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253);
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(size));
}

/// The default certificate, then the SNI ones: index i is "listen.certificate.i" in setting_origins.
std::vector<tls_identity> all_identities(const bridge_options& options) {
  std::vector<tls_identity> identities{options.identity};
  identities.insert(identities.end(), options.sni_identities.begin(), options.sni_identities.end());
  return identities;
}

/// "FILE:3:5: what" from a config_error becomes where "FILE:3:5", message "what".
finding config_finding(const std::string& file, const std::string& what, const std::string& code) {
  finding f{.level = severity::error, .code = code, .message = what};
  if (!file.empty() && what.rfind(file + ":", 0) == 0) {
    const auto end = what.find(": ", file.size());
    if (end != std::string::npos) {
      f.where = what.substr(0, end);
      f.message = what.substr(end + 2);
    }
  }
  return f;
}

/// One TCP+TLS handshake with every server of every pool, as a session makes it (same context, SNI, name
/// check and pin check: connector.hpp's connect_server and handshake_server, on the same TLS stream). Appends a finding per failure;
/// prints the negotiated session and certificate of each server that passes.
net::awaitable<void> probe(bridge_context& ctx, const setting_origins& origins, std::ostream& out,
                           std::vector<finding>& findings) {
  auto executor = co_await net::this_coro::executor;
  for (const auto& pool : ctx.pools) {
    const std::string key = pool->settings.name == "default" ? "upstream.address" : "pool." + pool->settings.name;
    const std::string where = origin_of(origins, key);
    for (const auto& server : pool->servers) {
      const std::string target = "upstream " + server->name;
      tls_socket stream(executor, pool->tls);
      auto r = co_await connect_server(stream.next_layer(), *server, ctx.options.timeouts.upstream_connect);
      if (r.failed_at == connect_result::ok) {
        r = co_await handshake_server(stream, *server, pool->settings, ctx.options.timeouts.upstream_handshake);
      }
      if (r.failed_at != connect_result::ok && !r.tls) {
        findings.push_back({.level = severity::error, .where = where, .code = "probe-upstream", .message = r.message,
                            .fix = r.fix + ", and the upstream address"});
        continue;
      }
      if (r.tls) {
        const auto& failure = *r.tls;
        std::string message = target + ": " + std::string(failure_name(failure.kind)) + ": " + failure.summary;
        if (!failure.openssl_reason.empty()) message += " (OpenSSL: " + failure.openssl_reason + ")";
        std::string fix = failure.hint;
        if (failure.kind == tls_failure::protocol_version) {
          // The generic hint is about Exchange Online vs Exchange 2007; here the bridge's own range is at fault.
          fix = "Exchange 2007 speaks only TLS 1.0: let the upstream range include it (tls_min = \"1.0\", the "
                "default, or --upstream-tls 1.0)";
        }
        findings.push_back({.level = severity::error, .where = where, .code = "probe-upstream",
                            .message = std::move(message), .fix = std::move(fix)});
        continue;
      }
      std::string line = (where.empty() ? std::string() : where + ": ") + "ok: probe-upstream: " + target + " (SNI " +
                         upstream_server_name(pool->settings, server->address) +
                         "): " + describe_session(stream.native_handle());
      if (X509* cert = SSL_get0_peer_certificate(stream.native_handle())) {
        const auto facts = describe_certificate(cert);
        line += "; certificate subject \"" + facts.subject + "\", issuer \"" + facts.issuer + "\", expires " +
                facts.not_after + " (" + std::to_string(facts.days_left) + " days)";
      }
      out << line << '\n';
      stream.close();
    }
  }
}

}  // namespace

std::string finding::to_string() const {
  std::string s = where.empty() ? std::string() : where + ": ";
  s += (level == severity::error ? "error: " : "warning: ") + code + ": " + message;
  if (!fix.empty()) s += "; fix: " + fix;
  return s;
}

std::vector<finding> lint_timeouts(const timeouts& t, const setting_origins& origins, bool file_mode,
                                   const std::string& table) {
  std::vector<finding> out;
  for (const auto& f : timeout_fields()) {
    const std::string key = f.key;
    // A route's table inherits [timeouts]: only what it sets itself is its own finding.
    if (table != "timeouts" && !origins.contains(table + "." + key)) continue;
    const bool below_checked = key == "rpc_idle" || key == "client_data" || key == "upstream_data";
    const bool edge_checked = below_checked || key == "keep_alive" || key == "response_headers";
    if (!edge_checked) continue;
    const auto value = t.*f.member;
    const std::string name = file_mode ? table + "." + key : "--" + std::string(f.option);
    const std::string where = origin_of(origins, table + "." + key);
    const std::string shown = name + " = " + format_duration(value);
    if (below_checked && value < client_ping) {
      out.push_back({.level = severity::error, .where = where, .code = "timeout-below-ping",
                     .message = shown + " is below Outlook Anywhere's 720 s client->server ping: every idle RPC "
                                "channel is cut before its ping arrives and Outlook reconnects over and over",
                     .fix = "set it to 20 min or more (defaults: 20 min, rpc_idle 1 h)"});
      continue;
    }
    for (const auto ping : {client_ping, server_ping}) {
      const auto distance = value > ping ? value - ping : ping - value;
      if (distance * 10 <= ping) {
        out.push_back({.level = severity::warning, .where = where, .code = "timeout-at-ping-edge",
                       .message = shown + " is within 10 % of Outlook Anywhere's " +
                                  std::to_string(ping.count()) + " s " +
                                  (ping == client_ping ? "client->server" : "server->client") +
                                  " ping: an idle channel races the timer and drops at random",
                       .fix = "keep it clear of 720 s and 900 s, e.g. 20 min (the default)"});
      }
    }
  }
  return out;
}

std::optional<finding> lint_upstream_verify(const upstream_settings& u, const setting_origins& origins) {
  if (u.verify != tls_verify::none) return std::nullopt;
  const std::string key = u.name == "default" ? "upstream.verify" : "pool." + u.name + ".verify";
  return finding{.level = severity::warning, .where = origin_of(origins, key), .code = "verify-none",
                 .message = "the Exchange 2007 server's certificate is not checked: anyone on the path to it can "
                            "impersonate it and read every password and mailbox that crosses the bridge",
                 .fix = "use verify = \"ca:FILE\" with its CA, or \"pin:SHA256\" with its certificate's fingerprint "
                        "('openssl x509 -noout -fingerprint -sha256 -in CERT')"};
}

std::optional<finding> lint_fd_limit(std::uint64_t soft_limit) {
  if (soft_limit >= 4096) return std::nullopt;
  return finding{.level = severity::warning, .code = "fd-limit",
                 .message = "the open-file limit (soft RLIMIT_NOFILE) is " + std::to_string(soft_limit) +
                            ": each client connection needs two descriptors (client and Exchange 2007), so about " +
                            std::to_string(soft_limit / 2) + " connections at most",
                 .fix = "raise it to 65536 (LimitNOFILE=65536 in the systemd unit, or 'ulimit -n 65536')"};
}

std::vector<finding> lint_pools(const bridge_options& o, const setting_origins& origins) {
  std::vector<finding> out;
  std::vector<const upstream_settings*> pools{&o.upstream};
  for (const auto& p : o.pools) pools.push_back(&p);
  const auto key_of = [](const upstream_settings& u, const std::string& key) {
    return (u.name == "default" ? std::string("upstream.") : "pool." + u.name + ".") + key;
  };
  for (const auto* u : pools) {
    if (pool_servers(*u).size() > 1 && u->check.type == check_type::none) {
      out.push_back({.level = severity::warning, .where = origin_of(origins, key_of(*u, "address")),
                     .code = "no-health-check",
                     .message = "pool '" + u->name + "' has " + std::to_string(pool_servers(*u).size()) +
                                " servers but no health check: a stopped server keeps getting new connections, each "
                                "paying a failed connect before it is redispatched",
                     .fix = "add [" + (u->name == "default" ? std::string("upstream") : "pool") +
                            ".health_check] with type = \"tls\""});
    }
  }
  // Outlook Anywhere's IN and OUT channels are two connections that must reach the same server.
  const auto rpc = route_of(o, "/rpc/rpcproxy.dll");
  if (pool_servers(*rpc.pool).size() > 1 && rpc.persistence == persistence::connection) {
    const std::string where = rpc.route != nullptr && rpc.route->persistence
                                  ? origin_of(origins, "route." + rpc.route->prefix + ".persistence")
                                  : origin_of(origins, key_of(*rpc.pool, "persistence"));
    out.push_back({.level = severity::warning, .where = where,
                   .code = "rpc-channels-split",
                   .message = "/rpc/ goes to pool '" + rpc.pool->name + "' with persistence \"connection\" over " +
                              std::to_string(pool_servers(*rpc.pool).size()) +
                              " servers: an Outlook Anywhere session's IN and OUT channels can land on different "
                              "servers, and the RPC proxy then refuses the session",
                   .fix = "use persistence = \"cookie\" (the default) or \"source\" for the /rpc/ route or its pool"});
  }
  return out;
}

std::optional<finding> lint_connection_limit(unsigned max_connections, std::uint64_t hard_limit,
                                             const setting_origins& origins) {
  if (max_connections == 0 || 2 * std::uint64_t{max_connections} + 64 <= hard_limit) return std::nullopt;
  return finding{.level = severity::error, .where = origin_of(origins, "listen.max_connections"),
                 .code = "max-connections-above-fd-limit",
                 .message = "max_connections = " + std::to_string(max_connections) + " needs " +
                            std::to_string(2 * std::uint64_t{max_connections} + 64) +
                            " file descriptors (client and Exchange side of each), but the hard limit is " +
                            std::to_string(hard_limit) + ": exbridge would refuse to start",
                 .fix = "raise LimitNOFILE= in the systemd unit (or 'ulimit -Hn'), or lower max_connections"};
}

std::optional<finding> lint_admin(const admin_settings& a, const setting_origins& origins) {
  if (!a.address || !a.identity.empty()) return std::nullopt;
  error_code ec;
  const auto address = net::ip::make_address(a.address->host, ec);
  if (!ec && address.is_loopback()) return std::nullopt;
  return finding{.level = severity::warning, .where = origin_of(origins, "admin.address"), .code = "admin-plaintext",
                 .message = "the admin listener on " + a.address->to_string() +
                            " is reachable from the network over plain HTTP: its password crosses the wire in clear",
                 .fix = "listen on 127.0.0.1 (reach it through SSH), or add cert and key to [admin]"};
}

certificate_facts describe_certificate(X509* cert) {
  certificate_facts facts;
  facts.subject = name_text(X509_get_subject_name(cert));
  facts.issuer = name_text(X509_get_issuer_name(cert));
  const ASN1_TIME* not_after = X509_get0_notAfter(cert);
  std::tm tm{};
  if (ASN1_TIME_to_tm(not_after, &tm) == 1) {
    char text[32];
    std::strftime(text, sizeof text, "%Y-%m-%d %H:%M UTC", &tm);
    facts.not_after = text;
  }
  int days = 0, seconds = 0;
  if (ASN1_TIME_diff(&days, &seconds, nullptr, not_after) == 1) facts.days_left = days;
  return facts;
}

std::optional<finding> lint_certificate_expiry(const certificate_facts& facts, const std::string& file,
                                               const std::string& where) {
  if (facts.days_left >= 14) return std::nullopt;
  return finding{.level = severity::warning, .where = where, .code = "certificate-expires-soon",
                 .message = "certificate " + file + " (" + facts.subject + ") expires " + facts.not_after + ", in " +
                            std::to_string(facts.days_left) + " days: a migration batch runs for days",
                 .fix = "renew it now (e.g. 'certbot renew') and restart exbridge before starting the batch"};
}

int check_exit_code(const std::vector<finding>& findings) {
  int code = 0;
  for (const auto& f : findings) code = std::max(code, f.level == severity::error ? 2 : 1);
  return code;
}

std::string check_summary(const std::vector<finding>& findings, const std::string& name) {
  std::size_t errors = 0;
  for (const auto& f : findings) errors += f.level == severity::error ? 1 : 0;
  const std::size_t warnings = findings.size() - errors;
  const auto count = [](std::size_t n, const char* what) {
    return std::to_string(n) + " " + what + (n == 1 ? "" : "s");
  };
  if (errors > 0) return "config has " + count(errors, "error") + " and " + count(warnings, "warning") + ": " + name;
  if (warnings > 0) return "config OK with " + count(warnings, "warning") + ": " + name;
  return "config OK: " + name;
}

std::string locate_startup_error(const std::string& message, const bridge_options& options,
                                 const setting_origins& origins, const std::string& config_file) {
  if (config_file.empty()) return message;
  const auto identities = all_identities(options);
  for (std::size_t i = 0; i < identities.size(); ++i) {
    const auto& id = identities[i];
    const bool named = (!id.cert_file.empty() && message.find(id.cert_file) != std::string::npos) ||
                       (!id.key_file.empty() && message.find(id.key_file) != std::string::npos);
    const std::string where = origin_of(origins, "listen.certificate." + std::to_string(i));
    if (named && !where.empty()) return where + ": " + message;
  }
  return config_file + ": " + message;
}

int run_check(invocation& inv, std::ostream& out) {
  const bool file_mode = !inv.config_file.empty();
  const std::string name = file_mode ? inv.config_file : std::string("command line");
  std::vector<finding> findings;
  const auto report = [&] {
    for (const auto& f : findings) out << f.to_string() << '\n';
    out << check_summary(findings, name) << '\n';
    return check_exit_code(findings);
  };
  bridge_options options;
  try {
    options = resolve_options(inv);
  } catch (const config_error& e) {
    findings.push_back(config_finding(inv.config_file, e.what(), "config"));
    return report();
  }
  scaled_clock::set_scale(options.time_scale);

  // Each certificate on its own first, so that every bad one is reported at its own line.
  const auto identities = all_identities(options);
  bool certificates_ok = true;
  for (std::size_t i = 0; i < identities.size(); ++i) {
    const std::string where = origin_of(inv.origins, "listen.certificate." + std::to_string(i));
    try {
      ssl::context tls = make_tls_context(tls_profile::downstream, {.identity = identities[i]});
      const auto facts = describe_certificate(SSL_CTX_get0_certificate(tls.native_handle()));
      if (auto f = lint_certificate_expiry(facts, identities[i].cert_file, where)) findings.push_back(std::move(*f));
    } catch (const config_error& e) {
      findings.push_back({.level = severity::error, .where = where, .code = "certificate", .message = e.what()});
      certificates_ok = false;
    }
  }
  // Then everything together, exactly as a start builds it (the upstream context included).
  std::unique_ptr<bridge_context> ctx;
  if (certificates_ok) {
    try {
      ctx = std::make_unique<bridge_context>(options);
    } catch (const config_error& e) {
      findings.push_back({.level = severity::error, .where = origin_of(inv.origins, "upstream.address"),
                          .code = "upstream-tls", .message = e.what()});
    }
  }
  const auto add = [&](std::vector<finding> more) { findings.insert(findings.end(), more.begin(), more.end()); };
  add(lint_timeouts(options.timeouts, inv.origins, file_mode));
  for (const auto& r : options.routes) add(lint_timeouts(r.timeouts, inv.origins, true, "route." + r.prefix + ".timeouts"));
  if (auto f = lint_upstream_verify(options.upstream, inv.origins)) findings.push_back(std::move(*f));
  for (const auto& p : options.pools) {
    if (auto f = lint_upstream_verify(p, inv.origins)) findings.push_back(std::move(*f));
  }
  add(lint_pools(options, inv.origins));
  if (auto f = lint_admin(options.admin, inv.origins)) findings.push_back(std::move(*f));
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY) {
    // exbridge raises its soft limit to the hard one at start: the hard limit is what counts.
    if (auto f = lint_fd_limit(limit.rlim_max)) findings.push_back(std::move(*f));
    const auto listeners = static_cast<unsigned>(1 + options.also_listen.size());
    if (auto f = lint_connection_limit(options.max_connections * listeners, limit.rlim_max, inv.origins)) {
      findings.push_back(std::move(*f));
    }
  }
  if (inv.probe_upstream) {
    if (ctx) {
      net::io_context ioc;
      net::co_spawn(ioc, probe(*ctx, inv.origins, out, findings), [](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);
      });
      ioc.run();
    } else {
      findings.push_back({.level = severity::error, .code = "probe-upstream",
                          .message = "not attempted: the settings above do not load",
                          .fix = "fix the errors above first"});
    }
  }
  return report();
}

}  // namespace exbridge::proxy
