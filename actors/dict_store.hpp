#pragma once

#include <caf/fwd.hpp>
#include <caf/stateful_actor.hpp>

#include <map>

#include "actors/anti_entropy.hpp"
#include "actors/store_state.hpp"
#include "syncmesh/clock.hpp"
#include "syncmesh/pb/requests.pb.h"

namespace syncmesh {

/// State of the dict store actor: the entries, where changed writes go (the
/// router) and where events go (the facade).
struct dict_store_state {
  /// The dictionary.
  store_state store;
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

/// The dict store: merges writes by version, answers reads and snapshots,
/// publishes update/delete events and hands the router exactly the writes
/// that changed the store. Messages:
/// - `(local_atom, WriteBatch) -> WriteAck` and
///   `(erase_atom, WriteBatch) -> DeleteReply`: local writes stamped by the
///   lease manager;
/// - `(remote_atom, peer, WriteBatch)`: writes from the mesh;
/// - `GetRequest -> GetReply`, `SnapshotRequest -> Snapshot`;
/// - `(purge_atom, keys)`, `(events_atom, bool)`, `(wire_atom, events)`,
///   `(dump_atom) -> std::string` (canonical bytes);
///   `(export_atom) -> pb::WriteBatch` (every entry as records, by key);
/// - anti-entropy with the peer behind a link: `(ae_start_atom, link)` sends
///   our SUMMARY; `(ae_digest_atom, link, Digest)` answers a peer's digest;
///   `(ae_ack_atom, link, session)` releases the next window; entries
///   arrive as `(ae_entries_atom, peer, WriteBatch) -> bool` through the
///   lease manager.
/// The key table is sized for `expected_keys` up front.
caf::behavior dict_store_actor(caf::stateful_actor<dict_store_state>* self,
                               caf::actor router, size_t window_bytes,
                               wall_clock clock, size_t expected_keys = 0,
                               ae_method method = {});

} // namespace syncmesh
