#include "actors/lease_manager.hpp"

#include <algorithm>
#include <chrono>

#include <caf/all.hpp>

#include "actors/atoms.hpp"
#include "syncmesh/caf_types.hpp"

namespace syncmesh {

namespace {

using self_ptr = lease_manager_actor::stateful_pointer<lease_manager_state>;

uint64_t to_us(std::chrono::milliseconds x) {
  return static_cast<uint64_t>(x.count()) * 1000;
}

uint64_t now_us(self_ptr self) {
  return self->state.clock();
}

/// When a held write may be applied: once its stamp is within the skew
/// bound of our clock (hybrid_clock::acceptable).
uint64_t due_us(const lease_manager_state& st, const pb::WriteRecord& rec) {
  auto wall = rec.version().stamp().wall_us();
  return wall > st.max_skew_us ? wall - st.max_skew_us : 0;
}

/// Arms the single timer for `due` unless an earlier one is armed.
void arm_timer(self_ptr self, uint64_t due) {
  auto& st = self->state;
  if (st.timer_due_us != 0 && st.timer_due_us <= due)
    return;
  auto now = now_us(self);
  auto delay = due > now ? due - now : 0;
  st.timer_due_us = due;
  self->delayed_send(caf::actor_cast<lease_manager_actor>(self),
                     std::chrono::microseconds(delay), tick_atom::value,
                     ++st.timer_generation);
}

/// Schedules the next purge (a few times per horizon: a tombstone lives at
/// most 1.25 horizons).
void schedule_purge(self_ptr self) {
  auto& st = self->state;
  if (st.purge_due_us != 0)
    return;
  st.purge_due_us = now_us(self) + std::max<uint64_t>(st.horizon_us / 4, 1000);
  arm_timer(self, st.purge_due_us);
}

void purge(self_ptr self) {
  auto& st = self->state;
  st.purge_due_us = 0;
  self->request(st.store, caf::infinite, purge_atom::value, st.horizon_us)
    .then([=](uint64_t purged, uint64_t remaining) {
      auto& st = self->state;
      st.stats.set_purged(st.stats.purged() + purged);
      if (remaining > 0)
        schedule_purge(self);
    });
}

/// Holds remote writes until their stamps are within the skew bound.
void hold(self_ptr self, std::string& origin, pb::WriteBatch& batch) {
  auto& st = self->state;
  for (auto& rec : *batch.mutable_records()) {
    if (st.held.size() >= st.max_held) {
      st.stats.set_dropped_held(st.stats.dropped_held() + 1);
      continue;
    }
    st.stats.set_held_records(st.stats.held_records() + 1);
    auto due = due_us(st, rec);
    st.held.push_back(held_write{origin, std::move(rec)});
    arm_timer(self, due);
  }
}

void on_tick(self_ptr self) {
  auto& st = self->state;
  st.timer_due_us = 0;
  auto now = now_us(self);
  // Release held writes whose time has come, in arrival order.
  std::deque<held_write> still_held;
  uint64_t next_due = 0;
  while (!st.held.empty()) {
    auto h = std::move(st.held.front());
    st.held.pop_front();
    auto due = due_us(st, h.record);
    if (due > now) {
      next_due = next_due == 0 ? due : std::min(next_due, due);
      still_held.push_back(std::move(h));
      continue;
    }
    pb::WriteBatch one;
    one.mutable_records()->Add(std::move(h.record));
    // A request only because the store answers every remote write (the
    // answer returns a link's credit); nothing waits for it here.
    self
      ->request(st.store, caf::infinite, remote_atom::value,
                std::move(h.origin), std::move(one))
      .then([](bool) {}, [](caf::error&) {});
  }
  st.held = std::move(still_held);
  if (st.purge_due_us != 0 && st.purge_due_us <= now)
    purge(self);
  if (st.purge_due_us != 0)
    next_due
      = next_due == 0 ? st.purge_due_us : std::min(next_due, st.purge_due_us);
  if (next_due != 0)
    arm_timer(self, next_due);
}

/// Passes the store's events on to the facade, each `lease_lost` right
/// before the event of the write that took the lease over.
void on_notes(self_ptr self, store_notes& notes) {
  auto& st = self->state;
  for (auto& note : notes) {
    if (note.lease_changed) {
      if (auto loss = detect_takeover(note.lease, st.self_id)) {
        st.stats.set_leases_lost(st.stats.leases_lost() + 1);
        if (st.events) {
          pb::Event ev;
          auto* lost = ev.mutable_lease_lost();
          lost->set_key(std::move(loss->key));
          lost->set_new_owner(std::move(loss->new_owner));
          lost->set_old_lease_end_us(loss->old_lease_end_us);
          self->send(st.events, std::move(ev));
        }
      }
    }
    if (st.events && note.event.kind_case() != pb::Event::KIND_NOT_SET)
      self->send(st.events, std::move(note.event));
  }
}

} // namespace

void lease_manager_state::init(const config& cfg, const raw_node_id& self) {
  self_id = self;
  clock = cfg.clock ? cfg.clock : system_wall_clock();
  max_skew_us = to_us(cfg.effective_max_clock_skew());
  max_held = cfg.max_held_writes;
  horizon_us = to_us(cfg.tombstone_horizon);
}

lease_manager_actor::behavior_type
lease_manager_behavior(self_ptr self, const config& cfg,
                       const raw_node_id& id) {
  self->state.init(cfg, id);
  return {
    [=](wire_atom, dict_store_actor store, facade_actor events) {
      self->state.store = std::move(store);
      self->state.events = std::move(events);
    },
    [=](notes_atom, store_notes& notes) { on_notes(self, notes); },
    [=](hold_atom, std::string& origin, pb::WriteBatch& batch) {
      hold(self, origin, batch);
    },
    [=](tombstones_atom) { schedule_purge(self); },
    [=](tick_atom, uint64_t generation) {
      if (generation == self->state.timer_generation)
        on_tick(self);
    },
    [=](stats_atom, lease_atom) -> caf::result<pb::LeaseStats> {
      auto rp = self->make_response_promise<pb::LeaseStats>();
      self
        ->request(self->state.store, caf::infinite, stats_atom::value,
                  lease_atom::value)
        .then(
          [=](pb::LeaseStats& stats) mutable {
            const auto& own = self->state.stats;
            stats.set_held_records(own.held_records());
            stats.set_dropped_held(own.dropped_held());
            stats.set_leases_lost(own.leases_lost());
            stats.set_purged(own.purged());
            rp.deliver(std::move(stats));
          },
          [=](caf::error& err) mutable { rp.deliver(std::move(err)); });
      return rp;
    },
  };
}

} // namespace syncmesh
