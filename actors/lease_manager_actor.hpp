#pragma once

// The interface of the lease manager (lease_manager.hpp) and the notes the
// dict store sends it.

#include <cstdint>
#include <string>
#include <vector>

#include <caf/meta/type_name.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "actors/atoms.hpp"
#include "actors/dict_store_actor.hpp"
#include "actors/lease_state.hpp"
#include "syncmesh/facade.hpp"

namespace syncmesh {

/// What the dict store tells the lease manager about one applied write, in
/// the order the writes were applied.
struct store_note {
  /// The update or delete event for subscribers (no kind set when nobody
  /// listens or the write changed no visible value).
  pb::Event event;
  /// True when the write changed a key whose lease this node held.
  bool lease_changed = false;
  /// When `lease_changed`: who holds the key now and what we held.
  lease_change lease;
};

/// The notes of one batch of writes.
using store_notes = std::vector<store_note>;

/// Makes lease_change a CAF message element.
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, lease_change& x) {
  return f(caf::meta::type_name("syncmesh.lease_change"), x.key,
           x.old_lease_end_us, x.new_claimer, x.new_claim_us);
}

/// Makes store_note a CAF message element.
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, store_note& x) {
  return f(caf::meta::type_name("syncmesh.store_note"), x.event,
           x.lease_changed, x.lease);
}

/// The lease manager: the time-driven and policy duties of leasing, beside
/// the dict store, which keeps the per-write lease decision (see
/// lease_manager.hpp for why). Messages:
/// - `(wire_atom, store, facade)`: where released writes, purges and
///   events go;
/// - `(notes_atom, store_notes)` from the store, in the order its writes
///   were applied: update/delete events are passed on to the facade, and a
///   change of a lease this node held is checked for a takeover, which
///   sends `lease_lost` to the facade right before that write's event;
/// - `(hold_atom, peer, WriteBatch)`: remote writes stamped too far ahead of
///   our clock (the clock-offset fence), held (bounded) and sent back to the
///   store as `(remote_atom, peer, WriteBatch)` when their time comes;
/// - `(tombstones_atom)`: the store holds tombstones; purges are scheduled
///   until none is left;
/// - `(tick_atom, generation)`: its single timer (at most one armed, for the
///   earliest due time: delayed_send cannot be cancelled in CAF 0.17);
/// - `(stats_atom, lease_atom) -> LeaseStats`: its counters merged with the
///   store's part.
using lease_manager_actor = caf::typed_actor<
  caf::reacts_to<wire_atom, dict_store_actor, facade_actor>,
  caf::reacts_to<notes_atom, store_notes>,
  caf::reacts_to<hold_atom, std::string, pb::WriteBatch>,
  caf::reacts_to<tombstones_atom>, caf::reacts_to<tick_atom, uint64_t>,
  caf::replies_to<stats_atom, lease_atom>::with<pb::LeaseStats>>;

} // namespace syncmesh
