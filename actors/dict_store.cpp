#include "actors/dict_store.hpp"

#include <caf/all.hpp>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <functional>
#include <limits>
#include <optional>
#include <type_traits>

#include "actors/atoms.hpp"
#include "actors/lease_conflicts.hpp"
#include "actors/log.hpp"
#include "actors/node_error_proto.hpp"
#include "actors/router_state.hpp"
#include "messages/frame_codec.hpp"
#include "messages/value_proto.hpp"
#include "syncmesh/caf_types.hpp"

namespace syncmesh {

namespace {

using self_ptr = dict_store_actor::stateful_pointer<dict_store_state>;

uint64_t to_us(std::chrono::milliseconds x) {
  return static_cast<uint64_t>(x.count()) * 1000;
}

// -- notes to the lease manager -----------------------------------------------

/// Builds the update/delete event of a write that changed `key`.
void note_event(self_ptr self, const std::string& key,
                const store_state::outcome& out, pb::Event& ev) {
  auto& st = self->state;
  if (!st.publish_events || (!out.was_live && !out.now_live))
    return;
  const auto* entry = st.store.find(key);
  if (out.now_live) {
    auto* update = ev.mutable_update();
    update->set_key(key);
    to_proto(entry->read(), update->mutable_value());
    to_proto(st.store.ids(), entry->head(), update->mutable_meta());
  } else {
    auto* deleted = ev.mutable_deleted();
    deleted->set_key(key);
    if (entry != nullptr)
      to_proto(st.store.ids(), entry->head(), deleted->mutable_meta());
  }
}

/// Sends the notes of the batch just applied to the lease manager: one
/// message per batch, in the order the writes were applied.
void send_notes(self_ptr self) {
  auto& st = self->state;
  if (st.notes.empty())
    return;
  store_notes notes;
  notes.swap(st.notes);
  self->send(st.lease_manager, notes_atom::value, std::move(notes));
}

/// Tells the lease manager that tombstones exist (once per purge cycle).
void note_tombstones(self_ptr self) {
  auto& st = self->state;
  if (st.purge_pending)
    return;
  st.purge_pending = true;
  self->send(st.lease_manager, tombstones_atom::value);
}

// -- applying writes ----------------------------------------------------------

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

// -- confirmed writes: queries from other nodes ------------------------------

/// Sends the answer to a query to its origin, through the router.
void send_verdict(self_ptr self, const confirm_verdict& v) {
  auto& st = self->state;
  pb::ConfirmAnswer answer;
  answer.set_query_id(v.query_id);
  answer.set_responder(st.self_id);
  answer.set_to(v.origin);
  answer.set_held(v.held);
  answer.set_superseded(!v.held);
  if (!v.held) {
    answer.set_key(v.key);
    answer.set_owner(v.by.owner);
    answer.set_lease_end_us(v.by.lease_end_us);
  }
  st.stats.set_confirm_answers(st.stats.confirm_answers() + 1);
  if (st.router)
    self->send(st.router, confirm_answer_atom::value, std::move(answer));
}

/// Checks one item against this store (the rule of confirm_rules.hpp).
confirm_status check_here(self_ptr self, const confirm_item& item,
                          superseding_claim* by) {
  return check_record(self->state.store, item, by);
}

/// Records that changed the store may finish held queries: their verdicts
/// (sent once the records are as durable as a flood of them).
std::vector<confirm_verdict> finished_waits(self_ptr self,
                                            const pb::WriteBatch& changed) {
  auto& st = self->state;
  std::vector<confirm_verdict> result;
  auto check = [self](const confirm_item& item, superseding_claim* by) {
    return check_here(self, item, by);
  };
  for (const auto& rec : changed.records()) {
    if (st.waits.empty())
      break;
    for (auto& v : st.waits.on_change(rec.key(), check))
      result.push_back(std::move(v));
  }
  return result;
}

void after_write(self_ptr self, std::function<void()> fn);

/// Sends a verdict once what the store holds now is as durable as a flood:
/// at once in memory, else after the group's engine write (and sync).
void send_verdict_when_durable(self_ptr self, confirm_verdict v) {
  if (!self->state.persistence) {
    send_verdict(self, v);
    return;
  }
  after_write(self, [self, v = std::move(v)] { send_verdict(self, v); });
}

/// Arms the timer that drops held queries past their deadline.
void arm_confirm_tick(self_ptr self) {
  auto& st = self->state;
  if (st.confirm_tick_armed || st.waits.empty())
    return;
  st.confirm_tick_armed = true;
  self->delayed_send(self, std::chrono::milliseconds(250),
                     confirm_tick_atom::value);
}

/// A query from another node: answered at once when every record is held
/// here (or one superseded), else held until a write makes it so.
void on_confirm_query(self_ptr self, pb::ConfirmQuery& q) {
  auto& st = self->state;
  confirm_wait w;
  w.origin = q.origin();
  w.query_id = q.query_id();
  auto now = st.rules.now_us();
  w.deadline_us = now + std::min(q.ttl_ms() * 1000, st.max_confirm_ttl_us);
  for (const auto& rec : q.records()) {
    confirm_item item;
    if (!from_proto(rec, item).empty())
      return; // the router validated it; a bad record is dropped whole
    superseding_claim by;
    auto status = check_here(self, item, &by);
    if (status == confirm_status::superseded) {
      send_verdict(self, confirm_verdict{w.origin, w.query_id, false,
                                         std::move(item.key), std::move(by)});
      return;
    }
    if (status == confirm_status::pending)
      w.items.push_back(std::move(item));
  }
  if (w.items.empty()) {
    send_verdict_when_durable(
      self, confirm_verdict{w.origin, w.query_id, true, {}, {}});
    return;
  }
  auto dropped = st.waits.add(std::move(w));
  if (dropped > 0) {
    st.stats.set_confirm_waits_dropped(st.stats.confirm_waits_dropped()
                                       + dropped);
    if (worth_logging(st.stats.confirm_waits_dropped(), dropped))
      log_line(log_level::warning, st.self_id,
               "confirm: dropped " + std::to_string(dropped)
                 + " held confirmation quer(ies) to stay within "
                 + std::to_string(st.waits.max_count()) + " queries / "
                 + std::to_string(st.waits.max_bytes())
                 + " bytes (their origins count other nodes or time out); "
                 + std::to_string(st.stats.confirm_waits_dropped())
                 + " in all");
  }
  arm_confirm_tick(self);
}

batch_result apply_batch(self_ptr self, pb::WriteBatch& batch,
                         bool keep_old_value, bool remote = false) {
  batch_result result;
  auto& st = self->state;
  auto& stats = st.stats;
  bool tombstones = false;
  auto& records = *batch.mutable_records();
  for (int i = 0; i < records.size(); ++i) {
    st.store.prefetch_ahead(records, i);
    auto& rec = records[i];
    version v;
    if (result.error = from_proto(rec.version(), v); !result.error.empty())
      break;
    auto recorded = st.rules.record(st.store, rec, v, keep_old_value);
    if (recorded.clamped) {
      // Only a forged or misconfigured peer claims a lease past the
      // mesh-wide maximum: worth a line, never a reason to refuse it.
      st.lease_stats.set_lease_clamps(st.lease_stats.lease_clamps() + 1);
      log_line(log_level::warning, st.self_id,
               "clamped the lease end of a record for key of "
                 + std::to_string(rec.key().size())
                 + " bytes to its stamp + max_lease_duration");
    }
    if (result.error = std::move(recorded.error); !result.error.empty())
      break;
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
    // A note only when the lease manager has something to do with it:
    // nothing is built on the write path while nobody listens.
    if (out.changed && (recorded.change || st.publish_events)) {
      store_note note;
      if (recorded.change) {
        note.lease_changed = true;
        note.lease = std::move(*recorded.change);
      }
      note_event(self, rec.key(), out, note.event);
      if (note.lease_changed
          || note.event.kind_case() != pb::Event::KIND_NOT_SET)
        st.notes.push_back(std::move(note));
    }
    if (out.changed) {
      tombstones |= !out.now_live;
      result.changed.mutable_records()->Add()->Swap(&rec);
    }
    result.last = std::move(out);
  }
  send_notes(self);
  if (tombstones)
    note_tombstones(self);
  return result;
}

/// Runs `fn` once what was staged so far is written to the engine (and,
/// with durability `always`, synced). One message to ourselves triggers the
/// write per group: every write queued in the mailbox before it shares one
/// engine write (and one fsync), which is the group commit. A group that
/// reached its size bound (store_persistence::max_group_bytes) is written
/// right after the current message instead: an urgent message, so the
/// current handler still queues its own acknowledgement in the group.
void after_write(self_ptr self, std::function<void()> fn) {
  auto& st = self->state;
  if (fn)
    st.after_write.push_back(std::move(fn));
  if (st.persistence->group_full()) {
    if (!st.urgent_write_queued) {
      st.urgent_write_queued = true;
      self->send<caf::message_priority::high>(self, storage_sync_atom::value);
    }
    return;
  }
  if (!st.write_queued) {
    st.write_queued = true;
    self->send(self, storage_sync_atom::value);
  }
}

/// Asks for a sync of everything written so far; returns its ticket. Its
/// end comes back as (storage_synced_atom, ticket, error): from the syncer
/// thread, or, when syncs are made inline (deterministic tests), from this
/// actor right after the sync, so both take the same path.
uint64_t request_sync(self_ptr self) {
  auto& p = *self->state.persistence;
  auto ticket = p.request_sync();
  if (!p.has_syncer())
    self->send(self, storage_synced_atom::value, ticket, std::string{});
  return ticket;
}

/// Durability `batch`: a sync at most `sync_interval` after a write.
void schedule_sync_tick(self_ptr self) {
  auto& st = self->state;
  if (st.tick_scheduled)
    return;
  st.tick_scheduled = true;
  self->delayed_send(self, st.sync_interval, storage_tick_atom::value);
}

/// Hands changed records to the router to flood to the peers.
void send_flood(self_ptr self, std::string origin, pb::WriteBatch&& changed) {
  if (self->state.router)
    self->send(self->state.router, changed_atom::value, std::move(origin),
               std::move(changed));
}

/// Persists the entries `changed` touched (with a data dir), then floods
/// them. A node never relays what it could forget: the flood waits for the
/// group's engine write (and, with durability `always`, its fsync).
void flood(self_ptr self, std::string origin, pb::WriteBatch&& changed) {
  if (changed.records_size() == 0)
    return;
  auto& st = self->state;
  // Held confirmation queries these records finish (nothing to do, and
  // nothing built, while none is held).
  std::vector<confirm_verdict> verdicts;
  if (!st.waits.empty())
    verdicts = finished_waits(self, changed);
  if (!st.persistence) {
    send_flood(self, std::move(origin), std::move(changed));
    for (const auto& v : verdicts)
      send_verdict(self, v);
    return;
  }
  st.persistence->stage(st.store, changed);
  auto held = std::make_shared<pb::WriteBatch>(std::move(changed));
  after_write(self, [self, origin = std::move(origin), held,
                     verdicts = std::move(verdicts)]() mutable {
    send_flood(self, std::move(origin), std::move(*held));
    for (const auto& v : verdicts)
      send_verdict(self, v);
  });
}

/// The reply to a local write: at once in memory, else once the group that
/// holds it is written (and, with durability `always`, on disk).
template <class Reply>
caf::result<Reply> answer_when_durable(self_ptr self, Reply reply) {
  auto& st = self->state;
  if (!st.persistence || !st.write_queued)
    return reply;
  auto promise = self->template make_response_promise<Reply>();
  after_write(self, [promise, reply = std::move(reply)]() mutable {
    promise.deliver(std::move(reply));
  });
  return promise;
}

/// The group's engine write, then everything that waited for it, in the
/// order the writes were applied: at once, or with `always` once the
/// group's sync is done (storage_synced_atom). The store goes on with the
/// next group meanwhile.
void write_group(self_ptr self) {
  auto& st = self->state;
  // An urgent message may overtake the ordinary one: whichever comes first
  // writes the group, the other finds it empty.
  st.write_queued = false;
  st.urgent_write_queued = false;
  auto waiting = std::move(st.after_write);
  st.after_write.clear();
  if (st.persistence) {
    st.persistence->write();
    switch (st.persistence->mode()) {
      case durability_mode::always:
        if (st.persistence->unsynced() || !waiting.empty()) {
          auto ticket = request_sync(self);
          st.sync_waiting.emplace_back(ticket, std::move(waiting));
          return;
        }
        break;
      case durability_mode::batch:
        schedule_sync_tick(self);
        break;
      case durability_mode::none:
        break;
    }
  }
  for (auto& fn : waiting)
    fn();
}

/// Releases, in order, what waited for the syncs up to `ticket`.
void release_synced(self_ptr self, uint64_t ticket) {
  auto& st = self->state;
  while (!st.sync_waiting.empty() && st.sync_waiting.front().first <= ticket) {
    auto waiting = std::move(st.sync_waiting.front().second);
    st.sync_waiting.pop_front();
    for (auto& fn : waiting)
      fn();
  }
}

/// Anti-entropy hands entries to a peer straight from the table: the group
/// in the mailbox is written first, so a repair never carries a write the
/// node could still forget (as a flood never does). With `always` that
/// means synced: syncs still under way on the syncer are made here (one
/// fsync, on this thread), and what waited for them goes on.
void write_group_before_repair(self_ptr self) {
  auto& st = self->state;
  if (st.write_queued || st.urgent_write_queued)
    write_group(self);
  if (st.persistence && st.persistence->mode() == durability_mode::always
      && !st.sync_waiting.empty()) {
    st.persistence->sync_now();
    release_synced(self, st.sync_waiting.back().first);
  }
}

caf::result<pb::WriteAck> apply_local_batch(self_ptr self,
                                            pb::WriteBatch& batch,
                                            bool report_versions = false) {
  auto res = apply_batch(self, batch, false);
  pb::WriteAck ack;
  ack.set_applied(static_cast<uint32_t>(res.changed.records_size()));
  // A confirmed update: the versions to ask the other nodes about.
  if (report_versions)
    for (const auto& rec : res.changed.records()) {
      auto* w = ack.add_written();
      w->set_key(rec.key());
      *w->mutable_version() = rec.version();
      if (rec.has_fields())
        for (const auto& f : rec.fields().entries())
          *w->add_fields() = f.key();
    }
  if (res.changed.records_size() > 0) {
    const auto& key = res.changed.records().rbegin()->key();
    if (const auto* entry = self->state.store.find(key))
      to_proto(self->state.store.ids(), entry->head(), ack.mutable_meta());
  }
  flood(self, std::string{}, std::move(res.changed));
  if (!res.error.empty())
    return make_error(errc::malformed, std::move(res.error));
  return answer_when_durable(self, std::move(ack));
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
      to_proto(self->state.store.ids(), entry->head(), reply.mutable_meta());
  }
  flood(self, std::string{}, std::move(res.changed));
  if (!res.error.empty())
    return make_error(errc::malformed, std::move(res.error));
  return answer_when_durable(self, std::move(reply));
}

size_t apply_remote_batch(self_ptr self, std::string origin,
                          pb::WriteBatch& batch) {
  auto res = apply_batch(self, batch, false, true);
  auto changed = static_cast<size_t>(res.changed.records_size());
  res.changed.set_py2p_catch_up(batch.py2p_catch_up());
  flood(self, std::move(origin), std::move(res.changed));
  return changed;
}

// -- backups ------------------------------------------------------------------

/// Makes one consistent copy of the storage on a thread of its own (a
/// detached actor, so the actor system waits for it at shutdown), then
/// quits.
caf::behavior checkpoint_maker(caf::event_based_actor* self,
                               std::function<void()> job) {
  return {
    [self, job](checkpoint_atom) -> caf::result<bool> {
      self->quit();
      try {
        job();
        return true;
      } catch (const storage_error& e) {
        return make_error(errc::storage, std::string{e.what()});
      }
    },
  };
}

/// A consistent copy of the storage for a backup (BackupRequest). In the
/// store's sequencing, every staged change is written first, so every
/// acknowledged write is in the copy (and maybe a few applied ones not yet
/// acknowledged). The copy itself is hard links plus a copy of the live
/// log: milliseconds for a small store, 100 ms or more for a million keys,
/// so a helper makes it while the store goes on applying writes (RocksDB's
/// checkpoint is made for a live database). The copy's stored clock mark
/// covers every stamp in it, later ones included.
caf::result<pb::BackupReply> make_backup(self_ptr self) {
  auto& st = self->state;
  if (!st.persistence)
    return make_error(errc::invalid_config,
                      std::string{"a backup needs a data dir: this node keeps "
                                  "its entries in memory only (start it with "
                                  "--data-dir, or use `syncmesh export`)"});
  auto now = st.clock();
  pb::BackupReply reply;
  std::function<void()> job;
  try {
    reply.set_checkpoint_dir(st.checkpoints.make_path(now));
    job = st.persistence->prepare_checkpoint(reply.checkpoint_dir());
  } catch (const storage_error& e) {
    log_line(log_level::warning, st.self_id,
             std::string{"backup: "} + e.what());
    return make_error(errc::storage, std::string{e.what()});
  }
  reply.set_node_id(st.self_id);
  reply.set_clock_mark_us(st.rules.clock().high_water().wall_us);
  reply.set_created_us(now);
  reply.set_entries(st.store.entry_count());
  reply.set_disk_format(entry_storage::format_version);
  auto rp = self->make_response_promise<pb::BackupReply>();
  auto maker = self->spawn<caf::detached>(checkpoint_maker, std::move(job));
  auto started = std::chrono::steady_clock::now();
  self->request(maker, caf::infinite, checkpoint_atom::value)
    .then(
      [self, rp, reply, started](bool) mutable {
        auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now() - started)
                      .count();
        log_line(log_level::info, self->state.self_id,
                 "backup: checkpoint of " + std::to_string(reply.entries())
                   + " entries in " + reply.checkpoint_dir() + " made in "
                   + std::to_string(took) + " ms");
        rp.deliver(std::move(reply));
      },
      [self, rp, dir = reply.checkpoint_dir()](caf::error& err) mutable {
        log_line(log_level::warning, self->state.self_id,
                 "backup: no checkpoint in " + dir + ": "
                   + self->system().render(err));
        std::error_code ignored;
        std::filesystem::remove_all(dir, ignored);
        rp.deliver(std::move(err));
      });
  return rp;
}

// -- local writes: the lease decision in the store's sequencing ---------------

caf::error refusal(const std::string& key, const local_decision& d) {
  if (d.missing)
    return make_error(errc::key_not_found, key);
  return make_error(errc::lease_held, key, to_hex(d.owner), d.lease_end_us);
}

/// Stamps the decided writes of one local operation and returns the batch
/// to apply.
pb::WriteBatch stamp_batch(self_ptr self, std::vector<pb::WriteRecord>&& recs,
                           std::vector<local_decision>&& decisions,
                           bool is_delete) {
  auto& st = self->state;
  if (st.persistence)
    st.persistence->reserve_clock(st.rules.clock().high_water().wall_us,
                                  st.rules.now_us());
  pb::WriteBatch batch;
  for (size_t i = 0; i < recs.size(); ++i) {
    auto v = st.rules.stamp(std::move(decisions[i].draft), is_delete);
    to_proto(v, recs[i].mutable_version());
    if (recs[i].has_fields())
      st.store.add_field_origins(recs[i]);
    batch.mutable_records()->Add(std::move(recs[i]));
  }
  st.lease_stats.set_local_writes(st.lease_stats.local_writes() + recs.size());
  return batch;
}

/// Counts a refused local write and returns its error.
caf::error counted_refusal(self_ptr self, caf::error err) {
  // Only lease conflicts count: missing keys and wrong types are not news.
  if (code_of(err) == errc::lease_held)
    self->state.lease_stats.set_refused_writes(
      self->state.lease_stats.refused_writes() + 1);
  return err;
}

template <class Reply>
caf::result<Reply> refuse(self_ptr self, caf::error err) {
  return counted_refusal(self, std::move(err));
}

/// The clock fence refuses every local write while it is up (this node's
/// clock is beyond the bound from a majority of the nodes it measures): a
/// write stamped by a wrong clock could take over a live lease elsewhere or,
/// with leasing off, win every conflict.
std::optional<caf::error> fence_refusal(self_ptr self) {
  const auto& fence = self->state.fence;
  if (!fence || !fence->fenced())
    return std::nullopt;
  fence->count_refused_write();
  auto why = fence->reason();
  return make_error(errc::clock_offset,
                    why.empty() ? std::string{"clock offset fence"} : why);
}

template <class Reply>
caf::result<Reply> write_one(self_ptr self, pb::WriteRecord rec,
                             bool is_delete) {
  auto& st = self->state;
  if (auto err = fence_refusal(self))
    return std::move(*err);
  auto d = st.rules.decide(st.store, rec.key(), is_delete);
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

/// Sets each item as its own SetRequest would, in order, and answers with
/// one outcome per item: the socket's combined writes. Every item gets its
/// own fence check, lease decision and stamp, and sees the items before it
/// (a later item of the same key wins); what changed is flooded as one
/// batch and, with a data dir, persisted as one group.
caf::result<pb::SetManyReply> set_many(self_ptr self, pb::SetManyRequest& req) {
  auto& st = self->state;
  pb::SetManyReply reply;
  pb::WriteBatch changed;
  auto refuse_item = [&](pb::WriteOutcome* outcome, caf::error err) {
    to_proto(counted_refusal(self, std::move(err)), *outcome->mutable_error());
  };
  auto& items = *req.mutable_items();
  for (int i = 0; i < items.size(); ++i) {
    st.store.prefetch_ahead(items, i);
    auto& item = items[i];
    auto* outcome = reply.add_outcomes();
    if (auto err = fence_refusal(self)) {
      refuse_item(outcome, std::move(*err));
      continue;
    }
    auto d = st.rules.decide(st.store, item.key(), false);
    if (!d.allowed) {
      refuse_item(outcome, refusal(item.key(), d));
      continue;
    }
    std::vector<pb::WriteRecord> recs(1);
    recs[0].set_key(std::move(*item.mutable_key()));
    recs[0].mutable_value()->Swap(item.mutable_value());
    std::vector<local_decision> ds;
    ds.push_back(std::move(d));
    auto batch = stamp_batch(self, std::move(recs), std::move(ds), false);
    auto res = apply_batch(self, batch, false);
    if (!res.error.empty())
      to_proto(make_error(errc::malformed, std::move(res.error)),
               *outcome->mutable_error());
    for (auto& rec : *res.changed.mutable_records())
      changed.mutable_records()->Add()->Swap(&rec);
  }
  flood(self, std::string{}, std::move(changed));
  return answer_when_durable(self, std::move(reply));
}

/// py2p mode refuses deletes unless configured: a nil store crashes js2p.
std::optional<caf::error> py2p_delete_refusal(self_ptr self) {
  if (!self->state.rules.settings().py2p || self->state.py2p_allow_delete)
    return std::nullopt;
  return make_error(errc::invalid_config,
                    std::string{"py2p mode refuses deletes: a delete is a nil "
                                "store, which makes js2p 0.7.870 close every "
                                "link on its path; set py2p_allow_delete "
                                "(--py2p-allow-delete) when no js2p node is in "
                                "the mesh"});
}

// -- remote writes
// --------------------------------------------------------------

/// A peer may write only as itself (issue 16): with peer TLS, a record
/// stamped with THIS node's ID during this run that is newer than what the
/// store holds for its key was never made here (every write of this run
/// was applied here first, and stays here until something newer replaces
/// it). Such a record is refused, counted and logged. Echoes of our own
/// writes (equal or older) pass and change nothing; records stamped before
/// this run began cannot be told from forgeries and pass (README, "Peer
/// TLS": the trust model).
bool forged_own_stamp(self_ptr self, const std::string& origin,
                      const pb::WriteRecord& rec, const version& v) {
  auto& st = self->state;
  if (!st.guard_own_stamps || v.stamp.node != st.self_id
      || v.stamp.wall_us < st.run_floor_us)
    return false;
  const auto* entry = st.store.find(rec.key());
  if (entry != nullptr && !newer(v, entry->head().newest(st.store.ids())))
    return false;
  st.stats.set_forged_self_records(st.stats.forged_self_records() + 1);
  log_line(log_level::warning, st.self_id,
           "refused a record stamped with this node's ID that it never made "
           "(key of "
             + std::to_string(rec.key().size()) + " bytes, from peer "
             + to_hex(origin).substr(0, 12)
             + "): a peer may write only as itself");
  return true;
}

/// Returns the remote writes to apply now (the clock has seen their
/// stamps); writes stamped too far in the future go to the lease manager,
/// which holds them until their time.
pb::WriteBatch accept_remote(self_ptr self, const std::string& origin,
                             pb::WriteBatch& batch) {
  auto& st = self->state;
  pb::WriteBatch accepted;
  pb::WriteBatch early;
  for (auto& rec : *batch.mutable_records()) {
    version v;
    from_proto(rec.version(), v);
    if (forged_own_stamp(self, origin, rec, v))
      continue;
    if (!st.rules.acceptable(v.stamp)) {
      early.mutable_records()->Add(std::move(rec));
      continue;
    }
    st.rules.observe_stamp(v.stamp);
    accepted.mutable_records()->Add(std::move(rec));
  }
  st.lease_stats.set_remote_records(st.lease_stats.remote_records()
                                    + accepted.records_size());
  if (early.records_size() > 0)
    self->send(st.lease_manager, hold_atom::value, origin, std::move(early));
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
  auto& st = self->state;
  auto& rules = st.rules;
  auto leasing = rules.settings().leasing;
  auto now_s = rules.now_us() / 1'000'000;
  uint64_t accepted = 0;
  for (auto& rec : *batch.mutable_records()) {
    version provisional;
    if (!from_proto(rec.version(), provisional).empty())
      continue;
    const auto* head = lease_rules::find(st.store, rec.key());
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
        || !py2p_accepts(head, st.store.ids(), provisional.claimer,
                         provisional.stamp.wall_us / 1'000'000, is_delta,
                         leasing, now_s)) {
      st.lease_stats.set_refused_writes(st.lease_stats.refused_writes() + 1);
      continue;
    }
    auto v = py2p_successor(head, st.store.ids(), provisional.claimer,
                            provisional.stamp.wall_us, leasing);
    if (rec.has_tombstone())
      v.lease_end_us = 0;
    to_proto(v, rec.mutable_version());
    rules.observe_stamp(v.stamp);
    // Applied at once: the next record of this batch is decided on it.
    pb::WriteBatch one;
    one.mutable_records()->Add(std::move(rec));
    // What changed the store is handed on to the other peers (catch-up).
    one.set_py2p_catch_up(batch.py2p_catch_up());
    apply_remote_batch(self, origin, one);
    ++accepted;
  }
  st.lease_stats.set_remote_records(st.lease_stats.remote_records() + accepted);
}

// -- anti-entropy
// ---------------------------------------------------------------

/// The outbox toward `link`, created (and the link monitored) on first use.
ae_outbox& outbox_for(self_ptr self, const link_actor& link) {
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

void send_ae_frame(self_ptr self, const link_actor& link,
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
void pump(self_ptr self, const link_actor& link) {
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

/// The skip memory's counters of one outbox, to count what changed.
struct skip_counts {
  size_t not_reasked;
  size_t first_uses;
  size_t evictions;
  explicit skip_counts(ae_skip_memory& m)
      : not_reasked(m.not_reasked()), first_uses(m.first_uses()),
        evictions(m.evictions()) {}
};

/// Counts (and logs) what the skip memory toward `link` did since `before`.
void count_skip_memory(self_ptr self, ae_outbox& box,
                       const skip_counts& before) {
  auto& st = self->state;
  auto& stats = st.stats;
  auto& memory = box.skipped();
  const auto not_reasked = memory.not_reasked() - before.not_reasked;
  const auto first_uses = memory.first_uses() - before.first_uses;
  const auto evictions = memory.evictions() - before.evictions;
  stats.set_ae_records_not_reasked(stats.ae_records_not_reasked()
                                   + not_reasked);
  stats.set_ae_skip_memory_evictions(stats.ae_skip_memory_evictions()
                                     + evictions);
  // A line the first time each record is not asked for again, not every
  // round.
  if (first_uses > 0)
    log_line(log_level::info, st.self_id,
             "anti-entropy session " + std::to_string(box.session()) + ": "
               + std::to_string(first_uses)
               + " skipped record(s) presented as held, not asked for again ("
               + std::to_string(memory.size()) + " remembered for this peer, "
               + std::to_string(memory.bytes()) + " bytes)");
  if (evictions > 0
      && worth_logging(stats.ae_skip_memory_evictions(), evictions))
    log_line(log_level::warning, st.self_id,
             "anti-entropy: forgot " + std::to_string(evictions)
               + " skipped record(s) to stay within "
               + std::to_string(st.ae_bounds.skip_memory.max_entries)
               + " records / "
               + std::to_string(st.ae_bounds.skip_memory.max_bytes)
               + " bytes per peer (each may be asked for once more); "
               + std::to_string(stats.ae_skip_memory_evictions()) + " in all");
}

/// Ends the session toward `link` if it made no progress for the stall
/// timeout (counted and logged).
void expire_if_stalled(self_ptr self, ae_outbox& box) {
  auto& st = self->state;
  const auto old_session = box.session();
  if (!box.expire_if_stalled(st.clock(), st.ae_bounds.stall_timeout_us))
    return;
  st.stats.set_ae_sessions_expired(st.stats.ae_sessions_expired() + 1);
  log_line(log_level::warning, st.self_id,
           "anti-entropy session " + std::to_string(old_session)
             + " made no progress for "
             + std::to_string(st.ae_bounds.stall_timeout_us / 1000)
             + " ms: expired, the peer's new SUMMARY is answered");
}

void on_digest(self_ptr self, const link_actor& link, const pb::Digest& d) {
  auto& box = outbox_for(self, link);
  if (d.stage() == pb::Digest::SUMMARY)
    expire_if_stalled(self, box);
  if (box.idle())
    box.note_progress(self->state.clock());
  const skip_counts skips{box.skipped()};
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
  count_skip_memory(self, box, skips);
  pump(self, link);
}

/// Takes the records breaking a limit out of `batch`, keeping the others in
/// order, and remembers each in the skip memory toward the link that sent
/// them (none when `box` is null). Returns how many and the first error.
skipped_records skip_invalid_entries(self_ptr self, pb::WriteBatch& batch,
                                     ae_outbox* box) {
  skipped_records skipped;
  auto& st = self->state;
  auto* records = batch.mutable_records();
  int kept = 0;
  for (int i = 0; i < records->size(); ++i) {
    const auto& rec = records->Get(i);
    auto err = validate_remote_record(rec, st.limits);
    if (!err.empty()) {
      if (skipped.count++ == 0)
        skipped.first_error = "record " + std::to_string(i) + ": " + err;
      if (box != nullptr)
        box->skipped().remember(rec, st.store.find(rec.key()), st.store.ids());
      continue;
    }
    if (kept != i)
      records->SwapElements(kept, i);
    ++kept;
  }
  while (records->size() > kept)
    records->RemoveLast();
  return skipped;
}

} // namespace

void dict_store_state::init(const config& cfg, const raw_node_id& self) {
  rules = lease_rules(self, cfg.clock ? cfg.clock : system_wall_clock(),
                      lease_settings{cfg.leasing, to_us(cfg.lease_duration),
                                     to_us(cfg.effective_lease_margin()),
                                     cfg.wire == wire_kind::py2p,
                                     to_us(cfg.max_lease_duration)},
                      to_us(cfg.effective_max_clock_skew()));
  rules.raise_clock_floor(cfg.hlc_floor_us);
  store.reserve(cfg.expected_keys);
  limits = write_limits{cfg.max_key_size, cfg.max_value_size,
                        static_cast<int>(cfg.max_value_depth)};
  py2p_allow_delete = cfg.py2p_allow_delete;
  method = cfg.anti_entropy_method;
  clock = cfg.clock ? cfg.clock : system_wall_clock();
  guard_own_stamps = cfg.tls.enabled();
  run_floor_us = std::max(rules.now_us(), cfg.hlc_floor_us);
  waits = confirm_waits{cfg.max_confirm_waits, cfg.max_confirm_wait_bytes};
  max_confirm_ttl_us = to_us(cfg.max_confirm_timeout);
}

dict_store_actor::behavior_type
dict_store_behavior(self_ptr self, const config& cfg, const raw_node_id& id,
                    router_actor router, lease_manager_actor lease_manager,
                    size_t window_bytes, std::shared_ptr<clock_fence> fence,
                    std::shared_ptr<store_reader> reader,
                    std::shared_ptr<durable_start> durable) {
  self->state.init(cfg, id);
  self->state.self_id = id;
  if (durable) {
    // Loaded by spawn_node before anything could reach this actor: every
    // read and every peer sees the stored entries.
    auto& st = self->state;
    st.store = std::move(durable->store);
    st.persistence = std::move(durable->persistence);
    st.sync_interval = cfg.durability_interval;
    st.entries_loaded = durable->entries;
    st.load_ms = durable->load_ms;
    st.data_dir = cfg.data_dir;
    st.rules.raise_clock_floor(durable->clock_floor_us);
    st.run_floor_us = std::max(st.run_floor_us, durable->clock_floor_us);
    if (!cfg.sync_inline) {
      // fsyncs on a thread of their own: the store goes on applying and
      // writing while the disk syncs (wal_syncer.hpp); every durability
      // mode, as the clock reservations are synced in each. A weak handle: the
      // syncer lives in this actor's state and must not keep it alive.
      caf::weak_actor_ptr weak = caf::actor_cast<caf::weak_actor_ptr>(self);
      st.persistence->start_syncer(
        [weak](uint64_t ticket, const std::string& error) {
          if (auto strong = weak.lock())
            caf::anon_send(caf::actor_cast<dict_store_actor>(strong),
                           storage_synced_atom::value, ticket, error);
        });
    }
    if (!durable->set_aside.empty())
      log_line(log_level::warning, st.self_id,
               "the entries of " + cfg.data_dir
                 + " were last alive longer ago than the tombstone horizon: "
                   "moved to "
                 + durable->set_aside
                 + " and rejoining empty (peers may have forgotten deletes "
                   "they hold; keep_stale_data / --keep-stale-data loads "
                   "them when every node was down as long)");
    // Copies of a backup that was streaming when the node last stopped:
    // nobody reads them any more, and their hard links hold disk.
    st.checkpoints = backup_checkpoints{cfg.data_dir};
    if (auto stale = st.checkpoints.remove_all(); stale > 0)
      log_line(log_level::info, st.self_id,
               "removed " + std::to_string(stale)
                 + " backup checkpoint(s) left by the last run");
    log_line(log_level::info, st.self_id,
             "loaded " + std::to_string(durable->entries) + " entries from "
               + cfg.data_dir + " in " + std::to_string(durable->load_ms)
               + " ms (durability " + to_string(cfg.durability) + ")");
    // Refresh the "last alive" mark well within the horizon, so a node
    // that stops is judged by when it stopped, not by when it started.
    st.alive_interval = std::clamp(
      std::chrono::duration_cast<std::chrono::milliseconds>(
        cfg.tombstone_horizon / 16),
      std::chrono::milliseconds(1000), std::chrono::milliseconds(60'000));
    self->delayed_send(self, st.alive_interval, storage_alive_atom::value);
  }
  // Other threads may read the table from now on (store_reader.hpp).
  if (reader)
    self->state.store.publish_to(std::move(reader));
  self->state.fence = std::move(fence);
  self->state.router = std::move(router);
  self->state.lease_manager = std::move(lease_manager);
  // Loaded tombstones wait for the purge like any others.
  if (self->state.store.entry_count() > self->state.store.live_count())
    note_tombstones(self);
  self->state.window_bytes = window_bytes;
  self->state.ae_bounds.budget_bytes = cfg.max_ae_outbox_bytes;
  self->state.ae_bounds.max_frame_bytes = cfg.max_frame_size;
  // Lost windows are rare (a link that closed takes its outbox along):
  // several peer timeouts leave a slow but live peer all the time it needs.
  self->state.ae_bounds.stall_timeout_us = 3 * to_us(cfg.peer_timeout);
  self->set_down_handler(
    [=](const caf::down_msg& msg) { self->state.outboxes.erase(msg.source); });
  return {
    // -- local writes --
    [=](pb::SetRequest& req) -> caf::result<pb::WriteAck> {
      pb::WriteRecord rec;
      rec.set_key(std::move(*req.mutable_key()));
      rec.mutable_value()->Swap(req.mutable_value());
      return write_one<pb::WriteAck>(self, std::move(rec), false);
    },
    [=](pb::SetManyRequest& req) -> caf::result<pb::SetManyReply> {
      return set_many(self, req);
    },
    [=](pb::UpdateRequest& req) -> caf::result<pb::WriteAck> {
      auto& st = self->state;
      if (auto err = fence_refusal(self))
        return std::move(*err);
      if (req.deletes_size() > 0)
        if (auto err = py2p_delete_refusal(self))
          return std::move(*err);
      // All leases first: one refusal refuses the whole batch, and the
      // refusal names every leased key of it (a client fixes its batch
      // once instead of learning the conflicts one retry at a time).
      std::vector<lease_conflict> conflicts;
      auto note_conflict
        = [&](const std::string& key, const local_decision& d) {
            conflicts.push_back(
              lease_conflict{key, node_id::from_raw(d.owner), d.lease_end_us});
          };
      std::vector<local_decision> ds;
      ds.reserve(static_cast<size_t>(req.items_size()));
      for (const auto& item : req.items()) {
        auto d = st.rules.decide(st.store, item.key(), false);
        if (!d.allowed)
          note_conflict(item.key(), d);
        else if (conflicts.empty())
          ds.push_back(std::move(d));
      }
      // Deletes of absent keys are skipped: the batch wants them absent.
      std::vector<local_decision> dels;
      std::vector<int> del_index;
      for (int i = 0; i < req.deletes_size(); ++i) {
        auto d = st.rules.decide(st.store, req.deletes(i), true);
        if (d.missing)
          continue;
        if (!d.allowed)
          note_conflict(req.deletes(i), d);
        else if (conflicts.empty()) {
          dels.push_back(std::move(d));
          del_index.push_back(i);
        }
      }
      if (!conflicts.empty())
        return refuse<pb::WriteAck>(self, lease_refusal(conflicts));
      std::vector<pb::WriteRecord> recs(ds.size());
      for (size_t i = 0; i < ds.size(); ++i) {
        auto& item = *req.mutable_items(static_cast<int>(i));
        recs[i].set_key(std::move(*item.mutable_key()));
        recs[i].mutable_value()->Swap(item.mutable_value());
      }
      auto batch = stamp_batch(self, std::move(recs), std::move(ds), false);
      if (!dels.empty()) {
        std::vector<pb::WriteRecord> tombs(dels.size());
        for (size_t i = 0; i < dels.size(); ++i) {
          tombs[i].set_key(std::move(*req.mutable_deletes(del_index[i])));
          tombs[i].mutable_tombstone();
        }
        auto more = stamp_batch(self, std::move(tombs), std::move(dels), true);
        for (auto& rec : *more.mutable_records())
          batch.mutable_records()->Add(std::move(rec));
      }
      return apply_local_batch(self, batch, req.report_versions());
    },
    [=](pb::DeleteRequest& req) -> caf::result<pb::DeleteReply> {
      if (auto err = py2p_delete_refusal(self))
        return std::move(*err);
      pb::WriteRecord rec;
      rec.set_key(std::move(*req.mutable_key()));
      rec.mutable_tombstone();
      return write_one<pb::DeleteReply>(self, std::move(rec), true);
    },
    [=](pb::DeltaRequest& req) -> caf::result<pb::WriteAck> {
      auto& st = self->state;
      if (auto err = fence_refusal(self))
        return std::move(*err);
      // A lease held elsewhere refuses before the value's type matters.
      auto d = st.rules.decide(st.store, req.key(), false);
      if (!d.allowed)
        return refuse<pb::WriteAck>(self, refusal(req.key(), d));
      const auto* head = lease_rules::find(st.store, req.key());
      if (head != nullptr && head->live() && !head->is_map())
        return refuse<pb::WriteAck>(self,
                                    make_error(errc::wrong_type, req.key()));
      pb::WriteRecord rec;
      rec.set_key(std::move(*req.mutable_key()));
      rec.mutable_fields()->mutable_entries()->Swap(
        req.mutable_fields()->mutable_entries());
      return write_one<pb::WriteAck>(self, std::move(rec), false);
    },
    [=](pb::PopItemRequest&) -> caf::result<pb::DeleteReply> {
      if (auto err = py2p_delete_refusal(self))
        return std::move(*err);
      auto key = self->state.rules.deletable_key(self->state.store);
      if (!key)
        return refuse<pb::DeleteReply>(
          self, make_error(errc::key_not_found,
                           std::string{"no key this node may delete"}));
      pb::WriteRecord rec;
      rec.set_key(std::move(*key));
      rec.mutable_tombstone();
      return write_one<pb::DeleteReply>(self, std::move(rec), true);
    },
    // -- reads --
    [=](const pb::GetRequest& req) {
      pb::GetReply reply;
      self->state.store.read_into(req.key(), reply);
      return reply;
    },
    [=](const pb::GetManyRequest& req) {
      pb::GetManyReply many;
      for (const auto& key : req.keys())
        self->state.store.read_into(key, *many.add_replies());
      return many;
    },
    [=](const pb::SnapshotRequest& req) {
      // A py2p link's initial sync sends pages of it to a peer.
      write_group_before_repair(self);
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
          to_proto(store.ids(), entry->head(), item->mutable_meta());
        }
      }
      return snap;
    },
    [=](const pb::BackupRequest&) -> caf::result<pb::BackupReply> {
      return make_backup(self);
    },
    // -- remote writes --
    [=](remote_atom, std::string& origin, pb::WriteBatch& batch) {
      apply_remote(self, std::move(origin), batch);
      // The reply returns the sending link's ingress credit.
      return true;
    },
    [=](py2p_write_atom, std::string& origin, pb::WriteBatch& batch,
        bool initial_sync) {
      apply_py2p(self, std::move(origin), batch, initial_sync);
      // The reply returns the sending py2p link's ingress credit.
      return true;
    },
    [=](ae_entries_atom, std::string& origin,
        pb::WriteBatch& batch) -> caf::result<bool> {
      // Entries come straight from a peer link: check them like any
      // remote write before they touch the store. A record breaking a limit
      // is skipped and counted alone; the rest of the window is applied.
      // The link that sent them asked with a request: its outbox keeps
      // the memory of what we skipped, so later rounds do not ask again.
      ae_outbox* box = nullptr;
      if (auto link = caf::actor_cast<link_actor>(self->current_sender()))
        box = &outbox_for(self, link);
      const auto evictions = box != nullptr ? box->skipped().evictions() : 0;
      auto skipped = skip_invalid_entries(self, batch, box);
      if (box != nullptr && box->skipped().evictions() > evictions) {
        skip_counts before{box->skipped()};
        before.evictions = evictions;
        count_skip_memory(self, *box, before);
      }
      if (skipped.count > 0) {
        auto& stats = self->state.stats;
        stats.set_ae_records_skipped(stats.ae_records_skipped()
                                     + skipped.count);
        if (worth_logging(stats.ae_records_skipped(), skipped.count))
          log_line(log_level::warning, self->state.self_id,
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
    // -- anti-entropy --
    [=](ae_start_atom, const link_actor& link) {
      write_group_before_repair(self);
      pb::Envelope env;
      env.set_hops_left(1);
      // The peer's records we skipped are presented as held: a bucket
      // that differs only by them is not compared (nor asked for) again.
      auto& box = outbox_for(self, link);
      const skip_counts skips{box.skipped()};
      make_summary(self->state.store, *env.mutable_digest(), &box.skipped());
      count_skip_memory(self, box, skips);
      auto& stats = self->state.stats;
      stats.set_ae_rounds(stats.ae_rounds() + 1);
      send_ae_frame(self, link, env);
    },
    [=](ae_digest_atom, const link_actor& link, const pb::Digest& d) {
      write_group_before_repair(self);
      on_digest(self, link, d);
    },
    [=](ae_ack_atom, const link_actor& link, uint64_t session) {
      auto i = self->state.outboxes.find(link.address());
      if (i == self->state.outboxes.end())
        return;
      i->second.second.acknowledge(session);
      i->second.second.note_progress(self->state.clock());
      write_group_before_repair(self);
      pump(self, link);
    },
    // -- from the lease manager --
    [=](purge_atom, uint64_t horizon_us) {
      auto& st = self->state;
      auto purged = st.rules.purge_tombstones(st.store, horizon_us);
      if (st.persistence && !purged.empty()) {
        st.persistence->stage_erase(purged, st.store.entry_count());
        after_write(self, nullptr);
      }
      uint64_t remaining = st.store.entry_count() - st.store.live_count();
      st.purge_pending = remaining > 0;
      return std::make_tuple(static_cast<uint64_t>(purged.size()), remaining);
    },
    // -- storage --
    [=](storage_sync_atom) { write_group(self); },
    [=](storage_tick_atom) {
      auto& st = self->state;
      st.tick_scheduled = false;
      if (st.persistence && st.persistence->unsynced())
        request_sync(self);
    },
    [=](storage_synced_atom, uint64_t ticket, const std::string& error) {
      // Like a failed engine write: the store stops rather than
      // acknowledge what it cannot keep.
      if (!error.empty())
        throw storage_error(error);
      self->state.persistence->synced(ticket);
      release_synced(self, ticket);
    },
    [=](storage_alive_atom) {
      auto& st = self->state;
      if (!st.persistence)
        return;
      st.persistence->stage_alive(st.rules.now_us());
      after_write(self, nullptr);
      self->delayed_send(self, st.alive_interval, storage_alive_atom::value);
    },
    // -- confirmed writes --
    [=](confirm_atom, pb::ConfirmQuery& q) { on_confirm_query(self, q); },
    [=](confirm_tick_atom) {
      auto& st = self->state;
      st.confirm_tick_armed = false;
      if (auto n = st.waits.expire(st.rules.now_us()); n > 0) {
        st.stats.set_confirm_waits_expired(st.stats.confirm_waits_expired()
                                           + n);
        if (worth_logging(st.stats.confirm_waits_expired(), n))
          log_line(log_level::info, st.self_id,
                   "confirm: " + std::to_string(n)
                     + " held confirmation quer(ies) expired unanswered "
                       "(their writes never arrived); "
                     + std::to_string(st.stats.confirm_waits_expired())
                     + " in all");
      }
      arm_confirm_tick(self);
    },
    // -- control --
    [=](events_atom, bool on) {
      self->state.publish_events = on;
      return on;
    },
    [=](dump_atom) { return self->state.store.canonical_bytes(); },
    [=](export_atom) { return self->state.store.export_all(); },
    [=](stats_atom) {
      auto stats = self->state.stats;
      stats.set_live_keys(self->state.store.live_count());
      uint64_t outbox_bytes = 0;
      uint64_t skip_bytes = 0;
      for (auto& kv : self->state.outboxes) {
        outbox_bytes += kv.second.second.queued_bytes();
        skip_bytes += kv.second.second.skipped().bytes();
      }
      stats.set_ae_outbox_bytes(outbox_bytes);
      stats.set_ae_skip_memory_bytes(skip_bytes);
      stats.set_confirm_waits(self->state.waits.size());
      stats.set_confirm_wait_bytes(self->state.waits.bytes());
      stats.set_entries(self->state.store.entry_count());
      if (const auto& p = self->state.persistence) {
        auto* out = stats.mutable_storage();
        out->set_data_dir(self->state.data_dir);
        out->set_durability(to_string(p->mode()));
        out->set_entries_loaded(self->state.entries_loaded);
        out->set_load_ms(self->state.load_ms);
        p->write_stats(*out);
      }
      return stats;
    },
    [=](stats_atom, lease_atom) {
      auto& st = self->state;
      auto stats = st.lease_stats;
      stats.set_tombstones(st.store.entry_count() - st.store.live_count());
      stats.set_hlc_wall_us(st.rules.clock().high_water().wall_us);
      if (st.fence) {
        stats.set_clock_fenced(st.fence->fenced() ? 1 : 0);
        stats.set_clock_refused_writes(st.fence->refused_writes());
        stats.set_clock_refused_peers(st.fence->refused_peers());
        stats.set_clock_fence_raised(st.fence->times_raised());
      }
      return stats;
    },
  };
}

} // namespace syncmesh
