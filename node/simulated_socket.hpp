#pragma once

// A sync_socket on a node of the test kit (syncmesh/testing.hpp): the same
// API, but nothing waits on a thread. A blocking call runs the simulation
// (virtual time, the simulated network, every node's actors) until its
// reply arrives or its timeout passes in virtual time; callbacks run when
// the simulation reaches them, on the test's thread, between actor steps.
//
// Why a second mode rather than the threaded socket on a kit node: the
// kit's actors run only when the test's thread runs them, so a caller that
// sleeps on a condition variable waits for itself for ever.

#include <chrono>
#include <functional>
#include <memory>

#include "actors/facade.hpp"
#include "syncmesh/sync_socket.hpp"

namespace syncmesh {

/// What a socket on a simulated node needs from the simulation (the kit's
/// cluster implements it).
class simulation {
public:
  virtual ~simulation() = default;

  /// Runs the simulation until `done()` holds; false when `limit` of
  /// virtual time passed first.
  virtual bool run_until(const std::function<bool()>& done,
                         std::chrono::microseconds limit)
    = 0;

  /// True while an actor of the simulation runs on this thread: a blocking
  /// call there would wait for the very step it is part of.
  virtual bool inside_actor() const = 0;
};

/// Makes a socket's implementation for the running node `node` of a
/// simulation, on that node's actor system. The node stays the
/// simulation's: closing the socket does not stop it.
std::shared_ptr<sync_socket::impl>
make_simulated_socket(caf::actor_system& sys, const node_actors& node,
                      config cfg, std::weak_ptr<simulation> sim);

/// Runs the callbacks and message handlers of the events queued for a
/// simulated socket, in order; true when any ran. Not re-entered: events
/// that arrive while one runs (say, during a blocking call it makes) wait
/// for the next call.
bool run_simulated_callbacks(sync_socket::impl& sock);

/// Closes a simulated socket (calls in flight and later ones throw
/// errc::closed) and lets go of its node's actors, while their actor system
/// still exists: the socket may outlive the node (a stopped node) and the
/// cluster.
void detach_simulated_socket(sync_socket::impl& sock);

} // namespace syncmesh
