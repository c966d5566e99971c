#pragma once

// Where a node keeps the consistent copies its backups read from (issue 15):
// `<data dir>/checkpoints/<time>-<n>`, inside the data dir so the engine can
// hard link its files instead of copying them. A copy lives only while its
// backup is streamed; one left behind by a node that stopped mid-backup is
// removed when the node starts again. A plain class, no CAF.

#include <cstdint>
#include <string>

namespace syncmesh {

/// The checkpoint dirs of one data dir (see the file comment).
class backup_checkpoints {
public:
  /// No data dir: make_path() throws.
  backup_checkpoints() = default;

  /// The checkpoints of `data_dir`.
  explicit backup_checkpoints(std::string data_dir);

  /// A new dir for a checkpoint made at `now_us`: it does not exist yet,
  /// its parent does. Throws storage_error when the parent cannot be made.
  std::string make_path(uint64_t now_us);

  /// Removes every checkpoint left in the data dir; returns how many there
  /// were. Throws nothing: a copy that cannot be removed is only disk.
  size_t remove_all() const;

  /// True when `dir` is a checkpoint dir of `data_dir` (what a reader of a
  /// BackupReply checks before it removes the dir it names).
  static bool is_checkpoint(const std::string& data_dir,
                            const std::string& dir);

  /// The parent of every checkpoint of `data_dir`.
  static std::string parent_of(const std::string& data_dir);

private:
  std::string parent_;
  uint64_t next_ = 0;
};

} // namespace syncmesh
