#pragma once

// The event-driven HTTP/1.1 server of the node's API.
//
// Why Boost.Beast and not RESTinio: Debian 12's librestinio-dev 0.6.16
// parses with the Node.js http-parser (libhttp-parser-dev), which its
// authors archived (RESTinio itself moved to llhttp later); a front whose
// job is to survive hostile clients should not sit on an unmaintained
// parser. Beast is maintained inside Boost, which the project already
// depends on (Boost.Test), is header-only, and gives what the limits need:
// a header read separately from the body (`async_read_header` with a
// header limit), a body limit enforced while reading (chunked included),
// and incremental body reading into a fixed buffer (NDJSON bulk loads).
//
// Threads: one io_context run by `server_options::threads` threads; every
// connection is a small state machine on its own strand. A slow or idle
// client costs a socket, a timer and its buffers (a few KB), never a
// thread. The API answers from any thread through the `responder`.
//
// Admission, in this order, after the header and before the body: header
// size/field count (431), URL length (414), framing (400, RFC 9112:
// duplicate Content-Length, a Transfer-Encoding other than exactly
// "chunked", or both), Host (421 Misdirected Request: a name that is not
// ours is a DNS rebinding attempt or a misrouted request; 400 when an
// HTTP/1.1 request has no Host), Origin (403 for a cross-site write),
// token (401 with WWW-Authenticate: Bearer), declared body size (413).
// Then the body is read (413 as soon as it passes the limit, 408 at the
// read deadline), and the request is dispatched unless `max_in_flight`
// requests are already waiting for their answers (503, Retry-After: 1).

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "node/daemon/http_exchange.hpp"

namespace syncmesh::http {

/// What the API gives the server: how to answer, and which routes read
/// their body in pieces.
struct http_dispatch {
  /// Handles requests whose body was read whole.
  handler whole;
  /// Handles requests whose body is read in pieces (bulk loads).
  piecewise_handler pieces;
  /// True when the request with this method and path reads its body in
  /// pieces (then `pieces` gets it); null: never.
  std::function<bool(std::string_view method, std::string_view path)>
    reads_in_pieces;
};

/// The server's limits and security settings. Every limit has a safe
/// default; every refusal is counted in `server_stats`.
struct server_options {
  /// Threads running the io_context (connections are never tied to one).
  size_t threads = 1;
  /// Largest request header (request line and fields) in bytes: 431 above.
  size_t max_header_bytes = 16 * 1024;
  /// Most header fields in one request: 431 above.
  size_t max_header_fields = 100;
  /// Longest request target (path and query) in bytes: 414 above.
  size_t max_url = 8 * 1024;
  /// Largest body read whole (the API sets value size + JSON slack): 413
  /// as soon as a body (chunked included) goes past it.
  uint64_t max_body = 1024 * 1024;
  /// Largest body read in pieces (bulk loads): 413 past it. 0: no limit
  /// (the piecewise handler bounds what it keeps).
  uint64_t max_piecewise_body = 0;
  /// Size of the pieces handed to a `body_reader`: the only buffer a bulk
  /// load holds in the server.
  size_t body_piece = 64 * 1024;
  /// Deadline for a request's header once its first byte may arrive
  /// (also for a new connection's first request and a TLS handshake):
  /// 408 (or a plain close) when it passes. A deadline, not a per-read
  /// timer: a client trickling one byte a second is still cut.
  std::chrono::milliseconds header_timeout{10'000};
  /// Deadline for reading a whole body (408), and for each piece of a
  /// body read in pieces.
  std::chrono::milliseconds body_timeout{10'000};
  /// How long a keep-alive connection may sit between requests.
  std::chrono::milliseconds idle_timeout{60'000};
  /// Deadline for writing one response or one stream chunk (a client that
  /// stops reading): the connection is closed when it passes.
  std::chrono::milliseconds write_timeout{30'000};
  /// Most open connections; beyond it a new connection is accepted and
  /// closed at once (counted in `connections_refused`).
  size_t max_connections = 20'000;
  /// Most requests dispatched and not yet answered; beyond it 503 with
  /// Retry-After: 1 (never a queue).
  size_t max_in_flight = 4'096;
  /// TLS: PEM certificate chain and key (both or neither; neither: plain).
  std::string tls_cert_file;
  /// See `tls_cert_file`.
  std::string tls_key_file;
  /// Refuse TLS below 1.3 (else 1.2 is the floor).
  bool tls13_only = false;
  /// Bearer tokens (`--http-token-file`); empty: no token needed, every
  /// client is admin (the zero-config loopback default).
  std::string token_file;
  /// Paths answered without a token even when a token file is set (a
  /// request there without a valid token gets the `read` role).
  std::vector<std::string> open_paths{"/healthz", "/readyz"};
  /// Host names accepted besides localhost, the bound address and the
  /// machine's hostname (IP literals are always accepted).
  std::vector<std::string> allowed_hosts;
  /// Browser origins ("https://dash.example.com") allowed to send writes
  /// besides the server's own origin.
  std::vector<std::string> allowed_origins;
  /// Where log lines go (rate-limited); null: stderr.
  std::function<void(const std::string&)> log;
};

/// Counters for /metrics. Monotonic unless noted.
struct server_stats {
  /// Connections open now (gauge).
  uint64_t connections_open = 0;
  /// Connections accepted and served.
  uint64_t connections_accepted = 0;
  /// Connections closed at once because `max_connections` were open (or
  /// the process ran out of file descriptors).
  uint64_t connections_refused = 0;
  /// TLS handshakes that failed (plain text on the TLS port, bad clients).
  uint64_t tls_handshake_failures = 0;
  /// Requests dispatched to the API.
  uint64_t requests = 0;
  /// Requests waiting for their answer now (gauge).
  uint64_t in_flight = 0;
  /// Refusals by cause.
  uint64_t header_too_large = 0; ///< 431
  uint64_t body_too_large = 0;   ///< 413
  uint64_t url_too_long = 0;     ///< 414
  uint64_t bad_framing = 0;      ///< 400 (framing, malformed request)
  uint64_t timeout = 0;          ///< 408, or a close at a deadline
  uint64_t overloaded = 0;       ///< 503
  uint64_t unauthorized = 0;     ///< 401
  uint64_t forbidden = 0;        ///< 403, role too low (API: note_forbidden)
  uint64_t bad_host = 0;         ///< 421 (or 400 without Host)
  uint64_t bad_origin = 0;       ///< 403 (cross-site write)
  /// Bytes held now in request buffers and bodies not yet dispatched
  /// (gauge).
  uint64_t request_bytes_held = 0;
  /// Bytes read from clients (before TLS decryption: after it).
  uint64_t bytes_read = 0;
};

/// The HTTP/1.1 server. Start once, stop once (stop is idempotent and also
/// run by the destructor).
class http_server {
public:
  /// A server that will answer through `dispatch`.
  http_server(server_options options, http_dispatch dispatch);
  ~http_server();
  http_server(const http_server&) = delete;
  http_server& operator=(const http_server&) = delete;

  /// Binds `host`:`port` (port 0: the OS picks), loads the token file and
  /// TLS files, raises RLIMIT_NOFILE's soft limit to the hard one and
  /// starts the threads. Returns the bound port, or 0 with one line in
  /// `error`.
  uint16_t start(const std::string& host, uint16_t port, std::string& error);

  /// Stops accepting, closes every connection (streams are cancelled),
  /// and joins the threads. Idempotent.
  void stop();

  /// A snapshot of the counters.
  server_stats stats() const;

  /// Counts (and, rate-limited, logs) a 403 the API answered because the
  /// client's role is too low: the API knows each route's role, the
  /// server keeps the counters.
  void note_forbidden(const std::string& remote, const std::string& text);

  /// True when `start` succeeded with TLS.
  bool secure() const;

  /// The state shared by the server, its connections and pending
  /// responders (outlives the server object while answers are pending).
  struct impl;

private:
  std::shared_ptr<impl> impl_;
};

} // namespace syncmesh::http
