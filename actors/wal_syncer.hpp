#pragma once

// Durable storage's fsyncs on a thread of their own (issue 15). An fsync
// here usually takes ~0.2 ms but can take hundreds of ms when the disk is
// busy (a flush of the engine's write buffer, files the engine deletes
// being discarded): made by the store actor itself, it held every write,
// acknowledgement and flood queued behind it (chain3's replication p99 of
// 0.2-0.8 s with storage against 5 ms in memory, tests/bench/README.md).
// Here the store only asks for a sync and goes on applying and writing
// the next group; the syncer tells it which writes are durable. A plain
// class with one thread, no CAF: tested directly on a real engine.

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "actors/entry_storage.hpp"
#include "actors/latency_histogram.hpp"

namespace syncmesh {

/// Makes an entry_storage's writes durable on its own thread, one fsync
/// for every request made while the previous one ran (group commit).
class wal_syncer {
public:
  /// Called on the syncer's thread after each sync with the highest ticket
  /// it covers and an empty error; or with the error of a failed sync (the
  /// syncer then makes no more).
  using done_fn
    = std::function<void(uint64_t ticket, const std::string& error)>;

  /// Syncs `storage` when asked; `done` hears of each sync.
  wal_syncer(std::shared_ptr<entry_storage> storage, done_fn done);

  /// Makes the sync asked for last (if not made yet), then stops the
  /// thread.
  ~wal_syncer();

  wal_syncer(const wal_syncer&) = delete;
  wal_syncer& operator=(const wal_syncer&) = delete;

  /// Asks for a sync of every write the storage took before this call;
  /// returns its ticket (1, 2, ...). Never waits for the disk: a sync under
  /// way finishes first, then one sync covers every ticket asked for
  /// meanwhile.
  uint64_t request();

  /// Syncs made.
  uint64_t syncs() const;

  /// How long each sync took (a copy).
  latency_histogram latency() const;

private:
  void run();

  std::shared_ptr<entry_storage> storage_;
  done_fn done_;
  mutable std::mutex mtx_;
  std::condition_variable cv_;
  uint64_t requested_ = 0;
  uint64_t synced_ = 0;
  bool stop_ = false;
  bool failed_ = false;
  uint64_t syncs_ = 0;
  latency_histogram latency_;
  std::thread thread_;
};

} // namespace syncmesh
