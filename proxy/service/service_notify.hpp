// systemd's readiness protocol (sd_notify) without libsystemd: with Type=notify, systemd starts exbridge's
// dependants, and `systemctl start` returns, only once the listeners are bound (READY=1); a reload is
// announced (RELOADING=1, then READY=1 when the new configuration is in use or was refused); a drain says
// STOPPING=1. STATUS= lines show in `systemctl status`. Supervisors and tests read the same datagrams.
#pragma once

#include <string>
#include <string_view>

namespace exbridge::proxy {

class service_notifier {
 public:
  /// Connects to $NOTIFY_SOCKET (a path, or an abstract name starting with '@') when it is set. It connects
  /// now, before privileges are dropped, because a chroot would hide systemd's socket path afterwards. A
  /// socket that cannot be reached is reported once (systemd would then time the start out).
  service_notifier();
  ~service_notifier();
  service_notifier(const service_notifier&) = delete;
  service_notifier& operator=(const service_notifier&) = delete;

  /// Sends one datagram of newline-separated assignments ("READY=1\nSTATUS=..."). Waits at most a second
  /// when systemd's queue is full.
  void send(std::string_view state) const;
  /// "RELOADING=1" with the MONOTONIC_USEC systemd 253's Type=notify-reload wants.
  void reloading() const;

 private:
  int fd_ = -1;
};

}  // namespace exbridge::proxy
