// File-descriptor limit and privilege dropping (see privileges.hpp).
#include "proxy/service/privileges.hpp"

#include <grp.h>
#include <pwd.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "common/errors.hpp"
#include "common/log.hpp"

namespace exbridge::proxy {
namespace {

constexpr std::uint64_t reserve_fds = 64;  // listener, admin, logs, resolver, health checks

}  // namespace

void fit_fd_limit(bridge_options& options) {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return;
  if (limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &limit);
    ::getrlimit(RLIMIT_NOFILE, &limit);
  }
  const std::uint64_t fds = limit.rlim_cur == RLIM_INFINITY ? UINT32_MAX : limit.rlim_cur;
  const std::uint64_t listeners = 1 + options.also_listen.size();
  const std::uint64_t carries = fds > reserve_fds ? std::max<std::uint64_t>((fds - reserve_fds) / 2 / listeners, 1) : 1;
  if (options.max_connections == 0) {
    options.max_connections = static_cast<unsigned>(std::min<std::uint64_t>(carries, UINT32_MAX));
    return;
  }
  if (options.max_connections > carries) {
    throw config_error("listen.max_connections = " + std::to_string(options.max_connections) + " on " +
                       std::to_string(listeners) + " listener(s) needs " +
                       std::to_string(2 * std::uint64_t{options.max_connections} * listeners + reserve_fds) +
                       " file descriptors, but this process may open only " + std::to_string(fds) +
                       "; raise the limit (LimitNOFILE= in the systemd unit, or 'ulimit -Hn') or lower max_connections");
  }
}

void drop_privileges(const bridge_options& options) {
  const auto fail = [](const std::string& what) {
    throw config_error(what + ": " + std::strerror(errno) + "; start exbridge as root to bind :443 and drop privileges");
  };
  gid_t gid = 0;
  uid_t uid = 0;
  const passwd* pw = nullptr;
  // Look the names up before chroot: the jail usually has no /etc/passwd.
  if (!options.user.empty()) {
    pw = ::getpwnam(options.user.c_str());
    if (pw == nullptr) throw config_error("user '" + options.user + "' does not exist; create it (useradd --system " + options.user + ") or fix 'user'");
    uid = pw->pw_uid;
    gid = pw->pw_gid;
  }
  if (!options.group.empty()) {
    const group* gr = ::getgrnam(options.group.c_str());
    if (gr == nullptr) throw config_error("group '" + options.group + "' does not exist; create it or fix 'group'");
    gid = gr->gr_gid;
  }
  if (!options.chroot_dir.empty()) {
    if (::chroot(options.chroot_dir.c_str()) != 0) fail("cannot chroot to " + options.chroot_dir);
    if (::chdir("/") != 0) fail("cannot chdir to / in " + options.chroot_dir);
  }
  if (!options.group.empty() || pw != nullptr) {
    if (pw != nullptr && ::initgroups(pw->pw_name, gid) != 0) fail("cannot set the supplementary groups of " + options.user);
    if (::setgid(gid) != 0) fail("cannot switch to group id " + std::to_string(gid));
  }
  if (pw != nullptr && ::setuid(uid) != 0) fail("cannot switch to user " + options.user);
  if (!options.user.empty() || !options.chroot_dir.empty()) {
    log_info(cat("privileges dropped: user ", options.user.empty() ? "(unchanged)" : options.user,
                 options.chroot_dir.empty() ? "" : ", chroot " + options.chroot_dir));
  }
}

}  // namespace exbridge::proxy
