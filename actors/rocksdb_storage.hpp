#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "actors/entry_storage.hpp"

namespace rocksdb {
class DB;
class Env;
class Statistics;
class WriteBatch;
struct Options;
} // namespace rocksdb

namespace syncmesh {

/// The size of each of the engine's two write buffers (memtables): what a
/// flush writes at most, and with the block cache what bounds the engine's
/// memory.
inline constexpr std::size_t default_write_buffer_bytes = 32 << 20;

/// Sets the engine options rocksdb_storage opens with (recovery mode,
/// write buffers of `write_buffer_bytes`, cache), so syncmesh-storage-bench
/// measures the same tuning.
void apply_storage_options(rocksdb::Options& opts,
                           std::size_t write_buffer_bytes
                           = default_write_buffer_bytes);

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
  /// A closed storage whose engine will use write buffers of
  /// `write_buffer_bytes` (tests use small ones to see flushes and
  /// compactions after a few MiB instead of hundreds).
  explicit rocksdb_storage(std::size_t write_buffer_bytes
                           = default_write_buffer_bytes);
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
  void compact_in_background() override;
  std::uint64_t approximate_bytes() override;
  engine_stats stats() override;
  void checkpoint(const std::string& dir) override;
  void open_read_only(const std::string& dir) override;
  void close() override;

private:
  /// The open database; throws storage_error when closed.
  rocksdb::DB& db();

  /// Waits for a compaction started by compact_in_background().
  void join_compaction() noexcept;
  /// Checks the open database's disk format (and, unless empty, that it
  /// belongs to `node_id`); throws storage_error. A dir without a format
  /// is new: with `create`, it gets the format and `node_id`.
  void check_format(std::string_view node_id, bool create);
  /// Takes the just-opened `raw` as the database of `dir` and checks its
  /// format (creating it unless `read_only`); closes it again on refusal.
  void adopt(rocksdb::DB* raw, const std::string& dir, bool read_only,
             std::string_view node_id);

  std::unique_ptr<rocksdb::DB> db_;
  /// The engine's tickers (stats()), new at each open.
  std::shared_ptr<rocksdb::Statistics> stats_;
  std::string dir_;
  std::size_t write_buffer_bytes_;
  /// The engine batch write() fills, reused (created at first use).
  std::unique_ptr<rocksdb::WriteBatch> write_batch_;
  /// write() drops its batch after one larger than this.
  static constexpr std::size_t kept_write_batch_bytes = 1 << 20;
  /// The thread of compact_in_background(), joinable while it runs or
  /// until joined.
  std::thread compaction_;
  /// The background compaction has not finished.
  std::atomic<bool> compacting_{false};
  /// Opened with open_read_only (nothing to sync at close).
  bool read_only_ = false;
};

} // namespace syncmesh
