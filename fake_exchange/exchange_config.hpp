// What one fake-exchange server is: its organisation, the 2007 release it reports, the host its URLs name and
// what every mailbox holds. Read by the HTTP router and by the RPC endpoint behind Outlook Anywhere alike.
#pragma once

#include <string>

#include "fake_exchange/autodiscover.hpp"
#include "fake_exchange/mailbox.hpp"
#include "fake_exchange/organisation.hpp"

namespace exbridge::fake_exchange {

struct exchange_config {
  organisation org = demo_organisation();
  const version_profile* version = &default_version_profile();
  std::string public_host;  ///< host[:port] in Autodiscover URLs; empty = the request's Host header
  mailbox_spec mailboxes;   ///< what every user's mailbox holds
};

}  // namespace exbridge::fake_exchange
