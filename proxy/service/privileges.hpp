// Process set-up around the listener: the file-descriptor limit raised to what the connection limit needs
// (or a clear error), and privileges dropped after binding :443 (optional chroot, then group, then user).
#pragma once

#include "proxy/config/options.hpp"

namespace exbridge::proxy {

/// Raises the soft RLIMIT_NOFILE to the hard limit. With max_connections = 0, sets it (per listener) to what
/// the limit allows (two descriptors per client: its socket and its upstream's, plus a reserve); a
/// max_connections the limit cannot carry is a config_error naming both numbers and the fix.
void fit_fd_limit(bridge_options& options);

/// chroot (if set), then setgid/initgroups and setuid (if set). Throws config_error naming the cause.
void drop_privileges(const bridge_options& options);

}  // namespace exbridge::proxy
