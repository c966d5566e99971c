#pragma once

// A RocksDB file layer that loses, when the process dies, every byte that
// was not synced (issue 15's crash tests). kill -9 alone keeps the page
// cache: the kernel still writes what the process wrote, so a crash test on
// the real file system cannot tell `--durability=always` from `none`. Here
// the process's memory plays the page cache: appended bytes stay in the
// file object and reach the real file only on Sync/Fsync, so a SIGKILL
// leaves on disk exactly what a power cut would have left (for file
// contents; see unsynced_loss_fs.cpp for what is not modelled).

#include <memory>

#include <rocksdb/file_system.h>

namespace syncmesh::test {

/// A FileSystem whose writable files keep appended bytes in memory until a
/// Sync or Fsync writes them to the target's file (and syncs it there);
/// Close and destruction drop whatever is still unsynced. Every other call
/// (reads, renames, directories, locks) goes to the target unchanged.
class unsynced_loss_fs final : public rocksdb::FileSystemWrapper {
public:
  /// Wraps `target` (usually rocksdb::FileSystem::Default()).
  explicit unsynced_loss_fs(const std::shared_ptr<rocksdb::FileSystem>& target);

  /// The name RocksDB logs and compares in its OPTIONS file.
  const char* Name() const override { return "UnsyncedLossFileSystem"; }

  /// A new (truncated) file whose writes wait in memory for a sync.
  rocksdb::IOStatus NewWritableFile(const std::string& fname,
                                    const rocksdb::FileOptions& opts,
                                    std::unique_ptr<rocksdb::FSWritableFile>* r,
                                    rocksdb::IODebugContext* dbg) override;

  /// An existing file appended to, its new writes waiting like above.
  rocksdb::IOStatus
  ReopenWritableFile(const std::string& fname, const rocksdb::FileOptions& opts,
                     std::unique_ptr<rocksdb::FSWritableFile>* r,
                     rocksdb::IODebugContext* dbg) override;

  /// Refused: a recycled log would be overwritten in place, which this
  /// layer does not model (syncmesh keeps recycle_log_file_num at 0).
  rocksdb::IOStatus
  ReuseWritableFile(const std::string& fname, const std::string& old_fname,
                    const rocksdb::FileOptions& opts,
                    std::unique_ptr<rocksdb::FSWritableFile>* r,
                    rocksdb::IODebugContext* dbg) override;

  /// Refused: in-place writes would bypass the model (RocksDB uses them
  /// only for features syncmesh does not enable).
  rocksdb::IOStatus NewRandomRWFile(const std::string& fname,
                                    const rocksdb::FileOptions& opts,
                                    std::unique_ptr<rocksdb::FSRandomRWFile>* r,
                                    rocksdb::IODebugContext* dbg) override;
};

/// Makes every rocksdb_storage opened from now on in this process use an
/// unsynced_loss_fs over the default file system (the Env lives until the
/// process ends: a DB may still use it during exit).
void install_unsynced_loss_fs();

} // namespace syncmesh::test
