// sd_notify over a connected AF_UNIX datagram socket (see service_notify.hpp).
#include "proxy/service/service_notify.hpp"

#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>

#include "common/log.hpp"
#include "common/net.hpp"

namespace exbridge::proxy {

service_notifier::service_notifier() {
  const char* name = std::getenv("NOTIFY_SOCKET");
  if (name == nullptr || *name == '\0') return;
  const std::string path(name);
  const bool named = path.front() == '/' || path.front() == '@';
  if (!named || path.size() >= sizeof sockaddr_un{}.sun_path) {
    log_warn(cat("NOTIFY_SOCKET=", path, " is not a socket path or an abstract name (@...): exbridge cannot tell ",
                 "systemd it is ready; use Type=simple in the unit, or let systemd set NOTIFY_SOCKET"));
    return;
  }
  const auto address = notify_socket_endpoint(path);
  fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  // systemd reads its socket promptly; a send that still finds the queue full waits up to a second (as
  // libsystemd's blocking send would) rather than drop READY=1 or STOPPING=1.
  const timeval bound{.tv_sec = 1, .tv_usec = 0};
  if (fd_ >= 0 && ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &bound, sizeof bound) == 0 &&
      ::connect(fd_, address.data(), address.size()) == 0) {
    return;
  }
  log_warn(cat("NOTIFY_SOCKET=", path, ": cannot connect (", std::strerror(errno), "): exbridge cannot tell systemd ",
               "it is ready, and a Type=notify unit will time out; use Type=simple, or check the unit's sandboxing"));
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

service_notifier::~service_notifier() {
  if (fd_ >= 0) ::close(fd_);
}

void service_notifier::send(std::string_view state) const {
  if (fd_ < 0) return;
  if (::send(fd_, state.data(), state.size(), MSG_NOSIGNAL) < 0) {
    log_warn(cat("sd_notify: cannot send '", state.substr(0, state.find('\n')), "' (", std::strerror(errno), ")"));
  }
}

void service_notifier::reloading() const {
  timespec now{};
  ::clock_gettime(CLOCK_MONOTONIC, &now);
  const long long usec = static_cast<long long>(now.tv_sec) * 1000000 + now.tv_nsec / 1000;
  send(cat("RELOADING=1\nMONOTONIC_USEC=", usec, "\nSTATUS=reloading"));
}

}  // namespace exbridge::proxy
