// A lab PKI made at test and demo time: a CA and leaf certificates (RSA 2048, SHA-256), so that no
// private key is ever committed and the Exchange Online client can verify chains and names for real.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace exbridge {

struct pem_pair {
  std::string cert_pem;
  std::string key_pem;
};

struct certificate_request {
  std::string common_name;
  std::vector<std::string> dns_names;     ///< subjectAltName DNS entries
  std::vector<std::string> ip_addresses;  ///< subjectAltName IP entries
  int valid_from_days = -1;               ///< notBefore, relative to now
  int valid_to_days = 90;                 ///< notAfter, relative to now (negative = already expired)
  bool is_ca = false;
};

/// Makes a key and a certificate; signed by `issuer`, or self-signed when `issuer` is null.
pem_pair make_certificate(const certificate_request& request, const pem_pair* issuer);

/// The files of a lab PKI written into one folder.
struct lab_pki {
  std::filesystem::path ca_cert;
  std::filesystem::path bridge_cert, bridge_key;      ///< the public name Exchange Online connects to
  std::filesystem::path exchange_cert, exchange_key;  ///< the old Exchange 2007 server
  /// Mistakes to rehearse: the bridge's certificate after it expired (a renewal that did not happen), and
  /// a certificate for another name (the wrong file deployed).
  std::filesystem::path expired_cert, expired_key;
  std::filesystem::path wrong_name_cert, wrong_name_key;
};

/// The file names of a lab PKI in `dir` (what write_lab_pki writes there).
lab_pki lab_pki_files(const std::filesystem::path& dir);

/// Writes ca.crt, bridge.crt/.key, exchange.crt/.key, expired.crt/.key (the bridge names, expired
/// yesterday) and wrong-name.crt/.key (www.fabrikam.example) into `dir` (created if needed).
/// `bridge_names` and `exchange_names` become the DNS subjectAltNames; 127.0.0.1 and ::1 are added.
lab_pki write_lab_pki(const std::filesystem::path& dir, const std::vector<std::string>& bridge_names,
                      const std::vector<std::string>& exchange_names);

/// A file's text from byte `offset` on ("" when it cannot be read: callers reading logs and PEM files they
/// wrote themselves check what they need of it).
std::string read_file(const std::filesystem::path& path, std::uintmax_t offset = 0);

/// Writes text to a file with the given permissions (0600 for keys). Throws config_error on failure.
void write_file(const std::filesystem::path& path, const std::string& text, bool secret = false);

}  // namespace exbridge
