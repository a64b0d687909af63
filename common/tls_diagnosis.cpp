// TLS failure classification. Boost.Asio reports OpenSSL errors in its ssl category with the packed
// OpenSSL error code as value, so ERR_GET_REASON recovers the reason (SSL_R_*) OpenSSL had.
#include "common/tls_diagnosis.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include "common/tls_context.hpp"

namespace exbridge {

std::string_view failure_name(tls_failure f) {
  switch (f) {
    case tls_failure::none: return "ok";
    case tls_failure::protocol_version: return "tls-version-refused";
    case tls_failure::no_shared_cipher: return "tls-no-shared-cipher";
    case tls_failure::security_level: return "tls-security-level";
    case tls_failure::untrusted_certificate: return "untrusted-certificate";
    case tls_failure::name_mismatch: return "certificate-name-mismatch";
    case tls_failure::pin_mismatch: return "certificate-pin-mismatch";
    case tls_failure::expired_certificate: return "certificate-expired";
    case tls_failure::not_tls: return "not-tls";
    case tls_failure::reset: return "tls-reset";
    case tls_failure::timeout: return "tls-timeout";
    case tls_failure::other: return "tls-failure";
  }
  return "?";
}

std::string tls_diagnosis::to_string() const {
  std::string out = summary;
  if (!openssl_reason.empty()) out += " (OpenSSL: " + openssl_reason + ")";
  if (!hint.empty()) out += "; fix: " + hint;
  return out;
}

tls_diagnosis diagnose_tls_failure(const error_code& ec, SSL* ssl, std::string_view peer_view) {
  const std::string peer(peer_view);
  tls_diagnosis d;
  if (!ec) return d;
  if (ec == net::error::operation_aborted || ec == net::error::timed_out) {
    d.kind = tls_failure::timeout;
    d.summary = "the TLS handshake with " + peer + " did not finish in time";
    d.hint = "check that " + peer + " speaks TLS on this port and is not overloaded";
    return d;
  }
  if (ec == ssl::error::stream_truncated || ec == net::error::eof || ec == net::error::connection_reset ||
      ec == net::error::broken_pipe || ec == net::error::connection_aborted) {
    d.kind = tls_failure::reset;
    d.summary = peer + " closed the connection during the TLS handshake";
    d.openssl_reason = ec.message();
    d.hint = "look at " + peer + "'s TLS settings; a closed handshake often means it offers nothing this side accepts";
    return d;
  }
  if (ec.category() != net::error::get_ssl_category()) {
    d.kind = tls_failure::other;
    d.summary = "the TLS handshake with " + peer + " failed: " + ec.message();
    return d;
  }
  const int reason = ERR_GET_REASON(static_cast<unsigned long>(ec.value()));
  const char* text = ERR_reason_error_string(static_cast<unsigned long>(ec.value()));
  d.openssl_reason = text != nullptr ? text : ec.message();
  switch (reason) {
    case SSL_R_UNSUPPORTED_PROTOCOL:
    case SSL_R_TLSV1_ALERT_PROTOCOL_VERSION:
    case SSL_R_WRONG_SSL_VERSION:
    case SSL_R_UNSUPPORTED_SSL_VERSION:
      d.kind = tls_failure::protocol_version;
      d.summary = "TLS protocol version refused: " + peer + " and this side share no TLS version";
      d.hint = "Exchange 2007 speaks only TLS 1.0 and Exchange Online requires TLS 1.2 or later; "
               "put exbridge between them (TLS 1.2/1.3 towards Exchange Online, TLS 1.0 towards Exchange 2007)";
      break;
    case SSL_R_NO_SHARED_CIPHER:
    case SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE:
    case SSL_R_NO_CIPHERS_AVAILABLE:
    case SSL_R_NO_CIPHER_MATCH:
      d.kind = tls_failure::no_shared_cipher;
      d.summary = "no cipher suite shared with " + peer;
      d.hint = "compare the suite lists; an Exchange 2007 server offering only RC4/3DES cannot be reached with "
               "Debian's OpenSSL 3 (those suites are compiled out): enable AES on the server (KB948963 on Windows 2003)";
      break;
    case SSL_R_LEGACY_SIGALG_DISALLOWED_OR_UNSUPPORTED:
    case SSL_R_NO_SUITABLE_SIGNATURE_ALGORITHM:
    case SSL_R_TLSV1_ALERT_INTERNAL_ERROR:
    case SSL_R_NO_PROTOCOLS_AVAILABLE:
    case SSL_R_CA_MD_TOO_WEAK:
    case SSL_R_EE_KEY_TOO_SMALL:
    case SSL_R_CA_KEY_TOO_SMALL:
      d.kind = tls_failure::security_level;
      d.summary = "OpenSSL's security level forbids this handshake with " + peer +
                  " (TLS 1.0 uses SHA-1/MD5 signatures that OpenSSL 3 rejects above level 0)";
      d.hint = "set the OpenSSL security level to 0 for this TLS 1.0 leg (exbridge does so for its upstream; "
               "HAProxy needs 'ciphers DEFAULT:@SECLEVEL=0' on the server line)";
      break;
    case SSL_R_HTTP_REQUEST:
    case SSL_R_HTTPS_PROXY_REQUEST:
    case SSL_R_WRONG_VERSION_NUMBER:
      d.kind = tls_failure::not_tls;
      d.summary = peer + " did not speak TLS (plain HTTP on a TLS port, or the wrong port)";
      d.hint = "check the address and port, and that " + peer + " expects TLS there";
      break;
    case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
    case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
      d.kind = tls_failure::untrusted_certificate;
      d.summary = peer + " rejected this side's certificate";
      d.hint = "serve a certificate from a CA " + peer + " trusts, with its full chain";
      break;
    case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
      d.kind = tls_failure::expired_certificate;
      d.summary = peer + " rejected this side's certificate as expired";
      d.hint = "renew the certificate";
      break;
    case SSL_R_CERTIFICATE_VERIFY_FAILED: {
      const long v = ssl != nullptr ? SSL_get_verify_result(ssl) : X509_V_OK;
      const std::string why = X509_verify_cert_error_string(v);
      if (v == X509_V_ERR_HOSTNAME_MISMATCH || v == X509_V_ERR_IP_ADDRESS_MISMATCH) {
        d.kind = tls_failure::name_mismatch;
        d.summary = peer + "'s certificate does not name the host that was asked for";
        d.hint = "issue the certificate for the public host name (subjectAltName), e.g. with certbot -d HOST";
      } else if (v == X509_V_ERR_CERT_HAS_EXPIRED || v == X509_V_ERR_CERT_NOT_YET_VALID) {
        d.kind = tls_failure::expired_certificate;
        d.summary = peer + "'s certificate is outside its validity period";
        d.hint = "renew the certificate (certbot renew) and reload";
      } else {
        d.kind = tls_failure::untrusted_certificate;
        d.summary = peer + "'s certificate is not trusted (" + why + ")";
        d.hint = "serve a certificate from a publicly trusted CA with its full chain (leaf, then intermediates)";
      }
      d.openssl_reason += ": " + why;
      break;
    }
    default:
      d.kind = tls_failure::other;
      d.summary = "the TLS handshake with " + peer + " failed";
      break;
  }
  return d;
}

std::optional<tls_diagnosis> check_certificate_pin(SSL* ssl, const std::string& pin, std::string_view peer) {
  const std::string actual = peer_certificate_sha256(ssl);
  if (!actual.empty() && actual == pin) return std::nullopt;
  tls_diagnosis d;
  d.kind = tls_failure::pin_mismatch;
  d.openssl_reason = actual.empty() ? "no certificate presented" : "certificate SHA-256 " + actual;
  d.summary = std::string(peer) + " presented a certificate other than the pinned one (expected SHA-256 " + pin + ")";
  d.hint = actual.empty() ? "check that the address is the Exchange server"
                          : "if the Exchange certificate was renewed on purpose, pin the new one: pin:" + actual +
                                "; otherwise something else answers on that address";
  return d;
}

}  // namespace exbridge
