// Lab PKI with OpenSSL 3's EVP and X509 APIs.
#include "common/lab_pki.hpp"

#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include <fstream>
#include <sstream>
#include <memory>

#include "common/errors.hpp"
#include "common/tls_context.hpp"

namespace exbridge {
namespace {

using pkey_ptr = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;
using x509_ptr = std::unique_ptr<X509, decltype(&X509_free)>;
using bio_ptr = std::unique_ptr<BIO, decltype(&BIO_free)>;

[[noreturn]] void fail(const std::string& what) {
  throw config_error("lab PKI: " + what + " failed: " + drain_openssl_errors());
}

std::string to_pem(const x509_ptr& cert) {
  bio_ptr bio(BIO_new(BIO_s_mem()), BIO_free);
  PEM_write_bio_X509(bio.get(), cert.get());
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(n));
}

std::string to_pem(const pkey_ptr& key) {
  bio_ptr bio(BIO_new(BIO_s_mem()), BIO_free);
  PEM_write_bio_PrivateKey(bio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(n));
}

void add_extension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (ext == nullptr) fail("extension " + value);
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

}  // namespace

pem_pair make_certificate(const certificate_request& req, const pem_pair* issuer) {
  pkey_ptr key(EVP_RSA_gen(2048), EVP_PKEY_free);
  if (!key) fail("RSA key generation");

  x509_ptr cert(X509_new(), X509_free);
  X509_set_version(cert.get(), 2);
  unsigned char serial[16];
  RAND_bytes(serial, sizeof serial);
  serial[0] &= 0x7f;
  BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
  BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get()));
  BN_free(bn);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), static_cast<long>(req.valid_from_days) * 86400);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), static_cast<long>(req.valid_to_days) * 86400);
  X509_set_pubkey(cert.get(), key.get());

  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("exbridge lab"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(req.common_name.c_str()),
                             -1, -1, 0);

  x509_ptr issuer_cert(nullptr, X509_free);
  pkey_ptr issuer_key(nullptr, EVP_PKEY_free);
  if (issuer != nullptr) {
    bio_ptr cb(BIO_new_mem_buf(issuer->cert_pem.data(), static_cast<int>(issuer->cert_pem.size())), BIO_free);
    issuer_cert.reset(PEM_read_bio_X509(cb.get(), nullptr, nullptr, nullptr));
    bio_ptr kb(BIO_new_mem_buf(issuer->key_pem.data(), static_cast<int>(issuer->key_pem.size())), BIO_free);
    issuer_key.reset(PEM_read_bio_PrivateKey(kb.get(), nullptr, nullptr, nullptr));
    if (!issuer_cert || !issuer_key) fail("reading the issuer");
    X509_set_issuer_name(cert.get(), X509_get_subject_name(issuer_cert.get()));
  } else {
    X509_set_issuer_name(cert.get(), name);
  }
  X509* signer = issuer_cert ? issuer_cert.get() : cert.get();

  add_extension(cert.get(), signer, NID_subject_key_identifier, "hash");
  add_extension(cert.get(), signer, NID_authority_key_identifier, "keyid:always");
  if (req.is_ca) {
    add_extension(cert.get(), signer, NID_basic_constraints, "critical,CA:TRUE");
    add_extension(cert.get(), signer, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    add_extension(cert.get(), signer, NID_basic_constraints, "critical,CA:FALSE");
    add_extension(cert.get(), signer, NID_key_usage, "critical,digitalSignature,keyEncipherment");
    add_extension(cert.get(), signer, NID_ext_key_usage, "serverAuth");
    std::string san;
    for (const auto& dns : req.dns_names) san += (san.empty() ? "" : ",") + std::string("DNS:") + dns;
    for (const auto& ip : req.ip_addresses) san += (san.empty() ? "" : ",") + std::string("IP:") + ip;
    if (!san.empty()) add_extension(cert.get(), signer, NID_subject_alt_name, san);
  }
  if (X509_sign(cert.get(), issuer_key ? issuer_key.get() : key.get(), EVP_sha256()) == 0) fail("signing");
  return {to_pem(cert), to_pem(key)};
}

void write_file(const std::filesystem::path& path, const std::string& text, bool secret) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) throw config_error("cannot write '" + path.string() + "'; check that the folder is writable");
  if (secret) {
    std::filesystem::permissions(path, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write,
                                 std::filesystem::perm_options::replace);
  }
}

std::string read_file(const std::filesystem::path& path, std::uintmax_t offset) {
  std::ifstream in(path, std::ios::binary);
  in.seekg(static_cast<std::streamoff>(offset));
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

lab_pki lab_pki_files(const std::filesystem::path& dir) {
  return {dir / "ca.crt",       dir / "bridge.crt",  dir / "bridge.key",  dir / "exchange.crt",   dir / "exchange.key",
          dir / "expired.crt", dir / "expired.key", dir / "wrong-name.crt", dir / "wrong-name.key"};
}

lab_pki write_lab_pki(const std::filesystem::path& dir, const std::vector<std::string>& bridge_names,
                      const std::vector<std::string>& exchange_names) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw config_error("cannot create folder '" + dir.string() + "': " + ec.message());
  const pem_pair ca = make_certificate({.common_name = "exbridge lab CA", .valid_to_days = 365, .is_ca = true}, nullptr);
  const auto leaf = [&](const std::vector<std::string>& names) {
    return make_certificate({.common_name = names.empty() ? std::string("localhost") : names.front(),
                             .dns_names = names,
                             .ip_addresses = {"127.0.0.1", "::1"}},
                            &ca);
  };
  const pem_pair bridge = leaf(bridge_names);
  const pem_pair exchange = leaf(exchange_names);
  const pem_pair expired = make_certificate({.common_name = bridge_names.empty() ? std::string("localhost") : bridge_names.front(),
                                             .dns_names = bridge_names,
                                             .ip_addresses = {"127.0.0.1", "::1"},
                                             .valid_from_days = -91,
                                             .valid_to_days = -1},
                                            &ca);
  const pem_pair wrong_name = leaf({"www.fabrikam.example"});
  const lab_pki out = lab_pki_files(dir);
  write_file(out.ca_cert, ca.cert_pem);
  // The leaf files carry the chain (leaf, then CA) as a public server would serve it.
  write_file(out.bridge_cert, bridge.cert_pem + ca.cert_pem);
  write_file(out.bridge_key, bridge.key_pem, true);
  write_file(out.exchange_cert, exchange.cert_pem + ca.cert_pem);
  write_file(out.exchange_key, exchange.key_pem, true);
  write_file(out.expired_cert, expired.cert_pem + ca.cert_pem);
  write_file(out.expired_key, expired.key_pem, true);
  write_file(out.wrong_name_cert, wrong_name.cert_pem + ca.cert_pem);
  write_file(out.wrong_name_key, wrong_name.key_pem, true);
  return out;
}

}  // namespace exbridge
