// Measures the two embedded engines issue 15 may choose from (RocksDB, LMDB)
// on this machine with the storage layer's load: ~24-byte keys, ~120-byte
// records (64-byte value + version/lease metadata), written in batches of
// 1,000 without syncing, then batches of 16 writes with one sync each (group
// commit of 16 writers), then reloaded by iteration after reopening. It is a
// measurement, not a test: the numbers go to tests/bench/README.md.
//
//   syncmesh-storage-bench --engine=rocksdb|lmdb [--dir=D] [--n=1000000]
//                          [--batch=1000] [--syncs=2000] [--group=16]
#include <lmdb.h>
#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <unistd.h>

#include "actors/rocksdb_storage.hpp"

namespace {

using clock_type = std::chrono::steady_clock;

/// Seconds since `start`.
double since(clock_type::time_point start) {
  return std::chrono::duration<double>(clock_type::now() - start).count();
}

/// The process's anonymous resident memory (heap, engine caches), kB: what
/// the issue counts apart from the engine's mapped files.
long rss_anon_kb() {
  std::ifstream in{"/proc/self/status"};
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("RssAnon:", 0) == 0)
      return std::strtol(line.c_str() + 8, nullptr, 10);
  return -1;
}

/// Bytes of every regular file under `dir`.
std::uintmax_t dir_bytes(const std::string& dir) {
  std::uintmax_t total = 0;
  for (auto& e : std::filesystem::recursive_directory_iterator(dir))
    if (e.is_regular_file())
      total += e.file_size();
  return total;
}

/// The i-th key: 24 bytes, spread over the key space (a multiplicative
/// permutation), so inserts arrive in random order as peers' writes do.
std::string key_of(std::uint64_t i) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "key/%020llu",
                static_cast<unsigned long long>(i * 0x9E3779B97F4A7C15ull));
  return buf;
}

/// A 120-byte record: 64 bytes of value and 56 of version/lease metadata,
/// pseudo-random so compression cannot flatter an engine.
std::string record_of(std::uint64_t i, std::uint64_t round) {
  std::string out(120, '\0');
  std::uint64_t x = (i + 1) * 0xD1B54A32D192ED03ull ^ (round << 32);
  for (std::size_t at = 0; at < out.size(); at += 8) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    std::memcpy(out.data() + at, &x, 8);
  }
  return out;
}

/// One engine behind the calls the benchmark makes.
struct engine {
  virtual ~engine() = default;
  /// Starts a write batch.
  virtual void begin() = 0;
  /// Adds one put to the batch.
  virtual void put(const std::string& k, const std::string& v) = 0;
  /// Commits the batch, synced to disk or not.
  virtual void commit(bool sync) = 0;
  /// Iterates everything, returns the entry count and the bytes read.
  virtual std::pair<std::uint64_t, std::uint64_t> scan() = 0;
  /// Compacts (RocksDB) or nothing (LMDB keeps one file).
  virtual void compact() = 0;
};

void check(const rocksdb::Status& st, const char* what) {
  if (!st.ok())
    throw std::runtime_error(std::string{what} + ": " + st.ToString());
}

struct rocks : engine {
  std::unique_ptr<rocksdb::DB> db;
  rocksdb::WriteBatch batch;
  explicit rocks(const std::string& dir) {
    rocksdb::Options opts;
    syncmesh::apply_storage_options(opts); // what the storage layer runs
    opts.create_if_missing = true;
    rocksdb::DB* raw = nullptr;
    check(rocksdb::DB::Open(opts, dir, &raw), "open");
    db.reset(raw);
  }
  void begin() override { batch.Clear(); }
  void put(const std::string& k, const std::string& v) override {
    batch.Put(k, v);
  }
  void commit(bool sync) override {
    rocksdb::WriteOptions wo;
    wo.sync = sync;
    check(db->Write(wo, &batch), "write");
  }
  std::pair<std::uint64_t, std::uint64_t> scan() override {
    rocksdb::ReadOptions ro;
    ro.fill_cache = false;
    std::unique_ptr<rocksdb::Iterator> it{db->NewIterator(ro)};
    std::uint64_t n = 0, bytes = 0;
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      ++n;
      bytes += it->key().size() + it->value().size();
    }
    check(it->status(), "iterate");
    return {n, bytes};
  }
  void compact() override {
    rocksdb::CompactRangeOptions co;
    co.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
    check(db->CompactRange(co, nullptr, nullptr), "compact");
  }
};

void check_mdb(int rc, const char* what) {
  if (rc != 0)
    throw std::runtime_error(std::string{what} + ": " + mdb_strerror(rc));
}

struct lmdb : engine {
  MDB_env* env = nullptr;
  MDB_dbi dbi = 0;
  MDB_txn* txn = nullptr;
  explicit lmdb(const std::string& dir) {
    check_mdb(mdb_env_create(&env), "env_create");
    check_mdb(mdb_env_set_mapsize(env, std::size_t{16} << 30), "mapsize");
    check_mdb(mdb_env_open(env, dir.c_str(), MDB_NORDAHEAD, 0644), "open");
    MDB_txn* t = nullptr;
    check_mdb(mdb_txn_begin(env, nullptr, 0, &t), "txn");
    check_mdb(mdb_dbi_open(t, nullptr, 0, &dbi), "dbi");
    check_mdb(mdb_txn_commit(t), "commit");
  }
  ~lmdb() override { mdb_env_close(env); }
  void begin() override {
    check_mdb(mdb_txn_begin(env, nullptr, 0, &txn), "txn");
  }
  void put(const std::string& k, const std::string& v) override {
    MDB_val mk{k.size(), const_cast<char*>(k.data())};
    MDB_val mv{v.size(), const_cast<char*>(v.data())};
    check_mdb(mdb_put(txn, dbi, &mk, &mv, 0), "put");
  }
  void commit(bool sync) override {
    // MDB_NOSYNC: the commit leaves the pages to the OS; off: it fsyncs.
    check_mdb(mdb_env_set_flags(env, MDB_NOSYNC, sync ? 0 : 1), "flags");
    check_mdb(mdb_txn_commit(txn), "commit");
    txn = nullptr;
  }
  std::pair<std::uint64_t, std::uint64_t> scan() override {
    MDB_txn* t = nullptr;
    check_mdb(mdb_txn_begin(env, nullptr, MDB_RDONLY, &t), "txn");
    MDB_cursor* cur = nullptr;
    check_mdb(mdb_cursor_open(t, dbi, &cur), "cursor");
    MDB_val k, v;
    std::uint64_t n = 0, bytes = 0;
    for (int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
      ++n;
      bytes += k.mv_size + v.mv_size;
    }
    mdb_cursor_close(cur);
    mdb_txn_abort(t);
    return {n, bytes};
  }
  void compact() override {}
};

std::unique_ptr<engine> open_engine(const std::string& name,
                                    const std::string& dir) {
  std::filesystem::create_directories(dir);
  if (name == "rocksdb")
    return std::make_unique<rocks>(dir);
  if (name == "lmdb")
    return std::make_unique<lmdb>(dir);
  throw std::runtime_error("unknown engine " + name);
}

/// The value of `--name=V` in argv, or `fallback`.
std::string flag(int argc, char** argv, const std::string& name,
                 const std::string& fallback) {
  auto prefix = "--" + name + "=";
  for (int i = 1; i < argc; ++i)
    if (std::string_view{argv[i]}.substr(0, prefix.size()) == prefix)
      return argv[i] + prefix.size();
  return fallback;
}

} // namespace

int main(int argc, char** argv) try {
  auto name = flag(argc, argv, "engine", "rocksdb");
  auto dir = flag(argc, argv, "dir",
                  "/var/tmp/syncmesh-storage-bench-" + name + "-"
                    + std::to_string(::getpid()));
  auto n = std::stoull(flag(argc, argv, "n", "1000000"));
  auto batch = std::stoull(flag(argc, argv, "batch", "1000"));
  auto syncs = std::stoull(flag(argc, argv, "syncs", "2000"));
  auto group = std::stoull(flag(argc, argv, "group", "16"));
  if (batch == 0 || group == 0)
    throw std::runtime_error("--batch and --group must be positive");
  std::filesystem::remove_all(dir);
  auto rss0 = rss_anon_kb();
  auto db = open_engine(name, dir);

  // (a) n puts in batches of `batch`, no sync.
  auto t0 = clock_type::now();
  for (std::uint64_t i = 0; i < n; i += batch) {
    db->begin();
    for (std::uint64_t j = i; j < std::min(n, i + batch); ++j)
      db->put(key_of(j), record_of(j, 0));
    db->commit(false);
  }
  auto nosync_s = since(t0);
  auto rss_written = rss_anon_kb();

  // (b) `syncs` batches of `group` overwrites, each synced: group commit.
  t0 = clock_type::now();
  std::uint64_t next = 0;
  for (std::uint64_t s = 0; s < syncs; ++s) {
    db->begin();
    for (std::uint64_t j = 0; j < group; ++j, ++next)
      db->put(key_of((next * 7919) % n), record_of(next, 1));
    db->commit(true);
  }
  auto sync_s = since(t0);

  // Compaction, then the disk per entry.
  t0 = clock_type::now();
  db->compact();
  auto compact_s = since(t0);
  db.reset();
  auto disk = dir_bytes(dir);

  // Reopen and reload everything by iteration.
  t0 = clock_type::now();
  db = open_engine(name, dir);
  auto [count, bytes] = db->scan();
  auto reload_s = since(t0);
  auto rss_reloaded = rss_anon_kb();
  db.reset();
  std::filesystem::remove_all(dir);

  std::printf("engine            %s\n", name.c_str());
  std::printf("entries           %llu (%llu bytes of keys+records)\n",
              static_cast<unsigned long long>(count),
              static_cast<unsigned long long>(bytes));
  std::printf("no-sync writes/s  %.0f (%llu in batches of %llu, %.2f s)\n",
              n / nosync_s, static_cast<unsigned long long>(n),
              static_cast<unsigned long long>(batch), nosync_s);
  std::printf("synced writes/s   %.0f (groups of %llu)\n",
              syncs * group / sync_s, static_cast<unsigned long long>(group));
  std::printf("syncs/s           %.0f (%llu syncs, %.2f s)\n", syncs / sync_s,
              static_cast<unsigned long long>(syncs), sync_s);
  std::printf("compaction s      %.2f\n", compact_s);
  std::printf("disk bytes/entry  %.1f (%llu bytes)\n",
              static_cast<double>(disk) / count,
              static_cast<unsigned long long>(disk));
  std::printf("reload s          %.2f (reopen + iterate all)\n", reload_s);
  std::printf("RssAnon kB        start %ld, after writes %ld, after reload "
              "%ld\n",
              rss0, rss_written, rss_reloaded);
  if (count != n)
    throw std::runtime_error("reloaded " + std::to_string(count)
                             + " entries, wrote " + std::to_string(n));
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "syncmesh-storage-bench: %s\n", e.what());
  return 1;
}
