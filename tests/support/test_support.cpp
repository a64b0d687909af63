// Test fixture implementations.
#include "tests/support/test_support.hpp"

#include <fstream>

#include <boost/process/v2/process.hpp>
#include <boost/process/v2/stdio.hpp>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <unistd.h>

#include "common/tls_context.hpp"
#include "common/tls_diagnosis.hpp"

namespace bp = boost::process::v2;

namespace exbridge::test {

const lab_pki& test_pki() {
  // ctest runs every test in a process of its own, and a lab PKI is five 2048-bit RSA keys (about a second of
  // CPU): the processes of one build share one, made by the first that needs it (under a file lock) and made
  // again once a day, so that its expired and valid certificates stay what their names say.
  static const lab_pki pki = [] {
    const auto dir = std::filesystem::path(EXBRIDGE_BIN_DIR).parent_path() / "test-pki";
    std::filesystem::create_directories(dir);
    const int lock = ::open((dir / ".lock").c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0600);
    if (lock < 0 || ::flock(lock, LOCK_EX) != 0) throw std::runtime_error("cannot lock " + dir.string());
    const auto stamp = dir / "made";
    std::error_code ec;
    const auto made = std::filesystem::last_write_time(stamp, ec);
    lab_pki out;
    if (!ec && std::filesystem::file_time_type::clock::now() - made < std::chrono::hours(24)) {
      out = lab_pki_files(dir);
    } else {
      out = write_lab_pki(dir, {"mail.contoso.example", "localhost"}, {"ex2007.contoso.example", "localhost"});
      write_file(stamp, "");
    }
    ::close(lock);  // releases the lock
    return out;
  }();
  return pki;
}

void raise_fd_limit(std::uint64_t n) {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur >= n) return;
  limit.rlim_cur = limit.rlim_max == RLIM_INFINITY ? n : std::min<rlim_t>(n, limit.rlim_max);
  ::setrlimit(RLIMIT_NOFILE, &limit);
}

namespace {
void note_server_extension(SSL*, int client_server, int type, const unsigned char*, int, void* arg) {
  if (client_server == 1) static_cast<std::vector<int>*>(arg)->push_back(type);
}
}  // namespace

handshake_outcome handshake(ssl::context& server, ssl::context& client, const std::string& server_name,
                            bool check_name) {
  net::io_context ioc;
  tcp::acceptor acceptor(ioc, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
  handshake_outcome out;
  ssl::stream<tcp::socket> server_stream(ioc, server);
  ssl::stream<tcp::socket> client_stream(ioc, client);
  net::co_spawn(
      ioc,
      [&]() -> net::awaitable<void> {
        auto [ec, socket] = co_await acceptor.async_accept(use_tuple);
        server_stream.next_layer() = std::move(socket);
        std::tie(out.server_error) = co_await server_stream.async_handshake(ssl::stream_base::server, use_tuple);
        if (out.server_error) server_stream.next_layer().close();
      },
      net::detached);
  net::co_spawn(
      ioc,
      [&]() -> net::awaitable<void> {
        co_await client_stream.next_layer().async_connect(acceptor.local_endpoint(), use_tuple);
        prepare_client_tls(client_stream.native_handle(), server_name, check_name);
        // client_server 1: an extension the server sent.
        SSL_set_tlsext_debug_arg(client_stream.native_handle(), &out.server_extensions);
        SSL_set_tlsext_debug_callback(client_stream.native_handle(), note_server_extension);
        std::tie(out.client_error) = co_await client_stream.async_handshake(ssl::stream_base::client, use_tuple);
        if (!out.client_error) out.client_session = describe_session(client_stream.native_handle());
        client_stream.next_layer().close();
      },
      net::detached);
  ioc.run_for(std::chrono::seconds(20));
  out.diagnosis = std::string(failure_name(diagnose_tls_failure(out.client_error, client_stream.native_handle(), "server").kind));
  return out;
}

command_result run_command(const std::string& program, const std::vector<std::string>& args) {
  net::io_context ioc;
  int fds[2];
  if (::pipe(fds) != 0) throw std::runtime_error("pipe failed");
  net::readable_pipe out(ioc, fds[0]);
  command_result result;
  // stdout and stderr share one pipe, as a person at a terminal would see them.
  bp::process proc(ioc, program, args, bp::process_stdio{nullptr, fds[1], fds[1]});
  ::close(fds[1]);
  std::string text;
  error_code ec;
  net::read(out, net::dynamic_buffer(text), ec);
  result.exit_code = proc.wait();
  result.output = text;
  return result;
}

std::filesystem::path write_temp_file(const std::string& name, const std::string& text) {
  const auto path = std::filesystem::temp_directory_path() / ("exbridge-" + std::to_string(::getpid()) + "-" + name);
  std::ofstream(path) << text;
  return path;
}

std::string program_path(const std::string& name) { return std::string(EXBRIDGE_BIN_DIR) + "/" + name; }

std::uint64_t env_knob(const char* name, std::uint64_t fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != 0 ? std::strtoull(v, nullptr, 10) : fallback;
}

unsigned bridge_test_threads() { return static_cast<unsigned>(std::min<std::uint64_t>(env_knob("EXBRIDGE_TEST_THREADS", 0), 64)); }

}  // namespace exbridge::test
