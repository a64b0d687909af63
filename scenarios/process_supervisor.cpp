// Process supervision implementation.
#include "scenarios/process_supervisor.hpp"

#include <boost/process/v2/stdio.hpp>

#include <sys/prctl.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <deque>
#include <fstream>

#include "common/errors.hpp"
#include "common/log.hpp"

namespace bp = boost::process::v2;

namespace exbridge::scenario {
namespace {

/// Launcher hook: the child gets SIGTERM when rehearse dies (even by SIGKILL), so nothing lingers.
struct die_with_parent {
  template <class Launcher>
  error_code on_exec_setup(Launcher&, const bp::filesystem::path&, const char* const*&) {
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    return {};
  }
};

}  // namespace

struct process_supervisor::child {
  std::string name;
  std::filesystem::path log_file;
  std::FILE* log = nullptr;
  std::optional<bp::process> proc;
  std::optional<net::readable_pipe> out;
  bool exited = false;
  int exit_code = 0;
  ~child() {
    if (log != nullptr) std::fclose(log);
  }
};

process_supervisor::process_supervisor(net::any_io_executor executor) : executor_(std::move(executor)) {}

process_supervisor::~process_supervisor() { kill_all(); }

void process_supervisor::kill_all() {
  for (auto& c : children_) {
    error_code ec;
    if (c->proc && !c->exited && c->proc->running(ec)) c->proc->terminate(ec);
    c->exited = true;
  }
}

std::filesystem::path resolve_program(const std::string& program) {
  std::filesystem::path p(program);
  if (p.is_absolute()) return p;
  std::error_code ec;
  const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  return (ec ? std::filesystem::current_path() : self.parent_path()) / p;
}

std::string process_supervisor::tail(const std::filesystem::path& file, std::size_t lines) {
  std::ifstream in(file);
  std::deque<std::string> last;
  for (std::string line; std::getline(in, line);) {
    last.push_back(line);
    if (last.size() > lines) last.pop_front();
  }
  std::string out;
  for (const auto& l : last) out += "    | " + l + "\n";
  return out.empty() ? "    | (no output)\n" : out;
}

namespace {

// After readiness, whatever the child prints on stdout goes on into its log file.
net::awaitable<void> drain(std::shared_ptr<void> /*keeps the pipe and file alive*/, net::readable_pipe& pipe,
                           std::FILE* log) {
  std::array<char, 4096> buf;
  for (;;) {
    auto [ec, n] = co_await pipe.async_read_some(net::buffer(buf), use_tuple);
    if (n > 0) {
      std::fwrite(buf.data(), 1, n, log);
      std::fflush(log);
    }
    if (ec) co_return;
  }
}

}  // namespace

net::awaitable<started_process> process_supervisor::start(std::string name, std::filesystem::path program,
                                                          std::vector<std::string> args,
                                                          std::filesystem::path log_file,
                                                          std::chrono::milliseconds ready_timeout) {
  auto c = std::make_shared<child>();
  c->name = name;
  c->log_file = log_file;
  if (!std::filesystem::exists(program)) {
    throw config_error("process '" + name + "': program " + program.string() +
                       " does not exist; build the project first (cmake --build build)");
  }
  c->log = std::fopen(log_file.c_str(), "a");
  if (c->log == nullptr) throw config_error("cannot write log file " + log_file.string());
  c->out.emplace(executor_);
  error_code ec;
  c->proc.emplace(executor_, bp::filesystem::path(program.string()), args,
                  bp::process_stdio{nullptr, *c->out, c->log}, die_with_parent{});
  children_.push_back(c);

  std::string line_buffer;
  net::steady_timer deadline(executor_);  // a harness bound in real time, not a scenario timeout
  deadline.expires_after(ready_timeout);
  struct wait_state {
    bool ready = false;
    bool timed_out = false;
  };
  auto state = std::make_shared<wait_state>();
  deadline.async_wait([c, state](error_code wec) {
    if (wec || state->ready) return;
    state->timed_out = true;
    error_code ignored;
    c->out->close(ignored);
  });
  std::string ready_line;
  for (;;) {
    auto [rec, n] = co_await net::async_read_until(*c->out, net::dynamic_buffer(line_buffer), '\n', use_tuple);
    if (rec) break;
    ready_line = line_buffer.substr(0, n - 1);
    line_buffer.erase(0, n);
    std::fprintf(c->log, "%s\n", ready_line.c_str());
    std::fflush(c->log);
    if (ready_line.rfind("listening ", 0) == 0) break;
    ready_line.clear();
  }
  state->ready = !ready_line.empty();
  deadline.cancel();
  const bool timed_out = state->timed_out;

  if (ready_line.empty()) {
    std::string why = timed_out ? "printed no readiness line within " + std::to_string(ready_timeout.count()) + " ms"
                                : "exited before it was ready";
    if (!timed_out) {
      c->proc->wait(ec);
      c->exited = true;
      c->exit_code = c->proc->exit_code();
      why += " (exit code " + std::to_string(c->exit_code) + ")";
    }
    throw config_error("process '" + name + "' " + why + "; last lines of " + log_file.string() + ":\n" +
                       tail(log_file, 8));
  }
  // "listening <kind> <host>:<port>"
  const auto last_space = ready_line.rfind(' ');
  started_process started{name, log_file, parse_host_port(ready_line.substr(last_space + 1), "readiness line of " + name)};
  if (!line_buffer.empty()) std::fwrite(line_buffer.data(), 1, line_buffer.size(), c->log);
  net::co_spawn(executor_, drain(c, *c->out, c->log), net::detached);
  co_return started;
}

net::awaitable<void> process_supervisor::stop_all() {
  for (auto it = children_.rbegin(); it != children_.rend(); ++it) {
    auto& c = **it;
    error_code ec;
    if (!c.proc || c.exited || !c.proc->running(ec)) continue;
    c.proc->request_exit(ec);  // SIGTERM: the servers stop accepting and exit
    net::steady_timer bound(executor_);  // real time: a teardown bound, not a scenario timeout
    bound.expires_after(std::chrono::seconds(5));
    auto killed = std::make_shared<bool>(false);
    bound.async_wait([child = *it, killed](error_code wec) {
      if (wec || child->exited) return;
      *killed = true;
      error_code kec;
      child->proc->terminate(kec);
    });
    auto [wec, code] = co_await c.proc->async_wait(use_tuple);
    c.exited = true;
    bound.cancel();
    c.exit_code = code;
    if (*killed) log_warn(cat("process '", c.name, "' did not stop within 5 s of SIGTERM and was killed"));
  }
}

}  // namespace exbridge::scenario
