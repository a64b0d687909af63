// One finding of a proxy-config linter (HAProxy's haproxy.cfg, stunnel's stunnel.conf): what is wrong for
// an Exchange 2007 -> Exchange Online bridge, how bad, and the exact change that fixes it.
#pragma once

#include <string>

namespace exbridge::rehearse {

struct config_finding {
  int line = 0;          ///< 0 = whole file
  std::string code;      ///< stable id, e.g. "log-invalid", "tls10-needs-seclevel0"
  std::string severity;  ///< "error" (breaks the migration or the proxy refuses it) or "warning"
  std::string message;   ///< what is wrong and why it matters for Exchange 2007 -> Exchange Online
  std::string fix;       ///< the exact change
};

}  // namespace exbridge::rehearse
