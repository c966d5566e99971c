#include "actors/tls_channel.hpp"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include <utility>

namespace syncmesh {

namespace {

/// Largest certificate chain a peer may send in its handshake.
constexpr long max_cert_list = 64 * 1024;

/// The reason of a failed handshake or read: OpenSSL's error queue, and
/// the certificate verification result when that is what failed.
std::string failure_text(SSL* ssl) {
  std::string text = openssl_error_text();
  long verify = SSL_get_verify_result(ssl);
  if (verify != X509_V_OK)
    text += " (" + std::string{X509_verify_cert_error_string(verify)} + ")";
  return text;
}

} // namespace

std::shared_ptr<tls_context> tls_context::make(const tls_identity& identity,
                                               std::string& error) {
  if (!identity.loaded()) {
    error = "TLS: no certificate loaded";
    return nullptr;
  }
  if (!identity.has_ca()) {
    error = "--tls-ca: peer TLS needs the cluster CA";
    return nullptr;
  }
  std::string why;
  auto id = certificate_node_id(identity.certificate(), why);
  if (id.empty()) {
    error = "--tls-cert: " + why;
    return nullptr;
  }
  std::shared_ptr<tls_context> result{new tls_context};
  result->node_id_ = std::move(id);
  // TLS_method: one context serves accepted (server) and dialled (client)
  // links alike; the role is set per connection.
  result->ctx_ = SSL_CTX_new(TLS_method());
  if (!result->ctx_) {
    error = "TLS: cannot create a context: " + openssl_error_text();
    return nullptr;
  }
  if (!identity.configure(result->ctx_, error))
    return nullptr;
  auto* ctx = result->ctx_;
  SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
  SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
  // Both directions: the client verifies the server too (configure set the
  // flags; set them again so this does not depend on its defaults).
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
                     nullptr);
  SSL_CTX_set_max_cert_list(ctx, max_cert_list);
  // Links are long-lived and redialled rarely: no resumption, so no
  // session tickets (bytes and state per link for nothing).
  SSL_CTX_set_num_tickets(ctx, 0);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  // Idle links give their 16 KiB read and write buffers back.
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  return result;
}

tls_context::~tls_context() {
  if (ctx_)
    SSL_CTX_free(ctx_);
}

tls_channel::tls_channel(std::shared_ptr<const tls_context> ctx, bool server,
                         size_t max_pending_plain)
    : ctx_(std::move(ctx)), server_(server),
      max_pending_plain_(max_pending_plain) {
  ERR_clear_error();
  ssl_ = SSL_new(ctx_->native());
  in_ = BIO_new(BIO_s_mem());
  out_ = BIO_new(BIO_s_mem());
  if (!ssl_ || !in_ || !out_) {
    BIO_free(in_);
    BIO_free(out_);
    in_ = out_ = nullptr;
    fail("TLS: cannot create a connection: " + openssl_error_text());
    return;
  }
  // An empty memory BIO means "retry later", not end of file.
  BIO_set_mem_eof_return(in_, -1);
  BIO_set_mem_eof_return(out_, -1);
  SSL_set_bio(ssl_, in_, out_);
  if (server_)
    SSL_set_accept_state(ssl_);
  else
    SSL_set_connect_state(ssl_);
  // The client speaks first: its ClientHello is ready at once.
  if (!server_)
    advance_handshake();
}

tls_channel::~tls_channel() {
  if (ssl_)
    SSL_free(ssl_); // frees both BIOs
  else {
    BIO_free(in_);
    BIO_free(out_);
  }
}

bool tls_channel::fail(std::string why) {
  if (!failed_) {
    failed_ = true;
    error_ = std::move(why);
  }
  // Nothing more is decrypted: give back what the peer sent (an alert for
  // it may still wait in out_).
  if (in_)
    (void)BIO_reset(in_);
  input_.clear();
  input_.shrink_to_fit();
  pending_plain_.clear();
  return false;
}

bool tls_channel::advance_handshake() {
  ERR_clear_error();
  int rc = SSL_do_handshake(ssl_);
  if (rc != 1) {
    int err = SSL_get_error(ssl_, rc);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE)
      return true;
    return fail("TLS handshake failed: " + failure_text(ssl_));
  }
  // Verified against the CA by OpenSSL (SSL_VERIFY_PEER); the node ID is
  // ours to read.
  X509* cert = SSL_get0_peer_certificate(ssl_);
  std::string why;
  peer_id_ = certificate_node_id(cert, why);
  if (peer_id_.empty())
    return fail("TLS: peer certificate refused: " + why);
  established_ = true;
  return flush_pending();
}

bool tls_channel::flush_pending() {
  if (pending_plain_.empty())
    return true;
  std::string plain;
  plain.swap(pending_plain_);
  return write(plain);
}

bool tls_channel::read_plain(std::string& plain) {
  char buf[16 * 1024];
  for (;;) {
    ERR_clear_error();
    int n = SSL_read(ssl_, buf, sizeof(buf));
    if (n > 0) {
      plain.append(buf, static_cast<size_t>(n));
      continue;
    }
    int err = SSL_get_error(ssl_, n);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE)
      return true;
    if (err == SSL_ERROR_ZERO_RETURN) {
      peer_closed_ = true;
      return true;
    }
    return fail("TLS: " + failure_text(ssl_));
  }
}

bool tls_channel::feed(std::string_view cipher, std::string& plain) {
  if (failed_)
    return false;
  if (cipher.empty())
    return true;
  if (!first_byte_seen_) {
    first_byte_seen_ = true;
    // 22: a TLS handshake record. A native syncmesh frame starts with the
    // high byte of its length (0 for any frame under 16 MiB).
    auto first = static_cast<unsigned char>(cipher[0]);
    if (first != 22) {
      plain_peer_ = first == 0;
      return fail(plain_peer_ ? "the peer speaks plain TCP, not TLS"
                              : "the peer's first bytes are not TLS");
    }
  }
  // Only whole records go to OpenSSL: a partial one waits here, where it
  // is counted (OpenSSL would keep it in its own read buffer, out of
  // sight of held_bytes), and a record longer than TLS allows is refused
  // from its header.
  // Without a partial record waiting, scan the new bytes where they are
  // (no copy of the bulk of the stream).
  std::string_view data = cipher;
  if (!input_.empty()) {
    input_.append(cipher.data(), cipher.size());
    data = input_;
  }
  size_t whole = 0;
  while (data.size() - whole >= 5) {
    auto hi = static_cast<unsigned char>(data[whole + 3]);
    auto lo = static_cast<unsigned char>(data[whole + 4]);
    size_t length = (size_t{hi} << 8) | lo;
    if (5 + length > tls_max_record)
      return fail("TLS: the peer announced a record of "
                  + std::to_string(length) + " bytes (at most "
                  + std::to_string(tls_max_record - 5) + ")");
    if (data.size() - whole < 5 + length)
      break;
    whole += 5 + length;
  }
  if (whole > 0
      && BIO_write(in_, data.data(), static_cast<int>(whole))
           != static_cast<int>(whole))
    return fail("TLS: cannot buffer input: " + openssl_error_text());
  if (input_.empty())
    input_.assign(data.substr(whole));
  else
    input_.erase(0, whole);
  if (whole == 0)
    return true;
  if (!established_ && !advance_handshake())
    return false;
  if (established_ && !read_plain(plain))
    return false;
  return true;
}

bool tls_channel::write(std::string_view plain) {
  if (failed_)
    return false;
  if (plain.empty())
    return true;
  if (!established_) {
    if (pending_plain_.size() + plain.size() > max_pending_plain_)
      return fail("TLS: more than " + std::to_string(max_pending_plain_)
                  + " bytes written before the handshake completed");
    pending_plain_.append(plain);
    return true;
  }
  ERR_clear_error();
  // The memory BIO takes everything: SSL_write returns all or fails.
  int n = SSL_write(ssl_, plain.data(), static_cast<int>(plain.size()));
  if (n != static_cast<int>(plain.size()))
    return fail("TLS: cannot encrypt: " + failure_text(ssl_));
  return true;
}

size_t tls_channel::take_output(std::vector<char>& out) {
  if (!out_)
    return 0;
  auto n = static_cast<size_t>(BIO_ctrl_pending(out_));
  if (n == 0)
    return 0;
  auto at = out.size();
  out.resize(at + n);
  int got = BIO_read(out_, out.data() + at, static_cast<int>(n));
  out.resize(at + static_cast<size_t>(got > 0 ? got : 0));
  return got > 0 ? static_cast<size_t>(got) : 0;
}

size_t tls_channel::take_output(std::string& out) {
  std::vector<char> buf;
  auto n = take_output(buf);
  out.append(buf.data(), buf.size());
  return n;
}

void tls_channel::close() {
  if (ssl_ && established_ && !failed_) {
    ERR_clear_error();
    SSL_shutdown(ssl_);
    ERR_clear_error();
  }
}

size_t tls_channel::held_bytes() const {
  size_t held = pending_plain_.size() + input_.size();
  if (in_)
    held += static_cast<size_t>(BIO_ctrl_pending(in_));
  if (out_)
    held += static_cast<size_t>(BIO_ctrl_pending(out_));
  return held;
}

} // namespace syncmesh
