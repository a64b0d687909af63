// Process supervision implementation.
#include "rehearse/runner/process_supervisor.hpp"

#include <boost/process/v2/stdio.hpp>

#include <sys/prctl.h>
#include <unistd.h>

#include <boost/asio/local/datagram_protocol.hpp>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <fstream>
#include <functional>
#include <sstream>

#include "common/errors.hpp"
#include "common/log.hpp"

namespace bp = boost::process::v2;

namespace exbridge::rehearse {
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
  /// The sd_notify socket of a child started with readiness.notify_socket: open until it exits.
  std::shared_ptr<net::local::datagram_protocol::socket> notify;
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

// After readiness, whatever the child prints on stdout goes on into its log file. `on_end` runs when
// the child closes its stdout (it exited).
net::awaitable<void> drain(std::shared_ptr<void> /*keeps the pipe and file alive*/, net::readable_pipe& pipe,
                           std::FILE* log, std::function<void()> on_end) {
  std::array<char, 4096> buf;
  for (;;) {
    auto [ec, n] = co_await pipe.async_read_some(net::buffer(buf), use_tuple);
    if (n > 0) {
      std::fwrite(buf.data(), 1, n, log);
      std::fflush(log);
    }
    if (ec) break;
  }
  if (on_end) on_end();
}

/// Whether an sd_notify datagram (newline-separated assignments) carries `assignment`, e.g. "READY=1".
bool notify_says(std::string_view message, std::string_view assignment) {
  while (!message.empty()) {
    const auto end = message.find('\n');
    if (message.substr(0, end) == assignment) return true;
    message = end == message.npos ? std::string_view() : message.substr(end + 1);
  }
  return false;
}

/// Whether a TCP socket listens on `port` (any address), from the kernel's tables: lines of
/// "sl local_address(hex IP:hex port) rem_address st(0A = LISTEN) ...".
bool port_listens(unsigned short port) {
  for (const char* table : {"/proc/net/tcp", "/proc/net/tcp6"}) {
    std::ifstream in(table);
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
      std::istringstream fields(line);
      std::string sl, local, remote, state;
      fields >> sl >> local >> remote >> state;
      const auto colon = local.rfind(':');
      if (state == "0A" && colon != std::string::npos && std::stoul(local.substr(colon + 1), nullptr, 16) == port) {
        return true;
      }
    }
  }
  return false;
}

}  // namespace

net::awaitable<started_process> process_supervisor::start(std::string name, std::filesystem::path program,
                                                          std::vector<std::string> args,
                                                          std::filesystem::path log_file,
                                                          std::chrono::milliseconds ready_timeout, readiness ready) {
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
  const bool by_notify = !ready.notify_socket.empty();
  std::shared_ptr<net::local::datagram_protocol::socket> notify;
  if (by_notify) {
    notify = std::make_shared<net::local::datagram_protocol::socket>(executor_);
    error_code nec;
    notify->open(net::local::datagram_protocol(), nec);
    if (!nec) notify->bind(notify_socket_endpoint(ready.notify_socket), nec);
    if (nec) throw config_error("process '" + name + "': cannot open its sd_notify socket: " + nec.message());
  }
  // The child inherits NOTIFY_SOCKET only when it is to use it (the runner is single-threaded, so setting
  // it around the launch is safe); a NOTIFY_SOCKET of rehearse's own (under systemd) never leaks to children.
  const char* inherited = std::getenv("NOTIFY_SOCKET");
  const std::string saved = inherited == nullptr ? std::string() : inherited;
  if (by_notify) ::setenv("NOTIFY_SOCKET", ready.notify_socket.c_str(), 1);
  else ::unsetenv("NOTIFY_SOCKET");
  c->proc.emplace(executor_, bp::filesystem::path(program.string()), args,
                  bp::process_stdio{nullptr, *c->out, c->log}, die_with_parent{});
  if (inherited != nullptr) ::setenv("NOTIFY_SOCKET", saved.c_str(), 1);
  else ::unsetenv("NOTIFY_SOCKET");
  children_.push_back(c);

  std::string line_buffer;
  net::steady_timer deadline(executor_);  // a harness bound in real time, not a scenario timeout
  deadline.expires_after(ready_timeout);
  struct wait_state {
    bool ready = false;
    bool timed_out = false;
  };
  auto state = std::make_shared<wait_state>();
  deadline.async_wait([c, state, notify](error_code wec) {
    if (wec || state->ready) return;
    state->timed_out = true;
    error_code ignored;
    if (notify) notify->close(ignored);
    else c->out->close(ignored);
  });
  std::string ready_line;
  if (ready.listen_probe) {
    auto exited = std::make_shared<bool>(false);
    net::co_spawn(executor_, drain(c, *c->out, c->log, [exited] { *exited = true; }), net::detached);
    net::steady_timer poll(executor_);  // real time: a readiness poll of a program that cannot signal
    while (!state->timed_out && !*exited) {
      if (port_listens(ready.address.port)) {
        ready_line = "listening on port " + std::to_string(ready.address.port);
        break;
      }
      poll.expires_after(std::chrono::milliseconds(20));
      co_await poll.async_wait(use_tuple);
    }
  } else if (by_notify) {
    // The child's output goes to its log as it comes; its exit (stdout closed) ends the wait.
    net::co_spawn(executor_, drain(c, *c->out, c->log, [notify] {
                    error_code ignored;
                    notify->close(ignored);
                  }),
                  net::detached);
    std::array<char, 512> datagram;
    for (;;) {
      auto [rec, n] = co_await notify->async_receive(net::buffer(datagram), use_tuple);
      if (rec) break;
      if (notify_says(std::string_view(datagram.data(), n), "READY=1")) {
        ready_line = "READY=1";
        break;
      }
    }
  } else {
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
  }
  state->ready = !ready_line.empty();
  deadline.cancel();
  const bool timed_out = state->timed_out;

  if (ready_line.empty()) {
    const std::string silent = ready.listen_probe ? "did not listen on port " + std::to_string(ready.address.port) + " within "
                               : by_notify        ? "sent no READY=1 within "
                                                  : "printed no readiness line within ";
    std::string why = timed_out ? silent + std::to_string(ready_timeout.count()) + " ms" : "exited before it was ready";
    if (!timed_out) {
      error_code ignored;
      c->proc->wait(ignored);
      c->exited = true;
      c->exit_code = c->proc->exit_code();
      why += " (exit code " + std::to_string(c->exit_code) + ")";
    }
    throw config_error("process '" + name + "' " + why + "; last lines of " + log_file.string() + ":\n" +
                       tail(log_file, 8));
  }
  if (ready.listen_probe) co_return started_process{name, log_file, ready.address};
  if (by_notify) {
    c->notify = notify;  // later datagrams (RELOADING=1, READY=1, STOPPING=1): see wait_notify
    co_return started_process{name, log_file, ready.address};
  }
  // "listening <kind> <host>:<port>"
  const auto last_space = ready_line.rfind(' ');
  started_process started{name, log_file, parse_host_port(ready_line.substr(last_space + 1), "readiness line of " + name)};
  if (!line_buffer.empty()) std::fwrite(line_buffer.data(), 1, line_buffer.size(), c->log);
  net::co_spawn(executor_, drain(c, *c->out, c->log, nullptr), net::detached);
  co_return started;
}

std::filesystem::path find_on_path(const std::string& name) {
  std::vector<std::string> dirs;
  if (const char* path = std::getenv("PATH")) {
    std::string_view rest(path);
    while (!rest.empty()) {
      const auto colon = rest.find(':');
      dirs.emplace_back(rest.substr(0, colon));
      rest = colon == rest.npos ? std::string_view() : rest.substr(colon + 1);
    }
  }
  dirs.insert(dirs.end(), {"/usr/sbin", "/usr/local/sbin", "/sbin"});
  for (const auto& dir : dirs) {
    if (dir.empty()) continue;
    const std::filesystem::path candidate = std::filesystem::path(dir) / name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return {};
}

net::awaitable<std::optional<std::string>> process_supervisor::wait_notify(std::string name, std::string assignment,
                                                                          std::chrono::milliseconds limit) {
  const child* c = running(name);
  const auto notify = c != nullptr ? c->notify : nullptr;
  if (!notify) throw config_error("process '" + name + "' is not running with an sd_notify socket");
  // A harness bound in real time. `done` keeps a timer that expired in the same turn as the answer from
  // cancelling the next wait on this shared socket.
  auto timer = std::make_shared<net::steady_timer>(executor_);
  auto done = std::make_shared<bool>(false);
  timer->expires_after(limit);
  timer->async_wait([notify, done](error_code ec) {
    if (!ec && !*done) notify->cancel();
  });
  std::array<char, 512> datagram;
  for (;;) {
    auto [ec, n] = co_await notify->async_receive(net::buffer(datagram), use_tuple);
    if (ec) co_return std::nullopt;  // the bound passed, or the process exited
    std::string message(datagram.data(), n);
    if (notify_says(message, assignment)) {
      *done = true;
      timer->cancel();
      co_return message;
    }
  }
}

void process_supervisor::signal(const std::string& name, int sig) {
  const int id = pid(name);
  if (id <= 0) throw config_error("cannot signal process '" + name + "': it is not running");
  ::kill(id, sig);
}

process_supervisor::child* process_supervisor::running(const std::string& name) const {
  for (const auto& c : children_) {
    if (c->name == name && !c->exited) return c.get();
  }
  return nullptr;
}

int process_supervisor::pid(const std::string& name) const {
  const child* c = running(name);
  return c != nullptr && c->proc ? c->proc->id() : -1;
}

net::awaitable<void> process_supervisor::stop_all() {
  for (auto it = children_.rbegin(); it != children_.rend(); ++it) co_await stop_child(**it);
}

net::awaitable<int> process_supervisor::stop(const std::string& name) {
  child* c = running(name);
  if (c == nullptr) throw config_error("cannot stop process '" + name + "': it is not running");
  co_await stop_child(*c);
  co_return c->exit_code;
}

net::awaitable<void> process_supervisor::stop_child(child& c) {
  error_code ec;
  if (!c.proc || c.exited || !c.proc->running(ec)) co_return;
  c.proc->request_exit(ec);  // SIGTERM: the servers stop accepting and exit
  net::steady_timer bound(executor_);  // real time: a teardown bound, not a scenario timeout
  bound.expires_after(std::chrono::seconds(5));
  auto killed = std::make_shared<bool>(false);
  bound.async_wait([&c, killed](error_code wec) {
    if (wec || c.exited) return;
    *killed = true;
    error_code kec;
    c.proc->terminate(kec);
  });
  auto [wec, code] = co_await c.proc->async_wait(use_tuple);
  c.exited = true;
  bound.cancel();
  c.exit_code = code;
  if (*killed) log_warn(cat("process '", c.name, "' did not stop within 5 s of SIGTERM and was killed"));
}

}  // namespace exbridge::rehearse
