#include "actors/dict_store.hpp"

#include <caf/all.hpp>

#include <limits>

#include "actors/atoms.hpp"
#include "actors/log.hpp"
#include "messages/frame_codec.hpp"
#include "messages/value_proto.hpp"
#include "syncmesh/caf_types.hpp"

namespace syncmesh {

namespace {

using self_ptr = caf::stateful_actor<dict_store_state>*;

void publish(self_ptr self, const std::string& key,
             const store_state::outcome& out) {
  auto& st = self->state;
  if (!st.publish_events || !st.events || (!out.was_live && !out.now_live))
    return;
  const auto* entry = st.store.find(key);
  pb::Event ev;
  if (out.now_live) {
    auto* update = ev.mutable_update();
    update->set_key(key);
    to_proto(entry->read(), update->mutable_value());
    to_proto(entry->head(), update->mutable_meta());
  } else {
    auto* deleted = ev.mutable_deleted();
    deleted->set_key(key);
    if (entry != nullptr)
      to_proto(entry->head(), deleted->mutable_meta());
  }
  self->send(st.events, std::move(ev));
}

/// Applies a batch; returns the records that changed the store and the
/// outcome of the last record. Stops at the first malformed record.
struct batch_result {
  pb::WriteBatch changed;
  store_state::outcome last;
  std::string error;
};

/// Upper bounds (seconds) of the propagation delay histogram.
constexpr double delay_bounds[]
  = {0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5};

void record_delay(self_ptr self, const pb::WriteRecord& rec) {
  auto& st = self->state.stats;
  auto now = self->state.clock();
  auto stamp = rec.version().stamp().wall_us();
  double seconds = now > stamp ? static_cast<double>(now - stamp) / 1e6 : 0;
  if (st.delay_counts_size() == 0) {
    for (auto bound : delay_bounds) {
      st.add_delay_bounds(bound);
      st.add_delay_counts(0);
    }
    st.add_delay_counts(0); // above the last bound
  }
  int i = 0;
  while (i < st.delay_bounds_size() && seconds > st.delay_bounds(i))
    ++i;
  st.set_delay_counts(i, st.delay_counts(i) + 1);
  st.set_delay_sum(st.delay_sum() + seconds);
  st.set_delay_count(st.delay_count() + 1);
}

/// Counts a lease this node lost and tells the facade.
void publish_loss(self_ptr self, const lease_loss& loss) {
  auto& stats = self->state.lease.stats;
  stats.set_leases_lost(stats.leases_lost() + 1);
  if (!self->state.events)
    return;
  pb::Event ev;
  auto* lost = ev.mutable_lease_lost();
  lost->set_key(loss.key);
  lost->set_new_owner(loss.new_owner);
  lost->set_old_lease_end_us(loss.old_lease_end_us);
  self->send(self->state.events, std::move(ev));
}

batch_result apply_batch(self_ptr self, pb::WriteBatch& batch,
                         bool keep_old_value, bool remote = false) {
  batch_result result;
  auto& stats = self->state.stats;
  for (auto& rec : *batch.mutable_records()) {
    version v;
    if (result.error = from_proto(rec.version(), v); !result.error.empty())
      break;
    auto recorded = self->state.lease.table.record(rec, v, keep_old_value);
    if (result.error = std::move(recorded.error); !result.error.empty())
      break;
    if (recorded.loss)
      publish_loss(self, *recorded.loss);
    auto& out = recorded.applied;
    if (remote) {
      if (out.changed) {
        stats.set_remote_applied(stats.remote_applied() + 1);
        record_delay(self, rec);
      } else {
        stats.set_remote_ignored(stats.remote_ignored() + 1);
      }
    } else if (out.changed) {
      stats.set_local_applied(stats.local_applied() + 1);
    }
    if (out.changed) {
      publish(self, rec.key(), out);
      result.changed.mutable_records()->Add()->Swap(&rec);
    }
    result.last = std::move(out);
  }
  return result;
}

void flood(self_ptr self, std::string origin, pb::WriteBatch&& changed) {
  if (changed.records_size() > 0 && self->state.router)
    self->send(self->state.router, changed_atom::value, std::move(origin),
               std::move(changed));
}

} // namespace

caf::result<pb::WriteAck> apply_local_batch(self_ptr self,
                                            pb::WriteBatch& batch) {
  auto res = apply_batch(self, batch, false);
  pb::WriteAck ack;
  ack.set_applied(static_cast<uint32_t>(res.changed.records_size()));
  if (res.changed.records_size() > 0) {
    const auto& key = res.changed.records().rbegin()->key();
    if (const auto* entry = self->state.store.find(key))
      to_proto(entry->head(), ack.mutable_meta());
  }
  flood(self, std::string{}, std::move(res.changed));
  if (!res.error.empty())
    return make_error(errc::malformed, std::move(res.error));
  return ack;
}

caf::result<pb::DeleteReply> apply_erase_batch(self_ptr self,
                                               pb::WriteBatch& batch) {
  auto res = apply_batch(self, batch, true);
  pb::DeleteReply reply;
  if (res.changed.records_size() > 0) {
    const auto& key = res.changed.records(0).key();
    reply.set_key(key);
    to_proto(res.last.old_value, reply.mutable_old_value());
    if (const auto* entry = self->state.store.find(key))
      to_proto(entry->head(), reply.mutable_meta());
  }
  flood(self, std::string{}, std::move(res.changed));
  if (!res.error.empty())
    return make_error(errc::malformed, std::move(res.error));
  return reply;
}

size_t apply_remote_batch(self_ptr self, std::string origin,
                          pb::WriteBatch& batch) {
  auto res = apply_batch(self, batch, false, true);
  auto changed = static_cast<size_t>(res.changed.records_size());
  flood(self, std::move(origin), std::move(res.changed));
  return changed;
}

namespace {

/// The outbox toward `link`, created (and the link monitored) on first use.
ae_outbox& outbox_for(self_ptr self, const caf::actor& link) {
  auto& st = self->state;
  auto i = st.outboxes.find(link.address());
  if (i == st.outboxes.end()) {
    self->monitor(link);
    i = st.outboxes
          .emplace(
            link.address(),
            std::make_pair(link, ae_outbox{st.next_session++, st.window_bytes,
                                           st.method, st.ae_bounds}))
          .first;
  }
  return i->second.second;
}

void send_ae_frame(self_ptr self, const caf::actor& link,
                   const pb::Envelope& env) {
  std::string frame;
  if (append_frame(frame, env, std::numeric_limits<uint32_t>::max()))
    self->send(link, ae_frame_atom::value, std::move(frame));
}

/// Counts (and logs) what the outbox dropped since it showed
/// `summaries_before` and `items_before`.
void count_drops(self_ptr self, const ae_outbox& box, size_t summaries_before,
                 size_t items_before) {
  auto& stats = self->state.stats;
  const auto summaries = box.summaries_dropped() - summaries_before;
  const auto items = box.items_dropped() - items_before;
  if (summaries == 0 && items == 0)
    return;
  stats.set_ae_summaries_dropped(stats.ae_summaries_dropped() + summaries);
  stats.set_ae_items_dropped(stats.ae_items_dropped() + items);
  if (log_enabled(log_level::debug) || items > 0)
    log_line(
      items > 0 ? log_level::warning : log_level::debug, self->state.self_id,
      "anti-entropy session " + std::to_string(box.session()) + ": dropped "
        + std::to_string(summaries) + " SUMMARY while an answer was queued, "
        + std::to_string(items) + " items beyond the outbox budget of "
        + std::to_string(self->state.ae_bounds.budget_bytes)
        + " bytes (repaired in a later round)");
}

/// Sends windows toward `link` while the outbox allows more in flight.
void pump(self_ptr self, const caf::actor& link) {
  auto& box = outbox_for(self, link);
  const auto items_dropped = box.items_dropped();
  for (;;) {
    pb::Envelope env;
    env.set_hops_left(1);
    if (!box.next(self->state.store, env)) {
      count_drops(self, box, box.summaries_dropped(), items_dropped);
      return;
    }
    if (env.has_entries()) {
      auto& stats = self->state.stats;
      stats.set_ae_entries_sent(stats.ae_entries_sent()
                                + env.entries().records_size());
    }
    send_ae_frame(self, link, env);
  }
}

void on_digest(self_ptr self, const caf::actor& link, const pb::Digest& d) {
  auto& box = outbox_for(self, link);
  const auto sketches = box.sketches();
  const auto failures = box.sketch_failures();
  const auto summaries_dropped = box.summaries_dropped();
  const auto items_dropped = box.items_dropped();
  box.answer(d, self->state.store);
  auto& stats = self->state.stats;
  stats.set_ae_sketches(stats.ae_sketches() + box.sketches() - sketches);
  stats.set_ae_sketch_failures(stats.ae_sketch_failures()
                               + box.sketch_failures() - failures);
  count_drops(self, box, summaries_dropped, items_dropped);
  pump(self, link);
}

} // namespace

caf::behavior dict_store_actor(self_ptr self, const config& cfg,
                               const node_id& id, caf::actor router,
                               size_t window_bytes) {
  self->state.lease.init(cfg, id);
  self->state.method = cfg.anti_entropy_method;
  self->state.clock = cfg.clock ? cfg.clock : system_wall_clock();
  self->state.router = std::move(router);
  self->state.window_bytes = window_bytes;
  self->state.ae_bounds.budget_bytes = cfg.max_ae_outbox_bytes;
  self->state.ae_bounds.max_frame_bytes = cfg.max_frame_size;
  self->state.self_id = id;
  self->set_down_handler(
    [=](const caf::down_msg& msg) { self->state.outboxes.erase(msg.source); });
  caf::message_handler store_handlers{
    [=](wire_atom, caf::actor events) { self->state.events = events; },
    [=](events_atom, bool on) { self->state.publish_events = on; },
    [=](local_atom, pb::WriteBatch& batch) -> caf::result<pb::WriteAck> {
      return apply_local_batch(self, batch);
    },
    [=](erase_atom, pb::WriteBatch& batch) -> caf::result<pb::DeleteReply> {
      return apply_erase_batch(self, batch);
    },
    [=](ae_start_atom, const caf::actor& link) {
      pb::Envelope env;
      env.set_hops_left(1);
      make_summary(self->state.store, *env.mutable_digest());
      auto& stats = self->state.stats;
      stats.set_ae_rounds(stats.ae_rounds() + 1);
      send_ae_frame(self, link, env);
    },
    [=](ae_digest_atom, const caf::actor& link, const pb::Digest& d) {
      on_digest(self, link, d);
    },
    [=](ae_ack_atom, const caf::actor& link, uint64_t session) {
      auto i = self->state.outboxes.find(link.address());
      if (i == self->state.outboxes.end())
        return;
      i->second.second.acknowledge(session);
      pump(self, link);
    },
    [=](const pb::GetRequest& req) {
      pb::GetReply reply;
      const auto* entry = self->state.store.find(req.key());
      if (entry != nullptr && entry->live()) {
        reply.set_found(true);
        to_proto(entry->read(), reply.mutable_value());
        to_proto(entry->head(), reply.mutable_meta());
      }
      return reply;
    },
    [=](const pb::SnapshotRequest& req) {
      pb::Snapshot snap;
      const auto& store = self->state.store;
      snap.set_total(store.live_count());
      if (req.count_only())
        return snap;
      for (auto key : store.sorted_live_keys(req.prefix(), req.limit(),
                                             req.start_after())) {
        auto* item = snap.add_items();
        item->set_key(key.data(), key.size());
        if (!req.keys_only()) {
          const auto* entry = store.find(key);
          to_proto(entry->read(), item->mutable_value());
          to_proto(entry->head(), item->mutable_meta());
        }
      }
      return snap;
    },
    [=](dump_atom) { return self->state.store.canonical_bytes(); },
    [=](export_atom) { return self->state.store.export_all(); },
    [=](stats_atom) {
      auto stats = self->state.stats;
      stats.set_live_keys(self->state.store.live_count());
      uint64_t outbox_bytes = 0;
      for (const auto& kv : self->state.outboxes)
        outbox_bytes += kv.second.second.queued_bytes();
      stats.set_ae_outbox_bytes(outbox_bytes);
      stats.set_entries(self->state.store.entry_count());
      return stats;
    },
  };
  return store_handlers.or_else(lease_manager_handlers(self));
}

} // namespace syncmesh
