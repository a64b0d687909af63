// Scenario runner implementation.
#include "rehearse/runner/runner.hpp"

#include <csignal>
#include <iomanip>
#include <sstream>
#include <map>
#include <memory>
#include <ostream>

#include "common/errors.hpp"
#include "common/lab_pki.hpp"
#include "rehearse/clients/exo_client.hpp"
#include "rehearse/peers/exbridge/exbridge_peer.hpp"
#include "rehearse/peers/haproxy/haproxy_peer.hpp"
#include "rehearse/clients/outlook_anywhere.hpp"
#include "rehearse/runner/process_supervisor.hpp"
#include "rehearse/peers/nginx/nginx_peer.hpp"
#include "rehearse/peers/stunnel/stunnel_peer.hpp"

namespace exbridge::rehearse {

std::string step_report::verdict() const {
  if (!passed) return "failed";
  return expected == "ok" || check ? "passed" : "reproduced";
}

std::string step_report::label() const {
  const std::string v = verdict();
  return v == "passed" ? "PASS" : v == "reproduced" ? "REPRODUCED" : "FAIL";
}

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

/// Whether something accepts TCP connections at `address` within `limit` (real time): "" if so, else why not.
net::awaitable<std::string> check_reachable(host_port address, std::chrono::milliseconds limit) {
  auto executor = co_await net::this_coro::executor;
  tcp::resolver resolver(executor);
  auto [rec, endpoints] = co_await resolver.async_resolve(address.host, std::to_string(address.port), use_tuple);
  if (rec) co_return "cannot be resolved (" + rec.message() + ")";
  // Shared with the timer's handler, which may already be queued when the connect completes.
  auto socket = std::make_shared<tcp::socket>(executor);
  auto timed_out = std::make_shared<bool>(false);
  net::steady_timer bound(executor, limit);
  bound.async_wait([socket, timed_out](error_code ec) {
    if (ec) return;
    *timed_out = true;
    error_code ignored;
    socket->close(ignored);
  });
  auto [cec, endpoint] = co_await net::async_connect(*socket, endpoints, use_tuple);
  bound.cancel();
  if (*timed_out) co_return "did not accept a connection within " + std::to_string(limit.count()) + " ms";
  if (cec) co_return "refused the connection (" + cec.message() + ")";
  co_return "";
}

/// A command's program: ours (next to rehearse) by name, else on PATH; missing means the scenario is skipped.
std::filesystem::path find_command(const process_spec& p) {
  const auto ours = resolve_program(p.program);
  std::error_code ec;
  if (std::filesystem::exists(ours, ec)) return ours;
  return find_peer_program(p.name, p.program, "the package that provides " + p.program);
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
  vars["lab.expired_cert"] = pki.expired_cert.string();
  vars["lab.expired_key"] = pki.expired_key.string();
  vars["lab.wrong_name_cert"] = pki.wrong_name_cert.string();
  vars["lab.wrong_name_key"] = pki.wrong_name_key.string();
  vars["run.dir"] = report.run_dir.string();
  vars["scenario.dir"] = std::filesystem::absolute(s.file).parent_path().string();  // files shipped beside it
  vars["time_scale"] = format_scale(scale);

  std::map<std::string, prepared_haproxy> haproxies;  // by process name
  std::map<std::string, prepared_stunnel> stunnels;    // by process name
  std::map<std::string, prepared_nginx> nginxes;       // by process name
  std::map<std::string, std::string> peer_at;          // a peer's listening address -> its process name
  const auto start_process = [&](const process_spec& p) -> net::awaitable<void> {
    if (p.kind == "external") {
      // Nothing to start: the proxy under test already runs (the user's own VM, a container); check it listens.
      const host_port address = parse_host_port(substitute(p.address, vars, p.where), p.where + ": address", false);
      const std::string refusal = co_await check_reachable(address, p.ready_timeout);
      if (!refusal.empty()) {
        throw config_error(p.where + ": external process '" + p.name + "' at " + address.to_string() + " " + refusal +
                           "; start it, or fix 'address'");
      }
      vars[p.name + ".addr"] = address.to_string();
      vars[p.name + ".host"] = address.host;
      vars[p.name + ".port"] = std::to_string(address.port);
      timeline::current().instant(timeline_event::kind::process, "external " + p.name + " at " + address.to_string());
      out << "  using external " << p.name << " at " << address.to_string() << '\n' << std::flush;
      co_return;
    }
    readiness ready;
    if (p.kind == "command") {
      // The command is told its port through ${NAME.port} (a free one) unless the scenario names `address`.
      const std::string port = std::to_string(free_loopback_port());
      vars[p.name + ".port"] = port;
      vars[p.name + ".host"] = "127.0.0.1";
      vars[p.name + ".addr"] = "127.0.0.1:" + port;
      ready.listen_probe = true;
      ready.address = parse_host_port(p.address.empty() ? vars[p.name + ".addr"] : substitute(p.address, vars, p.where),
                                      p.where + ": address", false);
    }
    std::vector<std::string> args;
    for (const auto& a : p.args) args.push_back(substitute(a, vars, p.where));
    auto program = p.kind == "command" ? find_command(p) : resolve_program(p.program);
    // Our own programs keep time on the scenario's clock only when told its scale: without it their timers run
    // at real time while the client's run faster, and a timing step would pass without proving anything.
    const std::string base = program.filename().string();
    if (scale != 1 && p.kind == "program" && (base == "exbridge" || base == "fake-exchange") &&
        std::find(args.begin(), args.end(), "--time-scale") == args.end()) {
      throw config_error(p.where + ": process '" + p.name + "' runs " + base + " without --time-scale while the "
                         "scenario runs at time scale " + format_scale(scale) + ": its timeouts would run at real "
                         "time and a timing step would prove nothing; add \"--time-scale\", \"${time_scale}\" to "
                         "its args");
    }
    if (p.kind == "exbridge") {
      std::vector<std::string> upstreams;
      for (const auto& u : p.upstreams) upstreams.push_back(substitute(u, vars, p.where));
      process_spec resolved = p;
      resolved.cert = substitute(p.cert, vars, p.where);
      resolved.key = substitute(p.key, vars, p.where);
      const auto prepared = prepare_exbridge(resolved, program, upstreams, s.exchange_names.front(), pki,
                                             report.run_dir, scale);
      args = prepared.args;
      out << "  " << p.name << ": " << p.config.string() << " rewritten for the lab into " << prepared.lab_config.string()
          << '\n';
      for (const auto& change : prepared.changes) out << "        " << change << '\n';
    }
    if (p.kind == "haproxy" || p.kind == "stunnel" || p.kind == "nginx") {
      std::vector<std::string> upstreams;
      for (const auto& u : p.upstreams) upstreams.push_back(substitute(u, vars, p.where));
      process_spec resolved = p;
      resolved.cert = substitute(p.cert, vars, p.where);
      resolved.key = substitute(p.key, vars, p.where);
      const auto& name = s.exchange_names.front();
      const prepared_peer& prepared =
          p.kind == "haproxy"
              ? static_cast<const prepared_peer&>(haproxies[p.name] =
                                                      prepare_haproxy(resolved, upstreams, name, pki, report.run_dir, scale))
          : p.kind == "stunnel"
              ? static_cast<const prepared_peer&>(stunnels[p.name] =
                                                      prepare_stunnel(resolved, upstreams, name, pki, report.run_dir, scale))
              : static_cast<const prepared_peer&>(nginxes[p.name] =
                                                      prepare_nginx(resolved, upstreams, name, pki, report.run_dir, scale));
      program = prepared.program;
      args = prepared.args;
      ready = prepared.ready;
      out << "  " << p.name << ": " << p.config.string() << " rewritten for the lab into " << prepared.lab_config.string()
          << '\n';
      for (const auto& change : prepared.changes) out << "        " << change << '\n';
    }
    const auto started = co_await supervisor.start(p.name, program, args, report.run_dir / (p.name + ".log"),
                                                   p.ready_timeout, ready);
    if (p.kind == "haproxy" || p.kind == "stunnel" || p.kind == "nginx") peer_at[started.address.to_string()] = p.name;
    timeline::current().instant(timeline_event::kind::process, "started " + p.name + " on " + started.address.to_string());
    vars[p.name + ".addr"] = started.address.to_string();
    vars[p.name + ".host"] = started.address.host;
    vars[p.name + ".port"] = std::to_string(started.address.port);
    out << "  started " << p.name << " (" << program.filename().string() << ") on " << started.address.to_string()
        << ", log " << started.log_file.string() << '\n'
        << std::flush;
  };
  for (const auto& p : s.processes) {
    if (!p.deferred) co_await start_process(p);
  }

  std::size_t index = 0;
  for (const auto& st : s.steps) {
    ++index;
    step_report r{st.name, st.expect, "", "", false, {}};
    r.check = st.action == "lint" || st.action == "start" || st.action == "stop";
    const auto begin = std::chrono::steady_clock::now();
    const double begin_ms = timeline::current().now_ms();
    const auto finish = [&] {
      auto& span = timeline::current().span(timeline_event::kind::step_end, begin_ms,
                                            st.name + ": expected " + r.expected + ", got " + r.outcome);
      span.ok = r.passed;
      if (!r.passed) timeline::current().instant(timeline_event::kind::failure, r.outcome + ": " + r.explanation, 0, false);
      r.duration = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - begin);
      // A step that reproduced the failure it expects says so: it is not a working connection.
      out << "[" << index << "/" << s.steps.size() << "] " << r.label() << "  "
          << (r.verdict() == "reproduced" ? r.outcome + " (expected): " : std::string()) << r.name << '\n'
          << "        expected " << r.expected << ", got " << r.outcome << " in " << r.duration.count() << " ms\n"
          << "        " << r.explanation << '\n'
          << std::flush;
      report.steps.push_back(std::move(r));
    };
    if (st.action == "start" || st.action == "stop") {
      const auto& p = *std::find_if(s.processes.begin(), s.processes.end(),
                                    [&](const process_spec& ps) { return ps.name == st.process; });
      if (st.action == "stop") {
        const int code = co_await supervisor.stop(st.process);
        r.outcome = "ok";
        r.explanation = "stopped " + st.process + " (SIGTERM; exit status " + std::to_string(code) + ")";
      } else {
        // A process that cannot start is an outcome here (e.g. exbridge refusing an expired certificate).
        std::string refusal;
        try {
          co_await start_process(p);
        } catch (const config_error& e) {
          refusal = e.what();
        }
        r.outcome = refusal.empty() ? "ok" : "refused-to-start";
        r.explanation = refusal.empty() ? "started " + st.process + " on " + vars[st.process + ".addr"] : refusal;
      }
      r.passed = r.outcome == r.expected;
      finish();
      continue;
    }
    if (st.action == "lint") {
      const prepared_peer* peer = nullptr;
      if (const auto h = haproxies.find(st.process); h != haproxies.end()) peer = &h->second;
      if (const auto t = stunnels.find(st.process); t != stunnels.end()) peer = &t->second;
      if (const auto n = nginxes.find(st.process); n != nginxes.end()) peer = &n->second;
      if (peer == nullptr) {
        throw config_error(st.where + ": step '" + st.name + "' lints " + st.process + ", which has not been started yet");
      }
      const auto lint = summarize_lint(peer->user_config, peer->findings, st.expect_findings, st.has_expect_findings);
      r.outcome = lint.outcome;
      r.explanation = lint.explanation;
      r.passed = r.outcome == r.expected && lint.codes_match;
      finish();
      continue;
    }
    const host_port target = parse_host_port(substitute(st.connect, vars, st.where), st.where + ": connect", false);
    if (scale != 1) {
      // A proxy rehearse neither started with --time-scale nor rewrote: its timeouts run at real time.
      for (const auto& p : s.processes) {
        if ((p.kind == "command" || p.kind == "external") && vars[p.name + ".addr"] == target.to_string()) {
          throw config_error(st.where + ": step '" + st.name + "' goes through process '" + p.name + "' (kind " +
                             p.kind + "), whose timeouts do not run on rehearse's clock: at time scale " +
                             format_scale(scale) + " its results would not mean what they say; run this scenario at "
                             "--time-scale 1, or describe the proxy as kind = \"exbridge\", \"haproxy\", "
                             "\"stunnel\" or \"nginx\" so that rehearse scales it");
        }
      }
    }
    client_settings cs;
    cs.host = target.host;
    cs.port = target.port;
    cs.server_name = substitute(st.server_name, vars, st.where);
    cs.trust = st.trust == "system" ? tls_verify::system : tls_verify::ca_file;
    cs.ca_file = pki.ca_cert.string();
    if (st.trust.starts_with("ca:")) {
      // A CA file of the administrator's own (a proxy started outside rehearse); relative to the scenario file.
      std::filesystem::path ca = substitute(st.trust.substr(3), vars, st.where);
      if (ca.is_relative()) ca = std::filesystem::path(vars["scenario.dir"]) / ca;
      if (!std::filesystem::is_regular_file(ca)) {
        throw config_error(st.where + ": trust = \"ca:" + ca.string() + "\": no such file; name the CA that issued the "
                           "proxy's certificate (PEM)");
      }
      cs.ca_file = ca.string();
    }
    cs.email = substitute(st.email, vars, st.where);
    cs.password = substitute(st.password, vars, st.where);
    cs.auth = st.auth;
    cs.ntlm_domain = st.ntlm_domain;
    cs.autodiscover = st.autodiscover;
    cs.autodiscover_email = substitute(st.autodiscover_email, vars, st.where);
    for (const auto& [name, to] : st.resolve) {
      cs.resolve[name] = parse_host_port(substitute(to, vars, st.where), st.where + ": resolve " + name, false).to_string();
    }
    cs.ews_requests = st.ews_requests;
    cs.action = st.action;
    cs.manifest_file = substitute(st.manifest, vars, st.where);
    cs.page_size = st.page_size;
    cs.listing = st.listing;
    cs.batch = st.batch;
    cs.request_timeout = st.request_timeout;
    cs.retries = st.retries;
    cs.backoff_base = st.backoff;
    cs.rpc_server = st.rpc_server;
    cs.transport = st.transport;
    cs.no_progress_limit = st.no_progress_limit;
    cs.in_channel_bytes = st.in_channel_bytes;
    cs.idle = st.idle;
    cs.ping_interval = st.ping_interval;
    // Through HAProxy, stunnel or nginx, its log explains what the client saw; note where this step's part of it begins.
    const auto via = peer_at.find(target.to_string());
    // nginx writes what explains a step to its error log, the others to their output.
    const auto log_file = via == peer_at.end()                    ? std::filesystem::path()
                          : nginxes.count(via->second) != 0 ? nginxes.at(via->second).error_log
                                                                  : report.run_dir / (via->second + ".log");
    std::error_code size_ec;
    const auto log_start = log_file.empty() ? 0 : std::filesystem::file_size(log_file, size_ec);
    probe_result result;
    if (st.action == "outlook-anywhere") {
      result = co_await run_outlook_anywhere(cs);
    } else {
      result = co_await run_mailboxes(cs, st.mailboxes);
    }
    if (via != peer_at.end() && result.outcome != "ok" && nginxes.count(via->second) != 0) {
      result = diagnose_through_nginx(std::move(result), read_file(log_file, log_start), nginxes.at(via->second));
    } else if (via != peer_at.end() && result.outcome != "ok" && stunnels.count(via->second) != 0) {
      result = diagnose_through_stunnel(std::move(result), read_file(log_file, log_start), stunnels.at(via->second));
    } else if (via != peer_at.end() && result.outcome != "ok") {
      // HAProxy logs a request when its stream ends, a moment after the client got the answer.
      std::string step_log;
      for (int wait = 0; wait < 10; ++wait) {
        step_log = read_file(log_file, log_start);
        if (has_request_log(step_log)) break;
        net::steady_timer settle(co_await net::this_coro::executor, std::chrono::milliseconds(50));
        co_await settle.async_wait(use_tuple);
      }
      result = diagnose_through_haproxy(std::move(result), step_log, read_file(log_file, 0), haproxies.at(via->second));
    }
    r.outcome = result.outcome;
    r.explanation = result.explanation;
    r.metrics = std::move(result.metrics);
    r.passed = r.outcome == r.expected;
    finish();
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
  timeline::current().reset();
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
    } catch (const skip_scenario& ex) {
      report.skipped = ex.what();
    } catch (const std::exception& ex) {
      report.setup_error = ex.what();
    }
    co_await supervisor.stop_all();
    signals.cancel();
  };
  net::co_spawn(ioc, body(), net::detached);
  ioc.run();

  report.duration = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - begin);
  report.events = timeline::current().events();
  if (!report.skipped.empty()) {
    out << "scenario " << s.name << ": SKIPPED (" << report.skipped << ")\n" << std::flush;
    return report;
  }
  if (!report.setup_error.empty()) out << "  setup failed: " << report.setup_error << '\n';
  std::size_t passed = 0;
  for (const auto& st : report.steps) passed += st.passed ? 1 : 0;
  out << "scenario " << s.name << ": " << (report.passed() ? "PASSED" : "FAILED") << " (" << passed << " of "
      << s.steps.size() << " steps passed, " << std::fixed << std::setprecision(1)
      << static_cast<double>(report.duration.count()) / 1000.0 << " s)\n"
      << std::flush;
  return report;
}

}  // namespace exbridge::rehearse
