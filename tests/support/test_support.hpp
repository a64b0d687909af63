// Shared test fixtures: a lab PKI made once per test binary, an io_context on a background thread,
// and a way to run a coroutine on it and wait for its result (no sleeps: futures and readiness only).
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <future>
#include <vector>
#include <thread>

#include "common/lab_pki.hpp"
#include "common/net.hpp"

namespace exbridge::test {

/// The lab PKI for this test binary (generated on first use in a temporary folder).
const lab_pki& test_pki();

/// An io_context running on its own thread (or `threads` threads, as exbridge runs its loop) for the
/// lifetime of the object.
class io_thread {
 public:
  explicit io_thread(unsigned threads = 1) : guard_(net::make_work_guard(ioc_)) {
    for (unsigned i = 0; i < std::max(1u, threads); ++i) threads_.emplace_back([this] { ioc_.run(); });
  }
  ~io_thread() { stop(); }
  /// Stops the loop and joins the threads; objects the loop's coroutines refer to may be destroyed after.
  void stop() {
    guard_.reset();
    ioc_.stop();
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
  }
  net::io_context& context() { return ioc_; }
  /// How many threads run the loop (a bridge on it is told, as exbridge's main tells it: see bridge::accept_loop).
  unsigned threads() const { return static_cast<unsigned>(threads_.size()); }

  /// Runs `op` on the io_context and waits (up to `limit`) for its result.
  template <class T>
  T run(net::awaitable<T> op, std::chrono::seconds limit = std::chrono::seconds(30)) {
    auto future = net::co_spawn(ioc_, std::move(op), net::use_future);
    if (future.wait_for(limit) != std::future_status::ready) {
      ADD_FAILURE() << "operation did not finish within " << limit.count() << " s";
      throw std::runtime_error("timeout");
    }
    return future.get();
  }

 private:
  net::io_context ioc_;
  net::executor_work_guard<net::io_context::executor_type> guard_;
  std::vector<std::thread> threads_;
};

/// EXBRIDGE_TEST_THREADS: when set to N >= 1, the in-process exbridge of the integration tests (bridge_lab,
/// BridgeTest) runs on its own io_context with N threads, as exbridge's main runs it, instead of sharing the
/// test's single-threaded loop with the clients and upstreams. The tsan preset sets it (a race needs two
/// threads to be seen); 0 or unset keeps the shared loop.
unsigned bridge_test_threads();

/// Outcome of a TLS handshake between two contexts over loopback.
struct handshake_outcome {
  error_code client_error;
  error_code server_error;
  std::string client_session;  ///< "TLSv1 AES128-SHA" on success
  std::string diagnosis;       ///< failure_name() of the client's error ("ok" on success)
  std::vector<int> server_extensions;  ///< TLS extension types in the server's hello, as the client read them
};

/// Performs one handshake: `client` connects to a listener using `server`. `server_name` is used for SNI
/// and, when `check_name`, for host-name verification.
handshake_outcome handshake(ssl::context& server, ssl::context& client, const std::string& server_name = "localhost",
                            bool check_name = false);

/// Runs a program and captures its exit code and combined output (for command-line error tests).
struct command_result {
  int exit_code = -1;
  std::string output;
};
command_result run_command(const std::string& program, const std::vector<std::string>& args);

/// Raises this process's soft RLIMIT_NOFILE (inherited by the programs it runs) to at least `n`, as far as
/// the hard limit allows, so that `exbridge --check`'s fd-limit warning does not depend on the CI shell.
void raise_fd_limit(std::uint64_t n);

/// Writes `text` to a file named after `name` and this process in the temporary folder; returns its path.
std::filesystem::path write_temp_file(const std::string& name, const std::string& text);

/// A size knob of a heavy test: the environment variable `name` as a number, else `fallback` (ctest's slow.*
/// entries set the full sizes; the CI-size default still proves the property).
std::uint64_t env_knob(const char* name, std::uint64_t fallback);

/// Absolute path of a built program (build/bin/NAME).
std::string program_path(const std::string& name);

/// An EWS GetFolder(inbox) SOAP request body, as the migration service sends it.
inline std::string get_inbox_soap() {
  return "<soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\" "
         "xmlns:t=\"http://schemas.microsoft.com/exchange/services/2006/types\" "
         "xmlns:m=\"http://schemas.microsoft.com/exchange/services/2006/messages\"><soap:Body><m:GetFolder>"
         "<m:FolderShape><t:BaseShape>Default</t:BaseShape></m:FolderShape><m:FolderIds>"
         "<t:DistinguishedFolderId Id=\"inbox\"/></m:FolderIds></m:GetFolder></soap:Body></soap:Envelope>";
}


}  // namespace exbridge::test
