// What every peer's lab rewrite points the user's config at: the certificate it serves, the lab Exchange servers,
// the CA and name that verify them, and the time scale its timeouts are divided by.
#pragma once

#include <string>
#include <vector>

namespace exbridge::rehearse {

struct lab_target {
  std::string cert, key;  ///< served to Exchange Online (the lab bridge certificate unless the process names one)
  /// The lab Exchange servers: the n-th upstream line of the config gets the n-th (the last repeats).
  std::vector<std::string> upstream_addresses;
  std::string ca_file;        ///< the lab CA, replacing the config's CA for Exchange's certificate
  std::string upstream_name;  ///< the lab Exchange certificate's name, replacing the customer's server name
  double time_scale = 1;      ///< timeouts are divided by this
};

}  // namespace exbridge::rehearse
