#include "actors/lease_state.hpp"

#include <algorithm>
#include <utility>

#include "syncmesh/pb/entry.pb.h"

namespace syncmesh {

local_decision decide_local_write(const entry_head* head,
                                  const node_id_table& ids,
                                  const raw_node_id& self, uint64_t now_us,
                                  const lease_settings& cfg, bool is_delete) {
  local_decision result;
  bool live = head != nullptr && head->live();
  if (is_delete && !live) {
    result.missing = true;
    return result;
  }
  if (!cfg.leasing) {
    // Newest write wins: epoch 0, no claim, ordered by the stamp alone.
    result.allowed = true;
    return result;
  }
  if (head != nullptr && head->packed_newest().epoch >= max_epoch) {
    // No epoch left above it (only reachable 2^40 claims after a forged
    // epoch near the limit): refuse rather than make an invalid version.
    result.owner = head->owner(ids);
    result.lease_end_us = head->packed_newest().lease_end_us;
    return result;
  }
  auto new_claim = [&] {
    result.allowed = true;
    // A claim's epoch is its claim time, or the previous epoch + 1 when that
    // is higher: a later claim beats every earlier one, so a node that never
    // saw a key (fresh, or cut off since before it was written) does not
    // lose to a claim whose lease had long ended, or to a purged tombstone's
    // older copies. Nodes that know a lease refuse to claim before it ends.
    auto next = head == nullptr ? 0 : head->packed_newest().epoch + 1;
    result.draft.epoch = std::max(next, now_us);
    result.draft.claim_us = now_us;
    result.draft.claimer = self;
  };
  if (!live) {
    // Unknown key or tombstone: a tombstone holds no lease.
    new_claim();
    return result;
  }
  const auto newest = head->newest(ids);
  auto end = newest.lease_end_us;
  if (newest.claimer == self) {
    if (now_us + cfg.margin_us < end) {
      result.allowed = true;
      result.draft.epoch = newest.epoch;
      result.draft.claim_us = newest.claim_us;
      result.draft.claimer = self;
    } else {
      // Too close to the end to renew safely: claim the next epoch, which
      // beats the old one wherever it arrives.
      new_claim();
    }
    return result;
  }
  if (now_us >= end + cfg.margin_us) {
    new_claim();
    return result;
  }
  result.owner = newest.claimer.empty() ? newest.stamp.node : newest.claimer;
  result.lease_end_us = end;
  return result;
}

// -- py2p mode ----------------------------------------------------------------

std::optional<py2p_meta> py2p_meta_of(const entry_head* head,
                                      const node_id_table& ids) {
  if (head == nullptr || !head->live())
    return std::nullopt;
  return py2p_meta{head->owner(ids), head->packed_newest().wall_us / 1'000'000};
}

bool py2p_accepts(const entry_head* head, const node_id_table& ids,
                  const raw_node_id& owner, uint64_t time_s, bool is_delta,
                  bool leasing, uint64_t now_s) {
  auto meta = py2p_meta_of(head, ids);
  if (!meta) // (1)
    return true;
  if (meta->owner == owner) // (2)
    return true;
  if (is_delta && !leasing) // (3)
    return true;
  if (meta->timestamp_s + 3600 < now_s) // (4)
    return true;
  if (meta->timestamp_s == time_s && meta->owner > owner) // (5)
    return true;
  return meta->timestamp_s < time_s && !leasing; // (6)
}

version py2p_successor(const entry_head* head, const node_id_table& ids,
                       const raw_node_id& owner, uint64_t time_us,
                       bool leasing) {
  version v;
  v.claimer = owner;
  v.stamp.node = owner;
  v.stamp.wall_us = time_us;
  v.claim_us = time_us;
  if (head != nullptr && (head->has_base() || head->has_fields())) {
    const auto cur = head->newest(ids);
    if (head->live() && cur.claimer == owner) {
      // Same owner: py2p accepts any of its writes (rule 2), even an older
      // one, so stay in its epoch and move the stamp forward regardless.
      v.epoch = cur.epoch;
      v.claim_us = cur.claim_us;
      if (compare(v.stamp, cur.stamp) <= 0) {
        v.stamp = cur.stamp;
        v.stamp.node = owner;
        if (v.stamp.counter == UINT32_MAX) {
          // The counter would wrap (and the stamp go back): next µs.
          ++v.stamp.wall_us;
          v.stamp.counter = 0;
        } else {
          ++v.stamp.counter;
        }
      }
    } else {
      // A new owner (or a write after a delete): the next epoch wins
      // whatever its times say.
      v.epoch = std::min(cur.epoch + 1, max_epoch);
    }
  }
  v.lease_end_us = leasing ? v.stamp.wall_us + 3'600'000'000ull : 0;
  return v;
}

local_decision py2p_decide(const entry_head* head, const node_id_table& ids,
                           const raw_node_id& self, uint64_t now_us,
                           bool leasing, bool is_delete) {
  local_decision result;
  bool live = head != nullptr && head->live();
  if (is_delete && !live) {
    result.missing = true;
    return result;
  }
  if (!py2p_accepts(head, ids, self, now_us / 1'000'000, false, leasing,
                    now_us / 1'000'000)) {
    result.owner = head->owner(ids);
    result.lease_end_us
      = (head->packed_newest().wall_us / 1'000'000 + 3600) * 1'000'000;
    return result;
  }
  result.allowed = true;
  result.draft = py2p_successor(head, ids, self, now_us, leasing);
  return result;
}

std::optional<lease_loss> detect_takeover(const lease_change& change,
                                          const raw_node_id& self) {
  if (change.new_claimer == self)
    return std::nullopt;
  bool claimed_after_end = change.new_claim_us >= change.old_lease_end_us;
  bool arrived_after_end
    = change.observed_us == 0 || change.observed_us >= change.old_lease_end_us;
  if (claimed_after_end && arrived_after_end)
    return std::nullopt;
  return lease_loss{change.key, change.new_claimer, change.old_lease_end_us};
}

lease_rules::lease_rules(raw_node_id self, wall_clock wall, lease_settings cfg,
                         uint64_t max_skew_us)
    : clock_(std::move(self), std::move(wall), max_skew_us), cfg_(cfg) {}

local_decision lease_rules::decide(const store_state& store,
                                   std::string_view key, bool is_delete) const {
  if (cfg_.py2p)
    return py2p_decide(find(store, key), store.ids(), self(), now_us(),
                       cfg_.leasing, is_delete);
  return decide_local_write(find(store, key), store.ids(), self(), now_us(),
                            cfg_, is_delete);
}

version lease_rules::stamp(version draft, bool is_delete) {
  if (cfg_.py2p) {
    // The draft already beats the key's newest version; a fresh stamp keeps
    // local stamps unique and increasing as long as it does not fall behind.
    auto fresh = clock_.next();
    if (compare(fresh, draft.stamp) > 0)
      draft.stamp = fresh;
    draft.lease_end_us
      = cfg_.leasing && !is_delete ? draft.stamp.wall_us + 3'600'000'000ull : 0;
    draft.lease_end_us = clamped_lease_end(draft, cfg_.max_duration_us);
    return draft;
  }
  draft.stamp = clock_.next();
  if (cfg_.leasing && !is_delete)
    draft.lease_end_us = draft.stamp.wall_us + cfg_.duration_us;
  else
    draft.lease_end_us = 0;
  draft.lease_end_us = clamped_lease_end(draft, cfg_.max_duration_us);
  return draft;
}

lease_rules::recorded lease_rules::record(store_state& store,
                                          const pb::WriteRecord& rec,
                                          const version& given,
                                          bool keep_old_value) const {
  recorded result;
  // Every replica clamps alike, so their entries (and digests) agree. A
  // copy only when the clamp changes something: the common case stays free.
  std::optional<version> clamped;
  if (clamped_lease_end(given, cfg_.max_duration_us) != given.lease_end_us) {
    clamped = given;
    clamped->lease_end_us = clamped_lease_end(given, cfg_.max_duration_us);
  }
  const version& v = clamped ? *clamped : given;
  result.clamped = clamped.has_value();
  // Claimers are compared by bytes in the store's table. A ref of our own
  // ID would save the compare, but would have to be interned in that table
  // and held as long as the rules live (and could not be shared by rules
  // used with several stores); a compare of two short strings costs less
  // than the hash lookup interning it takes, and only keys with a live
  // lease get here.
  const auto& ids = store.ids();
  const auto* before = find(store, rec.key());
  bool held = cfg_.leasing && before != nullptr && before->live()
              && before->packed_newest().claimer != 0
              && ids.bytes(before->packed_newest().claimer) == self();
  auto old_end = held ? before->packed_newest().lease_end_us : 0;
  result.applied = store.apply(rec, v, keep_old_value, result.error);
  if (!held || !result.applied.changed)
    return result;
  const auto& now = find(store, rec.key())->packed_newest();
  const auto& new_claimer = ids.bytes(now.claimer);
  if (new_claimer == self())
    return result; // our own renewal or a write of ours: no news
  result.change
    = lease_change{rec.key(), old_end, new_claimer, now.claim_us, now_us()};
  return result;
}

std::vector<std::string>
lease_rules::purge_tombstones(store_state& store, uint64_t horizon_us) const {
  std::vector<std::string> result;
  auto now = now_us();
  if (now < horizon_us)
    return result;
  auto cutoff = now - horizon_us;
  for (const auto& [key, entry] : store.entries())
    if (!entry.live() && entry.head().packed_newest().wall_us < cutoff)
      result.emplace_back(key);
  // Purging moves records, so it waits until the scan is done.
  store.purge(result);
  return result;
}

std::optional<std::string>
lease_rules::deletable_key(const store_state& store) const {
  for (const auto& [key, entry] : store.entries()) {
    if (!entry.live())
      continue;
    const auto* head = &entry.head();
    auto d
      = cfg_.py2p
          ? py2p_decide(head, store.ids(), self(), now_us(), cfg_.leasing, true)
          : decide_local_write(head, store.ids(), self(), now_us(), cfg_, true);
    if (d.allowed)
      return std::string{key};
  }
  return std::nullopt;
}

const entry_head* lease_rules::find(const store_state& store,
                                    std::string_view key) {
  const auto* entry = store.find(key);
  return entry == nullptr ? nullptr : &entry->head();
}

lease_table::recorded lease_table::record(const pb::WriteRecord& rec,
                                          const version& v,
                                          bool keep_old_value) {
  auto r = rules_.record(store_, rec, v, keep_old_value);
  recorded result;
  result.applied = std::move(r.applied);
  result.error = std::move(r.error);
  result.clamped = r.clamped;
  if (r.change)
    result.loss = detect_takeover(*r.change, rules_.self());
  return result;
}

} // namespace syncmesh
