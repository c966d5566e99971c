#pragma once

#include <cstdint>
#include <deque>
#include <string>

#include <caf/fwd.hpp>
#include <caf/stateful_actor.hpp>

#include "actors/dict_store_actor.hpp"
#include "actors/lease_manager_actor.hpp"
#include "syncmesh/clock.hpp"
#include "syncmesh/config.hpp"

namespace syncmesh {

/// A remote write held because its stamp was too far ahead of our clock.
struct held_write {
  /// The peer it came from.
  std::string origin;
  /// The write.
  pb::WriteRecord record;
};

/// State of the lease manager actor (interface: lease_manager_actor.hpp).
///
/// The lease manager takes the time-driven and policy duties of leasing:
/// its single timer (held writes, the tombstone horizon), the clock-offset
/// fence (remote writes stamped too far ahead are held, bounded), detecting
/// takeovers of this node's leases and telling subscribers (`lease_lost`,
/// in order with the updates: every update/delete event passes through it,
/// one FIFO from the store to the facade), and the lease metrics. The
/// per-write lease decision for local writes stays in the dict store, which
/// sequences every write (see dict_store.hpp for why): the lease manager
/// keeps no table of keys at all, so it costs no memory per key, and it is
/// not on the path of a write's acknowledgement.
struct lease_manager_state {
  /// Sets the lease manager of node `self` up.
  void init(const config& cfg, const raw_node_id& self);

  /// This node's ID (takeovers are of leases it held).
  raw_node_id self_id;
  /// Wall clock (µs) for due times.
  wall_clock clock;
  /// How far ahead of our clock a remote stamp may be before it is held.
  uint64_t max_skew_us = 0;
  /// Where held writes and purges go.
  dict_store_actor store;
  /// Where events go (the facade).
  facade_actor events;
  /// Remote writes waiting for the wall clock, in arrival order (bounded).
  std::deque<held_write> held;
  /// Most writes held at once.
  size_t max_held = 0;
  /// How long tombstones are kept.
  uint64_t horizon_us = 0;
  /// When the next purge is due (wall µs), 0 when none is scheduled.
  uint64_t purge_due_us = 0;
  /// The timer's generation: only the newest armed tick acts.
  uint64_t timer_generation = 0;
  /// When the armed timer fires (wall µs), 0 when none is armed.
  uint64_t timer_due_us = 0;
  /// Its own counters (held, dropped, lost, purged); the store adds the
  /// write path's.
  pb::LeaseStats stats;

  /// The actor's name in CAF's registry and logs.
  static inline const char* name = "syncmesh.lease_manager";
};

/// The lease manager's behavior (see lease_manager_actor for its messages).
lease_manager_actor::behavior_type lease_manager_behavior(
  lease_manager_actor::stateful_pointer<lease_manager_state> self,
  const config& cfg, const raw_node_id& id);

} // namespace syncmesh
