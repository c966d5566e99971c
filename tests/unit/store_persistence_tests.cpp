// What the dict store keeps on disk (actors/store_persistence.hpp) on a real
// RocksDB: whole entries (values, tombstones, field writes, leases) survive
// a reopen byte for byte, purges leave the disk, the clock mark and stored
// stamps raise the restarted clock, a damaged entry is an error, and the
// disk stays bounded by the live data under overwrites and after purges.
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "actors/rocksdb_storage.hpp"
#include "actors/store_persistence.hpp"
#include "actors/store_state.hpp"
#include "tests/support/scratch_dir.hpp"
#include "tests/unit/test_support.hpp"

using namespace syncmesh;
using namespace syncmesh::test;

namespace {

const raw_node_id owner = "owner-node";

std::shared_ptr<entry_storage> open_storage(const std::string& dir) {
  auto storage = std::make_shared<rocksdb_storage>();
  storage->open(dir, "this-node");
  return storage;
}

/// Bytes of the engine's files in `dir` (tables, logs, manifest), as `ls`
/// counts them. Its info log (LOG, LOG.old.*) is left out: diagnostics,
/// capped at two files of 1 MiB by the storage options.
/// The engine's background work deletes files meanwhile: one gone between
/// the listing and its size counts as nothing.
uint64_t dir_bytes(const std::string& dir) {
  uint64_t total = 0;
  for (const auto& f : std::filesystem::directory_iterator{dir}) {
    if (f.path().filename().string().rfind("LOG", 0) == 0)
      continue;
    std::error_code ec;
    auto size = std::filesystem::file_size(f.path(), ec);
    if (!ec)
      total += size;
  }
  return total;
}

/// The bound of disk per live key: twice key, value and 40 bytes.
uint64_t disk_bound(uint64_t keys, uint64_t key_bytes, uint64_t value_bytes) {
  return 2 * keys * (key_bytes + value_bytes + 40);
}

/// A key of 10 bytes: "key/" and six digits.
std::string key_of(int i) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "key/%06d", i);
  return buf;
}

/// A 64-byte text value of random letters: values that do not compress.
std::string random_value(std::mt19937& rng) {
  std::string out(64, ' ');
  for (auto& c : out)
    c = static_cast<char>('a' + rng() % 26);
  return out;
}

/// Applies `rec` to `store` and returns the one-record batch of what
/// changed, as the dict store hands it to the persistence.
pb::WriteBatch applied(store_state& store, pb::WriteRecord rec) {
  std::string err;
  auto out = store.apply(rec, false, err);
  BOOST_REQUIRE_MESSAGE(err.empty(), err);
  pb::WriteBatch changed;
  if (out.changed)
    *changed.add_records() = std::move(rec);
  return changed;
}

/// Writes the tombstone of key "t", purges it from `store` and writes its
/// removal, as the dict store does on a purge.
void write_and_purge_a_tombstone(store_state& store,
                                 store_persistence& persist) {
  persist.stage(store,
                applied(store, delete_record("t", make_version(10, owner))));
  persist.write();
  BOOST_CHECK_EQUAL(store.purge({"t"}), 1u);
  persist.stage_erase({"t"}, store.entry_count());
  persist.write();
}

} // namespace

BOOST_AUTO_TEST_SUITE(store_persistence_on_rocksdb)

BOOST_AUTO_TEST_CASE(entries_come_back_exactly_after_a_reopen) {
  scratch_dir dir;
  store_state store;
  {
    store_persistence persist{open_storage(dir.path), durability_mode::always};
    // The clock reserved up to 5.25 s before the writes are stamped.
    persist.reserve_clock(5'000'000, 1'000'000);
    BOOST_CHECK_EQUAL(persist.reserved_us(), 5'250'000u);
    auto stage = [&](pb::WriteRecord rec) {
      persist.stage(store, applied(store, std::move(rec)));
      persist.write();
    };
    stage(set_record(
      "text", make_version(1'000'010, owner, 1, 1'000'010, owner, 0, 4'000'000),
      value{"hello"}));
    stage(set_record("map", make_version(1'000'020, owner),
                     value{fields_of({{"a", value{int64_t{1}}}})}));
    // A field write over the map: the entry is base + field on disk.
    stage(fields_record("map", make_version(1'000'030, owner),
                        fields_of({{"b", value{"two"}}})));
    stage(set_record("gone", make_version(1'000'040, owner), value{"x"}));
    stage(delete_record("gone", make_version(1'000'050, owner)));
    BOOST_CHECK(persist.unsynced());
    persist.sync();
    BOOST_CHECK(!persist.unsynced());
    BOOST_CHECK_EQUAL(persist.syncs(), 2u); // the reservation and this one
  }
  store_state loaded;
  store_persistence again{open_storage(dir.path), durability_mode::always};
  auto result = again.load(loaded);
  BOOST_CHECK_EQUAL(result.entries, 3u); // text, map, the tombstone of gone
  BOOST_CHECK_EQUAL(loaded.canonical_bytes(), store.canonical_bytes());
  BOOST_CHECK_EQUAL(loaded.live_count(), 2u);
  // The reserved clock mark is above every stamp.
  BOOST_CHECK_EQUAL(result.clock_floor_us, 5'250'000u);
  BOOST_CHECK(loaded.audit_node_ids());
}

BOOST_AUTO_TEST_CASE(the_newest_stamp_raises_the_clock_when_the_mark_lags) {
  scratch_dir dir;
  store_state store;
  {
    store_persistence persist{open_storage(dir.path), durability_mode::none};
    persist.reserve_clock(1'000, 1'000);
    persist.stage(store,
                  applied(store, set_record("k", make_version(9'000'000, owner),
                                            value{"v"})));
    persist.write();
  }
  store_state loaded;
  store_persistence again{open_storage(dir.path), durability_mode::none};
  BOOST_CHECK_EQUAL(again.load(loaded).clock_floor_us, 9'000'000u);
}

BOOST_AUTO_TEST_CASE(a_key_written_twice_in_one_step_keeps_the_later_write) {
  scratch_dir dir;
  store_state store;
  {
    store_persistence persist{open_storage(dir.path), durability_mode::none};
    auto both = applied(
      store, set_record("k", make_version(10, owner), value{"first"}));
    auto later = applied(
      store, set_record("k", make_version(20, owner), value{"second"}));
    *both.add_records() = later.records(0);
    persist.stage(store, both);
    persist.write();
  }
  store_state loaded;
  store_persistence again{open_storage(dir.path), durability_mode::none};
  again.load(loaded);
  BOOST_REQUIRE(loaded.find("k") != nullptr);
  BOOST_CHECK_EQUAL(loaded.find("k")->read().as_text(), "second");
  BOOST_CHECK_EQUAL(loaded.canonical_bytes(), store.canonical_bytes());
}

BOOST_AUTO_TEST_CASE(purged_tombstones_leave_the_disk) {
  scratch_dir dir;
  store_state store;
  {
    store_persistence persist{open_storage(dir.path), durability_mode::batch};
    write_and_purge_a_tombstone(store, persist);
    persist.sync();
  }
  store_state loaded;
  store_persistence again{open_storage(dir.path), durability_mode::batch};
  BOOST_CHECK_EQUAL(again.load(loaded).entries, 0u);
  BOOST_CHECK_EQUAL(loaded.entry_count(), 0u);
}

// "No reuse": the reservation is synced before any stamp inside it is made,
// renewed only when the clock comes within half of it, and a reopened
// store starts its clock above it.
BOOST_AUTO_TEST_CASE(the_clock_is_reserved_ahead_on_disk) {
  scratch_dir dir;
  {
    store_persistence persist{open_storage(dir.path), durability_mode::none,
                              100'000};
    persist.reserve_clock(1'000'000, 900'000);
    BOOST_CHECK_EQUAL(persist.reserved_us(), 1'100'000u);
    BOOST_CHECK_EQUAL(persist.reservations(), 1u);
    // Well inside the reservation: nothing to write.
    persist.reserve_clock(1'040'000, 1'040'000);
    BOOST_CHECK_EQUAL(persist.reservations(), 1u);
    // Within half of its end: the next one, from the later of clock and
    // wall time.
    persist.reserve_clock(1'030'000, 1'060'000);
    BOOST_CHECK_EQUAL(persist.reservations(), 2u);
    BOOST_CHECK_EQUAL(persist.reserved_us(), 1'160'000u);
    // Durability none: no sync of entries, but the reservations were.
    BOOST_CHECK_EQUAL(persist.syncs(), 2u);
  }
  store_state loaded;
  store_persistence again{open_storage(dir.path), durability_mode::none};
  BOOST_CHECK_EQUAL(again.load(loaded).clock_floor_us, 1'160'000u);
  BOOST_CHECK_EQUAL(again.reserved_us(), 1'160'000u);
}

BOOST_AUTO_TEST_CASE(an_entry_that_does_not_parse_is_a_storage_error) {
  scratch_dir dir;
  {
    auto storage = open_storage(dir.path);
    storage_batch junk;
    junk.put("k", std::string("\xff\xff\xff", 3));
    storage->write(junk, true);
  }
  store_state loaded;
  store_persistence again{open_storage(dir.path), durability_mode::none};
  BOOST_CHECK_THROW(again.load(loaded), storage_error);
}

// Disk bounds (issue 15: "disk usage stays bounded under overwrites
// (compaction) and tombstones are purged from disk"). The engine runs with
// 1 MiB write buffers instead of 32 MiB so that a few MiB of writes go
// through the flushes and level compactions a node sees after hundreds;
// the code paths are the same.

constexpr std::size_t small_buffers = 1 << 20;

// What the engine may hold beyond the live entries while it runs: the
// write-ahead log of two unflushed buffers, up to four level-0 tables
// (each at most a buffer) waiting for their compaction, and the small
// files (manifest, options, current, identity).
constexpr uint64_t running_overhead = 6 * small_buffers + (64 << 10);
// After a full compaction: an empty log and the small files.
constexpr uint64_t compacted_overhead = 64 << 10;

BOOST_AUTO_TEST_CASE(overwrites_keep_the_disk_bounded_by_the_live_data) {
  scratch_dir dir;
  constexpr int keys = 4'000;
  constexpr int rounds = 100;
  std::mt19937 rng{7};
  auto storage = std::make_shared<rocksdb_storage>(small_buffers);
  storage->open(dir.path, "this-node");
  store_state store;
  store_persistence persist{storage, durability_mode::none};
  uint64_t stamp = 1'000;
  auto bound = disk_bound(keys, 10, 64);
  uint64_t most = 0;
  for (int round = 0; round < rounds; ++round) {
    pb::WriteBatch changed;
    for (int i = 0; i < keys; ++i) {
      auto rec = set_record(key_of(i), make_version(++stamp, owner),
                            value{random_value(rng)});
      *changed.add_records() = applied(store, std::move(rec)).records(0);
      // Groups of 100 records, as the store writes a mailbox's worth.
      if (changed.records_size() == 100) {
        persist.stage(store, changed);
        persist.write();
        changed.Clear();
      }
    }
    most = std::max(most, dir_bytes(dir.path));
  }
  BOOST_TEST_MESSAGE("overwrites: " << persist.bytes_written()
                                    << " B written, at most " << most
                                    << " B on disk, bound " << bound << " + "
                                    << running_overhead);
  // 400,000 records went through: kept, they would break the bound several
  // times over; the engine keeps to it on its own by compacting.
  BOOST_TEST(persist.bytes_written() > 4 * (bound + running_overhead));
  BOOST_TEST(most <= bound + running_overhead);
  BOOST_TEST(storage->stats().compaction_bytes > 0);
  storage->compact();
  auto compacted = dir_bytes(dir.path);
  BOOST_TEST_MESSAGE("after a compaction: " << compacted << " B, "
                                            << compacted / keys << " B/key");
  BOOST_TEST(compacted <= bound + compacted_overhead);
  // Only the live entries are left: the data files alone are within the
  // bound, whatever the fixed files.
  BOOST_TEST(storage->stats().file_bytes <= bound + compacted_overhead);
}

BOOST_AUTO_TEST_CASE(a_large_purge_compacts_the_tombstones_off_the_disk) {
  scratch_dir dir;
  constexpr int keys = 20'000;
  constexpr int kept = 2'000;
  std::mt19937 rng{11};
  auto storage = std::make_shared<rocksdb_storage>(small_buffers);
  storage->open(dir.path, "this-node");
  store_state store;
  store_persistence persist{storage, durability_mode::batch};
  uint64_t stamp = 1'000;
  auto write_all = [&](auto&& record_of) {
    pb::WriteBatch changed;
    for (int i = 0; i < keys; ++i) {
      if (auto rec = record_of(i)) {
        *changed.add_records() = applied(store, std::move(*rec)).records(0);
        if (changed.records_size() == 100) {
          persist.stage(store, changed);
          persist.write();
          changed.Clear();
        }
      }
    }
    persist.stage(store, changed);
    persist.write();
  };
  write_all([&](int i) -> std::optional<pb::WriteRecord> {
    return set_record(key_of(i), make_version(++stamp, owner),
                      value{random_value(rng)});
  });
  // Every key but the first `kept` deleted: tombstones, stored as entries.
  write_all([&](int i) -> std::optional<pb::WriteRecord> {
    if (i < kept)
      return std::nullopt;
    return delete_record(key_of(i), make_version(++stamp, owner));
  });
  auto bound = disk_bound(kept, 10, 64);
  auto before = dir_bytes(dir.path);
  BOOST_TEST_MESSAGE("before the purge: " << before << " B, bound " << bound
                                          << " + " << compacted_overhead);
  // What the disk holds now is beyond the bound: the test can fail.
  BOOST_TEST(before > bound + compacted_overhead);
  // The horizon passed: the tombstones are purged.
  std::vector<std::string> purged;
  for (int i = kept; i < keys; ++i)
    purged.push_back(key_of(i));
  BOOST_REQUIRE_EQUAL(store.purge(purged), purged.size());
  persist.stage_erase(purged, store.entry_count());
  persist.write();
  BOOST_CHECK_EQUAL(persist.compactions(), 1u);
  // The compaction runs in the background; closing waits for it.
  storage->close();
  auto after = dir_bytes(dir.path);
  BOOST_TEST_MESSAGE("after: " << after << " B, " << after / kept
                               << " B per live key");
  BOOST_TEST(after <= bound + compacted_overhead);
  store_state loaded;
  store_persistence again{open_storage(dir.path), durability_mode::batch};
  BOOST_CHECK_EQUAL(again.load(loaded).entries, static_cast<uint64_t>(kept));
  BOOST_CHECK_EQUAL(loaded.canonical_bytes(), store.canonical_bytes());
}

BOOST_AUTO_TEST_CASE(a_group_is_full_at_its_byte_bound) {
  scratch_dir dir;
  store_state store;
  store_persistence persist{open_storage(dir.path), durability_mode::none};
  std::mt19937 rng{3};
  int staged = 0;
  while (!persist.group_full()) {
    BOOST_REQUIRE_LT(persist.staged_bytes(),
                     store_persistence::max_group_bytes);
    persist.stage(store,
                  applied(store, set_record(key_of(staged),
                                            make_version(10 + staged, owner),
                                            value{random_value(rng)})));
    ++staged;
  }
  BOOST_TEST_MESSAGE(staged << " entries of 64-byte values fill a group");
  BOOST_CHECK_GE(persist.staged_bytes(), store_persistence::max_group_bytes);
  // Hundreds of entries: the bound keeps the group commit's sharing.
  BOOST_CHECK_GT(staged, 200);
  persist.write();
  BOOST_CHECK(!persist.group_full());
  BOOST_CHECK_EQUAL(persist.staged_bytes(), 0u);
}

BOOST_AUTO_TEST_CASE(small_purges_do_not_compact) {
  scratch_dir dir;
  store_state store;
  store_persistence persist{open_storage(dir.path), durability_mode::none};
  write_and_purge_a_tombstone(store, persist);
  BOOST_CHECK_EQUAL(persist.compactions(), 0u);
}

BOOST_AUTO_TEST_SUITE_END()
