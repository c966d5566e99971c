// Micro-benchmarks (Google Benchmark) of the rules on the hot path: the
// frame codec, version order, store merges and digests.
//
//   build/bin/syncmesh-micro [--benchmark_filter=...]

#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "actors/anti_entropy.hpp"
#include "actors/rocksdb_storage.hpp"
#include "actors/router_state.hpp"
#include "actors/set_sketch.hpp"
#include "actors/store_persistence.hpp"
#include "actors/store_state.hpp"
#include "messages/frame_codec.hpp"
#include "messages/value_proto.hpp"
#include "messages/version.hpp"
#include "syncmesh/pb/wire.pb.h"

namespace {

using namespace syncmesh;

constexpr uint64_t t0 = 1'700'000'000'000'000;

pb::WriteRecord record(const std::string& key, uint64_t stamp,
                       size_t value_size) {
  version v;
  v.stamp = hlc_stamp{stamp, 0, "node-a"};
  pb::WriteRecord rec;
  rec.set_key(key);
  to_proto(v, rec.mutable_version());
  to_proto(value::from_bytes(std::string(value_size, 'v')),
           rec.mutable_value());
  return rec;
}

pb::WriteBatch batch_of(size_t n, size_t value_size) {
  pb::WriteBatch batch;
  for (size_t i = 0; i < n; ++i)
    *batch.add_records()
      = record("key-" + std::to_string(i), t0 + i, value_size);
  return batch;
}

void frame_encode(benchmark::State& state) {
  auto batch = batch_of(static_cast<size_t>(state.range(0)), 64);
  pb::Envelope env;
  batch.SerializeToString(env.mutable_write());
  for (auto _ : state) {
    std::string out;
    append_frame(out, env);
    benchmark::DoNotOptimize(out);
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(frame_encode)->Arg(1)->Arg(100)->Arg(1000);

void frame_decode(benchmark::State& state) {
  auto batch = batch_of(static_cast<size_t>(state.range(0)), 64);
  pb::Envelope env;
  batch.SerializeToString(env.mutable_write());
  std::string frame;
  append_frame(frame, env);
  for (auto _ : state) {
    frame_decoder decoder;
    decoder.feed(frame);
    std::string payload;
    decoder.next(payload);
    pb::Envelope parsed;
    parse_envelope(payload, parsed);
    pb::WriteBatch writes;
    envelope_builder::decode_writes(parsed, writes);
    benchmark::DoNotOptimize(writes);
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(frame_decode)->Arg(1)->Arg(100)->Arg(1000);

void version_compare(benchmark::State& state) {
  version x;
  x.epoch = 3;
  x.claim_us = t0;
  x.claimer = "node-a";
  x.stamp = hlc_stamp{t0 + 5, 1, "node-a"};
  auto y = x;
  y.stamp.counter = 2;
  for (auto _ : state)
    benchmark::DoNotOptimize(compare(x, y));
}
BENCHMARK(version_compare);

void store_apply(benchmark::State& state) {
  auto n = static_cast<size_t>(state.range(0));
  std::vector<pb::WriteRecord> records;
  for (size_t i = 0; i < n; ++i)
    records.push_back(record("key-" + std::to_string(i), t0 + i, 64));
  for (auto _ : state) {
    store_state store;
    std::string err;
    for (const auto& rec : records)
      store.apply(rec, false, err);
    benchmark::DoNotOptimize(store.live_count());
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(store_apply)->Arg(1000)->Arg(100000);

/// `n` writes of new keys from `next` on (which it advances), 64-byte
/// values, as the chain3 bench names them.
pb::WriteBatch group_of(size_t n, uint64_t& next) {
  pb::WriteBatch group;
  for (size_t i = 0; i < n; ++i, ++next)
    *group.add_records() = record("h/" + std::to_string(next), t0 + next, 64);
  return group;
}

/// Applies the next `n` new writes (see group_of; built outside the timing)
/// to `store`, prefetching ahead as the store actor does when `prefetch`;
/// returns them.
pb::WriteBatch apply_next_group(benchmark::State& state, store_state& store,
                                size_t n, uint64_t& next, bool prefetch) {
  state.PauseTiming();
  auto group = group_of(n, next);
  state.ResumeTiming();
  std::string err;
  const auto& records = group.records();
  for (int i = 0; i < records.size(); ++i) {
    if (prefetch)
      store.prefetch_ahead(records, i);
    store.apply(records[i], false, err);
  }
  return group;
}

/// What the store does with a group of remote writes under a data dir
/// (`--durability=batch`): apply each to the tables, stage its entry, write
/// the group as one engine batch (no fsync: the syncer makes those). New
/// keys, 64-byte values, groups the size a flood brings (range(0) writes).
/// The engine's background flushes of its write buffer run on its own
/// threads and are not counted here; chain3 counts them.
void persist_group(benchmark::State& state) {
  auto n = static_cast<size_t>(state.range(0));
  char tmpl[] = "/tmp/syncmesh-micro-XXXXXX";
  std::string dir = ::mkdtemp(tmpl);
  {
    auto storage = std::make_shared<rocksdb_storage>();
    storage->open(dir + "/db", "micro-node");
    store_persistence persistence{storage, durability_mode::batch};
    store_state store;
    uint64_t next = 0;
    for (auto _ : state) {
      auto group = apply_next_group(state, store, n, next, true);
      persistence.stage(store, group);
      persistence.write();
    }
    state.SetItemsProcessed(static_cast<int64_t>(next));
  }
  std::filesystem::remove_all(dir);
}
BENCHMARK(persist_group)->Arg(450)->Iterations(2000);

/// persist_group's work less the persistence: applying the same groups to
/// the tables alone, to tell what storage adds.
void apply_group(benchmark::State& state) {
  auto n = static_cast<size_t>(state.range(0));
  bool prefetch = state.range(1) != 0;
  store_state store;
  uint64_t next = 0;
  for (auto _ : state) {
    apply_next_group(state, store, n, next, prefetch);
    benchmark::DoNotOptimize(store.live_count());
  }
  state.SetItemsProcessed(static_cast<int64_t>(next));
}
// Second argument: 1 prefetches ahead as the store actor does, 0 does not.
BENCHMARK(apply_group)->Args({450, 0})->Args({450, 1})->Iterations(2000);

void store_duplicate(benchmark::State& state) {
  store_state store;
  std::string err;
  auto rec = record("key", t0, 64);
  store.apply(rec, false, err);
  // A duplicate: the flood's de-duplication for writes.
  for (auto _ : state)
    benchmark::DoNotOptimize(store.apply(rec, false, err).changed);
}
BENCHMARK(store_duplicate);

void validate_batch(benchmark::State& state) {
  auto batch = batch_of(static_cast<size_t>(state.range(0)), 64);
  for (auto _ : state)
    benchmark::DoNotOptimize(validate_remote_batch(batch, write_limits{}));
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(validate_batch)->Arg(100);

void digest_summary(benchmark::State& state) {
  store_state store;
  std::string err;
  for (int64_t i = 0; i < state.range(0); ++i)
    store.apply(
      record("key-" + std::to_string(i), t0 + static_cast<uint64_t>(i), 64),
      false, err);
  for (auto _ : state) {
    pb::Digest digest;
    make_summary(store, digest);
    benchmark::DoNotOptimize(digest);
  }
}
BENCHMARK(digest_summary)->Arg(100000);

void digest_diff(benchmark::State& state) {
  store_state mine;
  store_state theirs;
  std::string err;
  for (int64_t i = 0; i < state.range(0); ++i) {
    auto rec
      = record("key-" + std::to_string(i), t0 + static_cast<uint64_t>(i), 64);
    mine.apply(rec, false, err);
    if (i % 100 != 0)
      theirs.apply(rec, false, err);
  }
  pb::Digest summary;
  make_summary(theirs, summary);
  for (auto _ : state)
    benchmark::DoNotOptimize(differing_buckets(summary, mine));
}
BENCHMARK(digest_diff)->Arg(100000);

/// Building a set sketch of the given elements and decoding it against a
/// sketch of the same set with 1,000 elements missing (the heal case).
void sketch_reconcile(benchmark::State& state) {
  const auto n = static_cast<uint64_t>(state.range(0));
  const size_t cells = set_sketch::cells_for(1000);
  set_sketch theirs{cells};
  for (uint64_t i = 1000; i < n; ++i)
    theirs.add(i * 0x9e3779b97f4a7c15ull);
  for (auto _ : state) {
    set_sketch mine{cells};
    for (uint64_t i = 0; i < n; ++i)
      mine.add(i * 0x9e3779b97f4a7c15ull);
    mine.subtract(theirs);
    benchmark::DoNotOptimize(mine.decode());
  }
}
BENCHMARK(sketch_reconcile)->Arg(100000);

} // namespace

BENCHMARK_MAIN();
