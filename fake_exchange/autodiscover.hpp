// Autodiscover (POX, Exchange 2007 SP1+ shape): answers POST /autodiscover/autodiscover.xml.
// Facts: MS-OXDSCLI; namespaces are http:// as real servers send them; errors come with HTTP 200.
#pragma once

#include <string>
#include <string_view>

#include "fake_exchange/organisation.hpp"

namespace exbridge::fake_exchange {

/// A 2007 release: the build numbers in Autodiscover's ServerVersion and EWS's ServerVersionInfo.
struct version_profile {
  std::string_view name;
  int major, minor, build, revision;
};

/// RTM, SP1, SP2, SP3 (default), SP3-RU23. Returns nullptr for an unknown name.
const version_profile* find_version_profile(std::string_view name);
const version_profile& default_version_profile();

/// The 32-bit ServerVersion as 8 upper-case hex digits (e.g. SP3 8.3.83 -> 72038053).
std::string server_version_hex(const version_profile& v);

struct autodiscover_result {
  std::string body;  ///< the XML document (always sent with HTTP 200, as Exchange does)
  int error_code = 0;  ///< 0, or the Autodiscover error code (500, 600, 601, ...)
};

/// Answers one POX request that arrived for `host` (the Host header; it selects redirects).
/// `public_host` is the host name clients reach (Outlook Anywhere/EWS URLs).
autodiscover_result answer_autodiscover(std::string_view request_body, const organisation& org,
                                        const version_profile& version, const std::string& public_host,
                                        std::string_view host = {});

}  // namespace exbridge::fake_exchange
