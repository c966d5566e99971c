#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace syncmesh {

// Durable storage of a node's entries (issue 15). The dict store will keep
// its in-memory tables as today and, with a data dir, write every applied
// entry here as the bytes it encodes (a pb::WriteRecord); on start it loads
// them back by iterating. The storage knows nothing of the records' content:
// it keeps bytes by key, plus a few named meta values (node ID, clock
// high-water mark, disk format). Plain classes, no CAF: the store actor will
// own one and stay thin.

/// Why a data dir cannot be used (another node's, a newer disk format, a
/// corrupted file): the message names the dir and what to do. A node that
/// gets it must refuse to start rather than run on data it cannot trust.
class storage_error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

/// Changes applied together: after a crash either all of them are on disk
/// or none is (the dict store writes one entry and its meta, such as the
/// clock high-water mark, in one batch).
class storage_batch {
public:
  /// One change: a record to store under a key, or the key's removal.
  struct op {
    /// The entry's key.
    std::string key;
    /// The encoded record (the meta value); nullopt removes the key.
    std::optional<std::string> record;
    /// `key` names a meta value (put_meta), not an entry.
    bool meta = false;
  };

  /// Stores `record` under `key` (replacing what was there).
  void put(std::string key, std::string record) {
    bytes_ += key.size() + record.size();
    ops_.push_back(op{std::move(key), std::move(record)});
  }

  /// Sets the meta value `name` with the entries: the clock high-water mark
  /// then never lags the versions it covers.
  void put_meta(std::string_view name, std::string value) {
    bytes_ += name.size() + value.size();
    ops_.push_back(op{std::string{name}, std::move(value), true});
  }

  /// Removes `key` (nothing if absent).
  void erase(std::string key) {
    bytes_ += key.size();
    ops_.push_back(op{std::move(key), std::nullopt});
  }

  /// The changes in the order given (a later one on the same key wins).
  const std::vector<op>& ops() const noexcept { return ops_; }

  /// Keys and records held: the caller bounds its queue of batches by it.
  std::size_t bytes() const noexcept { return bytes_; }

  /// Whether no change was added.
  bool empty() const noexcept { return ops_.empty(); }

  /// Forgets every change (the batch can be reused).
  void clear() noexcept {
    ops_.clear();
    bytes_ = 0;
  }

private:
  std::vector<op> ops_;
  std::size_t bytes_ = 0;
};

/// What an engine reports about itself, for status and metrics: its own
/// writes to disk (against the bytes it was handed: write amplification)
/// and its memory, which is counted apart from the store's so memory per
/// key can be told from the engine's buffers and caches.
struct engine_stats {
  /// Bytes appended to the write-ahead log since the engine opened.
  std::uint64_t wal_bytes = 0;
  /// Bytes of table files written by flushes of the write buffers.
  std::uint64_t flush_bytes = 0;
  /// Bytes of table files written by compactions.
  std::uint64_t compaction_bytes = 0;
  /// Microseconds writes waited because the engine stalled them (its
  /// flushes or compactions fell behind).
  std::uint64_t stall_us = 0;
  /// Memory of the write buffers (active and not yet flushed).
  std::uint64_t memtable_bytes = 0;
  /// Memory of the block cache.
  std::uint64_t block_cache_bytes = 0;
  /// Memory of open table files' indexes and filters outside the cache.
  std::uint64_t table_reader_bytes = 0;
  /// Bytes of the engine's table and log files on disk now.
  std::uint64_t file_bytes = 0;

  /// Every byte the engine wrote to its files.
  std::uint64_t written_bytes() const noexcept {
    return wal_bytes + flush_bytes + compaction_bytes;
  }

  /// The engine's memory: buffers, cache and table readers.
  std::uint64_t memory_bytes() const noexcept {
    return memtable_bytes + block_cache_bytes + table_reader_bytes;
  }
};

/// An embedded engine behind the calls the dict store needs, so the
/// in-memory mode (no data dir) needs no engine at all and the engine can be
/// swapped. Not thread-safe: one owner calls it (checkpoint() and sync()
/// excepted).
class entry_storage {
public:
  /// The disk format this build writes and reads (meta "format"). Raise it
  /// when the layout of keys, records or meta changes; open() refuses a
  /// newer value (README, "Durable storage", has the upgrade rule). Format 2
  /// (issue 17) adds the field positions of map deltas (`field_origins`),
  /// which a format-1 build would drop.
  static constexpr std::uint32_t format_version = 2;
  /// The oldest format this build upgrades in place when it opens a dir for
  /// writing: format-1 records are valid format-2 records (a delta without
  /// origins keeps the order format 1 gave its fields).
  static constexpr std::uint32_t oldest_upgradable_format = 1;

  /// The meta name of the disk format version (decimal text).
  static constexpr std::string_view meta_format = "format";
  /// The meta name of the node ID that owns the data dir.
  static constexpr std::string_view meta_node_id = "node_id";
  /// The meta name of the clock's reserved high-water mark.
  static constexpr std::string_view meta_clock = "clock_hwm";
  /// The meta name of the last wall time (µs, decimal) the data was known
  /// to be alive (refreshed while the node runs, a backup's creation time):
  /// data older than the tombstone horizon is set aside at start.
  static constexpr std::string_view meta_last_alive = "last_alive";

  virtual ~entry_storage() = default;

  /// Opens (creating when missing or empty) the data in `dir` for the node
  /// `node_id`. A new dir gets format_version and `node_id` in its meta,
  /// synced. An existing one must carry the same node ID and this format
  /// version, or an older one down to oldest_upgradable_format, which is
  /// then raised to format_version (synced) before open() returns. Throws
  /// storage_error naming the dir and the reason otherwise, and when the engine
  /// finds its files corrupted beyond recovery.
  virtual void open(const std::string& dir, std::string_view node_id) = 0;

  /// Applies `batch` atomically; with `sync` it is on disk (fsync) when
  /// this returns. Throws storage_error when the engine fails.
  virtual void write(const storage_batch& batch, bool sync) = 0;

  /// The meta value `name`, or nullopt.
  virtual std::optional<std::string> get_meta(std::string_view name) = 0;

  /// Sets the meta value `name`; with `sync` on disk when this returns.
  virtual void put_meta(std::string_view name, std::string_view value,
                        bool sync)
    = 0;

  /// Makes every earlier write durable (one fsync for all of them: what a
  /// group commit of several writers calls once). Besides checkpoint(),
  /// the one call that may run on another thread (the store's syncer,
  /// actors/wal_syncer.hpp) while the owner goes on writing; it covers
  /// every write that returned before it was called.
  virtual void sync() = 0;

  /// Calls `fn` with every stored key and record (key order), for loading
  /// at start. Throws storage_error when a file is corrupted.
  virtual void for_each(const std::function<void(std::string_view key,
                                                 std::string_view record)>& fn)
    = 0;

  /// Writes the engine's buffers to its files and compacts the whole key
  /// space: overwritten and removed records leave the disk (also what a
  /// backup or a tombstone purge will call).
  virtual void compact() = 0;

  /// Starts what compact() does on a thread of the engine's and returns at
  /// once; writes go on meanwhile. Nothing when one is running already.
  /// close() waits for it. For the store after large purges: a compaction
  /// of a million entries takes about a second, too long to hold the
  /// store's writes.
  virtual void compact_in_background() = 0;

  /// The engine's estimate of the bytes it holds on disk and in its write
  /// buffers (status and metrics).
  virtual std::uint64_t approximate_bytes() = 0;

  /// Counters and gauges of the engine since it opened (engine_stats).
  virtual engine_stats stats() = 0;

  /// Makes a consistent copy of everything written so far in the new dir
  /// `dir` (it must not exist; its parent must, on the same file system
  /// for the copy to be cheap: the engine's immutable files are hard
  /// linked, the rest copied). The copy is a data dir of its own, opened
  /// with open_read_only(); later writes do not reach it. Throws
  /// storage_error. The one call that may run on another thread while the
  /// owner goes on writing (copying the live log of a big store takes
  /// 100 ms or more, too long to hold up writes); the owner must keep the
  /// storage open meanwhile.
  virtual void checkpoint(const std::string& dir) = 0;

  /// Opens the data dir `dir` for reading only (a checkpoint): get_meta
  /// and for_each work, writes throw. The disk format is checked as by
  /// open(); the owner is not (get_meta(meta_node_id) tells it). Throws
  /// storage_error naming the dir and the reason.
  virtual void open_read_only(const std::string& dir) = 0;

  /// Syncs every write and closes the data dir; open() may follow. Throws
  /// storage_error when the engine's last writes fail (the destructor
  /// syncs and closes too, silently).
  virtual void close() = 0;
};

} // namespace syncmesh
