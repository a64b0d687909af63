// Classifies a failed TLS handshake into the causes an administrator can act on, with OpenSSL's own
// reason and a fix hint. Used by exbridge (both legs), rehearse (as Exchange Online) and the tests.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "common/net.hpp"

namespace exbridge {

enum class tls_failure {
  none,
  protocol_version,       ///< no TLS version both sides accept (Exchange 2007 vs a TLS 1.2+ client)
  no_shared_cipher,       ///< versions overlap but no cipher suite does
  security_level,         ///< OpenSSL's security level forbids the handshake (TLS 1.0 at level >= 1)
  untrusted_certificate,  ///< chain does not lead to a trusted CA
  name_mismatch,          ///< certificate does not name the host
  pin_mismatch,           ///< certificate is not the pinned one (SHA-256 of the DER certificate)
  expired_certificate,    ///< certificate outside its validity period
  not_tls,                ///< the peer did not answer with TLS at all
  reset,                  ///< connection closed or reset during the handshake
  timeout,                ///< the handshake did not finish in time (set by the caller)
  other,
};

/// Stable kebab-case name: "tls-version-refused", "untrusted-certificate", ...
std::string_view failure_name(tls_failure f);

struct tls_diagnosis {
  tls_failure kind = tls_failure::none;
  std::string openssl_reason;  ///< OpenSSL's words, e.g. "unsupported protocol"
  std::string summary;         ///< one sentence naming the cause
  std::string hint;            ///< what to change
  std::string to_string() const;  ///< "summary (OpenSSL: reason); fix: hint"
};

/// `ssl` may be null; with it, certificate verification results are read. `peer` names the other side in
/// the sentences ("the upstream", "the client", "the server").
tls_diagnosis diagnose_tls_failure(const error_code& ec, SSL* ssl, std::string_view peer);

/// After a completed handshake: nullopt when the peer's certificate has the SHA-256 `pin` (64 hex
/// digits, see normalize_pin), else the pin_mismatch diagnosis naming the certificate actually presented.
std::optional<tls_diagnosis> check_certificate_pin(SSL* ssl, const std::string& pin, std::string_view peer);

}  // namespace exbridge
