#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

namespace httplib {
class Server;
} // namespace httplib

namespace syncmesh {

class sync_socket;
class watch_hub;
class node_metrics;

/// Settings of the HTTP/JSON API.
struct http_options {
  /// Most concurrent /v1/watch streams (each holds a server thread).
  size_t max_watchers = 8;
  /// Threads for ordinary requests, beyond the watchers.
  size_t worker_threads = 8;
  /// Most events queued for one slow watcher; older ones are dropped.
  size_t watch_queue = 1024;
  /// Seeds were configured: /readyz also needs a peer.
  bool expects_peers = false;
};

/// The HTTP/JSON API of one node (cpp-httplib): /v1/kv, /v1/peers,
/// /v1/status, /v1/watch (Server-Sent Events), /healthz, /readyz and
/// /metrics (Prometheus text format). Requests run on a bounded thread pool
/// and call the blocking sync_socket.
class http_api {
public:
  /// Serves `sock`, which must outlive this object.
  http_api(sync_socket& sock, http_options opts);

  /// Stops serving (ends every watch stream first).
  ~http_api();

  http_api(const http_api&) = delete;
  http_api& operator=(const http_api&) = delete;

  /// Binds `host:port` (0: the OS picks) and serves on a background
  /// thread; returns the bound port, or 0 with `error` set.
  uint16_t start(const std::string& host, uint16_t port, std::string& error);

  /// Ends watch streams and stops the server; idempotent.
  void stop();

private:
  void install_routes();

  sync_socket& sock_;
  http_options opts_;
  std::chrono::steady_clock::time_point started_;
  std::unique_ptr<httplib::Server> server_;
  std::shared_ptr<watch_hub> hub_;
  std::unique_ptr<node_metrics> metrics_;
  std::thread thread_;
};

} // namespace syncmesh
