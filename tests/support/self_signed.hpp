#pragma once

// A throwaway TLS identity for tests: a P-256 key and a self-signed
// certificate for "localhost" (valid for an hour), written as PEM files.
// Made with the OpenSSL API, so no `openssl` program is needed.

#include <cstdio>
#include <string>

#include <boost/test/unit_test.hpp>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

namespace syncmesh::test {

/// Writes a new key to `key_path` and its self-signed certificate to
/// `cert_path`.
inline void make_self_signed(const std::string& cert_path,
                             const std::string& key_path) {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  BOOST_REQUIRE(key);
  X509* cert = X509_new();
  X509_set_version(cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert), 0);
  X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
  X509_set_pubkey(cert, key);
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(
    name, "CN", MBSTRING_ASC,
    reinterpret_cast<const unsigned char*>("localhost"), -1, -1, 0);
  X509_set_issuer_name(cert, name);
  BOOST_REQUIRE(X509_sign(cert, key, EVP_sha256()) > 0);
  FILE* out = std::fopen(cert_path.c_str(), "w");
  BOOST_REQUIRE(out);
  PEM_write_X509(out, cert);
  std::fclose(out);
  out = std::fopen(key_path.c_str(), "w");
  BOOST_REQUIRE(out);
  PEM_write_PrivateKey(out, key, nullptr, nullptr, 0, nullptr, nullptr);
  std::fclose(out);
  X509_free(cert);
  EVP_PKEY_free(key);
}

} // namespace syncmesh::test
