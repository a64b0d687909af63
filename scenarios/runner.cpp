// Scenario runner implementation.
#include "scenarios/runner.hpp"

#include <csignal>
#include <iomanip>
#include <map>
#include <ostream>

#include "common/errors.hpp"
#include "common/lab_pki.hpp"
#include "scenarios/exo_client.hpp"
#include "scenarios/outlook_anywhere.hpp"
#include "scenarios/process_supervisor.hpp"

namespace exbridge::scenario {

bool scenario_report::passed() const {
  if (!setup_error.empty() || steps.empty()) return false;
  for (const auto& s : steps) {
    if (!s.passed) return false;
  }
  return true;
}

namespace {

std::string format_scale(double scale) {
  std::ostringstream out;
  out << scale;
  return out.str();
}

net::awaitable<void> run_steps(const scenario& s, const run_options& options, scenario_report& report,
                               process_supervisor& supervisor, std::ostream& out) {
  const double scale = options.time_scale > 0 ? options.time_scale : s.time_scale;
  std::map<std::string, std::string> vars;
  const lab_pki pki = write_lab_pki(report.run_dir / "pki", s.bridge_names, s.exchange_names);
  vars["lab.ca"] = pki.ca_cert.string();
  vars["lab.bridge_cert"] = pki.bridge_cert.string();
  vars["lab.bridge_key"] = pki.bridge_key.string();
  vars["lab.exchange_cert"] = pki.exchange_cert.string();
  vars["lab.exchange_key"] = pki.exchange_key.string();
  vars["run.dir"] = report.run_dir.string();
  vars["scenario.dir"] = std::filesystem::absolute(s.file).parent_path().string();  // files shipped beside it
  vars["time_scale"] = format_scale(scale);

  for (const auto& p : s.processes) {
    std::vector<std::string> args;
    for (const auto& a : p.args) args.push_back(substitute(a, vars, p.where));
    const auto program = resolve_program(p.program);
    const auto started = co_await supervisor.start(p.name, program, args, report.run_dir / (p.name + ".log"),
                                                   p.ready_timeout);
    vars[p.name + ".addr"] = started.address.to_string();
    vars[p.name + ".host"] = started.address.host;
    vars[p.name + ".port"] = std::to_string(started.address.port);
    out << "  started " << p.name << " (" << program.filename().string() << ") on " << started.address.to_string()
        << ", log " << started.log_file.string() << '\n'
        << std::flush;
  }

  std::size_t index = 0;
  for (const auto& st : s.steps) {
    ++index;
    step_report r{st.name, st.expect, "", "", false, {}};
    const auto begin = std::chrono::steady_clock::now();
    const host_port target = parse_host_port(substitute(st.connect, vars, st.where), st.where + ": connect", false);
    client_settings cs;
    cs.host = target.host;
    cs.port = target.port;
    cs.server_name = substitute(st.server_name, vars, st.where);
    cs.trust = st.trust == "lab" ? tls_verify::ca_file : tls_verify::system;
    cs.ca_file = pki.ca_cert.string();
    cs.email = substitute(st.email, vars, st.where);
    cs.password = substitute(st.password, vars, st.where);
    cs.auth = st.auth;
    cs.ntlm_domain = st.ntlm_domain;
    cs.ews_requests = st.ews_requests;
    cs.action = st.action;
    cs.manifest_file = substitute(st.manifest, vars, st.where);
    cs.page_size = st.page_size;
    cs.batch = st.batch;
    cs.request_timeout = st.request_timeout;
    cs.rpc_server = st.rpc_server;
    cs.idle = st.idle;
    cs.ping_interval = st.ping_interval;
    probe_result result;
    if (st.action == "outlook-anywhere") {
      result = co_await run_outlook_anywhere(cs);
    } else {
      result = co_await run_migration_probe(cs);
    }
    r.outcome = result.outcome;
    r.explanation = result.explanation;
    r.passed = r.outcome == r.expected;
    r.duration = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - begin);
    out << "[" << index << "/" << s.steps.size() << "] " << (r.passed ? "PASS" : "FAIL") << "  " << r.name << '\n'
        << "        expected " << r.expected << ", got " << r.outcome << " in " << r.duration.count() << " ms\n"
        << "        " << r.explanation << '\n'
        << std::flush;
    report.steps.push_back(std::move(r));
  }
}

}  // namespace

scenario_report run_scenario(const scenario& s, const run_options& options, std::ostream& out) {
  scenario_report report;
  report.name = s.name;
  report.run_dir = std::filesystem::absolute(options.out_dir / s.name);
  const auto begin = std::chrono::steady_clock::now();
  std::error_code fec;
  std::filesystem::remove_all(report.run_dir, fec);
  std::filesystem::create_directories(report.run_dir, fec);
  if (fec) throw config_error("cannot create run folder " + report.run_dir.string() + ": " + fec.message());

  const double scale = options.time_scale > 0 ? options.time_scale : s.time_scale;
  scaled_clock::set_scale(scale);
  out << "scenario " << s.name << (s.description.empty() ? "" : ": " + s.description) << '\n'
      << "  time scale " << format_scale(scale) << ", run folder " << report.run_dir.string() << '\n'
      << std::flush;

  net::io_context ioc;
  process_supervisor supervisor(ioc.get_executor());
  // Ctrl-C or SIGTERM: kill the processes at once and stop; nothing is left running.
  net::signal_set signals(ioc, SIGINT, SIGTERM);
  signals.async_wait([&](const error_code& ec, int) {
    if (ec) return;
    report.setup_error = "interrupted";
    supervisor.kill_all();
    ioc.stop();
  });
  const auto body = [&]() -> net::awaitable<void> {
    try {
      co_await run_steps(s, options, report, supervisor, out);
    } catch (const std::exception& ex) {
      report.setup_error = ex.what();
    }
    co_await supervisor.stop_all();
    signals.cancel();
  };
  net::co_spawn(ioc, body(), net::detached);
  ioc.run();

  report.duration = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - begin);
  if (!report.setup_error.empty()) out << "  setup failed: " << report.setup_error << '\n';
  std::size_t passed = 0;
  for (const auto& st : report.steps) passed += st.passed ? 1 : 0;
  out << "scenario " << s.name << ": " << (report.passed() ? "PASSED" : "FAILED") << " (" << passed << " of "
      << s.steps.size() << " steps passed, " << std::fixed << std::setprecision(1)
      << static_cast<double>(report.duration.count()) / 1000.0 << " s)\n"
      << std::flush;
  return report;
}

}  // namespace exbridge::scenario
