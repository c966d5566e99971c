#pragma once

// The one place that loads a TLS certificate chain and private key and
// configures an OpenSSL context with them. The HTTP API's TLS
// (`--http-cert`/`--http-key`) and the peer links' mutual TLS (issue 16:
// `--tls-cert`/`--tls-key`/`--tls-ca`, with the cluster CA) both use it.
// Users hold a raw
// `SSL_CTX*` (asio::ssl::context wraps one through its native-handle
// constructor), so the class configures any SSL_CTX rather than owning one.

#include <string>

typedef struct ssl_ctx_st SSL_CTX;
typedef struct x509_st X509;

namespace syncmesh {

/// Where a TLS identity comes from.
struct tls_identity_options {
  /// PEM certificate chain: the leaf first, then intermediates.
  std::string cert_file;
  /// PEM private key matching the leaf certificate.
  std::string key_file;
  /// Optional PEM CA bundle to verify peers against (mutual TLS).
  std::string ca_file;
  /// PEM text instead of files (apps that keep certificates in memory):
  /// used when `cert_file` is empty and `cert_pem` is not.
  std::string cert_pem;
  /// See `cert_pem`: the private key.
  std::string key_pem;
  /// See `cert_pem`: the CA bundle.
  std::string ca_pem;
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

  /// True when a CA bundle (file or PEM) was loaded.
  bool has_ca() const { return has_ca_; }

  /// The leaf certificate (owned by the identity; nullptr before `load`).
  X509* certificate() const;

  /// Installs the chain, the key, the version floor and (when a CA file
  /// was given) peer verification into `ctx`. False with `error` set when
  /// OpenSSL refuses.
  bool configure(SSL_CTX* ctx, std::string& error) const;

  /// A new server-side SSL_CTX configured by `configure` (the caller owns
  /// it: SSL_CTX_free, or hand it to asio::ssl::context's native-handle
  /// constructor); nullptr with `error` set on failure.
  SSL_CTX* make_server_context(std::string& error) const;

private:
  /// `load` from the PEM texts of `options`.
  bool load_pem(const tls_identity_options& options, std::string& error);
  /// Takes `ctx` as the loaded identity.
  void adopt(SSL_CTX* ctx, const tls_identity_options& options);

  /// A private context holding the loaded chain and key: OpenSSL does the
  /// PEM parsing and the key/certificate match check on it once, and
  /// `configure` copies from it.
  SSL_CTX* ctx_ = nullptr;
  tls_identity_options options_;
  bool has_ca_ = false;
};

/// The URI SAN prefix that names a node in its certificate:
/// `urn:syncmesh:node:<lowercase hex of the raw node ID>`.
inline constexpr const char* node_uri_prefix = "urn:syncmesh:node:";

/// The node ID a certificate's URI SAN names (raw bytes), or empty with
/// `error` set when it names none, several, or a malformed one.
std::string certificate_node_id(X509* cert, std::string& error);

/// The last OpenSSL error of this thread as text (empties the queue).
std::string openssl_error_text();

} // namespace syncmesh
