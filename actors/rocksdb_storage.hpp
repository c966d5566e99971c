#pragma once

#include <memory>
#include <string>

#include "actors/entry_storage.hpp"

namespace rocksdb {
class DB;
class Env;
struct Options;
} // namespace rocksdb

namespace syncmesh {

/// Sets the engine options rocksdb_storage opens with (recovery mode,
/// write buffers, cache), so syncmesh-storage-bench measures the same
/// tuning.
void apply_storage_options(rocksdb::Options& opts);

/// Test hook: the Env (file layer) every rocksdb_storage opened from now on
/// uses; nullptr, the default, is RocksDB's own. The crash tests' node
/// binary sets one that loses unsynced writes (tests/crash); production
/// code never calls this. The caller keeps `env` alive while any storage
/// opened with it is.
void set_storage_env(rocksdb::Env* env);

/// entry_storage on RocksDB, the engine chosen by measurement
/// (tests/bench/README.md, "Storage engine (issue 15)"): group commit over
/// its write-ahead log, checksummed files (a flipped byte is an error, not a
/// wild read) and compaction that keeps disk per key bounded. Entries and
/// meta share one key space under distinct one-byte prefixes, so one
/// WriteBatch makes both atomic.
class rocksdb_storage final : public entry_storage {
public:
  rocksdb_storage();
  ~rocksdb_storage() override;

  rocksdb_storage(const rocksdb_storage&) = delete;
  rocksdb_storage& operator=(const rocksdb_storage&) = delete;

  void open(const std::string& dir, std::string_view node_id) override;
  void write(const storage_batch& batch, bool sync) override;
  std::optional<std::string> get_meta(std::string_view name) override;
  void put_meta(std::string_view name, std::string_view value,
                bool sync) override;
  void sync() override;
  void for_each(
    const std::function<void(std::string_view key, std::string_view record)>&
      fn) override;
  void compact() override;
  std::uint64_t approximate_bytes() override;
  void checkpoint(const std::string& dir) override;
  void open_read_only(const std::string& dir) override;
  void close() override;

private:
  /// The open database; throws storage_error when closed.
  rocksdb::DB& db();

  /// Checks the open database's disk format (and, unless empty, that it
  /// belongs to `node_id`); throws storage_error. A dir without a format
  /// is new: with `create`, it gets the format and `node_id`.
  void check_format(std::string_view node_id, bool create);

  std::unique_ptr<rocksdb::DB> db_;
  std::string dir_;
  /// Opened with open_read_only (nothing to sync at close).
  bool read_only_ = false;
};

} // namespace syncmesh
