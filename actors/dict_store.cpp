#include "actors/dict_store.hpp"

#include <caf/all.hpp>

#include "actors/atoms.hpp"
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

batch_result apply_batch(self_ptr self, pb::WriteBatch& batch,
                         bool keep_old_value) {
  batch_result result;
  for (auto& rec : *batch.mutable_records()) {
    auto out = self->state.store.apply(rec, keep_old_value, result.error);
    if (!result.error.empty())
      break;
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

caf::behavior dict_store_actor(self_ptr self, caf::actor router) {
  self->state.router = std::move(router);
  return {
      [=](wire_atom, caf::actor events) { self->state.events = events; },
      [=](events_atom, bool on) { self->state.publish_events = on; },
      [=](local_atom, pb::WriteBatch& batch) -> caf::result<pb::WriteAck> {
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
      },
      [=](erase_atom, pb::WriteBatch& batch) -> caf::result<pb::DeleteReply> {
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
      },
      [=](remote_atom, std::string& origin, pb::WriteBatch& batch) {
        auto res = apply_batch(self, batch, false);
        flood(self, std::move(origin), std::move(res.changed));
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
        for (const auto* key :
             store.sorted_live_keys(req.prefix(), req.limit())) {
          auto* item = snap.add_items();
          item->set_key(*key);
          if (!req.keys_only()) {
            const auto* entry = store.find(*key);
            to_proto(entry->read(), item->mutable_value());
            to_proto(entry->head(), item->mutable_meta());
          }
        }
        return snap;
      },
      [=](purge_atom, const std::vector<std::string>& keys) {
        self->state.store.purge(keys);
      },
      [=](dump_atom) { return self->state.store.canonical_bytes(); },
  };
}

} // namespace syncmesh
