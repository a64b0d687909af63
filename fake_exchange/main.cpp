// fake-exchange: a stand-in for an Exchange 2007 SP3 server (TLS 1.0 only, IIS behaviour, Autodiscover, EWS).
#include <iostream>
#include <thread>

#include "common/errors.hpp"
#include "common/listener.hpp"
#include "common/log.hpp"
#include "fake_exchange/server.hpp"

using namespace exbridge;
using namespace exbridge::fake_exchange;

int main(int argc, char** argv) {
  set_log_program("fake-exchange");
  try {
    server_options options;
    std::vector<user> users;
    double time_scale = 1;
    arg_parser args("fake-exchange", "[options]");
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
    args.option("user", "EMAIL:PASSWORD[:NAME]", "a mailbox user (repeatable); replaces the demo user",
                [&](const std::string& v) { users.push_back(parse_user_spec(v)); });
    args.option("time-scale", "N", "run every timeout N times faster (default 1)",
                [&](const std::string& v) { time_scale = parse_number(v, "--time-scale"); });
    args.epilog(std::string("Without --user, the demo organisation contoso.example is served:\n"
                            "  user     ") +
                std::string(demo_email) + "\n  password " + std::string(demo_password) +
                "\n  mailbox  Inbox (20 items), Calendar, Contacts, Sent Items, ...\n\n"
                "Once listening, prints one line on stdout: listening https HOST:PORT\n");
    if (!args.parse(argc, argv)) return exit_ok;
    if (!users.empty()) options.exchange.org.users = users;
    scaled_clock::set_scale(time_scale);

    net::io_context ioc;
    server srv(ioc, options);
    srv.start();
    const auto ep = srv.local_endpoint();
    log_info(cat("Exchange 2007 ", options.exchange.version->name, " (TLS 1.0 only) serving ",
                 options.exchange.org.users.size(), " mailbox(es) of ", options.exchange.org.domain));
    announce_listening("https", ep.address().to_string(), ep.port());
    run_until_signalled(ioc, 1, [&] { srv.stop(); });
    return exit_ok;
  } catch (const config_error& e) {
    std::cerr << "fake-exchange: " << e.what() << '\n';
    return exit_usage;
  } catch (const std::exception& e) {
    std::cerr << "fake-exchange: " << e.what() << '\n';
    return exit_startup;
  }
}
