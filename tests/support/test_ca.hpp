#pragma once

// A throwaway cluster CA for peer TLS tests: a P-256 CA certificate and
// node certificates it signs, with the node's URI SAN
// (urn:syncmesh:node:<hex id>), as PEM text or files. Made with the OpenSSL
// API, so tests need no `openssl` program. Validity can be shifted into the
// past to make an expired certificate.

#include <cstdio>
#include <stdexcept>
#include <string>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

namespace syncmesh::test {

/// Throws when OpenSSL refused a step (Boost.Test reports the exception;
/// the benchmark, which has no Boost.Test, uses this header too).
inline void ca_require(bool ok, const char* what) {
  if (!ok)
    throw std::runtime_error(std::string{"test_ca: "} + what + " failed");
}

/// A certificate and its key as PEM text.
struct pem_pair {
  /// The certificate (leaf only: the CA signs leaves directly).
  std::string cert;
  /// The private key.
  std::string key;
};

/// Lowercase hex of raw bytes (the SAN spelling of a node ID).
inline std::string hex_of(const std::string& raw) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : raw) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

/// A CA that signs node certificates (see the file comment).
class test_ca {
public:
  /// A new CA key and self-signed CA certificate named `cn`.
  explicit test_ca(const std::string& cn = "syncmesh test CA") {
    key_ = EVP_EC_gen("P-256");
    ca_require(key_ != nullptr, "CA key generation");
    cert_ = X509_new();
    X509_set_version(cert_, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert_), serial_++);
    X509_gmtime_adj(X509_getm_notBefore(cert_), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert_), 24 * 3600);
    X509_set_pubkey(cert_, key_);
    name(X509_get_subject_name(cert_), cn);
    X509_set_issuer_name(cert_, X509_get_subject_name(cert_));
    extend(cert_, NID_basic_constraints, "critical,CA:TRUE");
    extend(cert_, NID_key_usage, "critical,keyCertSign,cRLSign");
    ca_require(X509_sign(cert_, key_, EVP_sha256()) > 0, "signing the CA");
  }
  ~test_ca() {
    X509_free(cert_);
    EVP_PKEY_free(key_);
  }
  test_ca(const test_ca&) = delete;
  test_ca& operator=(const test_ca&) = delete;

  /// The CA certificate as PEM (the `--tls-ca` bundle).
  std::string cert_pem() const { return pem(cert_); }

  /// A node certificate for raw `node_id` (no SAN when `uri` is empty
  /// and node_id is empty; `uri` overrides the SAN text), valid from
  /// now + `from_s` to now + `until_s` seconds.
  pem_pair issue(const std::string& node_id, long from_s = -60,
                 long until_s = 3600, const std::string& uri = {}) {
    EVP_PKEY* key = EVP_EC_gen("P-256");
    ca_require(key != nullptr, "key generation");
    X509* cert = X509_new();
    X509_set_version(cert, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert), serial_++);
    X509_gmtime_adj(X509_getm_notBefore(cert), from_s);
    X509_gmtime_adj(X509_getm_notAfter(cert), until_s);
    X509_set_pubkey(cert, key);
    name(X509_get_subject_name(cert), "node " + hex_of(node_id));
    X509_set_issuer_name(cert, X509_get_subject_name(cert_));
    std::string san = !uri.empty() ? uri
                      : node_id.empty()
                        ? std::string{}
                        : "urn:syncmesh:node:" + hex_of(node_id);
    if (!san.empty())
      extend(cert, NID_subject_alt_name, "URI:" + san);
    extend(cert, NID_basic_constraints, "critical,CA:FALSE");
    extend(cert, NID_ext_key_usage, "serverAuth,clientAuth");
    ca_require(X509_sign(cert, key_, EVP_sha256()) > 0,
               "signing a certificate");
    pem_pair result{pem(cert), key_pem(key)};
    X509_free(cert);
    EVP_PKEY_free(key);
    return result;
  }

  /// Writes `text` to `path`.
  static void write(const std::string& path, const std::string& text) {
    FILE* out = std::fopen(path.c_str(), "w");
    ca_require(out != nullptr, "opening the output file");
    std::fwrite(text.data(), 1, text.size(), out);
    std::fclose(out);
  }

private:
  static void name(X509_NAME* n, const std::string& cn) {
    X509_NAME_add_entry_by_txt(
      n, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn.c_str()),
      -1, -1, 0);
  }
  void extend(X509* cert, int nid, const std::string& value) {
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, cert_, cert, nullptr, nullptr, 0);
    X509_EXTENSION* ext
      = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
    ca_require(ext != nullptr, "making an extension");
    X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
  }
  static std::string pem(X509* cert) {
    BIO* bio = BIO_new(BIO_s_mem());
    PEM_write_bio_X509(bio, cert);
    return drain(bio);
  }
  static std::string key_pem(EVP_PKEY* key) {
    BIO* bio = BIO_new(BIO_s_mem());
    PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr);
    return drain(bio);
  }
  static std::string drain(BIO* bio) {
    char* data = nullptr;
    long n = BIO_get_mem_data(bio, &data);
    std::string text(data, static_cast<size_t>(n));
    BIO_free(bio);
    return text;
  }

  EVP_PKEY* key_ = nullptr;
  X509* cert_ = nullptr;
  long serial_ = 1;
};

} // namespace syncmesh::test
