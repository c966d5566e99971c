#include "actors/store_persistence.hpp"

#include <algorithm>
#include <charconv>
#include <chrono>

#include "actors/store_state.hpp"
#include "messages/value_proto.hpp"
#include "messages/version.hpp"
#include "syncmesh/pb/entry.pb.h"
#include "syncmesh/pb/requests.pb.h"

namespace syncmesh {

namespace {

using steady = std::chrono::steady_clock;

/// Microseconds from `start` until now.
uint64_t us_since(steady::time_point start) {
  return static_cast<uint64_t>(
    std::chrono::duration_cast<std::chrono::microseconds>(steady::now() - start)
      .count());
}

uint64_t parse_u64(const std::string& text) {
  uint64_t x = 0;
  std::from_chars(text.data(), text.data() + text.size(), x);
  return x;
}

} // namespace

store_persistence::store_persistence(std::shared_ptr<entry_storage> storage,
                                     durability_mode mode,
                                     uint64_t reservation_us)
    : storage_(std::move(storage)), mode_(mode),
      reservation_us_(std::max<uint64_t>(reservation_us, 1)) {}

store_persistence::load_result store_persistence::load(store_state& store) {
  load_result result;
  if (auto mark = storage_->get_meta(entry_storage::meta_clock))
    result.clock_floor_us = parse_u64(*mark);
  reserved_us_ = result.clock_floor_us;
  pb::WriteBatch entry;
  std::string err;
  storage_->for_each([&](std::string_view key, std::string_view bytes) {
    entry.Clear();
    if (!entry.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())))
      throw storage_error("storage: the stored entry of a key of "
                          + std::to_string(key.size())
                          + " bytes does not parse: the data dir is corrupted");
    for (const auto& rec : entry.records()) {
      version v;
      if (err = from_proto(rec.version(), v); err.empty())
        store.apply(rec, v, false, err);
      if (!err.empty())
        throw storage_error("storage: a stored record of a key of "
                            + std::to_string(key.size()) + " bytes is invalid ("
                            + err + "): the data dir is corrupted");
      result.clock_floor_us = std::max(result.clock_floor_us, v.stamp.wall_us);
    }
    ++result.entries;
  });
  return result;
}

void store_persistence::stage(const store_state& store,
                              const pb::WriteBatch& changed) {
  std::vector<pb::WriteRecord> records;
  pb::WriteBatch entry;
  std::string bytes;
  // A key written twice in one batch is staged twice; the later put wins
  // in the engine batch (storage_batch), so the entry as it is now is kept.
  for (const auto& rec : changed.records()) {
    const auto* found = store.find(rec.key());
    if (found == nullptr)
      continue; // purged since: nothing to keep
    if (found->fields().empty() && rec.op_case() != pb::WriteRecord::kFields
        && found->head().packed_newest().lease_end_us
             == rec.version().lease_end_us()) {
      // The common case: the record that changed the key is its whole
      // entry (a base value or tombstone, no field writes, and no lease end
      // clamped by the rules on the way in). A WriteBatch of one record is
      // that record behind its field tag and length, so the record's own
      // bytes need no decoding and re-encoding.
      bytes.clear();
      auto size = rec.ByteSizeLong();
      bytes.push_back(static_cast<char>(0x0a)); // field 1, length-delimited
      for (auto n = size;; n >>= 7) {
        if (n < 0x80) {
          bytes.push_back(static_cast<char>(n));
          break;
        }
        bytes.push_back(static_cast<char>((n & 0x7f) | 0x80));
      }
      rec.AppendToString(&bytes);
      staged_.put(rec.key(), bytes);
      continue;
    }
    records.clear();
    found->export_records(store.ids(), rec.key(), records);
    entry.Clear();
    for (auto& r : records)
      entry.mutable_records()->Add(std::move(r));
    staged_.put(rec.key(), entry.SerializeAsString());
  }
}

void store_persistence::reserve_clock(uint64_t high_water_us, uint64_t now_us) {
  auto reached = std::max(high_water_us, now_us);
  if (reached + reservation_us_ / 2 < reserved_us_)
    return;
  if (!syncer_) {
    auto next = reached + reservation_us_;
    // Synced on its own, not with the staged entries: the reservation must
    // be on disk before any stamp inside it leaves the node, and the
    // entries may wait for their group's write.
    auto start = steady::now();
    storage_->put_meta(entry_storage::meta_clock, std::to_string(next), true);
    sync_latency_.record(us_since(start));
    reserved_us_ = next;
    ++syncs_;
    ++reservations_;
    return;
  }
  if (reserving_us_ == 0 || reached + reservation_us_ / 2 >= reserving_us_) {
    // Half a reservation early: written now, synced by the syncer while
    // the clock runs through the rest of the one on disk. (Again when the
    // clock came near one still under way: a jump after an idle spell.)
    reserving_us_ = reached + reservation_us_;
    storage_->put_meta(entry_storage::meta_clock, std::to_string(reserving_us_),
                       false);
    reserving_ticket_ = syncer_->request();
    ++reservations_;
  }
  // The next stamp (at `reached`, or its counter) must stay below what is
  // on disk; only a sync slower than half a reservation makes it wait.
  if (reached >= reserved_us_)
    sync_now();
}

void store_persistence::synced(uint64_t ticket) {
  if (reserving_us_ != 0 && ticket >= reserving_ticket_) {
    reserved_us_ = reserving_us_;
    reserving_us_ = 0;
  }
}

void store_persistence::synced_here() noexcept {
  if (reserving_us_ != 0) {
    reserved_us_ = reserving_us_;
    reserving_us_ = 0;
  }
}

void store_persistence::stage_alive(uint64_t now_us) {
  staged_.put_meta(entry_storage::meta_last_alive, std::to_string(now_us));
}

void store_persistence::stage_erase(const std::vector<std::string>& keys,
                                    uint64_t kept) {
  for (const auto& key : keys)
    staged_.erase(key);
  if (trigger_.note_purge(keys.size(), kept))
    compaction_due_ = true;
}

void store_persistence::write() {
  if (staged_.empty())
    return;
  auto start = steady::now();
  storage_->write(staged_, false);
  write_latency_.record(us_since(start));
  bytes_ += staged_.bytes();
  ++writes_;
  staged_.clear();
  unsynced_ = true;
  if (compaction_due_) {
    compaction_due_ = false;
    storage_->compact_in_background();
    ++compactions_;
  }
}

void store_persistence::sync() {
  if (unsynced_)
    sync_now();
}

void store_persistence::sync_now() {
  auto start = steady::now();
  storage_->sync();
  sync_latency_.record(us_since(start));
  ++syncs_;
  unsynced_ = false;
  synced_here();
}

void store_persistence::start_syncer(wal_syncer::done_fn done) {
  syncer_ = std::make_unique<wal_syncer>(storage_, std::move(done));
}

uint64_t store_persistence::request_sync() {
  unsynced_ = false;
  if (syncer_)
    return syncer_->request();
  auto start = steady::now();
  storage_->sync();
  sync_latency_.record(us_since(start));
  ++syncs_;
  return ++inline_tickets_;
}

latency_histogram store_persistence::sync_latency() const {
  auto out = sync_latency_;
  if (syncer_)
    out.add(syncer_->latency());
  return out;
}

void store_persistence::write_stats(pb::StorageStats& out) {
  out.set_writes(writes_);
  out.set_syncs(syncs());
  out.set_bytes_written(bytes_);
  out.set_disk_bytes(storage_->approximate_bytes());
  write_latency_.write_to(*out.mutable_write_latency());
  sync_latency().write_to(*out.mutable_sync_latency());
  auto engine = storage_->stats();
  out.set_engine_wal_bytes(engine.wal_bytes);
  out.set_engine_flush_bytes(engine.flush_bytes);
  out.set_engine_compaction_bytes(engine.compaction_bytes);
  out.set_engine_stall_us(engine.stall_us);
  out.set_memtable_bytes(engine.memtable_bytes);
  out.set_block_cache_bytes(engine.block_cache_bytes);
  out.set_table_reader_bytes(engine.table_reader_bytes);
  out.set_file_bytes(engine.file_bytes);
  out.set_compactions(compactions_);
}

} // namespace syncmesh
