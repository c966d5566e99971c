#include "actors/tls_identity.hpp"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>

namespace syncmesh {

namespace {

/// False with "flag: cannot read path: reason" unless `path` can be
/// opened for reading (OpenSSL's own message for a missing file is
/// "system lib", which tells an operator nothing).
bool readable(const std::string& flag, const std::string& path,
              std::string& error) {
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (!file) {
    error = flag + ": cannot read " + path + ": " + std::strerror(errno);
    return false;
  }
  std::fclose(file);
  return true;
}

} // namespace

std::string openssl_error_text() {
  std::string text;
  unsigned long code;
  while ((code = ERR_get_error()) != 0) {
    char buf[256];
    ERR_error_string_n(code, buf, sizeof(buf));
    if (!text.empty())
      text += "; ";
    text += buf;
  }
  return text.empty() ? std::string{"unknown OpenSSL error"} : text;
}

tls_identity::~tls_identity() {
  if (ctx_)
    SSL_CTX_free(ctx_);
}

tls_identity::tls_identity(tls_identity&& other) noexcept
    : ctx_(std::exchange(other.ctx_, nullptr)),
      options_(std::move(other.options_)) {}

tls_identity& tls_identity::operator=(tls_identity&& other) noexcept {
  if (this != &other) {
    if (ctx_)
      SSL_CTX_free(ctx_);
    ctx_ = std::exchange(other.ctx_, nullptr);
    options_ = std::move(other.options_);
  }
  return *this;
}

bool tls_identity::load(const tls_identity_options& options,
                        std::string& error) {
  if (options.cert_file.empty() != options.key_file.empty()) {
    error = options.cert_file.empty()
              ? options.key_flag + " given without " + options.cert_flag
              : options.cert_flag + " given without " + options.key_flag;
    return false;
  }
  if (options.cert_file.empty()) {
    error = options.cert_flag + ": no certificate file given";
    return false;
  }
  if (!readable(options.cert_flag, options.cert_file, error)
      || !readable(options.key_flag, options.key_file, error)
      || (!options.ca_file.empty()
          && !readable(options.ca_flag, options.ca_file, error)))
    return false;
  ERR_clear_error();
  SSL_CTX* ctx = SSL_CTX_new(TLS_method());
  if (!ctx) {
    error = "TLS: cannot create a context: " + openssl_error_text();
    return false;
  }
  if (SSL_CTX_use_certificate_chain_file(ctx, options.cert_file.c_str()) != 1) {
    error = options.cert_flag + ": " + options.cert_file
            + ": not a PEM certificate chain (" + openssl_error_text() + ")";
    SSL_CTX_free(ctx);
    return false;
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, options.key_file.c_str(),
                                  SSL_FILETYPE_PEM)
      != 1) {
    error = options.key_flag + ": " + options.key_file
            + ": not a PEM private key, or it does not match the "
              "certificate in "
            + options.cert_file + " (" + openssl_error_text() + ")";
    SSL_CTX_free(ctx);
    return false;
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    error = options.key_flag + ": " + options.key_file
            + ": the key does not match the certificate in "
            + options.cert_file;
    ERR_clear_error();
    SSL_CTX_free(ctx);
    return false;
  }
  if (!options.ca_file.empty()
      && SSL_CTX_load_verify_locations(ctx, options.ca_file.c_str(), nullptr)
           != 1) {
    error = options.ca_flag + ": " + options.ca_file + ": not a PEM CA bundle ("
            + openssl_error_text() + ")";
    SSL_CTX_free(ctx);
    return false;
  }
  if (ctx_)
    SSL_CTX_free(ctx_);
  ctx_ = ctx;
  options_ = options;
  return true;
}

bool tls_identity::configure(SSL_CTX* ctx, std::string& error) const {
  if (!ctx_) {
    error = "TLS: no certificate loaded";
    return false;
  }
  ERR_clear_error();
  X509* leaf = SSL_CTX_get0_certificate(ctx_);
  EVP_PKEY* key = SSL_CTX_get0_privatekey(ctx_);
  STACK_OF(X509)* chain = nullptr;
  SSL_CTX_get0_chain_certs(ctx_, &chain);
  if (!leaf || !key || SSL_CTX_use_certificate(ctx, leaf) != 1
      || SSL_CTX_use_PrivateKey(ctx, key) != 1) {
    error = "TLS: cannot install the certificate: " + openssl_error_text();
    return false;
  }
  if (chain) {
    for (int i = 0; i < sk_X509_num(chain); ++i) {
      // add1: the context takes its own reference.
      if (SSL_CTX_add1_chain_cert(ctx, sk_X509_value(chain, i)) != 1) {
        error = "TLS: cannot install the chain: " + openssl_error_text();
        return false;
      }
    }
  }
  int floor = options_.tls13_only ? TLS1_3_VERSION : TLS1_2_VERSION;
  if (SSL_CTX_set_min_proto_version(ctx, floor) != 1) {
    error = "TLS: cannot set the minimum version: " + openssl_error_text();
    return false;
  }
  if (!options_.ca_file.empty()) {
    if (SSL_CTX_load_verify_locations(ctx, options_.ca_file.c_str(), nullptr)
        != 1) {
      error = options_.ca_flag + ": " + options_.ca_file + ": "
              + openssl_error_text();
      return false;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
                       nullptr);
  }
  return true;
}

SSL_CTX* tls_identity::make_server_context(std::string& error) const {
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (!ctx) {
    error = "TLS: cannot create a context: " + openssl_error_text();
    return nullptr;
  }
  if (!configure(ctx, error)) {
    SSL_CTX_free(ctx);
    return nullptr;
  }
  return ctx;
}

} // namespace syncmesh
