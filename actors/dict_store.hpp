#pragma once

#include <caf/fwd.hpp>
#include <caf/stateful_actor.hpp>

#include <map>

#include "actors/anti_entropy.hpp"
#include "actors/lease_manager.hpp"
#include "actors/store_state.hpp"
#include "syncmesh/clock.hpp"
#include "syncmesh/pb/requests.pb.h"

namespace syncmesh {

/// State of the dict store actor: the lease manager's rules with the entries
/// they decide on, where changed writes go (the router) and where events go
/// (the facade).
struct dict_store_state {
  /// The lease manager's part; it owns the dictionary (`lease.table`).
  lease_manager_state lease;
  /// The dictionary, read-only: writes go through `lease.table.record`.
  const store_state& store = lease.table.store();
  /// Receives every write that changed the store, to flood it.
  caf::actor router;
  /// Receives update/delete events (the facade).
  caf::actor events;
  /// Events are built only while someone listens.
  bool publish_events = false;
  /// Anti-entropy traffic to each peer link.
  std::map<caf::actor_addr, std::pair<caf::actor, ae_outbox>> outboxes;
  /// Size of anti-entropy windows in bytes.
  size_t window_bytes = 1024 * 1024;
  /// Bounds of each peer's anti-entropy outbox (budget, frame size).
  ae_limits ae_bounds;
  /// This node's ID, for log lines.
  std::string self_id;
  /// How anti-entropy compares differing buckets.
  ae_method method{};
  /// Tags of anti-entropy sessions.
  uint64_t next_session = 1;
  /// Wall clock for propagation delays.
  wall_clock clock;
  /// Counters (live_keys and entries are filled in when asked).
  pb::StoreStats stats;

  /// The actor's name in CAF's registry and logs.
  static inline const char* name = "syncmesh.dict_store";
};

/// The dict store: the lease manager's rules (lease_manager.hpp) and the
/// entries, in one actor so that every key is held in one table. Merges
/// writes by version, answers reads and snapshots, publishes update/delete
/// events and hands the router exactly the writes that changed the store.
/// Messages, besides the lease manager's:
/// - `(local_atom, WriteBatch) -> WriteAck` and
///   `(erase_atom, WriteBatch) -> DeleteReply`: local writes already stamped
///   (the lease manager's handlers apply theirs directly);
/// - `GetRequest -> GetReply`, `SnapshotRequest -> Snapshot`;
/// - `(events_atom, bool)`, `(wire_atom, events)`,
///   `(dump_atom) -> std::string` (canonical bytes);
///   `(export_atom) -> pb::WriteBatch` (every entry as records, by key);
///   `(stats_atom) -> StoreStats`;
/// - anti-entropy with the peer behind a link: `(ae_start_atom, link)` sends
///   our SUMMARY; `(ae_digest_atom, link, Digest)` answers a peer's digest;
///   `(ae_ack_atom, link, session)` releases the next window; entries
///   arrive as `(ae_entries_atom, peer, WriteBatch) -> bool` (checked by the
///   lease manager's handler first).
/// The key table is sized for `cfg.expected_keys` up front.
caf::behavior dict_store_actor(caf::stateful_actor<dict_store_state>* self,
                               const config& cfg, const node_id& id,
                               caf::actor router, size_t window_bytes);

// -- applying writes (used by the lease manager's handlers) -------------------

/// Applies stamped local writes; answers with the ack of the last one.
caf::result<pb::WriteAck>
apply_local_batch(caf::stateful_actor<dict_store_state>* self,
                  pb::WriteBatch& batch);

/// Applies a stamped local delete; answers with the old value.
caf::result<pb::DeleteReply>
apply_erase_batch(caf::stateful_actor<dict_store_state>* self,
                  pb::WriteBatch& batch);

/// Applies remote writes (from the mesh or anti-entropy) and floods those
/// that changed the store to every peer but `origin`; returns how many
/// changed it.
size_t apply_remote_batch(caf::stateful_actor<dict_store_state>* self,
                          std::string origin, pb::WriteBatch& batch);

} // namespace syncmesh
