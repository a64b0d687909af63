// Exchange Web Services (SOAP 1.1) as Exchange 2007 answers it at /EWS/Exchange.asmx.
// Request-level problems are SOAP faults with HTTP 500 (ASMX); per-item errors come with HTTP 200.
#pragma once

#include <string>
#include <string_view>

#include <memory>

#include "fake_exchange/autodiscover.hpp"
#include "fake_exchange/mailbox.hpp"
#include "fake_exchange/organisation.hpp"
#include "fake_exchange/streamed_body.hpp"

namespace exbridge::fake_exchange {

struct ews_result {
  unsigned status = 200;
  std::string body;
  std::string operation;  ///< the operation element's local name ("GetFolder"), for the log
  std::shared_ptr<streamed_body> stream;  ///< set instead of `body` when the answer is produced as it is sent
};

/// Answers one EWS request for the authenticated `mailbox_owner`; `org` is the directory that ResolveNames
/// and ExpandDL search.
ews_result answer_ews(std::string_view request_body, const user& mailbox_owner, const version_profile& version,
                      const mailbox_spec& mailboxes, const organisation& org);

}  // namespace exbridge::fake_exchange
