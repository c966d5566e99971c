#include "actors/rocksdb_storage.hpp"

#include <atomic>
#include <charconv>
#include <filesystem>
#include <system_error>

#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/memtablerep.h>
#include <rocksdb/options.h>
#include <rocksdb/statistics.h>
#include <rocksdb/table.h>
#include <rocksdb/utilities/checkpoint.h>
#include <rocksdb/write_batch.h>

namespace syncmesh {

namespace {

// One key space, two prefixes: meta values and entries never collide and a
// WriteBatch covers both atomically.
constexpr char meta_prefix = 'm';
constexpr char entry_prefix = 'e';

/// `name` in the space of `prefix`.
std::string prefixed(char prefix, std::string_view name) {
  std::string out;
  out.reserve(name.size() + 1);
  out += prefix;
  out += name;
  return out;
}

std::string meta_key(std::string_view name) {
  return prefixed(meta_prefix, name);
}

std::string entry_key(std::string_view key) {
  return prefixed(entry_prefix, key);
}

rocksdb::Slice slice(std::string_view s) {
  return {s.data(), s.size()};
}

/// What an operator can do about a failed status, after its text.
std::string advice(const rocksdb::Status& st) {
  if (st.IsCorruption())
    return " (the files are corrupted: restore a backup, or move the dir "
           "away so the node rejoins empty and repairs from its peers)";
  if (st.IsIOError())
    return " (check the disk, its free space and the dir's permissions)";
  return {};
}

[[noreturn]] void fail(const std::string& dir, const char* what,
                       const rocksdb::Status& st) {
  throw storage_error("storage: " + std::string{what} + " in data dir " + dir
                      + " failed: " + st.ToString() + advice(st));
}

/// A checkpoint copies the live write-ahead log rather than flush the write
/// buffers into a table file first (RocksDB's default): measured here with
/// these options, flushing a 20 MB buffer took 630 ms, copying its log 75
/// ms (140 ms for 30 MB), and the log is bounded by the write buffers. The
/// copy is consistent either way: every write goes through the log.
constexpr uint64_t checkpoint_flush_log_bytes = UINT64_MAX;

/// set_storage_env's Env, or nullptr; atomic because a test sets it while
/// no storage is open, on any thread.
std::atomic<rocksdb::Env*> env_override{nullptr};

} // namespace

void set_storage_env(rocksdb::Env* env) {
  env_override.store(env);
}

void apply_storage_options(rocksdb::Options& opts,
                           std::size_t write_buffer_bytes) {
  opts.create_if_missing = true;
  opts.paranoid_checks = true;
  // A torn last record after a crash is normal and dropped; damage anywhere
  // else in the log is an error instead of a silent loss of what follows.
  opts.wal_recovery_mode
    = rocksdb::WALRecoveryMode::kTolerateCorruptedTailRecords;
  // Two cores: one flush and one compaction at a time.
  opts.max_background_jobs = 2;
  // Write buffers bound the engine's anonymous memory (RssAnon): the dict
  // store holds every entry in memory already.
  opts.write_buffer_size = write_buffer_bytes;
  opts.max_write_buffer_number = 2;
  // The engine is written, not read, while the node runs (reads go to the
  // store's tables; the engine is read once, in order, at start): an
  // append-only vector memtable, sorted when flushed, costs less per write
  // than the default skiplist (which keeps every insert in order).
  opts.memtable_factory.reset(new rocksdb::VectorRepFactory);
  opts.allow_concurrent_memtable_write = false;
  // The engine's own info log stays small.
  opts.max_log_file_size = 1 << 20;
  opts.keep_log_file_num = 2;
  rocksdb::BlockBasedTableOptions table;
  // Reads go to the in-memory tables; loading bypasses the cache.
  table.block_cache = rocksdb::NewLRUCache(8 << 20);
  opts.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
}

rocksdb_storage::rocksdb_storage(std::size_t write_buffer_bytes)
    : write_buffer_bytes_(write_buffer_bytes) {}

rocksdb_storage::~rocksdb_storage() {
  join_compaction();
  if (!db_)
    return;
  if (read_only_) {
    db_->Close().PermitUncheckedError();
    return;
  }
  // A destructor cannot report: an owner that cares calls close() first.
  // The log is synced all the same (see close()).
  db_->SyncWAL().PermitUncheckedError();
  db_->Close().PermitUncheckedError();
}

rocksdb::DB& rocksdb_storage::db() {
  if (!db_)
    throw storage_error("storage: not open");
  return *db_;
}

void rocksdb_storage::open(const std::string& dir, std::string_view node_id) {
  close();
  if (node_id.empty())
    throw storage_error("storage: opening " + dir + " needs a node ID");
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec)
    throw storage_error("storage: cannot create data dir " + dir + ": "
                        + ec.message());
  rocksdb::DB* raw = nullptr;
  rocksdb::Options opts;
  apply_storage_options(opts, write_buffer_bytes_);
  if (auto* env = env_override.load())
    opts.env = env;
  // Tickers only (bytes written by the log, flushes and compactions; stall
  // time): per-core counters, no clock reads on the write path.
  stats_ = rocksdb::CreateDBStatistics();
  stats_->set_stats_level(rocksdb::StatsLevel::kExceptHistogramOrTimers);
  opts.statistics = stats_;
  auto st = rocksdb::DB::Open(opts, dir, &raw);
  if (!st.ok())
    fail(dir, "opening the database", st);
  adopt(raw, dir, false, node_id);
}

void rocksdb_storage::adopt(rocksdb::DB* raw, const std::string& dir,
                            bool read_only, std::string_view node_id) {
  db_.reset(raw);
  dir_ = dir;
  read_only_ = read_only;
  try {
    check_format(node_id, !read_only);
  } catch (...) {
    db_->Close().PermitUncheckedError(); // the refusal is the error to report
    db_.reset();
    throw;
  }
}

void rocksdb_storage::open_read_only(const std::string& dir) {
  close();
  rocksdb::DB* raw = nullptr;
  rocksdb::Options opts;
  apply_storage_options(opts);
  opts.create_if_missing = false;
  if (auto* env = env_override.load())
    opts.env = env;
  auto st = rocksdb::DB::OpenForReadOnly(opts, dir, &raw);
  if (!st.ok())
    fail(dir, "opening the database to read", st);
  stats_.reset(); // a read-only copy reports no writes
  adopt(raw, dir, true, {});
}

void rocksdb_storage::check_format(std::string_view node_id, bool create) {
  const auto& dir = dir_;
  auto format = get_meta(meta_format);
  auto owner = get_meta(meta_node_id);
  if (!format) {
    // A new dir, unless entries or meta exist without a format: written
    // by something else, never by a syncmesh that knows format 1.
    rocksdb::ReadOptions ro;
    std::unique_ptr<rocksdb::Iterator> it{db_->NewIterator(ro)};
    it->SeekToFirst();
    if (!it->status().ok())
      fail(dir, "reading", it->status());
    if (it->Valid())
      throw storage_error("storage: data dir " + dir
                          + " holds data without a disk format version: "
                            "not a syncmesh data dir, refusing it");
    if (!create)
      throw storage_error("storage: data dir " + dir
                          + " is empty: not a syncmesh data dir");
    rocksdb::WriteBatch batch;
    batch.Put(meta_key(meta_format), std::to_string(format_version));
    batch.Put(meta_key(meta_node_id), slice(node_id));
    rocksdb::WriteOptions wo;
    wo.sync = true;
    auto st = db_->Write(wo, &batch);
    if (!st.ok())
      fail(dir, "writing the format version", st);
    return;
  }
  std::uint32_t found = 0;
  auto [end, err]
    = std::from_chars(format->data(), format->data() + format->size(), found);
  if (err != std::errc{} || end != format->data() + format->size())
    throw storage_error(
      "storage: data dir " + dir + " has an unknown disk format \"" + *format
      + "\"; this build reads format " + std::to_string(format_version));
  if (found < oldest_upgradable_format || found > format_version)
    throw storage_error(
      "storage: data dir " + dir + " has disk format " + std::to_string(found)
      + "; this build reads format " + std::to_string(format_version)
      + (found > format_version
           ? " (written by a newer syncmesh: run that version, or move the "
             "dir away so the node rejoins empty)"
           : " (an older format: see README, \"Durable storage\", for the "
             "upgrade)"));
  if (!owner)
    throw storage_error("storage: data dir " + dir
                        + " has no node ID: refusing it");
  if (!node_id.empty() && *owner != node_id)
    throw storage_error("storage: data dir " + dir + " belongs to node "
                        + *owner + ", not to this node (" + std::string{node_id}
                        + "): a node must not start on another's data");
  if (found < format_version && create) {
    // Older records are valid in this format: raising the mark is the whole
    // upgrade. It makes the older build refuse the dir from now on, which
    // is the point: it would drop what this build adds to records.
    rocksdb::WriteOptions wo;
    wo.sync = true;
    auto st
      = db_->Put(wo, meta_key(meta_format), std::to_string(format_version));
    if (!st.ok())
      fail(dir, "upgrading the disk format", st);
  }
}

void rocksdb_storage::write(const storage_batch& batch, bool sync) {
  auto& d = db();
  // One engine batch, cleared and reused: it keeps its buffer, where a new
  // one per group grew a 64 KiB string by doubling and took fresh pages
  // from the allocator each time (page faults were ~6 % of a relaying
  // node's samples in chain3).
  if (!write_batch_)
    write_batch_ = std::make_unique<rocksdb::WriteBatch>();
  auto& wb = *write_batch_;
  wb.Clear();
  for (auto& op : batch.ops()) {
    // The key's prefix and bytes as two parts: no string per key.
    const char* prefix = op.meta ? &meta_prefix : &entry_prefix;
    rocksdb::Slice key_parts[2] = {{prefix, 1}, slice(op.key)};
    rocksdb::SliceParts key{key_parts, 2};
    if (op.record) {
      rocksdb::Slice record = slice(*op.record);
      wb.Put(key, rocksdb::SliceParts{&record, 1});
    } else {
      wb.Delete(key);
    }
  }
  rocksdb::WriteOptions wo;
  wo.sync = sync;
  auto st = d.Write(wo, &wb);
  // A batch far larger than a group (a restore, a purge of many keys)
  // leaves no buffer of its size behind.
  if (wb.GetDataSize() > kept_write_batch_bytes)
    write_batch_.reset();
  if (!st.ok())
    fail(dir_, "writing", st);
}

std::optional<std::string> rocksdb_storage::get_meta(std::string_view name) {
  std::string out;
  auto st = db().Get(rocksdb::ReadOptions{}, meta_key(name), &out);
  if (st.IsNotFound())
    return std::nullopt;
  if (!st.ok())
    fail(dir_, "reading meta", st);
  return out;
}

void rocksdb_storage::put_meta(std::string_view name, std::string_view value,
                               bool sync) {
  rocksdb::WriteOptions wo;
  wo.sync = sync;
  auto st = db().Put(wo, meta_key(name), slice(value));
  if (!st.ok())
    fail(dir_, "writing meta", st);
}

void rocksdb_storage::sync() {
  auto st = db().SyncWAL();
  if (!st.ok())
    fail(dir_, "syncing", st);
}

void rocksdb_storage::for_each(
  const std::function<void(std::string_view key, std::string_view record)>&
    fn) {
  auto& d = db();
  const std::string lower(1, entry_prefix);
  const std::string upper(1, static_cast<char>(entry_prefix + 1));
  rocksdb::Slice lower_slice{lower};
  rocksdb::Slice upper_slice{upper};
  rocksdb::ReadOptions ro;
  ro.verify_checksums = true;
  ro.fill_cache = false; // one pass over everything: keep the cache small
  ro.iterate_lower_bound = &lower_slice;
  ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it{d.NewIterator(ro)};
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    auto k = it->key();
    auto v = it->value();
    fn(std::string_view{k.data() + 1, k.size() - 1},
       std::string_view{v.data(), v.size()});
  }
  if (!it->status().ok())
    fail(dir_, "loading", it->status());
}

void rocksdb_storage::compact() {
  auto& d = db();
  auto st = d.Flush(rocksdb::FlushOptions{});
  if (!st.ok())
    fail(dir_, "flushing", st);
  rocksdb::CompactRangeOptions co;
  co.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
  st = d.CompactRange(co, nullptr, nullptr);
  if (!st.ok())
    fail(dir_, "compacting", st);
}

void rocksdb_storage::compact_in_background() {
  auto& d = db();
  if (compacting_.load())
    return;
  join_compaction(); // the previous one, finished
  compacting_ = true;
  compaction_ = std::thread{[this, &d] {
    // Not exclusive: the engine's own compactions go on beside it, so the
    // store's writes never wait for this one (an exclusive manual
    // compaction holds back level-0 compactions until it ends, and writes
    // then stall on level-0 files).
    if (d.Flush(rocksdb::FlushOptions{}).ok()) {
      rocksdb::CompactRangeOptions co;
      co.exclusive_manual_compaction = false;
      co.bottommost_level_compaction
        = rocksdb::BottommostLevelCompaction::kForce;
      // A failure leaves the data as it was; the store's next write reports
      // a failing disk.
      d.CompactRange(co, nullptr, nullptr).PermitUncheckedError();
    }
    compacting_ = false;
  }};
}

void rocksdb_storage::join_compaction() noexcept {
  if (compaction_.joinable())
    compaction_.join();
}

std::uint64_t rocksdb_storage::approximate_bytes() {
  auto& d = db();
  std::uint64_t sst = 0;
  std::uint64_t mem = 0;
  d.GetIntProperty("rocksdb.total-sst-files-size", &sst);
  d.GetIntProperty("rocksdb.cur-size-all-mem-tables", &mem);
  return sst + mem;
}

engine_stats rocksdb_storage::stats() {
  auto& d = db();
  engine_stats out;
  if (stats_ == nullptr)
    return out;
  out.wal_bytes = stats_->getTickerCount(rocksdb::WAL_FILE_BYTES);
  out.flush_bytes = stats_->getTickerCount(rocksdb::FLUSH_WRITE_BYTES);
  out.compaction_bytes = stats_->getTickerCount(rocksdb::COMPACT_WRITE_BYTES);
  out.stall_us = stats_->getTickerCount(rocksdb::STALL_MICROS);
  // size-all-mem-tables: the active buffer, those waiting to be flushed
  // and any kept pinned by an open iterator.
  d.GetIntProperty(rocksdb::DB::Properties::kSizeAllMemTables,
                   &out.memtable_bytes);
  d.GetIntProperty(rocksdb::DB::Properties::kBlockCacheUsage,
                   &out.block_cache_bytes);
  d.GetIntProperty(rocksdb::DB::Properties::kEstimateTableReadersMem,
                   &out.table_reader_bytes);
  // The files as `ls` sees them (tables, logs, manifest): what the dir
  // costs on disk, which the engine's own estimates leave out in part.
  std::error_code ec;
  for (std::filesystem::directory_iterator it{dir_, ec}, end; !ec && it != end;
       it.increment(ec)) {
    std::error_code size_ec;
    auto size = it->is_regular_file(size_ec) ? it->file_size(size_ec) : 0;
    if (!size_ec)
      out.file_bytes += size;
  }
  return out;
}

void rocksdb_storage::checkpoint(const std::string& dir) {
  // The DB and its Checkpoint are thread-safe: this may run beside the
  // owner's writes (entry_storage::checkpoint), never beside open/close.
  auto& d = db();
  rocksdb::Checkpoint* raw = nullptr;
  auto st = rocksdb::Checkpoint::Create(&d, &raw);
  if (!st.ok())
    fail(dir_, "preparing a checkpoint", st);
  std::unique_ptr<rocksdb::Checkpoint> cp{raw};
  st = cp->CreateCheckpoint(dir, checkpoint_flush_log_bytes);
  if (!st.ok())
    fail(dir_, ("making a checkpoint in " + dir).c_str(), st);
}

void rocksdb_storage::close() {
  join_compaction();
  if (!db_)
    return;
  if (read_only_) {
    // Nothing was written: no log to sync.
    auto st = db_->Close();
    db_.reset();
    if (!st.ok())
      fail(dir_, "closing", st);
    return;
  }
  // RocksDB's Close does not sync the log: without this, what `batch` or
  // `none` wrote since the last sync would be lost to a power cut even
  // after a clean stop (tests/crash, a_clean_stop_makes_every_write_durable).
  auto st = db_->SyncWAL();
  auto closed = db_->Close();
  if (st.ok())
    st = closed;
  else
    closed.PermitUncheckedError();
  db_.reset();
  if (!st.ok())
    fail(dir_, "closing", st);
}

} // namespace syncmesh
