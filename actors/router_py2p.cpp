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

/// Announces local writes to py2p peers: one 3-packet store (or delta, or
/// nil store) broadcast per record. Remote writes are not re-flooded: their
/// original bytes were relayed when they arrived (on_py2p_inbound).
void py2p_flood_local(router_self self, const std::string& origin,
                      const pb::WriteBatch& batch) {
  auto& st = self->state;
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
  // The store's reply, once applied, returns the link's credit.
  auto rp = self->make_response_promise<bool>();
  return rp.delegate(st.store, py2p_write_atom::value, peer, std::move(batch),
                     initial_sync);
}

} // namespace syncmesh
