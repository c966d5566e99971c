#pragma once

// The HTTP/JSON API of one node, served by the event-driven http_server
// (Boost.Beast): /v1/kv (list, batch and NDJSON bulk writes), /v1/kv/KEY,
// /v1/kv/KEY/delta, /v1/messages, /v1/peers, /v1/status, /v1/watch
// (Server-Sent Events), /v1/backup (the backup file, streamed from a
// consistent copy: backup_stream.hpp), /healthz, /readyz and /metrics.
//
// Threads: the server's I/O thread parses a request, checks its route and
// role, and hands the call to the node_bridge; it never waits for the node.
// The bridge's actor answers through the server's responder from a CAF
// worker thread. Requests in flight are capped by the server
// (`server_options::max_in_flight`, 503 + Retry-After beyond it).

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "node/daemon/http_server.hpp"
#include "node/daemon/watch_hub.hpp"

namespace syncmesh {

class sync_socket;
class node_metrics;
class node_bridge;

/// Settings of the HTTP/JSON API.
struct http_options {
  /// The /v1/watch streams: cap, event window, chunk size, keep-alives.
  watch_options watch{};
  /// Seeds were configured: /readyz also needs a peer.
  bool expects_peers = false;
  /// Most entries in one `POST /v1/kv` JSON batch (413 beyond).
  size_t max_batch_entries = 10'000;
  /// Largest `POST /v1/kv` JSON batch body in bytes; 0: the node's frame
  /// size (a batch must fit one replication frame).
  uint64_t max_batch_body = 0;
  /// Lines of an NDJSON bulk load sent to the node as one all-or-nothing
  /// batch; the next piece of the body is read only once it is applied.
  size_t ndjson_batch_lines = 1'000;
  /// The server's limits, TLS, tokens, hosts and origins. The API sets
  /// `max_body` from the node's value size limit when it is left at 0
  /// (the default here).
  http::server_options server = [] {
    http::server_options s;
    s.max_body = 0;
    return s;
  }();
};

/// The HTTP/JSON API of one node (see the file comment).
class http_api {
public:
  /// Serves `sock`, which must outlive this object.
  http_api(sync_socket& sock, http_options opts);

  /// Stops serving (ends every watch stream first).
  ~http_api();

  http_api(const http_api&) = delete;
  http_api& operator=(const http_api&) = delete;

  /// Binds `host:port` (0: the OS picks) and serves on the server's
  /// threads; returns the bound port, or 0 with `error` set.
  uint16_t start(const std::string& host, uint16_t port, std::string& error);

  /// Ends watch streams and stops the server; idempotent.
  void stop();

  /// The server's counters (for /metrics and tests).
  http::server_stats server_stats() const;

  /// The watch streams' counters (for /metrics and tests).
  syncmesh::watch_stats watch_stats() const;

  struct impl;

private:
  std::shared_ptr<impl> impl_;
};

} // namespace syncmesh
