// The router in py2p mode: broadcasts are relayed as received (py2p's
// waterfall, aged and de-duplicated) and local writes are announced as py2p
// store messages.

#include <caf/all.hpp>

#include "actors/atoms.hpp"
#include "actors/log.hpp"
#include "actors/router_internal.hpp"
#include "syncmesh/caf_types.hpp"

namespace syncmesh {

namespace {

uint64_t wall_seconds(router_self self) {
  return now_us(self) / 1'000'000;
}

} // namespace

namespace {

/// Hands on the entries of a peer's initial sync that changed our store to
/// every other py2p peer, within py2p's own rules: each one a 5-packet store
/// with the entry's own owner (in the msgpack type it arrived in) and
/// timestamp, so nothing is re-stamped and every receiver decides it as an
/// initial-sync record (fill a gap, lease check with that owner and time).
/// Sent as a broadcast from us with the current time, so py2p/js2p peers
/// flood it through their whole mesh once (waterfall) instead of keeping it
/// to our direct neighbours; our own copy coming back is dropped by our
/// waterfall, and a broadcast is never handed on a second time (only
/// whispered initial syncs are), so nothing echoes. The volume follows the
/// peer's initial sync, which the link's ingress window paces; the links'
/// send queues shed beyond their bound and repair by repeating their sync.
void py2p_relay_catch_up(router_self self, const std::string& origin,
                         const pb::WriteBatch& batch) {
  auto& st = self->state;
  auto now_s = wall_seconds(self);
  uint64_t relayed = 0;
  for (const auto& rec : batch.records()) {
    // Initial syncs carry whole values (py2p sends no nil or delta there).
    if (rec.op_case() != pb::WriteRecord::kValue)
      continue;
    const auto& owner = rec.version().claimer();
    auto payload
      = py2p::store5_payload(rec.key(), rec.value(), st.py2p_ids.value(owner),
                             rec.version().stamp().wall_us() / 1'000'000);
    auto raw = py2p::make_raw(
      py2p::build(py2p::flag::broadcast, st.self_id, now_s, payload));
    st.py2p_seen.remember(raw.id, now_s, now_s);
    auto bytes = raw.id + raw.msgpack;
    send_to_all(self, caf::make_message(frame_atom::value, bytes), origin);
    // Also for peers that attach while py2p still accepts it.
    st.py2p_recent.add({origin, now_s, std::move(bytes)});
    ++relayed;
  }
  bump(st.stats, &pb::RouterStats::py2p_catch_up_relayed,
       &pb::RouterStats::set_py2p_catch_up_relayed, relayed);
  st.stats.set_py2p_catch_up_forgotten(st.py2p_recent.forgotten());
}

} // namespace

/// Announces local writes to py2p peers: one 3-packet store (or delta, or
/// nil store) broadcast per record. Remote writes are not re-flooded: their
/// original bytes were relayed when they arrived (on_py2p_inbound), except
/// what a peer's initial sync (a whisper, never relayed by py2p) changed.
void py2p_flood_local(router_self self, const std::string& origin,
                      const pb::WriteBatch& batch) {
  auto& st = self->state;
  if (!origin.empty() && batch.py2p_catch_up()) {
    py2p_relay_catch_up(self, origin, batch);
    return;
  }
  if (!origin.empty() || st.peers.empty())
    return;
  for (const auto& rec : batch.records()) {
    auto raw = py2p::make_raw(local_write_message(rec, st.self_id));
    auto time_s = rec.version().stamp().wall_us() / 1'000'000;
    // Our own broadcast coming back over another path is dropped.
    st.py2p_seen.remember(raw.id, time_s, wall_seconds(self));
    send_to_all(self,
                caf::make_message(frame_atom::value, raw.id + raw.msgpack),
                std::string{});
  }
}

/// A message from a py2p link: broadcasts are aged, de-duplicated and
/// relayed as received to every peer but their original sender (py2p's
/// waterfall); writes then go to the lease manager, which decides them with
/// py2p's rule; the rest (user messages, lookups) to the mesh_socket half.
caf::result<bool> on_py2p_inbound(router_self self, const std::string& peer,
                                  const std::string& id,
                                  const std::string& msgpack,
                                  const std::string& sender, uint64_t time,
                                  bool broadcast, pb::WriteBatch& batch,
                                  bool initial_sync) {
  auto& st = self->state;
  if (broadcast) {
    auto verdict = st.py2p_seen.admit(id, time, wall_seconds(self));
    if (verdict != py2p_waterfall::verdict::fresh)
      return true;
    auto msg = caf::make_message(frame_atom::value, id + msgpack);
    send_to_all(self, msg, sender);
  }
  if (batch.records_size() == 0) {
    py2p_on_mesh_message(self, peer, id, msgpack);
    return true;
  }
  skip_invalid_records(self, peer, batch);
  if (batch.records_size() == 0)
    return true;
  bump(st.stats, &pb::RouterStats::records_in, &pb::RouterStats::set_records_in,
       static_cast<uint64_t>(batch.records_size()));
  if (!st.store)
    return true;
  // A whispered initial sync reached only us: what it changes is handed on
  // (py2p_relay_catch_up). A broadcast one was relayed as received above.
  batch.set_py2p_catch_up(initial_sync && !broadcast);
  // The store's reply, once applied, returns the link's credit.
  auto rp = self->make_response_promise<bool>();
  return rp.delegate(st.store, py2p_write_atom::value, peer, std::move(batch),
                     initial_sync);
}

void py2p_on_attached(router_self self, const std::string& peer) {
  auto& st = self->state;
  auto i = st.peers.find(peer);
  if (i == st.peers.end())
    return;
  // The same bytes (same id and time) as every other peer got: a peer
  // whose mesh already has them drops them in its waterfall.
  for (const auto& x : st.py2p_recent.young(wall_seconds(self)))
    if (x.origin != peer)
      send_shared(i->second.link,
                  caf::make_message(frame_atom::value, x.id_and_msgpack));
}

void on_py2p_id_type(router_self self, const std::string& id, bool bin,
                     bool first_hand) {
  auto& st = self->state;
  if (id.empty() || id.size() > max_node_id_size)
    return;
  auto before = st.py2p_ids.evictions();
  st.py2p_ids.observe(id, bin, first_hand);
  if (st.py2p_ids.evictions() == before)
    return;
  st.stats.set_py2p_id_types_evicted(st.py2p_ids.evictions());
  // One line per 1024 evictions: a peer inventing IDs must not flood the log.
  if (before % 1024 == 0)
    log_line(log_level::warning, st.self_id,
             "py2p ID types: forgot the type of the ID used longest ago to "
             "stay within the bound ("
               + std::to_string(st.py2p_ids.evictions())
               + " forgotten so far; such an ID goes out as str)");
}

std::vector<std::string> py2p_bin_ids(router_self self,
                                      const std::vector<std::string>& ids) {
  std::vector<std::string> bins;
  for (const auto& id : ids)
    if (self->state.py2p_ids.is_bin(id))
      bins.push_back(id);
  return bins;
}

} // namespace syncmesh
