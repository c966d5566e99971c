#pragma once

// What the dict store keeps on disk and how (issue 15): each key's whole
// entry (base value or tombstone, field writes, versions with their leases)
// as the records that recreate it, one storage value per key, written in
// the same engine batch as the clock's high-water mark. The store actor owns
// one and calls it after each step that changed keys; the durability mode
// decides when the actor syncs and acknowledges (dict_store.cpp). A plain
// class, no CAF: tested directly on a real engine.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "actors/entry_storage.hpp"
#include "actors/latency_histogram.hpp"
#include "actors/wal_syncer.hpp"
#include "syncmesh/config.hpp"

namespace syncmesh {

namespace pb {
class StorageStats;
class WriteBatch;
} // namespace pb

class store_state;

/// When the store asks the engine for a full compaction: after purges that
/// removed a large share of what the disk holds. The engine removes a key
/// by writing a deletion marker; the marker and the record it hides leave
/// the disk only when a compaction reaches the last level, and the engine
/// compacts by itself only as new writes fill its levels. A node that
/// purges a day's tombstones and then writes little would keep them on
/// disk indefinitely; one compaction per large purge costs one rewrite of
/// what is left.
class compaction_trigger {
public:
  /// Purges smaller than this (in keys, summed since the last compaction)
  /// never trigger one: the garbage is too small to be worth a rewrite.
  static constexpr uint64_t min_erased = 1000;

  /// Counts `erased` keys removed from the disk, `kept` entries remaining;
  /// true when a compaction is due now (then the count starts again): the
  /// keys removed since the last compaction are at least `min_erased` and
  /// at least a quarter of those kept.
  bool note_purge(uint64_t erased, uint64_t kept) noexcept {
    erased_ += erased;
    if (erased_ < min_erased || erased_ * 4 < kept)
      return false;
    erased_ = 0;
    return true;
  }

  /// Keys removed since the last compaction.
  uint64_t erased() const noexcept { return erased_; }

private:
  uint64_t erased_ = 0;
};

/// Loads a store from its storage at start and writes its changes back.
class store_persistence {
public:
  /// What a load found.
  struct load_result {
    /// Keys loaded (tombstones included).
    uint64_t entries = 0;
    /// The highest wall time of any stored stamp or of the stored clock
    /// mark: the node never stamps at or below it again.
    uint64_t clock_floor_us = 0;
  };

  /// Persists into `storage` (already open) with `mode`, reserving clock
  /// stamps `reservation_us` ahead (see reserve_clock).
  store_persistence(std::shared_ptr<entry_storage> storage,
                    durability_mode mode, uint64_t reservation_us = 250'000);

  /// Fills the empty `store` with every stored entry. Throws storage_error
  /// when a stored value cannot be read back (a corrupted dir).
  load_result load(store_state& store);

  /// Stages the current entries (as `store` holds them now) of the keys
  /// that `changed` touched.
  void stage(const store_state& store, const pb::WriteBatch& changed);

  /// Called before the node stamps a local write: when the clock
  /// (`high_water_us`, the wall time `now_us`) comes within half a
  /// reservation of the stamps reserved on disk, reserves the next
  /// `reservation_us` and syncs that before returning, whatever the
  /// durability mode. A restarted node starts above the reservation, so it
  /// never stamps a version it may have published before a crash, even one
  /// whose entry the crash lost (issue 15, "no reuse"). About two fsyncs per
  /// reservation while writes go on; none while idle. With the syncer the
  /// next reservation is written and its sync asked for at once, and this
  /// waits for a sync only when the clock reaches the reservation on disk
  /// before that sync is done (an fsync slower than half a reservation):
  /// an fsync made here held every write behind it, up to 0.4 s under load
  /// (tests/bench/README.md).
  void reserve_clock(uint64_t high_water_us, uint64_t now_us);

  /// The syncer's syncs up to `ticket` are done (storage_synced_atom): a
  /// reservation they cover is on disk.
  void synced(uint64_t ticket);

  /// The stamps reserved on disk: every stamp made so far is below it.
  uint64_t reserved_us() const noexcept { return reserved_us_; }

  /// A reservation written whose sync is under way on the syncer (0: none).
  uint64_t reserving_us() const noexcept { return reserving_us_; }

  /// Stages the "last alive" mark (entry_storage::meta_last_alive): the
  /// node ran at `now_us`.
  void stage_alive(uint64_t now_us);

  /// Stages the removal of `keys` (purged tombstones), `kept` entries
  /// remaining in the store: when the purges since the last compaction
  /// are large against what is kept (compaction_trigger), the next write()
  /// starts one in the background.
  void stage_erase(const std::vector<std::string>& keys, uint64_t kept);

  /// A group stops growing at this many staged bytes (about 450 entries
  /// of 64-byte values): its engine write then takes about a millisecond,
  /// and what waits for it (floods, acknowledgements) waits no longer. A
  /// group taken from a mailbox thousands of writes deep would hold the
  /// first of them for the whole drain and a write of several MB.
  static constexpr std::size_t max_group_bytes = 64 << 10;

  /// Bytes staged since the last write().
  std::size_t staged_bytes() const noexcept { return staged_.bytes(); }

  /// The staged group reached max_group_bytes: write it now.
  bool group_full() const noexcept {
    return staged_.bytes() >= max_group_bytes;
  }

  /// Writes what was staged as one atomic engine batch, not synced (the
  /// engine's log holds it; the OS flushes it). No-op when nothing is.
  /// Then starts a compaction when one is due.
  void write();

  /// Makes everything written so far durable (one fsync), here.
  void sync();

  /// Like sync(), even when a sync was only asked for (request_sync) and
  /// may still be under way on the syncer: when this returns, every write
  /// so far is on disk.
  void sync_now();

  /// Writes what is staged and returns the job that makes a consistent
  /// copy of the storage in the new dir `dir` (entry_storage::checkpoint):
  /// every write staged so far, so every acknowledged one, is in it (and
  /// maybe later ones). The job may run on another thread while this goes
  /// on writing; it shares the storage, which stays open until the job is
  /// done. It throws storage_error.
  std::function<void()> prepare_checkpoint(const std::string& dir) {
    write();
    return [storage = storage_, dir] {
      storage->checkpoint(dir);
    };
  }

  /// From now on request_sync() leaves the fsync to a thread of its own,
  /// which calls `done` (on that thread) after each (wal_syncer).
  void start_syncer(wal_syncer::done_fn done);

  /// Whether start_syncer() was called.
  bool has_syncer() const noexcept { return syncer_ != nullptr; }

  /// Asks for everything written so far to be made durable; returns the
  /// ticket of that sync (rising). With the syncer the fsync runs on its
  /// thread and its `done` names the ticket; without, it is made here
  /// before this returns.
  uint64_t request_sync();

  /// Something was written since the last sync or request_sync().
  bool unsynced() const noexcept { return unsynced_; }

  /// The durability mode.
  durability_mode mode() const noexcept { return mode_; }

  /// Engine batches written, fsyncs made, bytes written (for stats).
  uint64_t writes() const noexcept { return writes_; }
  /// See writes().
  uint64_t syncs() const { return syncs_ + (syncer_ ? syncer_->syncs() : 0); }
  /// See writes().
  uint64_t bytes_written() const noexcept { return bytes_; }
  /// Compactions started after large purges.
  uint64_t compactions() const noexcept { return compactions_; }
  /// Clock reservations synced (each is also counted in syncs()).
  uint64_t reservations() const noexcept { return reservations_; }

  /// The engine's estimate of its size on disk.
  uint64_t disk_bytes() { return storage_->approximate_bytes(); }

  /// How long each write() took in the engine.
  const latency_histogram& write_latency() const noexcept {
    return write_latency_;
  }
  /// How long each fsync took in the engine (here or on the syncer).
  latency_histogram sync_latency() const;

  /// Fills the counters of `out` (writes, fsyncs, bytes, latencies) and
  /// what the engine reports (its own writes to disk, its memory, its
  /// files); leaves the data dir, durability and load figures alone.
  void write_stats(pb::StorageStats& out);

private:
  std::shared_ptr<entry_storage> storage_;
  durability_mode mode_;
  uint64_t reservation_us_;
  uint64_t reserved_us_ = 0;
  /// See reserving_us(), and the ticket of its sync.
  uint64_t reserving_us_ = 0;
  uint64_t reserving_ticket_ = 0;
  /// A sync made here covered every write: a reservation waiting for the
  /// syncer is on disk too.
  void synced_here() noexcept;
  storage_batch staged_;
  bool unsynced_ = false;
  uint64_t writes_ = 0;
  uint64_t syncs_ = 0;
  uint64_t bytes_ = 0;
  uint64_t reservations_ = 0;
  uint64_t compactions_ = 0;
  compaction_trigger trigger_;
  /// A purge made a compaction due: the next write() starts it, after the
  /// removals are in the engine.
  bool compaction_due_ = false;
  latency_histogram write_latency_;
  latency_histogram sync_latency_;
  /// Tickets of the syncs made here (without the syncer).
  uint64_t inline_tickets_ = 0;
  /// Declared last: destroyed first, it makes its last sync while the
  /// rest is still whole.
  std::unique_ptr<wal_syncer> syncer_;
};

} // namespace syncmesh
