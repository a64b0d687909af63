// rehearse: plays Exchange Online against fake-exchange and a proxy under test, step by step.
#include <algorithm>
#include <filesystem>
#include <iostream>

#include "common/cli.hpp"
#include "common/main_guard.hpp"
#include "common/log.hpp"
#include "rehearse/preflight/preflight.hpp"
#include "rehearse/runner/report.hpp"
#include "rehearse/runner/runner.hpp"

using namespace exbridge;
using namespace exbridge::rehearse;

namespace {

/// `rehearse preflight https://HOST --email USER@DOMAIN`: read-only checks against a real endpoint.
int preflight_main(int argc, char** argv) {
  preflight_options o;
  std::vector<std::string> positional;
  arg_parser args("rehearse preflight", "https://PUBLIC-NAME --email USER@DOMAIN [options]");
  args.option("email", "USER@DOMAIN", "the migration account (its password comes from REHEARSE_PASSWORD or a prompt)",
              [&](const std::string& v) { o.email = v; });
  args.option("auth", "basic|ntlm", "how the migration endpoint authenticates (default basic)", [&](const std::string& v) {
    if (v != "basic" && v != "ntlm") throw config_error("--auth must be 'basic' or 'ntlm'");
    o.auth = v;
  });
  args.option("ntlm-domain", "DOMAIN", "NTLM: the NetBIOS domain (default: log on with the e-mail address)",
              [&](const std::string& v) { o.ntlm_domain = v; });
  args.option("connect", "HOST:PORT", "connect here instead of resolving the URL's name (e.g. before the DNS change)",
              [&](const std::string& v) { o.connect = v; });
  args.option("rpc-server", "NAME", "Outlook Anywhere: the mailbox server rpcproxy forwards to (default: the one "
              "Autodiscover names, e.g. ex2007.contoso.local)", [&](const std::string& v) { o.rpc_server = v; });
  args.option("rpc-hold", "DURATION", "Outlook Anywhere: keep the virtual connection open this long after the EMSMDB "
              "call and count the server's pings (Exchange pings every 900 s: 16m sees one; default 0)",
              [&](const std::string& v) { o.rpc_hold = parse_duration(v, "--rpc-hold"); });
  args.option("trust", "system|ca:FILE", "trust store for the endpoint's certificate (default: the system's, as "
              "Exchange Online uses public CAs)", [&](const std::string& v) {
                if (v == "system") o.trust = tls_verify::system;
                else if (v.rfind("ca:", 0) == 0 && v.size() > 3) o.trust = tls_verify::ca_file, o.ca_file = v.substr(3);
                else throw config_error("--trust must be 'system' or 'ca:/path/to/ca.pem'");
              });
  args.epilog("Exit status: 0 every check passed (warnings allowed), 1 a check failed, 2 bad command line.\n"
              "The password is read from REHEARSE_PASSWORD or asked on the terminal; it is never printed or logged.\n");
  if (!args.parse(argc, argv, 2, &positional)) return static_cast<int>(exit_ok);
  if (positional.size() != 1) throw config_error("preflight needs exactly one URL, e.g. https://mail.contoso.com");
  if (o.email.empty()) throw config_error("--email is missing: the migration account, e.g. --email migration@contoso.com");
  o.url = positional.front();
  if (o.url.rfind("https://", 0) != 0) {
    throw config_error("preflight needs the https:// URL Exchange Online will be given, e.g. https://mail.contoso.com "
                       "(got '" + o.url + "')");
  }
  o.password = read_password(o.email);
  return static_cast<int>(run_preflight(o, std::cout) == 0 ? exit_ok : exit_failed);
}

}  // namespace

int main(int argc, char** argv) {
  return guarded_main("rehearse", [&] {
    if (argc > 1 && std::string_view(argv[1]) == "preflight") return preflight_main(argc, argv);
    run_options options;
    std::vector<std::string> positional;
    bool all = false;
    std::filesystem::path catalog = EXBRIDGE_SCENARIO_DIR;
    arg_parser args("rehearse", "run SCENARIO.toml [SCENARIO.toml ...] | run --all [options] | preflight https://HOST "
                                "--email USER@DOMAIN (see 'rehearse preflight --help')");
    args.flag("all", "run every scenario of the catalog (--scenarios) and its theme folders, in path order",
              [&] { all = true; });
    args.option("scenarios", "DIR", "the scenario catalog for --all (default: this checkout's scenarios/)",
                [&](const std::string& v) { catalog = v; });
    args.option("out", "DIR", "where run folders (logs, lab PKI) go (default ./rehearse-out)",
                [&](const std::string& v) { options.out_dir = v; });
    args.option("time-scale", "N", "override every scenario's time scale (1 = real time)", [&](const std::string& v) {
      options.time_scale = parse_number(v, "--time-scale");
      if (options.time_scale < 1) throw config_error("--time-scale must be >= 1");
    });
    args.epilog("Exit status: 0 every expectation held (scenarios whose peer program, e.g. haproxy, is not installed\n"
                "are SKIPPED and say why), 1 one did not, 2 bad command line or scenario file.\n");
    if (!args.parse(argc, argv, 1, &positional)) return static_cast<int>(exit_ok);
    if (positional.empty() || positional.front() != "run" || (positional.size() < 2 && !all)) {
      throw config_error("say what to run: 'rehearse run scenarios/basics/seed-story.toml' or 'rehearse run --all' "
                         "(see 'rehearse --help')");
    }
    std::vector<std::filesystem::path> files(positional.begin() + 1, positional.end());
    if (all) {
      const auto catalogued = catalog_scenarios(catalog);
      files.insert(files.end(), catalogued.begin(), catalogued.end());
    }
    // Load every file first: a typo in the third scenario should not cost the first two's run time.
    std::vector<exbridge::rehearse::scenario> scenarios;
    for (const auto& file : files) scenarios.push_back(load_scenario(file));

    std::size_t passed_steps = 0, failed_steps = 0, failed_scenarios = 0, skipped = 0;
    std::vector<scenario_report> reports;
    for (const auto& s : scenarios) {
      const auto& report = reports.emplace_back(run_scenario(s, options, std::cout));
      if (!report.skipped.empty()) {
        ++skipped;
        continue;
      }
      for (const auto& st : report.steps) (st.passed ? passed_steps : failed_steps) += 1;
      if (!report.passed()) {
        ++failed_scenarios;
        if (report.steps.size() < s.steps.size()) failed_steps += s.steps.size() - report.steps.size();
      }
    }
    print_summary_table(reports, std::cout);
    const auto report_files = write_reports(reports, options.out_dir);
    std::cout << "reports: " << report_files.at(2).string() << " (HTML with timelines), " << report_files.at(0).string()
              << ", " << report_files.at(1).string() << " (JUnit)\n";
    std::cout << "summary: " << passed_steps << " passed, " << failed_steps << " failed"
              << (skipped > 0 ? ", " + std::to_string(skipped) + " scenario(s) SKIPPED" : std::string()) << '\n';
    return static_cast<int>(failed_scenarios == 0 ? exit_ok : exit_failed);
  });
}
