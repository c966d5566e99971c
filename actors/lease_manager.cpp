#include "actors/lease_manager.hpp"

#include "actors/dict_store.hpp"

#include <algorithm>
#include <chrono>
#include <optional>
#include <type_traits>

#include <caf/all.hpp>

#include "actors/atoms.hpp"
#include "actors/log.hpp"
#include "syncmesh/caf_types.hpp"

namespace syncmesh {

namespace {

using self_ptr = caf::stateful_actor<dict_store_state>*;

uint64_t to_us(std::chrono::milliseconds x) {
  return static_cast<uint64_t>(x.count()) * 1000;
}

caf::error refusal(const std::string& key, const local_decision& d) {
  if (d.missing)
    return make_error(errc::key_not_found, key);
  return make_error(errc::lease_held, key, to_hex(d.owner), d.lease_end_us);
}

/// Arms the single timer for `due_us` unless an earlier one is armed.
void arm_timer(self_ptr self, uint64_t due_us) {
  auto& st = self->state.lease;
  if (st.timer_due_us != 0 && st.timer_due_us <= due_us)
    return;
  auto now = st.table.now_us();
  auto delay = due_us > now ? due_us - now : 0;
  st.timer_due_us = due_us;
  self->delayed_send(self, std::chrono::microseconds(delay), tick_atom::value,
                     ++st.timer_generation);
}

/// Schedules the next purge when tombstones exist.
void schedule_purge(self_ptr self) {
  auto& st = self->state.lease;
  // Check a few times per horizon: a tombstone lives at most 1.25 horizons.
  auto period = std::max<uint64_t>(st.horizon_us / 4, 1000);
  arm_timer(self, st.table.now_us() + period);
}

/// Stamps the decided writes of one local operation and returns the batch
/// to apply.
pb::WriteBatch stamp_batch(self_ptr self, std::vector<pb::WriteRecord>&& recs,
                           std::vector<local_decision>&& decisions,
                           bool is_delete) {
  auto& st = self->state.lease;
  pb::WriteBatch batch;
  for (size_t i = 0; i < recs.size(); ++i) {
    auto v = st.table.stamp(std::move(decisions[i].draft), is_delete);
    to_proto(v, recs[i].mutable_version());
    batch.mutable_records()->Add(std::move(recs[i]));
  }
  st.stats.set_local_writes(st.stats.local_writes() + recs.size());
  if (is_delete)
    schedule_purge(self);
  return batch;
}

template <class Reply>
caf::result<Reply> refuse(self_ptr self, caf::error err) {
  // Only lease conflicts count: missing keys and wrong types are not news.
  if (code_of(err) == errc::lease_held)
    self->state.lease.stats.set_refused_writes(
      self->state.lease.stats.refused_writes() + 1);
  return err;
}

template <class Reply>
caf::result<Reply> write_one(self_ptr self, pb::WriteRecord rec,
                             bool is_delete) {
  auto d = self->state.lease.table.decide(rec.key(), is_delete);
  if (!d.allowed)
    return refuse<Reply>(self, refusal(rec.key(), d));
  std::vector<pb::WriteRecord> recs;
  recs.push_back(std::move(rec));
  std::vector<local_decision> ds;
  ds.push_back(std::move(d));
  auto batch = stamp_batch(self, std::move(recs), std::move(ds), is_delete);
  if constexpr (std::is_same_v<Reply, pb::DeleteReply>)
    return apply_erase_batch(self, batch);
  else
    return apply_local_batch(self, batch);
}

/// Returns the remote writes to apply now (the clock has seen their
/// stamps); writes stamped too far in the future are held.
pb::WriteBatch accept_remote(self_ptr self, const std::string& origin,
                             pb::WriteBatch& batch) {
  auto& st = self->state.lease;
  pb::WriteBatch accepted;
  bool tombstones = false;
  for (auto& rec : *batch.mutable_records()) {
    version v;
    from_proto(rec.version(), v);
    if (!st.table.acceptable(v.stamp)) {
      if (st.held.size() >= st.max_held) {
        st.stats.set_dropped_held(st.stats.dropped_held() + 1);
        continue;
      }
      st.stats.set_held_records(st.stats.held_records() + 1);
      st.held.push_back(held_write{origin, std::move(rec)});
      arm_timer(self, v.stamp.wall_us - st.table.clock().max_skew_us());
      continue;
    }
    st.table.observe_stamp(v.stamp);
    tombstones |= rec.has_tombstone();
    accepted.mutable_records()->Add(std::move(rec));
  }
  st.stats.set_remote_records(st.stats.remote_records()
                              + accepted.records_size());
  if (tombstones)
    schedule_purge(self);
  return accepted;
}

void apply_remote(self_ptr self, std::string origin, pb::WriteBatch& batch) {
  auto accepted = accept_remote(self, origin, batch);
  if (accepted.records_size() > 0)
    apply_remote_batch(self, std::move(origin), accepted);
}

/// py2p mode: decides each remote write with py2p's rule in arrival order,
/// as py2p/js2p peers do, and gives an accepted one a version that beats the
/// key's newest, so the store applies it. Refused writes are dropped
/// silently, as py2p does.
void apply_py2p(self_ptr self, std::string origin, pb::WriteBatch& batch,
                bool initial_sync) {
  auto& st = self->state.lease;
  auto& table = st.table;
  auto leasing = table.settings().leasing;
  auto now_s = table.now_us() / 1'000'000;
  uint64_t accepted = 0;
  for (auto& rec : *batch.mutable_records()) {
    version provisional;
    if (!from_proto(rec.version(), provisional).empty())
      continue;
    const auto* head = table.find(rec.key());
    bool live = head != nullptr && head->live();
    bool is_delta = rec.has_fields();
    // Initial sync fills gaps only (py2p: "if the key has a truthy value").
    // syncmesh treats any present value as there; see the py2p-mode notes.
    bool ignored = (initial_sync && live)
                   // js2p ignores a delta on a non-map value; py2p drops
                   // the link. Ignoring keeps every link up.
                   || (is_delta && live && !head->is_map())
                   // py2p raises KeyError on deleting an absent key.
                   || (rec.has_tombstone() && !live);
    if (ignored
        || !py2p_accepts(head, provisional.claimer,
                         provisional.stamp.wall_us / 1'000'000, is_delta,
                         leasing, now_s)) {
      st.stats.set_refused_writes(st.stats.refused_writes() + 1);
      continue;
    }
    auto v = py2p_successor(head, provisional.claimer,
                            provisional.stamp.wall_us, leasing);
    if (rec.has_tombstone())
      v.lease_end_us = 0;
    to_proto(v, rec.mutable_version());
    table.observe_stamp(v.stamp);
    // Applied at once: the next record of this batch is decided on it.
    pb::WriteBatch one;
    one.mutable_records()->Add(std::move(rec));
    apply_remote_batch(self, origin, one);
    ++accepted;
  }
  st.stats.set_remote_records(st.stats.remote_records() + accepted);
}

/// py2p mode refuses deletes unless configured: a nil store crashes js2p.
std::optional<caf::error> py2p_delete_refusal(self_ptr self) {
  if (!self->state.lease.table.settings().py2p
      || self->state.lease.py2p_allow_delete)
    return std::nullopt;
  return make_error(errc::invalid_config,
                    std::string{"py2p mode refuses deletes: a delete is a nil "
                                "store, which makes js2p 0.7.870 close every "
                                "link on its path; set py2p_allow_delete "
                                "(--py2p-allow-delete) when no js2p node is in "
                                "the mesh"});
}

void on_tick(self_ptr self) {
  auto& st = self->state.lease;
  st.timer_due_us = 0;
  // Release held writes whose time has come, in arrival order.
  std::deque<held_write> still_held;
  while (!st.held.empty()) {
    auto h = std::move(st.held.front());
    st.held.pop_front();
    version v;
    from_proto(h.record.version(), v);
    if (!st.table.acceptable(v.stamp)) {
      still_held.push_back(std::move(h));
      continue;
    }
    pb::WriteBatch one;
    one.mutable_records()->Add(std::move(h.record));
    apply_remote(self, std::move(h.origin), one);
  }
  st.held = std::move(still_held);
  auto purged = st.table.purge_tombstones(st.horizon_us);
  st.stats.set_purged(st.stats.purged() + purged.size());
  uint64_t next_due = 0;
  for (const auto& h : st.held) {
    auto due
      = h.record.version().stamp().wall_us() - st.table.clock().max_skew_us();
    next_due = next_due == 0 ? due : std::min(next_due, due);
  }
  if (next_due != 0)
    arm_timer(self, next_due);
  if (st.table.tombstone_count() > 0)
    schedule_purge(self);
}

} // namespace

void lease_manager_state::init(const config& cfg, const node_id& self) {
  table = lease_table(self, cfg.clock ? cfg.clock : system_wall_clock(),
                      lease_settings{cfg.leasing, to_us(cfg.lease_duration),
                                     to_us(cfg.lease_margin),
                                     cfg.wire == wire_kind::py2p,
                                     to_us(cfg.max_lease_duration)},
                      to_us(cfg.max_clock_skew));
  max_held = cfg.max_held_writes;
  table.reserve(cfg.expected_keys);
  horizon_us = to_us(cfg.tombstone_horizon);
  table.raise_clock_floor(cfg.hlc_floor_us);
  limits = write_limits{cfg.max_key_size, cfg.max_value_size,
                        static_cast<int>(cfg.max_value_depth)};
  py2p_allow_delete = cfg.py2p_allow_delete;
}

caf::message_handler lease_manager_handlers(self_ptr self) {
  return {
    [=](pb::SetRequest& req) -> caf::result<pb::WriteAck> {
      pb::WriteRecord rec;
      rec.set_key(std::move(*req.mutable_key()));
      rec.mutable_value()->Swap(req.mutable_value());
      return write_one<pb::WriteAck>(self, std::move(rec), false);
    },
    [=](pb::DeleteRequest& req) -> caf::result<pb::DeleteReply> {
      if (auto err = py2p_delete_refusal(self))
        return std::move(*err);
      pb::WriteRecord rec;
      rec.set_key(std::move(*req.mutable_key()));
      rec.mutable_tombstone();
      return write_one<pb::DeleteReply>(self, std::move(rec), true);
    },
    [=](pb::PopItemRequest&) -> caf::result<pb::DeleteReply> {
      if (auto err = py2p_delete_refusal(self))
        return std::move(*err);
      auto key = self->state.lease.table.deletable_key();
      if (!key)
        return refuse<pb::DeleteReply>(
          self, make_error(errc::key_not_found,
                           std::string{"no key this node may delete"}));
      pb::WriteRecord rec;
      rec.set_key(std::move(*key));
      rec.mutable_tombstone();
      return write_one<pb::DeleteReply>(self, std::move(rec), true);
    },
    [=](pb::DeltaRequest& req) -> caf::result<pb::WriteAck> {
      // A lease held elsewhere refuses before the value's type matters.
      auto d = self->state.lease.table.decide(req.key(), false);
      if (!d.allowed)
        return refuse<pb::WriteAck>(self, refusal(req.key(), d));
      const auto* head = self->state.lease.table.find(req.key());
      if (head != nullptr && head->live() && !head->is_map())
        return refuse<pb::WriteAck>(self,
                                    make_error(errc::wrong_type, req.key()));
      pb::WriteRecord rec;
      rec.set_key(std::move(*req.mutable_key()));
      rec.mutable_fields()->mutable_entries()->Swap(
        req.mutable_fields()->mutable_entries());
      return write_one<pb::WriteAck>(self, std::move(rec), false);
    },
    [=](pb::UpdateRequest& req) -> caf::result<pb::WriteAck> {
      // All leases first: one refusal refuses the whole batch.
      std::vector<local_decision> ds;
      ds.reserve(static_cast<size_t>(req.items_size()));
      for (const auto& item : req.items()) {
        auto d = self->state.lease.table.decide(item.key(), false);
        if (!d.allowed)
          return refuse<pb::WriteAck>(self, refusal(item.key(), d));
        ds.push_back(std::move(d));
      }
      std::vector<pb::WriteRecord> recs(ds.size());
      for (size_t i = 0; i < ds.size(); ++i) {
        auto& item = *req.mutable_items(static_cast<int>(i));
        recs[i].set_key(std::move(*item.mutable_key()));
        recs[i].mutable_value()->Swap(item.mutable_value());
      }
      auto batch = stamp_batch(self, std::move(recs), std::move(ds), false);
      return apply_local_batch(self, batch);
    },
    [=](remote_atom, std::string& origin, pb::WriteBatch& batch) {
      apply_remote(self, std::move(origin), batch);
      // The reply returns the sending link's ingress credit.
      return true;
    },
    [=](py2p_write_atom, std::string& origin, pb::WriteBatch& batch,
        bool initial_sync) {
      apply_py2p(self, std::move(origin), batch, initial_sync);
    },
    [=](ae_entries_atom, std::string& origin,
        pb::WriteBatch& batch) -> caf::result<bool> {
      // Entries come straight from a peer link: check them like any
      // remote write before they touch the store. A record breaking a limit
      // is skipped and counted alone; the rest of the window is applied.
      auto skipped = remove_invalid_records(batch, self->state.lease.limits);
      if (skipped.count > 0) {
        auto& stats = self->state.stats;
        stats.set_ae_records_skipped(stats.ae_records_skipped()
                                     + skipped.count);
        if (worth_logging(stats.ae_records_skipped(), skipped.count))
          log_line(log_level::warning, self->state.lease.table.self(),
                   "skipped " + std::to_string(skipped.count)
                     + " anti-entropy entr(ies) from " + origin.substr(0, 12)
                     + " (" + skipped.first_error + "); "
                     + std::to_string(stats.ae_records_skipped())
                     + " skipped in all");
      }
      auto accepted = accept_remote(self, origin, batch);
      auto repaired = apply_remote_batch(self, std::move(origin), accepted);
      auto& stats = self->state.stats;
      stats.set_ae_entries_repaired(stats.ae_entries_repaired() + repaired);
      return true;
    },
    [=](tick_atom, uint64_t generation) {
      if (generation == self->state.lease.timer_generation)
        on_tick(self);
    },
    [=](stats_atom, lease_atom) {
      auto stats = self->state.lease.stats;
      stats.set_tombstones(self->state.lease.table.tombstone_count());
      stats.set_hlc_wall_us(
        self->state.lease.table.clock().high_water().wall_us);
      return stats;
    },
  };
}

} // namespace syncmesh
