#include "actors/lease_state.hpp"

#include "syncmesh/pb/entry.pb.h"

namespace syncmesh {

local_decision decide_local_write(const entry_head* head, const node_id& self,
                                  uint64_t now_us, const lease_settings& cfg,
                                  bool is_delete) {
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
  auto new_claim = [&] {
    result.allowed = true;
    result.draft.epoch = head == nullptr ? 0 : head->newest().epoch + 1;
    result.draft.claim_us = now_us;
    result.draft.claimer = self;
  };
  if (!live) {
    // Unknown key or tombstone: a tombstone holds no lease.
    new_claim();
    return result;
  }
  const auto& newest = head->newest();
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

lease_table::lease_table(node_id self, wall_clock wall, lease_settings cfg,
                         uint64_t max_skew_us)
    : clock_(std::move(self), std::move(wall), max_skew_us), cfg_(cfg) {}

local_decision lease_table::decide(const std::string& key,
                                   bool is_delete) const {
  return decide_local_write(find(key), self(), now_us(), cfg_, is_delete);
}

version lease_table::stamp(version draft, bool is_delete) {
  draft.stamp = clock_.next();
  if (cfg_.leasing && !is_delete)
    draft.lease_end_us = draft.stamp.wall_us + cfg_.duration_us;
  else
    draft.lease_end_us = 0;
  return draft;
}

std::optional<lease_loss> lease_table::observe(const pb::WriteRecord& rec,
                                               const version& v) {
  auto& head = heads_[rec.key()];
  bool held = cfg_.leasing && head.live() && head.newest().claimer == self();
  auto old_end = held ? head.newest().lease_end_us : 0;
  switch (rec.op_case()) {
    case pb::WriteRecord::kValue:
      if (head.accepts_base(v))
        head.set_base(v, false, rec.value().kind_case() == pb::Value::kMap);
      break;
    case pb::WriteRecord::kTombstone:
      if (head.accepts_base(v))
        head.set_base(v, true, false);
      break;
    case pb::WriteRecord::kFields:
      // The store ignores a delta without fields; so must the lease view.
      if (rec.fields().entries_size() > 0 && head.field_visible(v))
        head.note_field(v);
      break;
    default:
      break;
  }
  if (!head.has_base() && !head.has_fields()) {
    heads_.erase(rec.key());
    return std::nullopt;
  }
  const auto& now = head.newest();
  // A takeover: another claim now wins, and it was made before our lease
  // ended (a claim after the end is a normal expiry, not a loss).
  if (held && now.claimer != self() && now.claim_us < old_end)
    return lease_loss{rec.key(), now.claimer, old_end};
  return std::nullopt;
}

std::vector<std::string> lease_table::purge_tombstones(uint64_t horizon_us) {
  std::vector<std::string> result;
  auto now = now_us();
  if (now < horizon_us)
    return result;
  auto cutoff = now - horizon_us;
  for (auto i = heads_.begin(); i != heads_.end();) {
    if (!i->second.live() && i->second.newest().stamp.wall_us < cutoff) {
      result.push_back(i->first);
      i = heads_.erase(i);
    } else {
      ++i;
    }
  }
  return result;
}

size_t lease_table::tombstone_count() const noexcept {
  size_t result = 0;
  for (const auto& kv : heads_)
    if (!kv.second.live())
      ++result;
  return result;
}

const std::string* lease_table::deletable_key() const {
  for (const auto& [key, head] : heads_) {
    if (!head.live())
      continue;
    auto d = decide_local_write(&head, self(), now_us(), cfg_, true);
    if (d.allowed)
      return &key;
  }
  return nullptr;
}

const entry_head* lease_table::find(const std::string& key) const {
  auto i = heads_.find(key);
  return i == heads_.end() ? nullptr : &i->second;
}

} // namespace syncmesh
