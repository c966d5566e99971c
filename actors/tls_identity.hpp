#pragma once

// The one place that loads a TLS certificate chain and private key and
// configures an OpenSSL context with them. The HTTP API's TLS
// (`--http-cert`/`--http-key`) uses it today; the peer links' mutual TLS
// (issue 16) will use the same class with a CA file. Users hold a raw
// `SSL_CTX*` (asio::ssl::context wraps one through its native-handle
// constructor), so the class configures any SSL_CTX rather than owning one.

#include <string>

typedef struct ssl_ctx_st SSL_CTX;

namespace syncmesh {

/// Where a TLS identity comes from.
struct tls_identity_options {
  /// PEM certificate chain: the leaf first, then intermediates.
  std::string cert_file;
  /// PEM private key matching the leaf certificate.
  std::string key_file;
  /// Optional PEM CA bundle to verify peers against (mutual TLS, later).
  std::string ca_file;
  /// Refuse protocol versions below TLS 1.3 (else TLS 1.2 is the minimum).
  bool tls13_only = false;
  /// The flag names used in error messages ("--http-cert", "--http-key").
  std::string cert_flag = "--tls-cert";
  /// See `cert_flag`.
  std::string key_flag = "--tls-key";
  /// See `cert_flag`.
  std::string ca_flag = "--tls-ca";
};

/// A certificate chain and key, checked to belong together, ready to be
/// installed in an SSL_CTX.
class tls_identity {
public:
  /// Owns nothing until `load` succeeds.
  tls_identity() = default;
  ~tls_identity();
  tls_identity(const tls_identity&) = delete;
  tls_identity& operator=(const tls_identity&) = delete;
  tls_identity(tls_identity&& other) noexcept;
  tls_identity& operator=(tls_identity&& other) noexcept;

  /// Reads and checks the files; on failure returns false with one line
  /// in `error` naming the flag, the file and the reason ("--http-cert:
  /// cannot read /x: No such file or directory").
  bool load(const tls_identity_options& options, std::string& error);

  /// True after a successful `load`.
  bool loaded() const { return ctx_ != nullptr; }

  /// Installs the chain, the key, the version floor and (when a CA file
  /// was given) peer verification into `ctx`. False with `error` set when
  /// OpenSSL refuses.
  bool configure(SSL_CTX* ctx, std::string& error) const;

  /// A new server-side SSL_CTX configured by `configure` (the caller owns
  /// it: SSL_CTX_free, or hand it to asio::ssl::context's native-handle
  /// constructor); nullptr with `error` set on failure.
  SSL_CTX* make_server_context(std::string& error) const;

private:
  /// A private context holding the loaded chain and key: OpenSSL does the
  /// PEM parsing and the key/certificate match check on it once, and
  /// `configure` copies from it.
  SSL_CTX* ctx_ = nullptr;
  tls_identity_options options_;
};

/// The last OpenSSL error of this thread as text (empties the queue).
std::string openssl_error_text();

} // namespace syncmesh
