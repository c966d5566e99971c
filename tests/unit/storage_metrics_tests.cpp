// What durable storage reports (issue 15, "Operations"): the flush latency
// histogram's buckets, the rule that asks for a compaction after large
// purges, and the counters a store's persistence fills from a real engine
// (writes, fsyncs, latencies, the engine's bytes on disk and memory), and
// the thread that makes the store's fsyncs.
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "actors/latency_histogram.hpp"
#include "actors/rocksdb_storage.hpp"
#include "actors/store_persistence.hpp"
#include "actors/store_state.hpp"
#include "actors/wal_syncer.hpp"
#include "syncmesh/pb/requests.pb.h"
#include "tests/support/scratch_dir.hpp"
#include "tests/unit/test_support.hpp"

using namespace syncmesh;
using namespace syncmesh::test;

BOOST_AUTO_TEST_SUITE(latency_histogram_buckets)

BOOST_AUTO_TEST_CASE(a_bound_belongs_to_its_own_bucket) {
  // Prometheus's `le`: a sample equal to a bound is counted under it.
  BOOST_CHECK_EQUAL(latency_histogram::bucket_of(0), 0u);
  BOOST_CHECK_EQUAL(latency_histogram::bucket_of(50), 0u);
  BOOST_CHECK_EQUAL(latency_histogram::bucket_of(51), 1u);
  BOOST_CHECK_EQUAL(latency_histogram::bucket_of(100), 1u);
  BOOST_CHECK_EQUAL(latency_histogram::bucket_of(199), 2u);
  BOOST_CHECK_EQUAL(latency_histogram::bucket_of(1'000'000), 13u);
}

BOOST_AUTO_TEST_CASE(beyond_every_bound_is_the_last_bucket) {
  BOOST_CHECK_EQUAL(latency_histogram::bucket_of(1'000'001),
                    latency_histogram::buckets - 1);
  BOOST_CHECK_EQUAL(latency_histogram::bucket_of(UINT64_MAX),
                    latency_histogram::buckets - 1);
}

BOOST_AUTO_TEST_CASE(bounds_rise_strictly) {
  for (std::size_t i = 1; i < latency_histogram::bounds_us.size(); ++i)
    BOOST_CHECK_LT(latency_histogram::bounds_us[i - 1],
                   latency_histogram::bounds_us[i]);
}

BOOST_AUTO_TEST_CASE(records_count_sum_and_export) {
  latency_histogram h;
  for (auto us : {10u, 50u, 180u, 180u, 4'000u, 2'000'000u})
    h.record(us);
  BOOST_CHECK_EQUAL(h.count(), 6u);
  BOOST_CHECK_EQUAL(h.sum_us(), 10u + 50 + 180 + 180 + 4'000 + 2'000'000);
  BOOST_CHECK_EQUAL(h.counts()[0], 2u); // 10 and 50
  BOOST_CHECK_EQUAL(h.counts()[2], 2u); // 180 twice, in (100, 200]
  BOOST_CHECK_EQUAL(h.counts()[6], 1u); // 4 ms in (2, 5] ms
  BOOST_CHECK_EQUAL(h.counts()[latency_histogram::buckets - 1], 1u);
  pb::LatencyHistogram out;
  h.write_to(out);
  BOOST_REQUIRE_EQUAL(out.bounds_us_size(),
                      static_cast<int>(latency_histogram::bounds_us.size()));
  BOOST_REQUIRE_EQUAL(out.counts_size(), out.bounds_us_size() + 1);
  BOOST_CHECK_EQUAL(out.bounds_us(0), 50u);
  BOOST_CHECK_EQUAL(out.counts(2), 2u);
  BOOST_CHECK_EQUAL(out.count(), 6u);
  BOOST_CHECK_EQUAL(out.sum_us(), h.sum_us());
  // Written twice, the export replaces rather than appends.
  h.write_to(out);
  BOOST_CHECK_EQUAL(out.counts_size(), out.bounds_us_size() + 1);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(compaction_after_purges)

BOOST_AUTO_TEST_CASE(small_purges_add_up_before_they_trigger) {
  compaction_trigger t;
  BOOST_CHECK(!t.note_purge(999, 0));
  BOOST_CHECK_EQUAL(t.erased(), 999u);
  BOOST_CHECK(t.note_purge(1, 0));
  // Counted again from zero after the compaction.
  BOOST_CHECK_EQUAL(t.erased(), 0u);
  BOOST_CHECK(!t.note_purge(500, 0));
}

BOOST_AUTO_TEST_CASE(a_purge_small_against_what_is_kept_waits) {
  compaction_trigger t;
  BOOST_CHECK(!t.note_purge(1'000, 10'000)); // a tenth
  BOOST_CHECK(!t.note_purge(1'000, 9'000));  // 2,000 against 9,000
  BOOST_CHECK(t.note_purge(500, 8'500));     // 2,500: a quarter of 10,000
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(storage_stats_from_the_engine)

BOOST_AUTO_TEST_CASE(counters_latencies_bytes_and_memory_after_writes) {
  scratch_dir dir;
  auto storage = std::make_shared<rocksdb_storage>();
  storage->open(dir.path, "this-node");
  store_persistence persist{storage, durability_mode::always};
  store_state store;
  std::string err;
  for (int i = 0; i < 100; ++i) {
    pb::WriteRecord rec
      = set_record("k" + std::to_string(i), make_version(1'000 + i, "owner"),
                   value{std::string(64, static_cast<char>('a' + i % 26))});
    BOOST_REQUIRE(store.apply(rec, false, err).changed);
    pb::WriteBatch changed;
    *changed.add_records() = rec;
    persist.stage(store, changed);
    persist.write();
    persist.sync();
  }
  pb::StorageStats s;
  persist.write_stats(s);
  BOOST_CHECK_EQUAL(s.writes(), 100u);
  BOOST_CHECK_EQUAL(s.syncs(), 100u);
  BOOST_CHECK_GT(s.bytes_written(), 100u * 64);
  // One latency per engine write and per fsync.
  BOOST_CHECK_EQUAL(s.write_latency().count(), 100u);
  BOOST_CHECK_EQUAL(s.sync_latency().count(), 100u);
  BOOST_CHECK_EQUAL(s.sync_latency().counts_size(),
                    s.sync_latency().bounds_us_size() + 1);
  // Everything went through the engine's log; nothing was flushed yet.
  BOOST_CHECK_GE(s.engine_wal_bytes(), s.bytes_written());
  BOOST_CHECK_EQUAL(s.engine_flush_bytes(), 0u);
  BOOST_CHECK_GT(s.memtable_bytes(), 0u);
  BOOST_CHECK_GT(s.file_bytes(), s.bytes_written());
  BOOST_CHECK_EQUAL(s.compactions(), 0u);
  // A compaction flushes the write buffer into a table file.
  storage->compact();
  persist.write_stats(s);
  BOOST_CHECK_GT(s.engine_flush_bytes(), 0u);
  BOOST_CHECK_GT(s.table_reader_bytes() + s.block_cache_bytes(), 0u);
}

BOOST_AUTO_TEST_SUITE_END()

// The syncer (actors/wal_syncer.hpp): fsyncs on a thread of their own, one
// for every request made while the previous one ran, told back by ticket.
BOOST_AUTO_TEST_SUITE(wal_syncer_thread)

namespace {

/// What a syncer reported, for a test thread to wait on.
struct reports {
  std::mutex mtx;
  std::condition_variable cv;
  uint64_t highest = 0;
  size_t calls = 0;
  std::string error;

  wal_syncer::done_fn fn() {
    return [this](uint64_t ticket, const std::string& err) {
      {
        std::lock_guard<std::mutex> guard{mtx};
        highest = std::max(highest, ticket);
        ++calls;
        if (!err.empty())
          error = err;
      }
      cv.notify_all();
    };
  }

  /// Waits until the syncer reported `ticket` or an error.
  void wait_for(uint64_t ticket) {
    std::unique_lock<std::mutex> lock{mtx};
    cv.wait(lock, [&] { return highest >= ticket || !error.empty(); });
  }
};

/// One record written to `storage`, not synced.
void write_one(entry_storage& storage, int i) {
  storage_batch batch;
  batch.put("k" + std::to_string(i), std::string(64, 'v'));
  storage.write(batch, false);
}

} // namespace

BOOST_AUTO_TEST_CASE(tickets_rise_and_each_request_is_reported_synced) {
  scratch_dir dir;
  auto storage = std::make_shared<rocksdb_storage>();
  storage->open(dir.path, "this-node");
  reports seen;
  {
    wal_syncer syncer{storage, seen.fn()};
    uint64_t last = 0;
    for (int i = 0; i < 50; ++i) {
      write_one(*storage, i);
      auto ticket = syncer.request();
      BOOST_CHECK_EQUAL(ticket, last + 1);
      last = ticket;
    }
    seen.wait_for(last);
    BOOST_CHECK(seen.error.empty());
    BOOST_CHECK_EQUAL(seen.highest, 50u);
    // Requests made while a sync ran share the next one: never more syncs
    // than requests, and each sync is timed.
    BOOST_CHECK_LE(syncer.syncs(), 50u);
    BOOST_CHECK_GE(syncer.syncs(), 1u);
    BOOST_CHECK_EQUAL(syncer.latency().count(), syncer.syncs());
    BOOST_CHECK_EQUAL(seen.calls, syncer.syncs());
  }
  // What was synced is there after a reopen.
  storage->close();
  storage->open(dir.path, "this-node");
  size_t n = 0;
  storage->for_each([&](std::string_view, std::string_view) { ++n; });
  BOOST_CHECK_EQUAL(n, 50u);
}

BOOST_AUTO_TEST_CASE(a_request_left_at_destruction_is_still_synced) {
  scratch_dir dir;
  auto storage = std::make_shared<rocksdb_storage>();
  storage->open(dir.path, "this-node");
  reports seen;
  uint64_t ticket = 0;
  {
    wal_syncer syncer{storage, seen.fn()};
    write_one(*storage, 1);
    ticket = syncer.request();
  }
  // The destructor waited for it.
  BOOST_CHECK_EQUAL(seen.highest, ticket);
  BOOST_CHECK(seen.error.empty());
}

BOOST_AUTO_TEST_CASE(a_failed_sync_is_reported_and_ends_the_syncs) {
  scratch_dir dir;
  auto storage = std::make_shared<rocksdb_storage>();
  storage->open(dir.path, "this-node");
  reports seen;
  wal_syncer syncer{storage, seen.fn()};
  // A closed storage cannot sync: the error reaches `done`.
  storage->close();
  syncer.request();
  seen.wait_for(UINT64_MAX);
  BOOST_CHECK(seen.error.find("not open") != std::string::npos);
  BOOST_CHECK_EQUAL(syncer.syncs(), 0u);
}

BOOST_AUTO_TEST_CASE(the_next_clock_reservation_is_synced_by_the_syncer) {
  scratch_dir dir;
  auto storage = std::make_shared<rocksdb_storage>();
  storage->open(dir.path, "this-node");
  reports seen;
  uint64_t reserved = 0;
  uint64_t ahead = 0;
  {
    store_persistence persist{storage, durability_mode::batch, 100'000};
    persist.start_syncer(seen.fn());
    // The first reservation: nothing on disk covers the clock, so it is
    // synced before this returns.
    persist.reserve_clock(1'000'000, 1'000'000);
    reserved = persist.reserved_us();
    BOOST_CHECK_EQUAL(reserved, 1'100'000u);
    // Within half a reservation of it: the next one is written and its
    // sync asked for, and the store does not wait for it.
    persist.reserve_clock(1'060'000, 1'060'000);
    ahead = persist.reserving_us();
    BOOST_CHECK_EQUAL(ahead, 1'160'000u);
    BOOST_CHECK_EQUAL(persist.reserved_us(), reserved);
    BOOST_CHECK_EQUAL(persist.reservations(), 2u);
    // The syncer reports it (its second request: the first reservation
    // asked for one too); then it is the reservation on disk.
    seen.wait_for(2);
    persist.synced(seen.highest);
    BOOST_CHECK_EQUAL(persist.reserved_us(), ahead);
    BOOST_CHECK_EQUAL(persist.reserving_us(), 0u);
    // A clock that reaches the reservation on disk before the syncer told
    // of the next one syncs here: every stamp stays below what is on disk.
    persist.reserve_clock(1'120'000, 1'120'000);
    BOOST_CHECK_EQUAL(persist.reserved_us(), ahead);
    persist.reserve_clock(ahead, ahead);
    BOOST_CHECK_GT(persist.reserved_us(), ahead);
    reserved = persist.reserved_us();
  }
  // After a restart the clock starts above every reservation.
  store_state loaded;
  store_persistence again{storage, durability_mode::batch};
  BOOST_CHECK_GE(again.load(loaded).clock_floor_us, reserved);
}

BOOST_AUTO_TEST_CASE(the_persistence_counts_syncs_made_by_its_syncer) {
  scratch_dir dir;
  auto storage = std::make_shared<rocksdb_storage>();
  storage->open(dir.path, "this-node");
  store_persistence persist{storage, durability_mode::always};
  reports seen;
  persist.start_syncer(seen.fn());
  BOOST_CHECK(persist.has_syncer());
  store_state store;
  std::string err;
  auto rec = set_record("k", make_version(1'000, "owner"), value{"v"});
  BOOST_REQUIRE(store.apply(rec, false, err).changed);
  pb::WriteBatch changed;
  *changed.add_records() = rec;
  persist.stage(store, changed);
  persist.write();
  BOOST_CHECK(persist.unsynced());
  auto ticket = persist.request_sync();
  // Asked for: the write is no longer waiting for a request.
  BOOST_CHECK(!persist.unsynced());
  seen.wait_for(ticket);
  BOOST_CHECK_EQUAL(persist.syncs(), 1u);
  pb::StorageStats s;
  persist.write_stats(s);
  BOOST_CHECK_EQUAL(s.syncs(), 1u);
  BOOST_CHECK_EQUAL(s.sync_latency().count(), 1u);
}

BOOST_AUTO_TEST_SUITE_END()
