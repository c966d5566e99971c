#pragma once

#include <map>
#include <string>

#include <caf/fwd.hpp>
#include <caf/stateful_actor.hpp>

#include "actors/router_state.hpp"
#include "syncmesh/config.hpp"
#include "syncmesh/pb/requests.pb.h"

namespace syncmesh {

/// State of the router actor.
struct router_state {
  /// Sets the router of node `self` up.
  void init(const config& cfg, const node_id& self);

  /// Encodes outgoing writes into frames.
  envelope_builder builder;
  /// Limits checked on inbound writes.
  write_limits limits;
  /// Wall clock for envelope times.
  wall_clock clock;
  /// Peer links by peer ID; each receives `(frame_atom, bytes)`.
  std::map<std::string, caf::actor> peers;
  /// Where inbound writes go (the lease manager).
  caf::actor lease_manager;
  /// Counters.
  pb::RouterStats stats;

  /// The actor's name in CAF's registry and logs.
  static inline const char* name = "syncmesh.router";
};

/// The router: the node's routing and flood table. Messages:
/// - `(changed_atom, origin, WriteBatch)` from the store: every write that
///   changed the store, flooded as frames to every peer but its origin;
/// - `(inbound_atom, peer, Envelope) -> bool` from peer links: writes from
///   the mesh, validated and passed to the lease manager; malformed input is
///   refused with errc::malformed and changes nothing;
/// - `(attach_atom, peer, actor)`, `(detach_atom, peer)`: peer links
///   (monitored, dropped when they terminate);
/// - `(wire_atom, lease_manager)`, `(stats_atom) -> RouterStats`.
caf::behavior router_actor(caf::stateful_actor<router_state>* self,
                           const config& cfg, const node_id& id);

} // namespace syncmesh
