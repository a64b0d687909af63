// fake-exchange: a stand-in for an Exchange 2007 SP3 server (TLS 1.0 only, IIS behaviour, Autodiscover, EWS).
#include <thread>

#include "common/main_guard.hpp"
#include "common/listener.hpp"
#include "common/log.hpp"
#include "fake_exchange/config_file.hpp"
#include "fake_exchange/control_api.hpp"
#include "fake_exchange/manifest.hpp"
#include "fake_exchange/server.hpp"

using namespace exbridge;
using namespace exbridge::fake_exchange;

int main(int argc, char** argv) {
  return guarded_main("fake-exchange", [&] {
    server_options options;
    std::vector<std::string> user_specs;
    double time_scale = 1;
    arg_parser args("fake-exchange", "[options]");
    args.option("config", "FILE",
                "TOML file: users and passwords, organisation, mailboxes, version, fault rules (see the README); "
                "options after it override it",
                [&](const std::string& v) { apply_config_file(v, options); });
    args.option("listen", "HOST:PORT", "address to listen on (port 0 = any free port; default 127.0.0.1:0)",
                [&](const std::string& v) { options.listen = parse_host_port(v, "--listen"); });
    args.option("cert", "FILE", "PEM certificate (chain); default: a self-generated certificate",
                [&](const std::string& v) { options.identity.cert_file = v; });
    args.option("key", "FILE", "PEM private key for --cert", [&](const std::string& v) { options.identity.key_file = v; });
    args.option("public-host", "HOST[:PORT]",
                "host named in Autodiscover URLs (the bridge's public name); default: the request's Host header",
                [&](const std::string& v) { options.exchange.public_host = v; });
    args.option("version", "NAME", "Exchange 2007 build: RTM, SP1, SP2, SP3 (default) or SP3-RU23",
                [&](const std::string& v) {
                  options.exchange.version = find_version_profile(v);
                  if (options.exchange.version == nullptr) {
                    throw config_error("--version '" + v + "' is unknown; use RTM, SP1, SP2, SP3 or SP3-RU23");
                  }
                });
    args.option("windows", "PROFILE",
                "the TLS 1.0 suites of the Windows Server under Exchange: win2008 (default; AES and ECDHE-RSA AES), "
                "win2008-ecdhe (the same, ECDHE preferred, as hardening guides order them), "
                "win2003-aes (plain-RSA AES only) or win2003-legacy (RC4/3DES only: Debian's OpenSSL cannot)",
                [&](const std::string& v) { options.windows = parse_schannel_profile(v, "--windows"); });
    args.option("user", "EMAIL:PASSWORD[:NAME]", "a mailbox user (repeatable); replaces the demo user",
                [&](const std::string& v) { user_specs.push_back(v); });
    args.option("autodiscover-redirect", "[HOST/]EMAIL=TARGET",
                "Autodiscover about EMAIL (asked through HOST, if given) answers Action redirectAddr when TARGET is an "
                "e-mail address, redirectUrl when it is an https:// URL (repeatable)",
                [&](const std::string& v) {
                  const auto eq = v.find('=');
                  const auto slash = v.find('/');
                  if (eq == std::string::npos) {
                    throw config_error("--autodiscover-redirect '" + v + "' needs EMAIL=TARGET, e.g. "
                                       "old@fabrikam.example=alex.wilber@contoso.example");
                  }
                  const bool has_host = slash != std::string::npos && slash < eq;
                  options.exchange.org.redirects.push_back(make_redirect(
                      v.substr(has_host ? slash + 1 : 0, eq - (has_host ? slash + 1 : 0)),
                      has_host ? v.substr(0, slash) : std::string(), v.substr(eq + 1), "--autodiscover-redirect"));
                });
    unsigned user_count = 0;
    args.option("user-count", "N",
                "expand every --user containing {n} into N numbered users, e.g. --user "
                "'user{n}@contoso.example:Secret-{n}' --user-count 20 (user01 ... user20)",
                [&](const std::string& v) {
                  const double n = parse_number(v, "--user-count");
                  if (n < 1 || n > 10000 || n != static_cast<unsigned>(n)) {
                    throw config_error("--user-count must be a whole number from 1 to 10000");
                  }
                  user_count = static_cast<unsigned>(n);
                });
    std::string manifest;
    const auto count_option = [&](const char* name, const char* metavar, const char* help, auto& field) {
      args.option(name, metavar, help, [&field, name](const std::string& v) {
        const double n = parse_number(v, std::string("--") + name);
        if (n < 0 || n != static_cast<double>(static_cast<std::uint64_t>(n))) {
          throw config_error(std::string("--") + name + " must be a whole number >= 0");
        }
        field = static_cast<std::remove_reference_t<decltype(field)>>(n);
      });
    };
    auto& mb = options.exchange.mailboxes;
    count_option("mailbox-items", "N", "items in each Inbox (Sent Items get N/4, Deleted Items N/10; default 20)",
                 mb.inbox_items);
    count_option("mailbox-seed", "N", "seed of the synthetic mailboxes (default 2007)", mb.seed);
    count_option("large-every", "N", "every Nth Inbox item is large (default 0 = none)", mb.large_every);
    count_option("large-size", "BYTES", "size of large items, +-10 % (default 35000000)", mb.large_size);
    count_option("small-max", "BYTES", "largest small item (default 65536)", mb.small_max);
    args.option("manifest", "FILE", "write the JSON manifest (every item's id, size, SHA-256) before listening",
                [&](const std::string& v) { manifest = v; });
    args.option("rpc-ping-interval", "DURATION",
                "Outlook Anywhere: keep-alive PDU interval on OUT channels (default 900s, the CAS default)",
                [&](const std::string& v) {
                  options.rpc_ping_interval = parse_duration(v, "--rpc-ping-interval");
                  if (options.rpc_ping_interval <= scaled_clock::duration::zero()) {
                    throw config_error("--rpc-ping-interval must be more than 0, e.g. 120s or 15m");
                  }
                });
    args.option("rpc-out-channel-bytes", "BYTES",
                "Outlook Anywhere: the Content-Length of each OUT channel, which the server recycles before it is "
                "used up (default 1073741824, as Windows; at least 16384)",
                [&](const std::string& v) {
                  const double n = parse_number(v, "--rpc-out-channel-bytes");
                  if (n < static_cast<double>(min_out_channel_length) || n > 4294967295.0 ||
                      n != static_cast<double>(static_cast<std::uint64_t>(n))) {
                    throw config_error("--rpc-out-channel-bytes must be a whole number from 16384 to 4294967295");
                  }
                  options.rpc_out_channel_length = static_cast<std::uint64_t>(n);
                });
    args.option("faults", "FILE", "fault rules ([[fault]] tables, TOML or JSON; see the README)",
                [&](const std::string& v) { options.faults = load_fault_file(v); });
    std::optional<host_port> control;
    args.option("control", "HOST:PORT",
                "serve the control API (GET /stats, GET|PUT /faults, GET /manifest) on a loopback address",
                [&](const std::string& v) {
                  control = parse_host_port(v, "--control");
                  require_loopback(*control);
                });
    args.option("time-scale", "N", "run every timeout, fault duration and fault rate N times faster (default 1)",
                [&](const std::string& v) { time_scale = parse_number(v, "--time-scale"); });
    args.epilog(std::string("Without --user, the demo organisation contoso.example is served:\n"
                            "  user     ") +
                std::string(demo_email) + "\n  password " + std::string(demo_password) +
                "\n  mailbox  Inbox (20 items by default), Sent Items, Deleted Items, Calendar, Contacts, ...\n\n"
                "Once listening, prints one line on stdout: listening https HOST:PORT\n"
                "(and with --control, a second one: listening control HOST:PORT)\n");
    if (!args.parse(argc, argv)) return static_cast<int>(exit_ok);
    std::vector<user> users;
    bool numbered = false;
    for (const auto& spec : user_specs) {
      if (spec.find("{n}") == std::string::npos) {
        users.push_back(parse_user_spec(spec));
        continue;
      }
      numbered = true;
      if (user_count == 0) throw config_error("--user '" + spec.substr(0, spec.find(':')) + "' has {n}: say how many with --user-count N");
      for (unsigned i = 1; i <= user_count; ++i) users.push_back(parse_user_spec(expand_index(spec, i, user_count)));
    }
    if (user_count != 0 && !numbered) throw config_error("--user-count needs a --user with {n}, e.g. 'user{n}@contoso.example:Secret-{n}'");
    if (!users.empty()) options.exchange.org.users = users;
    if (mb.small_max < mb.small_min) throw config_error("--small-max must be at least 2048");
    if (!manifest.empty()) write_manifest(manifest, options.exchange.org, mb);
    scaled_clock::set_scale(time_scale);

    net::io_context ioc;
    server srv(ioc, options);
    srv.start();
    const auto ep = srv.local_endpoint();
    log_info(cat("Exchange 2007 ", options.exchange.version->name, " (TLS 1.0 only) serving ",
                 options.exchange.org.users.size(), " mailbox(es) of ", options.exchange.org.domain));
    std::unique_ptr<control_api> api;
    if (control) api = std::make_unique<control_api>(*control, srv, options.exchange);
    announce_listening("https", ep.address().to_string(), ep.port());
    if (api) {
      api->start();
      announce_listening("control", control->host, api->port());
    }
    run_until_signalled(ioc, 1, [&] { srv.stop(); });
    return static_cast<int>(exit_ok);
  });
}
