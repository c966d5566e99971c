#pragma once

#include <caf/io/broker.hpp>

#include "actors/listener_actor.hpp"
#include "actors/peer_link.hpp"

namespace syncmesh {

/// State of the listener broker.
struct listener_state {
  /// Settings handed to every accepted link.
  link_params params;
  /// Connections accepted so far.
  uint64_t accepted = 0;

  /// The actor's name in CAF's registry and logs.
  static inline const char* name = "syncmesh.listener";
};

/// The listener's behavior (interface: listener_actor.hpp): accepts TCP
/// connections and forks a peer link for each (the router caps inbound links
/// when they attach).
caf::behavior listener_behavior(caf::io::stateful_broker<listener_state>* self,
                                link_params params);

} // namespace syncmesh
