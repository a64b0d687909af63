// exbridge --check and --probe-upstream (see config_check.hpp for the lints and exit codes).
#include "proxy/config_check.hpp"

#include <sys/resource.h>

#include <openssl/asn1.h>
#include <openssl/bio.h>

#include <ctime>
#include <memory>

#include "common/errors.hpp"
#include "common/tls_diagnosis.hpp"
#include "proxy/bridge.hpp"
#include "proxy/upstream_tls.hpp"

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

/// One TCP+TLS handshake with the upstream, as a session would make it (same context, SNI, name check
/// and pin check). Appends a finding on failure; prints the negotiated session and certificate on success.
net::awaitable<void> probe(bridge_context& ctx, const setting_origins& origins, std::ostream& out,
                           std::vector<finding>& findings) {
  const auto& u = ctx.options.upstream;
  const std::string where = origin_of(origins, "upstream.address");
  const std::string target = "upstream " + u.address.to_string();
  auto executor = co_await net::this_coro::executor;
  tcp::resolver resolver(executor);
  ssl::stream<tcp::socket> stream(executor, ctx.upstream_tls);
  timer deadline(executor);
  bool timed_out = false;
  const auto arm = [&](scaled_clock::duration limit) {
    timed_out = false;
    deadline.expires_after(limit);
    deadline.async_wait([&](error_code ec) {
      if (ec) return;
      timed_out = true;
      resolver.cancel();
      error_code ignored;
      stream.next_layer().close(ignored);
    });
  };
  const auto fail = [&](std::string message, std::string fix) {
    findings.push_back({.level = severity::error, .where = where, .code = "probe-upstream",
                        .message = std::move(message), .fix = std::move(fix)});
  };

  arm(ctx.options.timeouts.upstream_connect);
  auto [rec, endpoints] = co_await resolver.async_resolve(u.address.host, std::to_string(u.address.port), use_tuple);
  error_code cec = rec;
  if (!rec) std::tie(cec, std::ignore) = co_await net::async_connect(stream.next_layer(), endpoints, use_tuple);
  deadline.cancel();
  if (cec) {
    std::string cause = cec.message();
    if (timed_out) cause = "no answer within " + format_duration(ctx.options.timeouts.upstream_connect);
    fail("cannot connect to " + target + ": " + cause,
         "check that the Exchange server is up and reachable from this host, and the upstream address");
    co_return;
  }
  prepare_upstream_tls(stream.native_handle(), u);
  arm(ctx.options.timeouts.upstream_handshake);
  auto [hec] = co_await stream.async_handshake(ssl::stream_base::client, use_tuple);
  deadline.cancel();
  const error_code cause = timed_out ? error_code(net::error::timed_out) : hec;
  const auto failure = upstream_handshake_failure(cause, stream.native_handle(), u);
  if (failure) {
    std::string message = target + ": " + std::string(failure_name(failure->kind)) + ": " + failure->summary;
    if (!failure->openssl_reason.empty()) message += " (OpenSSL: " + failure->openssl_reason + ")";
    std::string fix = failure->hint;
    if (failure->kind == tls_failure::protocol_version) {
      // The generic hint is about Exchange Online vs Exchange 2007; here the bridge's own range is at fault.
      fix = "Exchange 2007 speaks only TLS 1.0: let the upstream range include it (tls_min = \"1.0\", the default, "
            "or --upstream-tls 1.0)";
    }
    fail(std::move(message), std::move(fix));
    co_return;
  }
  std::string line = (where.empty() ? std::string() : where + ": ") + "ok: probe-upstream: " + target + " (SNI " +
                     upstream_server_name(u) + "): " + describe_session(stream.native_handle());
  if (X509* cert = SSL_get0_peer_certificate(stream.native_handle())) {
    const auto facts = describe_certificate(cert);
    line += "; certificate subject \"" + facts.subject + "\", issuer \"" + facts.issuer + "\", expires " +
            facts.not_after + " (" + std::to_string(facts.days_left) + " days)";
  }
  out << line << '\n';
  error_code ignored;
  stream.next_layer().close(ignored);
}

}  // namespace

std::string finding::to_string() const {
  std::string s = where.empty() ? std::string() : where + ": ";
  s += (level == severity::error ? "error: " : "warning: ") + code + ": " + message;
  if (!fix.empty()) s += "; fix: " + fix;
  return s;
}

std::vector<finding> lint_timeouts(const timeouts& t, const setting_origins& origins, bool file_mode) {
  std::vector<finding> out;
  for (const auto& f : timeout_fields()) {
    const std::string key = f.key;
    const bool below_checked = key == "rpc_idle" || key == "client_data" || key == "upstream_data";
    const bool edge_checked = below_checked || key == "keep_alive" || key == "response_headers";
    if (!edge_checked) continue;
    const auto value = t.*f.member;
    const std::string name = file_mode ? "timeouts." + key : "--" + std::string(f.option);
    const std::string where = origin_of(origins, "timeouts." + key);
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
  return finding{.level = severity::warning, .where = origin_of(origins, "upstream.verify"), .code = "verify-none",
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
  auto timing = lint_timeouts(options.timeouts, inv.origins, file_mode);
  findings.insert(findings.end(), timing.begin(), timing.end());
  if (auto f = lint_upstream_verify(options.upstream, inv.origins)) findings.push_back(std::move(*f));
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY) {
    if (auto f = lint_fd_limit(limit.rlim_cur)) findings.push_back(std::move(*f));
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
