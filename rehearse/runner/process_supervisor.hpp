// Starts the programs a scenario names (Boost.Process v2, on the runner's io_context), waits for each
// one's readiness -- the line "listening <name> <host>:<port>" (our programs), systemd's READY=1 on
// an sd_notify socket (HAProxy in -Ws mode, which prints nothing when ready), or its port listening (stunnel,
// any command) -- keeps every byte they
// print in a log file, and always stops them: SIGTERM, a bounded wait, then SIGKILL. Children also die
// if rehearse itself dies.
#pragma once

#include <boost/process/v2/process.hpp>

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/cli.hpp"
#include "common/net.hpp"

namespace exbridge::rehearse {

struct started_process {
  std::string name;
  std::filesystem::path log_file;
  host_port address;  ///< from the readiness line
};

/// How a process says it is ready.
struct readiness {
  /// Empty: the readiness line on stdout. Otherwise the NOTIFY_SOCKET given to the child (an abstract
  /// socket name when it starts with '@'), on which it sends READY=1; `address` is then where it listens.
  std::string notify_socket;
  host_port address;
  /// The child prints nothing that says it listens (stunnel logs success before it binds; any command): it
  /// is ready once `address`'s port is in the kernel's LISTEN state (/proc/net/tcp, tcp6), checked every
  /// 20 ms. No probe connection is made, so the child logs nothing spurious.
  bool listen_probe = false;
};

class process_supervisor {
 public:
  explicit process_supervisor(net::any_io_executor executor);
  ~process_supervisor();  ///< kills whatever is still running (last resort; prefer stop_all)
  process_supervisor(const process_supervisor&) = delete;
  process_supervisor& operator=(const process_supervisor&) = delete;

  /// Starts `program` and waits up to `ready_timeout` (real time) for its readiness line. Throws
  /// config_error naming the process, why it is not ready and the last lines of its log.
  net::awaitable<started_process> start(std::string name, std::filesystem::path program,
                                        std::vector<std::string> args, std::filesystem::path log_file,
                                        std::chrono::milliseconds ready_timeout, readiness ready = {});

  /// Stops every process (in reverse start order) and reports how each ended.
  net::awaitable<void> stop_all();

  /// Stops one process (SIGTERM, then SIGKILL after 5 s) and returns its exit status. Throws config_error
  /// when no running process has that name.
  net::awaitable<int> stop(const std::string& name);

  /// Waits (up to `limit`, real time) for the next sd_notify datagram of a process started with
  /// readiness.notify_socket that carries `assignment` ("READY=1" after a SIGHUP, say) and returns the whole
  /// datagram; nullopt when none came in time or the process exited. Earlier datagrams are read and skipped.
  net::awaitable<std::optional<std::string>> wait_notify(std::string name, std::string assignment,
                                                         std::chrono::milliseconds limit);

  /// Sends `signal` to a running process (SIGHUP: reload). Throws config_error when none has that name.
  void signal(const std::string& name, int signal);
  /// The process id of a running process, or -1.
  int pid(const std::string& name) const;

  /// SIGKILLs every process still running (Ctrl-C path; no waiting).
  void kill_all();

  /// The last `lines` lines of a log file (for failure messages).
  static std::string tail(const std::filesystem::path& file, std::size_t lines);

 private:
  struct child;
  /// The first child of that name that has not exited, or null.
  child* running(const std::string& name) const;
  net::awaitable<void> stop_child(child& c);
  net::any_io_executor executor_;
  std::vector<std::shared_ptr<child>> children_;
};

/// Finds a program: an absolute path as is, else next to the running rehearse binary.
std::filesystem::path resolve_program(const std::string& program);

/// Finds a peer program by name on PATH, then in /usr/sbin and /usr/local/sbin (Debian puts haproxy
/// there, outside an ordinary user's PATH). An empty path when it is not installed.
std::filesystem::path find_on_path(const std::string& name);

}  // namespace exbridge::rehearse
