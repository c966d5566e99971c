#pragma once

#include <cstdint>
#include <deque>
#include <string>

#include <caf/fwd.hpp>
#include <caf/message_handler.hpp>
#include <caf/stateful_actor.hpp>

#include "actors/lease_state.hpp"
#include "actors/router_state.hpp"
#include "syncmesh/config.hpp"
#include "syncmesh/pb/requests.pb.h"

namespace syncmesh {

/// A remote write held because its stamp was too far ahead of our clock.
struct held_write {
  /// The peer it came from.
  std::string origin;
  /// The write.
  pb::WriteRecord record;
};

/// The lease manager's part of the dict store actor's state. The lease
/// manager is not an actor of its own: its rules work on the entry heads of
/// the store, and one table of keys for both halves the memory per key.
struct lease_manager_state {
  /// Sets the rules up from the node's configuration.
  void init(const config& cfg, const node_id& self);

  /// The rules, the clock and the store they decide on.
  lease_table table;
  /// Remote writes waiting for the wall clock (bounded).
  std::deque<held_write> held;
  /// Most writes held at once.
  size_t max_held = 0;
  /// How long tombstones are kept.
  uint64_t horizon_us = 0;
  /// The timer's generation: only the newest armed tick acts.
  uint64_t timer_generation = 0;
  /// When the armed timer fires (wall µs), 0 when none is armed.
  uint64_t timer_due_us = 0;
  /// py2p mode: erase/pop allowed (config::py2p_allow_delete).
  bool py2p_allow_delete = false;
  /// Limits checked on anti-entropy entries.
  write_limits limits;
  /// Counters.
  pb::LeaseStats stats;

  /// The actor's name in CAF's registry and logs.
  static inline const char* name = "syncmesh.lease_manager";
};

struct dict_store_state;

/// The lease manager's handlers, part of the dict store actor (see
/// dict_store.hpp): the single sequencer of every write that reaches the
/// node. Local writes (`SetRequest`, `UpdateRequest`, `DeleteRequest`,
/// `DeltaRequest`, `PopItemRequest`, forwarded by the facade) are decided,
/// stamped and applied, and answered once applied. Remote writes
/// `(remote_atom, peer, WriteBatch) -> bool` from the router are never
/// refused for lease reasons; those stamped too far in the future are held.
/// The reply (once applied or held) returns the sending link's credit. Also:
/// `(py2p_write_atom, peer, WriteBatch, initial_sync)`,
/// `(ae_entries_atom, peer, WriteBatch) -> bool`, `(tick_atom, generation)`,
/// `(stats_atom, lease_atom) -> LeaseStats`. At most one timer is armed at
/// any time.
caf::message_handler
lease_manager_handlers(caf::stateful_actor<dict_store_state>* self);

} // namespace syncmesh
