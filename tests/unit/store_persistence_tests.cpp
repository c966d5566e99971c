// What the dict store keeps on disk (actors/store_persistence.hpp) on a real
// RocksDB: whole entries (values, tombstones, field writes, leases) survive
// a reopen byte for byte, purges leave the disk, the clock mark and stored
// stamps raise the restarted clock, and a damaged entry is an error.
#include <boost/test/unit_test.hpp>

#include <memory>
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

const node_id owner = "owner-node";

std::shared_ptr<entry_storage> open_storage(const std::string& dir) {
  auto storage = std::make_shared<rocksdb_storage>();
  storage->open(dir, "this-node");
  return storage;
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
    persist.stage(
      store, applied(store, delete_record("t", make_version(10, owner))));
    persist.write();
    BOOST_CHECK_EQUAL(store.purge({"t"}), 1u);
    persist.stage_erase({"t"});
    persist.write();
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

BOOST_AUTO_TEST_SUITE_END()
