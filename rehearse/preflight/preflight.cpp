// Preflight checks against a real endpoint (see preflight.hpp).
#include "rehearse/preflight/preflight.hpp"

#include <termios.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <optional>

#include "common/cli.hpp"
#include "common/errors.hpp"
#include "common/tls_diagnosis.hpp"
#include "rehearse/clients/exo_client.hpp"

namespace exbridge::rehearse {
namespace {

struct endpoint_target {
  std::string public_host;
  unsigned short public_port = 443;
  std::string host;  ///< where to connect
  unsigned short port = 443;
};

endpoint_target parse_target(const preflight_options& o) {
  std::string rest = o.url;
  if (rest.rfind("https://", 0) != 0) {
    throw config_error("preflight needs an https:// URL, e.g. 'rehearse preflight https://mail.contoso.com' (got '" +
                       o.url + "')");
  }
  rest = rest.substr(8);
  rest = rest.substr(0, rest.find('/'));
  const host_port public_name = parse_host_port(rest.find(':') == std::string::npos ? rest + ":443" : rest, "the URL", false);
  endpoint_target t{public_name.host, public_name.port, public_name.host, public_name.port};
  if (!o.connect.empty()) {
    const host_port c = parse_host_port(o.connect, "--connect", false);
    t.host = c.host;
    t.port = c.port;
  }
  return t;
}

struct tls_probe_result {
  std::optional<tls_diagnosis> failure;
  std::string description;  ///< "TLSv1.3 TLS_AES_256_GCM_SHA384"
  std::shared_ptr<X509> certificate;
};

/// One TLS handshake with `tls`, bounded by 30 s.
tls_probe_result tls_probe(const endpoint_target& t, ssl::context& tls, bool check_name) {
  net::io_context ioc;
  tls_probe_result r;
  ssl::stream<tcp::socket> stream(ioc, tls);
  net::steady_timer bound(ioc, std::chrono::seconds(30));  // real time: a preflight talks to a real server
  bool timed_out = false;
  bound.async_wait([&](error_code ec) {
    if (ec) return;
    timed_out = true;
    error_code ignored;
    stream.next_layer().close(ignored);
  });
  const auto body = [&]() -> net::awaitable<void> {
    tcp::resolver resolver(ioc);
    auto [rec, endpoints] = co_await resolver.async_resolve(t.host, std::to_string(t.port), use_tuple);
    if (rec) {
      r.failure = tls_diagnosis{tls_failure::other, rec.message(), "cannot resolve " + t.host, "check the name, or use --connect IP:PORT"};
      co_return;
    }
    auto [cec, ep] = co_await net::async_connect(stream.next_layer(), endpoints, use_tuple);
    if (cec) {
      r.failure = tls_diagnosis{timed_out ? tls_failure::timeout : tls_failure::other, cec.message(),
                                "cannot connect to " + t.host + ":" + std::to_string(t.port),
                                "check that the endpoint is published on the internet (firewall, NAT, DNS)"};
      co_return;
    }
    prepare_client_tls(stream.native_handle(), t.public_host, check_name);
    auto [hec] = co_await stream.async_handshake(ssl::stream_base::client, use_tuple);
    if (hec) {
      r.failure = diagnose_tls_failure(timed_out ? net::error::timed_out : hec, stream.native_handle(), "the endpoint");
      co_return;
    }
    r.description = describe_session(stream.native_handle());
    r.certificate.reset(SSL_get1_peer_certificate(stream.native_handle()), X509_free);
    co_await stream.async_shutdown(use_tuple);
  };
  net::co_spawn(ioc, body(), [&](std::exception_ptr) { bound.cancel(); });
  ioc.run();
  return r;
}

std::string name_of(X509_NAME* name) {
  char buf[256] = {};
  if (X509_NAME_get_text_by_NID(name, NID_commonName, buf, sizeof buf) < 0) return "(no common name)";
  return buf;
}

class check_printer {
 public:
  explicit check_printer(std::ostream& out) : out_(out) {}
  void pass(const std::string& name, const std::string& detail) { line("PASS", name, detail); }
  void warn(const std::string& name, const std::string& detail) { line("WARN", name, detail); }
  void fail(const std::string& name, const std::string& detail) {
    ++failures_;
    line("FAIL", name, detail);
  }
  unsigned failures() const { return failures_; }

 private:
  void line(const char* verdict, const std::string& name, const std::string& detail) {
    out_ << verdict << "  " << name << "\n      " << detail << '\n' << std::flush;
  }
  std::ostream& out_;
  unsigned failures_ = 0;
};

void check_certificate(X509* cert, check_printer& check) {
  int days = 0, seconds = 0;
  ASN1_TIME_diff(&days, &seconds, nullptr, X509_get0_notAfter(cert));
  const int sig = X509_get_signature_nid(cert);
  int digest = NID_undef, pkey = NID_undef;
  OBJ_find_sigid_algs(sig, &digest, &pkey);
  const int bits = EVP_PKEY_bits(X509_get0_pubkey(cert));
  const std::string what = "\"" + name_of(X509_get_subject_name(cert)) + "\" issued by \"" +
                           name_of(X509_get_issuer_name(cert)) + "\", " + std::to_string(bits) + "-bit key, signed with " +
                           OBJ_nid2sn(sig) + ", expires in " + std::to_string(days) + " days";
  if (digest == NID_sha1 || digest == NID_md5) {
    check.fail("Certificate", what + "; Exchange Online requires a SHA-2 signature: reissue the certificate");
  } else if (bits < 2048) {
    check.fail("Certificate", what + "; keys under 2048 bits are refused: reissue with RSA 2048 or more");
  } else if (days < 14) {
    check.warn("Certificate", what + "; renew it before the migration starts (a batch runs for days)");
  } else {
    check.pass("Certificate", what);
  }
}

/// Runs one of the Exchange Online client's checks to the end and prints its verdict.
void client_check(check_printer& check, const std::string& name, net::awaitable<probe_result> (*run)(client_settings),
                  const client_settings& settings) {
  net::io_context ioc;
  probe_result result;
  net::co_spawn(ioc, run(settings), [&](std::exception_ptr e, probe_result r) {
    result = e ? probe_result{"bad-response", "the client failed unexpectedly"} : std::move(r);
  });
  ioc.run();
  if (result.outcome == "ok") check.pass(name, result.explanation);
  else check.fail(name, result.outcome + ": " + result.explanation);
}

}  // namespace

std::string read_password(const std::string& email) {
  if (const char* env = std::getenv("REHEARSE_PASSWORD"); env != nullptr && *env != '\0') return env;
  std::FILE* tty = std::fopen("/dev/tty", "r+");
  if (tty == nullptr) {
    throw config_error("no password: set REHEARSE_PASSWORD in the environment, or run preflight on a terminal to be "
                       "asked for it");
  }
  std::fprintf(tty, "Password for %s (not echoed): ", email.c_str());
  std::fflush(tty);
  termios old{};
  const bool have_termios = ::tcgetattr(::fileno(tty), &old) == 0;
  if (have_termios) {
    termios quiet = old;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    ::tcsetattr(::fileno(tty), TCSANOW, &quiet);
  }
  std::string password;
  for (int c = std::fgetc(tty); c != EOF && c != '\n'; c = std::fgetc(tty)) password += static_cast<char>(c);
  if (have_termios) ::tcsetattr(::fileno(tty), TCSANOW, &old);
  std::fprintf(tty, "\n");
  std::fclose(tty);
  if (password.empty()) throw config_error("no password given");
  return password;
}

unsigned run_preflight(const preflight_options& o, std::ostream& out) {
  const endpoint_target t = parse_target(o);
  check_printer check(out);
  out << "preflight " << o.url
      << (o.connect.empty() ? std::string() : " (connecting to " + t.host + ":" + std::to_string(t.port) + ")") << " as "
      << o.email << ", " << o.auth << " auth\n";

  // 1. The handshake Exchange Online makes: TLS 1.2+, its suites, SNI, chain and name checked.
  ssl::context exo = make_tls_context(tls_profile::exchange_online_client, {.verify = o.trust, .ca_file = o.ca_file});
  const auto modern = tls_probe(t, exo, o.trust != tls_verify::none);
  if (modern.failure) {
    check.fail("TLS as Exchange Online (1.2/1.3, Office 365 suites)", modern.failure->to_string());
    out << "preflight: 1 check failed; the others need a working TLS connection\n";
    return check.failures();
  }
  check.pass("TLS as Exchange Online (1.2/1.3, Office 365 suites)", modern.description + " to " + t.public_host);
  if (modern.certificate) check_certificate(modern.certificate.get(), check);

  // 2. What an attacker could downgrade to: the public side needs nothing below TLS 1.2.
  for (const char* version : {"1.0", "1.1"}) {
    ssl::context old = make_tls_context(tls_profile::upstream_legacy,
                                        {.verify = tls_verify::none, .min_version = version, .max_version = version});
    const auto legacy = tls_probe(t, old, false);
    const std::string name = std::string("TLS ") + version + " refused on the public side";
    if (legacy.failure) check.pass(name, "refused (" + legacy.failure->openssl_reason + ")");
    else check.warn(name, "accepted (" + legacy.description + "); Exchange Online never uses it: allow TLS 1.2 and 1.3 only");
  }

  // 3. Autodiscover and EWS with the migration account, read-only (GetFolder on the inbox).
  client_settings cs;
  cs.host = t.host;
  cs.port = t.port;
  cs.server_name = t.public_host;
  cs.trust = o.trust;
  cs.ca_file = o.ca_file;
  cs.email = o.email;
  cs.password = o.password;
  cs.auth = o.auth;
  cs.ntlm_domain = o.ntlm_domain;
  client_check(check, "Autodiscover and EWS", run_migration_probe, cs);

  // 4. Outlook Anywhere as the migration uses it: Autodiscover's EXPR and EXCH settings, a virtual connection
  //    (CONN/A1 to CONN/C2), a bind to EMSMDB with NTLM, EcDoConnectEx and EcDoDisconnect -- read-only -- and,
  //    with --rpc-hold, the connection kept open to see the server's pings arrive through the path.
  client_settings rpc = cs;
  rpc.action = "outlook-anywhere-session";
  rpc.rpc_server = o.rpc_server;
  rpc.idle = o.rpc_hold;
  client_check(check, "Outlook Anywhere (RPC over HTTP, EMSMDB)", run_migration_probe, rpc);

  out << "preflight: " << (check.failures() == 0 ? "every check passed" : std::to_string(check.failures()) + " check(s) failed")
      << '\n';
  return check.failures();
}

}  // namespace exbridge::rehearse
