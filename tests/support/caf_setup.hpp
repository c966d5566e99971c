#pragma once

// Actor system configurations and small helpers shared by syncmesh's tests
// and benchmark.

#include <chrono>
#include <thread>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/atom.hpp>
#include <caf/scoped_actor.hpp>

#include "actors/atoms.hpp"
#include "actors/facade.hpp"
#include "support/eventually.hpp"
#include "syncmesh/sync_socket.hpp"
#include "syncmesh/testing.hpp"

namespace syncmesh::test {

/// A deterministic system: CAF's test coordinator (virtual time, one thread)
/// and its test multiplexer (no sockets).
using deterministic_config = syncmesh::testing::deterministic_config;

/// A real system with two scheduler threads, as on the CI machine.
struct threaded_config : caf::actor_system_config {
  threaded_config() {
    configure(*this);
    set("scheduler.max-threads", size_t{2});
  }
};

/// The router counters of a running node (empty counters on failure).
inline pb::RouterStats router_stats(caf::actor_system& sys,
                                    const sync_socket& sock) {
  caf::scoped_actor self{sys};
  pb::RouterStats result;
  self
    ->request(internals(sock).router, std::chrono::seconds(10),
              stats_atom::value)
    .receive([&](pb::RouterStats& x) { result = std::move(x); },
             [](caf::error&) {});
  return result;
}

} // namespace syncmesh::test
