#pragma once

// GET /v1/backup's body: the backup file (messages/backup_file.hpp) made
// from the consistent copy a BackupRequest left in a checkpoint dir.
//
// Threads: a thread of its own opens the copy read-only, reads it in key
// order and encodes the file into chunks; the HTTP server takes them one at
// a time (chunk_source) on its I/O thread, which never waits: a chunk not
// ready yet is delivered by the producing thread when it is. Memory is
// bounded: at most `max_chunks` chunks of about `chunk_bytes` wait, and the
// producer blocks (on its own thread) while they do, so a slow client slows
// the reading, never the node. The node's writes never wait for a backup:
// the copy is a separate set of files.
//
// The checkpoint dir is removed when the file is done, when the client goes
// away (cancel), when the copy cannot be read, and when the server stops.

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "node/daemon/http_exchange.hpp"
#include "syncmesh/pb/requests.pb.h"

namespace syncmesh {

/// Streams one backup file from a checkpoint (see the file comment).
class backup_stream : public http::chunk_source,
                      public std::enable_shared_from_this<backup_stream> {
public:
  /// Bounds of the stream's buffer.
  struct options {
    /// A chunk is handed over once it holds this many bytes (one entry may
    /// take it past).
    size_t chunk_bytes = 64 * 1024;
    /// Chunks waiting for the client at most; the producer waits beyond.
    size_t max_chunks = 4;
  };

  /// Receives, from the producing thread, the stream once the copy is open
  /// and the response can start (`copy()` is final then), or null and why
  /// it cannot (the copy is removed by then).
  using ready_fn = std::function<void(std::shared_ptr<backup_stream> stream,
                                      std::string error)>;

  /// Runs once the producing thread is done (the copy removed), with the
  /// entries and bytes streamed, whether the whole file was handed to the
  /// server, and why not when the copy failed (empty when the client left).
  using done_fn = std::function<void(uint64_t entries, uint64_t bytes,
                                     bool complete, const std::string& error)>;

  /// Starts streaming the copy that `copy` describes on a thread of its
  /// own; `ready` says when the response may start, `done` when it ended.
  static std::shared_ptr<backup_stream>
  start(pb::BackupReply copy, options opts, ready_fn ready, done_fn done);

  /// Ends the stream if it is still running; waits for its thread.
  ~backup_stream() override;

  void next(deliver_fn deliver) override;
  void cancel() override;

  /// Waits until the producing thread has ended (call cancel() first to
  /// hurry it). Safe from any thread but the producer's own.
  void join();

  /// The header of the file: what `copy` said, the clock mark raised to
  /// the copy's stored one (final once `ready` was called).
  const pb::BackupReply& copy() const noexcept { return copy_; }

  /// Private: use start().
  backup_stream(pb::BackupReply copy, options opts);

private:
  /// The producing thread's work.
  void produce(ready_fn ready, done_fn done);

  /// Queues a chunk (waiting while the buffer is full); false when the
  /// stream was cancelled.
  bool push(std::string chunk);

  /// Marks the end of the chunks (the file complete or not).
  void finish();

  pb::BackupReply copy_;
  options opts_;
  std::thread thread_;

  std::mutex mtx_;
  std::condition_variable room_;
  std::deque<std::string> chunks_;
  /// The server's pending request for a chunk, if any.
  deliver_fn waiting_;
  /// No more chunks will come.
  bool finished_ = false;
  /// The client went away or the server stops.
  bool cancelled_ = false;
};

} // namespace syncmesh
