#pragma once

// Mutual TLS 1.3 for peer links, driven through memory BIOs: the link
// broker keeps its socket in the caf::io multiplexer (framing, write
// acknowledgements, halting reads and the test multiplexer keep working)
// and passes bytes through a tls_channel: ciphertext read from the socket
// goes in, plaintext comes out; plaintext to send goes in, ciphertext to
// write comes out. Both sides present a certificate and verify the other's
// against the cluster CA; the peer's node ID is the one its certificate
// names (URI SAN urn:syncmesh:node:<hex>, see tls_identity.hpp). No CAF
// here: the class is tested directly with two channels and byte buffers.

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "actors/tls_identity.hpp"

typedef struct ssl_st SSL;
typedef struct bio_st BIO;

namespace syncmesh {

/// Largest TLS 1.3 record on the wire: 5 header bytes, 2^14 bytes of
/// plaintext, 256 bytes of expansion (RFC 8446, 5.2).
inline constexpr size_t tls_max_record = 5 + 16384 + 256;

/// A configured OpenSSL context for peer links, shared by all links of a
/// node: this node's certificate and key, the cluster CA, TLS 1.3 only,
/// peer certificates required and verified in both directions.
class tls_context {
public:
  /// Builds the context from a loaded identity with a CA; nullptr with
  /// `error` set when the identity lacks a CA, its certificate names no
  /// node, or OpenSSL refuses.
  static std::shared_ptr<tls_context> make(const tls_identity& identity,
                                           std::string& error);
  ~tls_context();
  tls_context(const tls_context&) = delete;
  tls_context& operator=(const tls_context&) = delete;

  /// The OpenSSL context (owned).
  SSL_CTX* native() const { return ctx_; }
  /// The node ID this node's own certificate names (raw bytes).
  const std::string& node_id() const { return node_id_; }

private:
  tls_context() = default;
  SSL_CTX* ctx_ = nullptr;
  std::string node_id_;
};

/// One TLS connection over byte buffers (see the file comment).
///
/// Memory is bounded whatever the peer sends: whole records go to OpenSSL
/// and are decrypted at once, so at most one partial record
/// (tls_max_record) waits inside, counted in held_bytes; a record header
/// announcing more than TLS allows fails the channel at once. Plaintext written
/// before the handshake completes waits (at most `max_pending_plain` bytes).
/// Certificate chains are capped at 64 KiB by the context.
class tls_channel {
public:
  /// A channel in the role of `server` (accepted connection) or client.
  /// The client's first flight is ready in `take_output` at once.
  tls_channel(std::shared_ptr<const tls_context> ctx, bool server,
              size_t max_pending_plain = 64 * 1024);
  ~tls_channel();
  tls_channel(const tls_channel&) = delete;
  tls_channel& operator=(const tls_channel&) = delete;

  /// Hands ciphertext read from the socket and appends what it decrypts to
  /// `plain`. False once the channel failed (see `error`); then
  /// `take_output` may still hold an alert for the peer.
  bool feed(std::string_view cipher, std::string& plain);

  /// Encrypts `plain` (or keeps it until the handshake completes). False
  /// when the channel failed or too much waits for the handshake.
  bool write(std::string_view plain);

  /// Appends the ciphertext waiting to be written to the socket to `out`;
  /// returns how many bytes it appended.
  size_t take_output(std::vector<char>& out);
  /// See above, into a string (tests).
  size_t take_output(std::string& out);

  /// Queues a close_notify alert (read with take_output).
  void close();

  /// The handshake completed and the peer's certificate was verified.
  bool established() const { return established_; }
  /// The channel failed: the connection must be closed.
  bool failed() const { return failed_; }
  /// The peer's first bytes were not a TLS record but looked like the plain
  /// native protocol (a length-prefixed frame): the peer runs without TLS.
  bool plain_peer() const { return plain_peer_; }
  /// The peer sent close_notify.
  bool peer_closed() const { return peer_closed_; }
  /// Why the channel failed, one line.
  const std::string& error() const { return error_; }
  /// The node ID the peer's certificate names (raw bytes), once
  /// established.
  const std::string& peer_id() const { return peer_id_; }

  /// Bytes the channel holds now: ciphertext not yet decrypted or not yet
  /// taken, and plaintext waiting for the handshake.
  size_t held_bytes() const;

private:
  bool fail(std::string why);
  bool advance_handshake();
  bool flush_pending();
  bool read_plain(std::string& plain);

  std::shared_ptr<const tls_context> ctx_;
  SSL* ssl_ = nullptr;
  BIO* in_ = nullptr;  // ciphertext from the peer (owned by ssl_)
  BIO* out_ = nullptr; // ciphertext to the peer (owned by ssl_)
  bool server_;
  size_t max_pending_plain_;
  std::string pending_plain_;
  std::string input_; // ciphertext of an incomplete record
  bool established_ = false;
  bool failed_ = false;
  bool plain_peer_ = false;
  bool peer_closed_ = false;
  bool first_byte_seen_ = false;
  std::string error_;
  std::string peer_id_;
};

} // namespace syncmesh
