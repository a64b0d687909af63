// TLS context factory. Why security level 0: OpenSSL 3 rates TLS 1.0's MD5/SHA-1 handshake signatures
// below level 1, so a TLS 1.0 handshake fails ("no suitable signature algorithm", "legacy sigalg
// disallowed", or an internal_error alert) unless the level is 0 on that context. We lower it only on
// the two TLS 1.0 profiles; the downstream side stays at OpenSSL's default.
#include "common/tls_context.hpp"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cctype>
#include <filesystem>
#include <fstream>
#include <memory>

#include "common/errors.hpp"

namespace exbridge {
namespace {

// Mozilla "intermediate" (v5/v6) TLS 1.2 suites, plus the ECDHE-RSA CBC suites Office 365 still lists.
constexpr const char* downstream_ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "ECDHE-RSA-AES256-SHA384:ECDHE-RSA-AES128-SHA256:ECDHE-RSA-AES256-SHA:ECDHE-RSA-AES128-SHA";

// Office 365's published TLS 1.2 list, strongest first (what the migration service offers).
constexpr const char* office365_ciphers =
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-SHA384:"
    "ECDHE-RSA-AES128-SHA256:ECDHE-RSA-AES256-SHA:ECDHE-RSA-AES128-SHA:AES256-GCM-SHA384:AES128-GCM-SHA256";

// Windows Server 2008 Schannel default order as far as Debian's OpenSSL can offer it (RC4 and 3DES
// are compiled out of libssl3, so they are absent rather than silently ignored).
constexpr const char* win2008_ciphers = "AES128-SHA:AES256-SHA:ECDHE-RSA-AES128-SHA:ECDHE-RSA-AES256-SHA";

// What exbridge offers an old server: anything OpenSSL still has, at security level 0.
constexpr const char* legacy_client_ciphers = "DEFAULT:@SECLEVEL=0";

using bio_ptr = std::unique_ptr<BIO, decltype(&BIO_free)>;
using x509_ptr = std::unique_ptr<X509, decltype(&X509_free)>;
using pkey_ptr = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;

void check_readable(const std::string& path, const std::string& what, const std::string& flag) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    throw config_error(what + " file '" + path + "' does not exist; pass an existing PEM file with " + flag);
  }
  std::ifstream in(path);
  if (!in) {
    throw config_error(what + " file '" + path + "' cannot be read (permissions?); make it readable by this user");
  }
}

x509_ptr leaf_of(SSL_CTX* ctx) { return x509_ptr(X509_dup(SSL_CTX_get0_certificate(ctx)), X509_free); }

void load_identity(SSL_CTX* ctx, const tls_identity& id) {
  if (id.empty()) throw config_error("no certificate given; pass --cert FILE and --key FILE (PEM)");
  ERR_clear_error();
  const std::string source = id.cert_file.empty() ? std::string("(generated certificate)") : id.cert_file;
  if (!id.cert_file.empty()) {
    check_readable(id.cert_file, "certificate", "--cert");
    if (SSL_CTX_use_certificate_chain_file(ctx, id.cert_file.c_str()) != 1) {
      throw config_error("certificate file '" + id.cert_file + "' is not a PEM certificate (" + drain_openssl_errors() +
                         "); it must start with -----BEGIN CERTIFICATE-----, leaf first, then the chain");
    }
  } else {
    bio_ptr bio(BIO_new_mem_buf(id.cert_pem.data(), static_cast<int>(id.cert_pem.size())), BIO_free);
    x509_ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr), X509_free);
    if (!cert || SSL_CTX_use_certificate(ctx, cert.get()) != 1) {
      throw config_error("generated certificate is invalid: " + drain_openssl_errors());
    }
  }
  const std::string key_source = id.key_file.empty() ? std::string("(generated key)") : id.key_file;
  bio_ptr key_bio(nullptr, BIO_free);
  if (!id.key_file.empty()) {
    check_readable(id.key_file, "private key", "--key");
    key_bio.reset(BIO_new_file(id.key_file.c_str(), "r"));
  } else {
    key_bio.reset(BIO_new_mem_buf(id.key_pem.data(), static_cast<int>(id.key_pem.size())));
  }
  pkey_ptr key(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr), EVP_PKEY_free);
  if (!key) {
    throw config_error("private key " + key_source + " is not an unencrypted PEM private key (" +
                       drain_openssl_errors() + "); convert it with 'openssl pkey -in KEY -out key.pem'");
  }
  // Checked before handing the key to OpenSSL, which would only say "key values mismatch".
  if (X509_check_private_key(SSL_CTX_get0_certificate(ctx), key.get()) != 1) {
    drain_openssl_errors();
    throw config_error("private key " + key_source + " does not match certificate " + source +
                       "; pass the key that was generated with this certificate");
  }
  if (SSL_CTX_use_PrivateKey(ctx, key.get()) != 1) {
    throw config_error("private key " + key_source + " cannot be used: " + drain_openssl_errors());
  }
  const auto leaf = leaf_of(ctx);
  if (X509_cmp_current_time(X509_get0_notAfter(leaf.get())) < 0) {
    throw config_error("certificate " + source + " has expired; renew it (e.g. 'certbot renew') and restart");
  }
  if (X509_cmp_current_time(X509_get0_notBefore(leaf.get())) > 0) {
    throw config_error("certificate " + source + " is not valid yet (notBefore is in the future); check the clock");
  }
}

// OpenSSL decodes a certificate's extensions (key identifiers, constraints) on first use and then marks
// them cached with a lock-free atomic flag. Done here, while one thread owns the context, so no two handshakes
// race to fill the cache; it also keeps ThreadSanitizer quiet about a fill it cannot see synchronised (libcrypto
// is not instrumented: a health check read the trust anchor's key identifier while another filled it).
void cache_certificate_extensions(SSL_CTX* ctx) {
  if (X509* own = SSL_CTX_get0_certificate(ctx)) X509_check_purpose(own, -1, 0);
  STACK_OF(X509)* chain = nullptr;
  if (SSL_CTX_get0_chain_certs(ctx, &chain) == 1) {
    for (int i = 0; i < sk_X509_num(chain); ++i) X509_check_purpose(sk_X509_value(chain, i), -1, 0);
  }
  STACK_OF(X509_OBJECT)* objects = X509_STORE_get0_objects(SSL_CTX_get_cert_store(ctx));
  for (int i = 0; i < sk_X509_OBJECT_num(objects); ++i) {
    if (X509* cert = X509_OBJECT_get0_X509(sk_X509_OBJECT_value(objects, i))) X509_check_purpose(cert, -1, 0);
  }
}

int select_http11(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in, unsigned int inlen,
                  void*) {
  // ALPN: we speak HTTP/1.1 only; a client offering only h2 continues without ALPN (RFC 7301 §3.2 allows it).
  static const unsigned char http11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
  unsigned char* selected = nullptr;
  if (SSL_select_next_proto(&selected, outlen, http11, sizeof http11, in, inlen) == OPENSSL_NPN_NEGOTIATED) {
    *out = selected;
    return SSL_TLSEXT_ERR_OK;
  }
  return SSL_TLSEXT_ERR_NOACK;
}

void set_versions(SSL_CTX* ctx, int min, int max) {
  SSL_CTX_set_min_proto_version(ctx, min);
  SSL_CTX_set_max_proto_version(ctx, max);
}

void set_ciphers(SSL_CTX* ctx, const std::string& list, tls_profile profile) {
  if (SSL_CTX_set_cipher_list(ctx, list.c_str()) != 1) {
    drain_openssl_errors();
    std::string hint = "check the names with 'openssl ciphers -v \"" + list + "\"'";
    if (list.find("RC4") != std::string::npos || list.find("DES-CBC3") != std::string::npos ||
        list.find("3DES") != std::string::npos) {
      hint = "RC4 and 3DES suites are compiled out of Debian's OpenSSL 3 and cannot be offered; use AES suites "
             "(an Exchange 2007 server on Windows 2003 needs KB948963 for AES)";
    }
    throw config_error(std::string("cipher list '") + list + "' for TLS profile " + std::string(profile_name(profile)) +
                       " matches no cipher OpenSSL can use; " + hint);
  }
}

}  // namespace

std::string_view profile_name(tls_profile profile) {
  switch (profile) {
    case tls_profile::downstream: return "downstream";
    case tls_profile::upstream_legacy: return "upstream_legacy";
    case tls_profile::exchange2007: return "exchange2007";
    case tls_profile::exchange_online_client: return "exchange_online_client";
  }
  return "?";
}

int parse_tls_version(const std::string& text, const std::string& what) {
  if (text == "1.0") return TLS1_VERSION;
  if (text == "1.1") return TLS1_1_VERSION;
  if (text == "1.2") return TLS1_2_VERSION;
  if (text == "1.3") return TLS1_3_VERSION;
  throw config_error(what + ": '" + text + "' is not a TLS version; use 1.0, 1.1, 1.2 or 1.3");
}

std::string drain_openssl_errors() {
  std::string out;
  while (const unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    const char* reason = ERR_reason_error_string(e);
    out += reason != nullptr ? reason : buf;
  }
  return out;
}

ssl::context make_tls_context(tls_profile profile, const tls_settings& s) {
  const bool server = profile == tls_profile::downstream || profile == tls_profile::exchange2007;
  ssl::context ctx(server ? ssl::context::tls_server : ssl::context::tls_client);
  SSL_CTX* native = ctx.native_handle();
  SSL_CTX_set_options(native, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
  // An idle connection keeps no record buffers (about 34 KiB per connection otherwise): a bridge holds
  // thousands of idle keep-alive and Outlook Anywhere connections, and a record buffer is cheap to get back.
  SSL_CTX_set_mode(native, SSL_MODE_RELEASE_BUFFERS);
  // Beast reads HTTP through the TLS stream; OpenSSL must not treat a missing close_notify as success or
  // failure on its own: Beast reports ssl::error::stream_truncated and we decide per protocol state.

  int min = 0, max = 0, level = -1;
  std::string ciphers;
  switch (profile) {
    case tls_profile::downstream:
      min = TLS1_2_VERSION, max = TLS1_3_VERSION, ciphers = downstream_ciphers;
      SSL_CTX_set_alpn_select_cb(native, select_http11, nullptr);
      break;
    case tls_profile::exchange_online_client:
      min = TLS1_2_VERSION, max = TLS1_3_VERSION, ciphers = office365_ciphers;
      break;
    case tls_profile::upstream_legacy:
      min = TLS1_VERSION, max = TLS1_2_VERSION, ciphers = legacy_client_ciphers, level = 0;
      break;
    case tls_profile::exchange2007:
      min = TLS1_VERSION, max = TLS1_VERSION, ciphers = win2008_ciphers, level = 0;
      SSL_CTX_set_options(native, SSL_OP_CIPHER_SERVER_PREFERENCE);  // Schannel picks by its own order
      // Windows Server 2008's Schannel predates encrypt-then-MAC (RFC 7366, 2014): a 2007 server answers
      // OpenSSL's offer of it with the classic MAC-then-encrypt. That is also what lets OpenSSL use its
      // stitched AES-CBC-HMAC-SHA1 cipher (with EtM it encrypts and MACs in two passes: 40 % slower here).
      SSL_CTX_set_options(native, SSL_OP_NO_ENCRYPT_THEN_MAC);
      break;
  }
  if (!s.min_version.empty()) min = parse_tls_version(s.min_version, "minimum TLS version");
  if (!s.max_version.empty()) max = parse_tls_version(s.max_version, "maximum TLS version");
  if (min > max) throw config_error("TLS minimum version is above the maximum; lower the minimum or raise the maximum");
  if (!s.cipher_list.empty()) ciphers = s.cipher_list;
  if (s.security_level >= 0) level = s.security_level;
  set_versions(native, min, max);
  set_ciphers(native, ciphers, profile);
  if (level >= 0) SSL_CTX_set_security_level(native, level);
  if (min <= TLS1_1_VERSION && SSL_CTX_get_security_level(native) > 0) {
    throw config_error("TLS profile " + std::string(profile_name(profile)) +
                       " allows TLS 1.0/1.1 at OpenSSL security level " +
                       std::to_string(SSL_CTX_get_security_level(native)) +
                       ", where OpenSSL 3 cannot complete such a handshake; set the security level to 0");
  }

  if (server) {
    load_identity(native, s.identity);
  } else {
    switch (s.verify) {
      case tls_verify::none:
      case tls_verify::pin:  // checked after the handshake, against the certificate's SHA-256
        ctx.set_verify_mode(ssl::verify_none);
        break;
      case tls_verify::ca_file:
        check_readable(s.ca_file, "CA", "the CA option");
        if (SSL_CTX_load_verify_locations(native, s.ca_file.c_str(), nullptr) != 1) {
          throw config_error("CA file '" + s.ca_file + "' holds no PEM certificate (" + drain_openssl_errors() + ")");
        }
        ctx.set_verify_mode(ssl::verify_peer);
        break;
      case tls_verify::system:
        SSL_CTX_set_default_verify_paths(native);
        ctx.set_verify_mode(ssl::verify_peer);
        break;
    }
  }
  cache_certificate_extensions(native);
  return ctx;
}

void prepare_client_tls(SSL* ssl, const std::string& server_name, bool check_name) {
  error_code ec;
  net::ip::make_address(server_name, ec);
  const bool is_ip = !ec;
  if (!server_name.empty() && !is_ip) SSL_set_tlsext_host_name(ssl, server_name.c_str());
  if (check_name && !server_name.empty()) {
    if (is_ip) X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), server_name.c_str());
    else SSL_set1_host(ssl, server_name.c_str());
  }
}

std::string describe_session(SSL* ssl) {
  if (ssl == nullptr) return "-";  // a stream without TLS (the session's in-memory test streams)
  const char* cipher = SSL_get_cipher_name(ssl);
  return std::string(SSL_get_version(ssl)) + " " + (cipher != nullptr ? cipher : "?");
}

namespace {
int choose_by_server_name(SSL* ssl, int*, void* arg) {
  const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  if (name == nullptr) return SSL_TLSEXT_ERR_OK;
  const X509* current = SSL_get_certificate(ssl);
  if (current != nullptr && X509_check_host(const_cast<X509*>(current), name, 0, 0, nullptr) == 1) return SSL_TLSEXT_ERR_OK;
  for (auto& alternative : *static_cast<std::vector<ssl::context>*>(arg)) {
    X509* cert = SSL_CTX_get0_certificate(alternative.native_handle());
    if (cert != nullptr && X509_check_host(cert, name, 0, 0, nullptr) == 1) {
      SSL_set_SSL_CTX(ssl, alternative.native_handle());
      break;
    }
  }
  return SSL_TLSEXT_ERR_OK;  // no match: the primary certificate, as a server without SNI support would
}
}  // namespace

void select_certificate_by_sni(ssl::context& primary, std::vector<ssl::context>& alternatives) {
  SSL_CTX_set_tlsext_servername_callback(primary.native_handle(), choose_by_server_name);
  SSL_CTX_set_tlsext_servername_arg(primary.native_handle(), &alternatives);
}

std::string peer_certificate_sha256(SSL* ssl) {
  X509* cert = SSL_get0_peer_certificate(ssl);
  if (cert == nullptr) return "";
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (X509_digest(cert, EVP_sha256(), digest, &length) != 1) return "";
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < length; ++i) {
    out += hex[digest[i] >> 4];
    out += hex[digest[i] & 15];
  }
  return out;
}

std::string normalize_pin(const std::string& text, const std::string& what) {
  std::string t = text;
  for (const char* prefix : {"SHA256 Fingerprint=", "sha256 Fingerprint=", "sha256:", "SHA256:"}) {
    if (t.rfind(prefix, 0) == 0) t = t.substr(std::string_view(prefix).size());
  }
  std::string out;
  for (const char c : t) {
    if (c == ':') continue;
    if (!std::isxdigit(static_cast<unsigned char>(c))) {
      out.clear();
      break;
    }
    out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  if (out.size() != 64) {
    throw config_error(what + " '" + text + "' is not a SHA-256 fingerprint; get it with: openssl s_client -connect "
                       "HOST:443 </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256");
  }
  return out;
}

tls_session_cache::~tls_session_cache() {
  if (session_ != nullptr) SSL_SESSION_free(session_);
}

void tls_session_cache::offer(SSL* ssl) {
  std::lock_guard lock(mutex_);
  if (session_ != nullptr) SSL_set_session(ssl, session_);
}

void tls_session_cache::remember(SSL* ssl) {
  SSL_SESSION* fresh = SSL_get1_session(ssl);
  if (fresh == nullptr) return;
  if (SSL_SESSION_is_resumable(fresh) != 1) {
    SSL_SESSION_free(fresh);
    return;
  }
  std::lock_guard lock(mutex_);
  if (session_ != nullptr) SSL_SESSION_free(session_);
  session_ = fresh;
}

schannel_profile parse_schannel_profile(const std::string& name, const std::string& what) {
  if (name == "win2008") return schannel_profile::win2008;
  if (name == "win2008-ecdhe") return schannel_profile::win2008_ecdhe;
  if (name == "win2003-aes") return schannel_profile::win2003_aes;
  if (name == "win2003-legacy") return schannel_profile::win2003_legacy;
  throw config_error(what + " '" + name + "' is unknown; use win2008, win2008-ecdhe, win2003-aes or win2003-legacy");
}

std::string schannel_ciphers(schannel_profile profile) {
  switch (profile) {
    case schannel_profile::win2008:
      return win2008_ciphers;
    case schannel_profile::win2008_ecdhe:
      return "ECDHE-RSA-AES128-SHA:ECDHE-RSA-AES256-SHA:AES128-SHA:AES256-SHA";
    case schannel_profile::win2003_aes:
      return "AES128-SHA:AES256-SHA";
    case schannel_profile::win2003_legacy:
      break;
  }
  const std::string legacy = "RC4-SHA:RC4-MD5:DES-CBC3-SHA:@SECLEVEL=0";
  const std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> probe(SSL_CTX_new(TLS_method()), SSL_CTX_free);
  if (probe && SSL_CTX_set_cipher_list(probe.get(), legacy.c_str()) == 1) return legacy;
  ERR_clear_error();
  throw config_error(
      "Windows Server 2003 without the AES update offers only RC4 and 3DES suites (RC4-SHA, RC4-MD5, DES-CBC3-SHA), "
      "and this OpenSSL (Debian's OpenSSL 3) is built without them: no proxy built on it can reach such a server. "
      "Install the Schannel AES update (KB948963) on the Exchange server and rehearse with win2003-aes");
}

}  // namespace exbridge
