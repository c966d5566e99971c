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
#include "syncmesh/config.hpp"

namespace syncmesh {

namespace pb {
class WriteBatch;
} // namespace pb

class store_state;

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
  /// reservation while writes go on; none while idle.
  void reserve_clock(uint64_t high_water_us, uint64_t now_us);

  /// The stamps reserved on disk: every stamp made so far is below it.
  uint64_t reserved_us() const noexcept { return reserved_us_; }

  /// Stages the "last alive" mark (entry_storage::meta_last_alive): the
  /// node ran at `now_us`.
  void stage_alive(uint64_t now_us);

  /// Stages the removal of `keys` (purged tombstones).
  void stage_erase(const std::vector<std::string>& keys);

  /// Writes what was staged as one atomic engine batch, not synced (the
  /// engine's log holds it; the OS flushes it). No-op when nothing is.
  void write();

  /// Makes everything written so far durable (one fsync).
  void sync();

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

  /// Something was written since the last sync.
  bool unsynced() const noexcept { return unsynced_; }

  /// The durability mode.
  durability_mode mode() const noexcept { return mode_; }

  /// Engine batches written, fsyncs made, bytes written (for stats).
  uint64_t writes() const noexcept { return writes_; }
  /// See writes().
  uint64_t syncs() const noexcept { return syncs_; }
  /// See writes().
  uint64_t bytes_written() const noexcept { return bytes_; }
  /// Clock reservations synced (each is also counted in syncs()).
  uint64_t reservations() const noexcept { return reservations_; }

  /// The engine's estimate of its size on disk.
  uint64_t disk_bytes() { return storage_->approximate_bytes(); }

private:
  std::shared_ptr<entry_storage> storage_;
  durability_mode mode_;
  uint64_t reservation_us_;
  uint64_t reserved_us_ = 0;
  storage_batch staged_;
  bool unsynced_ = false;
  uint64_t writes_ = 0;
  uint64_t syncs_ = 0;
  uint64_t bytes_ = 0;
  uint64_t reservations_ = 0;
};

} // namespace syncmesh
