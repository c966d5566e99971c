#include "actors/tls_identity.hpp"

#include "messages/hex_text.hpp"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

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

/// Reads every certificate of a PEM text; empty on a parse error.
bool read_pem_certs(const std::string& pem, STACK_OF(X509) * out) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  if (!bio)
    return false;
  while (X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr))
    sk_X509_push(out, cert);
  // The loop ends with "no start line" at the end of the text: not an error.
  ERR_clear_error();
  BIO_free(bio);
  return sk_X509_num(out) > 0;
}

/// Installs a PEM chain (leaf first) and key given as text into `ctx`.
bool use_pem(SSL_CTX* ctx, const tls_identity_options& o, std::string& error) {
  STACK_OF(X509)* certs = sk_X509_new_null();
  bool ok = read_pem_certs(o.cert_pem, certs);
  if (!ok) {
    error = o.cert_flag + ": not a PEM certificate chain";
  } else if (SSL_CTX_use_certificate(ctx, sk_X509_value(certs, 0)) != 1) {
    error = o.cert_flag + ": " + openssl_error_text();
    ok = false;
  }
  for (int i = 1; ok && i < sk_X509_num(certs); ++i) {
    if (SSL_CTX_add1_chain_cert(ctx, sk_X509_value(certs, i)) != 1) {
      error = o.cert_flag + ": " + openssl_error_text();
      ok = false;
    }
  }
  sk_X509_pop_free(certs, X509_free);
  if (!ok)
    return false;
  BIO* bio
    = BIO_new_mem_buf(o.key_pem.data(), static_cast<int>(o.key_pem.size()));
  EVP_PKEY* key
    = bio ? PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr) : nullptr;
  BIO_free(bio);
  if (!key || SSL_CTX_use_PrivateKey(ctx, key) != 1) {
    error = o.key_flag
            + ": not a PEM private key, or it does not match the "
              "certificate ("
            + openssl_error_text() + ")";
    EVP_PKEY_free(key);
    return false;
  }
  EVP_PKEY_free(key);
  return true;
}

/// Adds a PEM CA bundle given as text to the verify store of `ctx`.
bool use_pem_ca(SSL_CTX* ctx, const tls_identity_options& o,
                std::string& error) {
  STACK_OF(X509)* certs = sk_X509_new_null();
  bool ok = read_pem_certs(o.ca_pem, certs);
  if (!ok)
    error = o.ca_flag + ": not a PEM CA bundle";
  X509_STORE* store = SSL_CTX_get_cert_store(ctx);
  for (int i = 0; ok && i < sk_X509_num(certs); ++i) {
    if (X509_STORE_add_cert(store, sk_X509_value(certs, i)) != 1) {
      error = o.ca_flag + ": " + openssl_error_text();
      ok = false;
    }
  }
  sk_X509_pop_free(certs, X509_free);
  return ok;
}

/// Copies the trusted certificates of `from`'s verify store into `to`'s.
bool copy_ca(SSL_CTX* from, SSL_CTX* to, std::string& error) {
  X509_STORE* src = SSL_CTX_get_cert_store(from);
  X509_STORE* dst = SSL_CTX_get_cert_store(to);
  STACK_OF(X509_OBJECT)* objs = X509_STORE_get0_objects(src);
  for (int i = 0; i < sk_X509_OBJECT_num(objs); ++i) {
    X509* cert = X509_OBJECT_get0_X509(sk_X509_OBJECT_value(objs, i));
    if (cert && X509_STORE_add_cert(dst, cert) != 1) {
      error = "TLS: cannot install the CA: " + openssl_error_text();
      return false;
    }
  }
  return true;
}

} // namespace

std::string certificate_node_id(X509* cert, std::string& error) {
  if (!cert) {
    error = "no certificate";
    return {};
  }
  auto* names = static_cast<GENERAL_NAMES*>(
    X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  std::string found;
  int count = 0;
  const std::string prefix = node_uri_prefix;
  for (int i = 0; names && i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
    if (name->type != GEN_URI)
      continue;
    const auto* uri = name->d.uniformResourceIdentifier;
    std::string text(reinterpret_cast<const char*>(ASN1_STRING_get0_data(uri)),
                     static_cast<size_t>(ASN1_STRING_length(uri)));
    if (text.compare(0, prefix.size(), prefix) != 0)
      continue;
    ++count;
    found = text.substr(prefix.size());
  }
  GENERAL_NAMES_free(names);
  if (count != 1) {
    error = count == 0 ? "the certificate names no node (no URI SAN " + prefix
                           + "<hex id>)"
                       : "the certificate names several nodes";
    return {};
  }
  // Hex of 1 to 128 raw bytes, as config::node_id allows.
  std::string id;
  if (!from_hex(found, id, 128)) {
    error = "malformed node ID in the certificate: " + found;
    return {};
  }
  return id;
}

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
      options_(std::move(other.options_)), has_ca_(other.has_ca_) {}

tls_identity& tls_identity::operator=(tls_identity&& other) noexcept {
  if (this != &other) {
    if (ctx_)
      SSL_CTX_free(ctx_);
    ctx_ = std::exchange(other.ctx_, nullptr);
    options_ = std::move(other.options_);
    has_ca_ = other.has_ca_;
  }
  return *this;
}

bool tls_identity::load(const tls_identity_options& options,
                        std::string& error) {
  if (options.cert_file.empty() && !options.cert_pem.empty())
    return load_pem(options, error);
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
  if (options.ca_file.empty() && !options.ca_pem.empty()
      && !use_pem_ca(ctx, options, error)) {
    SSL_CTX_free(ctx);
    return false;
  }
  adopt(ctx, options);
  return true;
}

bool tls_identity::load_pem(const tls_identity_options& options,
                            std::string& error) {
  if (options.key_pem.empty()) {
    error = options.key_flag + ": no private key given with the certificate";
    return false;
  }
  ERR_clear_error();
  SSL_CTX* ctx = SSL_CTX_new(TLS_method());
  if (!ctx) {
    error = "TLS: cannot create a context: " + openssl_error_text();
    return false;
  }
  if (!use_pem(ctx, options, error)
      || (!options.ca_pem.empty() && !use_pem_ca(ctx, options, error))) {
    SSL_CTX_free(ctx);
    return false;
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    error = options.key_flag + ": the key does not match the certificate";
    ERR_clear_error();
    SSL_CTX_free(ctx);
    return false;
  }
  adopt(ctx, options);
  return true;
}

void tls_identity::adopt(SSL_CTX* ctx, const tls_identity_options& options) {
  if (ctx_)
    SSL_CTX_free(ctx_);
  ctx_ = ctx;
  options_ = options;
  has_ca_ = !options.ca_file.empty() || !options.ca_pem.empty();
}

X509* tls_identity::certificate() const {
  return ctx_ ? SSL_CTX_get0_certificate(ctx_) : nullptr;
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
  if (has_ca_) {
    // The CA was parsed once by load: copy its certificates (no file read
    // here, so PEM-in-memory identities work alike).
    if (!copy_ca(ctx_, ctx, error))
      return false;
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
