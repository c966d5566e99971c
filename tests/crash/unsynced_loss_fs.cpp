#include "crash/unsynced_loss_fs.hpp"

#include <mutex>
#include <string>

#include <rocksdb/env.h>

#include "actors/rocksdb_storage.hpp"

// What the layer models: file contents, the part a power cut loses. What it
// does not: directory entries (a created, renamed or deleted file is
// durable at once, where a real file system needs a directory fsync, which
// RocksDB does make), a sync that tears halfway (a Sync writes all pending
// bytes), and the node's files outside RocksDB (node-id, hlc).

namespace syncmesh::test {

namespace {

using rocksdb::IODebugContext;
using rocksdb::IOOptions;
using rocksdb::IOStatus;
using rocksdb::Slice;

/// A writable file whose appended bytes wait in `pending_` (the stand-in
/// for the page cache) until a sync; the target holds what is "on disk".
class unsynced_file final : public rocksdb::FSWritableFileOwnerWrapper {
public:
  explicit unsynced_file(std::unique_ptr<rocksdb::FSWritableFile> target)
      : FSWritableFileOwnerWrapper(std::move(target)) {}

  ~unsynced_file() override {
    // Whatever was not synced is gone; the owner wrapper then destroys the
    // target, which closes what it holds.
    pending_.clear();
  }

  IOStatus Append(const Slice& data, const IOOptions&,
                  IODebugContext*) override {
    std::lock_guard<std::mutex> guard{mtx_};
    pending_.append(data.data(), data.size());
    return IOStatus::OK();
  }

  IOStatus Append(const Slice& data, const IOOptions& opts,
                  const rocksdb::DataVerificationInfo&,
                  IODebugContext* dbg) override {
    return Append(data, opts, dbg);
  }

  IOStatus PositionedAppend(const Slice&, uint64_t, const IOOptions&,
                            IODebugContext*) override {
    // Direct I/O only, which syncmesh does not use.
    return IOStatus::NotSupported("unsynced_loss_fs: PositionedAppend");
  }

  IOStatus PositionedAppend(const Slice&, uint64_t, const IOOptions&,
                            const rocksdb::DataVerificationInfo&,
                            IODebugContext*) override {
    return IOStatus::NotSupported("unsynced_loss_fs: PositionedAppend");
  }

  IOStatus Truncate(uint64_t size, const IOOptions& opts,
                    IODebugContext* dbg) override {
    std::lock_guard<std::mutex> guard{mtx_};
    auto on_disk = target()->GetFileSize(opts, dbg);
    if (size >= on_disk) {
      pending_.resize(size - on_disk);
      return IOStatus::OK();
    }
    pending_.clear();
    return target()->Truncate(size, opts, dbg);
  }

  IOStatus Flush(const IOOptions&, IODebugContext*) override {
    // A flush hands bytes to the OS, which is exactly what is not durable.
    return IOStatus::OK();
  }

  IOStatus RangeSync(uint64_t, uint64_t, const IOOptions&,
                     IODebugContext*) override {
    // sync_file_range promises nothing after a power cut (no metadata):
    // only Sync and Fsync make bytes durable.
    return IOStatus::OK();
  }

  IOStatus Sync(const IOOptions& opts, IODebugContext* dbg) override {
    std::lock_guard<std::mutex> guard{mtx_};
    auto st = write_pending(opts, dbg);
    return st.ok() ? target()->Sync(opts, dbg) : st;
  }

  IOStatus Fsync(const IOOptions& opts, IODebugContext* dbg) override {
    std::lock_guard<std::mutex> guard{mtx_};
    auto st = write_pending(opts, dbg);
    return st.ok() ? target()->Fsync(opts, dbg) : st;
  }

  IOStatus Close(const IOOptions& opts, IODebugContext* dbg) override {
    // Closing does not sync: RocksDB syncs what it needs before it closes
    // (tables, MANIFEST, CURRENT); an unsynced log tail is lost as on a
    // real disk after a power cut.
    std::lock_guard<std::mutex> guard{mtx_};
    pending_.clear();
    return target()->Close(opts, dbg);
  }

  // RocksDB may sync a log from one thread while another appends to it
  // (SyncWAL): the mutex makes that safe.
  bool IsSyncThreadSafe() const override { return true; }

  uint64_t GetFileSize(const IOOptions& opts, IODebugContext* dbg) override {
    // The size RocksDB wrote, synced or not, as the OS would report it.
    std::lock_guard<std::mutex> guard{mtx_};
    return target()->GetFileSize(opts, dbg) + pending_.size();
  }

private:
  /// Moves the pending bytes into the target's file (caller holds mtx_).
  IOStatus write_pending(const IOOptions& opts, IODebugContext* dbg) {
    if (pending_.empty())
      return IOStatus::OK();
    auto st = target()->Append(Slice{pending_}, opts, dbg);
    if (st.ok())
      pending_.clear();
    return st;
  }

  mutable std::mutex mtx_;
  std::string pending_;
};

} // namespace

unsynced_loss_fs::unsynced_loss_fs(
  const std::shared_ptr<rocksdb::FileSystem>& target)
    : FileSystemWrapper(target) {}

IOStatus unsynced_loss_fs::NewWritableFile(
  const std::string& fname, const rocksdb::FileOptions& opts,
  std::unique_ptr<rocksdb::FSWritableFile>* r, IODebugContext* dbg) {
  std::unique_ptr<rocksdb::FSWritableFile> file;
  auto st = target()->NewWritableFile(fname, opts, &file, dbg);
  if (st.ok())
    r->reset(new unsynced_file(std::move(file)));
  return st;
}

IOStatus unsynced_loss_fs::ReopenWritableFile(
  const std::string& fname, const rocksdb::FileOptions& opts,
  std::unique_ptr<rocksdb::FSWritableFile>* r, IODebugContext* dbg) {
  std::unique_ptr<rocksdb::FSWritableFile> file;
  auto st = target()->ReopenWritableFile(fname, opts, &file, dbg);
  if (st.ok())
    r->reset(new unsynced_file(std::move(file)));
  return st;
}

IOStatus unsynced_loss_fs::ReuseWritableFile(
  const std::string&, const std::string&, const rocksdb::FileOptions&,
  std::unique_ptr<rocksdb::FSWritableFile>*, IODebugContext*) {
  return IOStatus::NotSupported("unsynced_loss_fs: ReuseWritableFile");
}

IOStatus unsynced_loss_fs::NewRandomRWFile(
  const std::string&, const rocksdb::FileOptions&,
  std::unique_ptr<rocksdb::FSRandomRWFile>*, IODebugContext*) {
  return IOStatus::NotSupported("unsynced_loss_fs: NewRandomRWFile");
}

void install_unsynced_loss_fs() {
  auto fs = std::make_shared<unsynced_loss_fs>(rocksdb::FileSystem::Default());
  // Never freed: a DB may still reach its Env while the process exits.
  set_storage_env(rocksdb::NewCompositeEnv(fs).release());
}

} // namespace syncmesh::test
