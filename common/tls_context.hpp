// The one place that builds TLS contexts. Four named profiles cover every TLS leg of the project:
//   downstream              exbridge's listener: TLS 1.2-1.3, what Exchange Online connects to
//   upstream_legacy         exbridge's client towards Exchange 2007: down to TLS 1.0 at security level 0
//   exchange2007            fake-exchange's listener: TLS 1.0 only, Windows Server 2008 suite order
//   exchange_online_client  rehearse's client: TLS 1.2+, Office 365 suites, SNI, chain and name checks
#pragma once

#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/net.hpp"

namespace exbridge {

enum class tls_profile { downstream, upstream_legacy, exchange2007, exchange_online_client };

std::string_view profile_name(tls_profile profile);

/// A certificate (chain) and private key: from PEM files, or PEM text held in memory.
struct tls_identity {
  std::string cert_file;
  std::string key_file;
  std::string cert_pem;
  std::string key_pem;
  bool empty() const { return cert_file.empty() && cert_pem.empty(); }
};

/// How a client checks the server: not at all, against a CA file, against the system store, or by
/// the SHA-256 of the server's certificate (a pin: the usual way to trust an old self-signed certificate).
enum class tls_verify { none, ca_file, system, pin };

struct tls_settings {
  tls_identity identity;                 ///< servers: required; clients: unused
  tls_verify verify = tls_verify::system;  ///< clients: how the peer's chain is checked
  std::string ca_file;                   ///< with tls_verify::ca_file
  std::string min_version;               ///< "1.0".."1.3"; empty = the profile's default
  std::string max_version;               ///< "1.0".."1.3"; empty = the profile's default
  std::string cipher_list;               ///< TLS <= 1.2 suites; empty = the profile's default
  int security_level = -1;               ///< OpenSSL security level; -1 = the profile's default
};

/// Builds a context for `profile`. Throws config_error with the cause and the fix when a certificate
/// or key is missing, unreadable, mismatched or expired, or a cipher list or version is invalid.
ssl::context make_tls_context(tls_profile profile, const tls_settings& settings);

/// Client side, per connection: sets SNI (when `server_name` is a host name) and, when `check_name`,
/// makes the handshake fail unless the certificate names `server_name`.
void prepare_client_tls(SSL* ssl, const std::string& server_name, bool check_name);

/// Serves several certificates on one listener: a client's SNI name picks the first of `alternatives`
/// whose certificate covers the name; clients without SNI, or with another name, get `primary`'s.
/// `alternatives` must outlive `primary` (and must not move).
void select_certificate_by_sni(ssl::context& primary, std::vector<ssl::context>& alternatives);

/// Lower-case hex SHA-256 of the peer's DER certificate ("" when there is none).
std::string peer_certificate_sha256(SSL* ssl);

/// Accepts a pin as `openssl x509 -fingerprint -sha256` prints it (colons, any case, optional
/// "SHA256 Fingerprint=" or "sha256:" prefix) and returns 64 lower-case hex digits; throws config_error.
std::string normalize_pin(const std::string& text, const std::string& what);

/// The Windows Server releases Exchange 2007 ran on, by the TLS 1.0 suites their Schannel offers:
///   win2008         AES128-SHA, AES256-SHA, ECDHE-RSA-AES128-SHA, ECDHE-RSA-AES256-SHA (server order)
///   win2008-ecdhe   the same suites with ECDHE first, as hardening guides (IIS Crypto "best practices") reorder
///                   them; an OpenSSL 3 client then needs security level 0 for TLS 1.0, because the ECDHE key
///                   exchange is signed with MD5+SHA-1, which level 1 and above refuse
///   win2003-aes     AES128-SHA, AES256-SHA (Windows Server 2003 with the AES update, KB948963)
///   win2003-legacy  RC4-SHA, RC4-MD5, DES-CBC3-SHA (Windows Server 2003 without it)
enum class schannel_profile { win2008, win2008_ecdhe, win2003_aes, win2003_legacy };

/// Parses a profile name; throws config_error naming `what` and the choices.
schannel_profile parse_schannel_profile(const std::string& name, const std::string& what);

/// The cipher list of a profile, for tls_settings::cipher_list with tls_profile::exchange2007. Throws
/// config_error for win2003-legacy when this OpenSSL has neither RC4 nor 3DES (Debian's OpenSSL 3 has not).
std::string schannel_ciphers(schannel_profile profile);

/// Client side: the last resumable session with one server, shared by all connections to it, so that a new
/// connection resumes instead of paying a full handshake (RSA key exchange on the old server). Thread-safe.
class tls_session_cache {
 public:
  tls_session_cache() = default;
  ~tls_session_cache();
  tls_session_cache(const tls_session_cache&) = delete;
  tls_session_cache& operator=(const tls_session_cache&) = delete;
  /// Before the handshake: offer the remembered session, if any.
  void offer(SSL* ssl);
  /// After a successful handshake: remember this connection's session.
  void remember(SSL* ssl);

 private:
  std::mutex mutex_;
  SSL_SESSION* session_ = nullptr;
};

/// "TLSv1.3 TLS_AES_256_GCM_SHA384" for an established connection.
std::string describe_session(SSL* ssl);

/// "1.0" -> TLS1_VERSION, ... ; throws config_error naming `what`.
int parse_tls_version(const std::string& text, const std::string& what);

/// Drains OpenSSL's error queue into one readable string ("" when empty).
std::string drain_openssl_errors();

}  // namespace exbridge
