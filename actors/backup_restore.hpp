#pragma once

// `syncmesh restore`: a backup file (messages/backup_file.hpp) turned into a
// data dir a node starts from (issue 15). Offline: no node runs on the dir.
// A plain class on the storage interface, no CAF: tested directly.
//
// Identity and clock (README, "Backup and restore"): by default the dir
// keeps the backed-up node ID, replacing a lost disk. The lost node may have
// stamped versions after the backup, up to its crash plus its clock
// reservation, so the dir's clock mark becomes
//   max(backup's mark, restore time + 2 × max clock offset + 1 s):
// a restored node never stamps a version the lost node may have published,
// and anti-entropy hands it back the writes it made after the backup. With
// a new ID the dir is a new member seeded with the data (leases stay with
// the old ID). Meta `last_alive` is the backup's creation time: the data is
// as old as the backup, whatever the restore's date.

#include <chrono>
#include <cstdint>
#include <string>

#include "messages/backup_file.hpp"

namespace syncmesh {

/// How to restore.
struct restore_options {
  /// Give the dir a fresh random node ID instead of the backup's.
  bool new_id = false;
  /// The mesh's bound on clock offsets (--max-clock-offset of its nodes).
  std::chrono::microseconds max_clock_offset{500'000};
  /// The wall clock now (µs); 0: read it. Tests set it.
  uint64_t now_us = 0;
};

/// What a restore made.
struct restore_result {
  /// The dir's node ID (raw bytes).
  std::string node_id;
  /// The backup's header.
  backup_header header;
  /// Entries written (tombstones included).
  uint64_t entries = 0;
  /// The clock mark stored in the dir (µs).
  uint64_t clock_mark_us = 0;
};

/// Restores backup files into data dirs (see the file comment).
class backup_restore {
public:
  /// The clock mark of a dir restored at `now_us` from a backup whose mark
  /// was `backup_mark_us` (see the file comment).
  static uint64_t clock_mark(uint64_t backup_mark_us, uint64_t now_us,
                             std::chrono::microseconds max_clock_offset);

  /// Reads the whole file at `path` and checks it (magic, version, every
  /// length, count, checksum, nothing after the trailer) without writing
  /// anything; returns its header and sets `entries`. Throws backup_error
  /// naming the file and what is wrong.
  static backup_header verify(const std::string& path, uint64_t& entries);

  /// Throws storage_error unless `dir` is absent or an empty directory: a
  /// restore never mixes a backup into data that is already there.
  static void check_empty(const std::string& dir);

  /// Restores the file at `path` into `data_dir` (absent or empty): the
  /// file is checked whole first, then `data_dir/entries` is written
  /// through the storage interface (records, clock mark, last_alive),
  /// synced, and `data_dir/node-id` written and fsynced last. On any
  /// failure what was written is removed again. Throws backup_error (the
  /// file) or storage_error (the dir).
  static restore_result restore(const std::string& path,
                                const std::string& data_dir,
                                const restore_options& opts);
};

} // namespace syncmesh
