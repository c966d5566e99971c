// The application's test of leader_lease.hpp with syncmesh's test kit: three
// simulated nodes on virtual time, each running the unchanged application
// code on its own sync_socket, through a partition of the leader, a heal,
// a crash and a restart. The kit prints the seed and its trace when a check
// fails: `SYNCMESH_TEST_SEED=<seed> ./leader_lease_test` replays it.

#define BOOST_TEST_MODULE leader_lease_test
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include <syncmesh/sync_socket.hpp>
#include <syncmesh/testing.hpp>
#include <syncmesh/testing_boost.hpp>

#include "leader_lease.hpp"

using namespace std::chrono_literals;
namespace kit = syncmesh::testing;

namespace {

/// Three nodes whose leases last 6 s (the election renews every 2 s).
kit::cluster_options three_nodes() {
  kit::cluster_options opts;
  opts.nodes = 3;
  opts.seed = 2026;
  opts.node_config.cluster_size = 3;
  opts.node_config.lease_duration = 6s;
  opts.node_config.request_timeout = 5s;
  return opts;
}

struct fixture : kit::cluster_fixture {
  fixture() : cluster_fixture(three_nodes()) {}
};

/// The application on every node of the cluster, and what the test saw.
class election {
public:
  election(kit::cluster& mesh, example::leader_lease::options opts)
      : mesh_(mesh), opts_(std::move(opts)), socks_(mesh.size()),
        leases_(mesh.size()), was_leader_(mesh.size(), false) {
    for (size_t i = 0; i < mesh.size(); ++i)
      start(i);
  }

  /// The application starts on node i (after the node started).
  void start(size_t i) {
    socks_[i] = std::make_unique<syncmesh::sync_socket>(mesh_, i);
    leases_[i] = std::make_unique<example::leader_lease>(*socks_[i], opts_);
  }

  /// The application dies with node i.
  void crash(size_t i) {
    mesh_.stop(i, false);
    leases_[i].reset();
    socks_[i].reset();
    was_leader_[i] = false;
  }

  /// Every running node ticks (each tick runs the simulation while it
  /// waits for its confirmations), then two virtual seconds pass; counts
  /// the rounds that ended with more than one leader.
  void round() {
    tick_all();
    mesh_.advance(2s);
    count_leaders();
  }

  /// Every running node ticks. The application follows its node: it is
  /// gone while the node is down (a stop or crash closed its socket) and
  /// starts again once the node runs again.
  void tick_all() {
    for (size_t i = 0; i < leases_.size(); ++i) {
      if (socks_[i] && socks_[i]->closed()) {
        leases_[i].reset();
        socks_[i].reset();
      }
      if (!socks_[i] && mesh_.alive(i))
        start(i);
      if (leases_[i])
        leases_[i]->tick();
    }
  }

  /// Notes leadership changes in the trace and counts a split brain when
  /// more than one node leads.
  void count_leaders() {
    size_t leaders = 0;
    for (size_t i = 0; i < leases_.size(); ++i) {
      bool now = leases_[i] && leases_[i]->is_leader();
      if (now != was_leader_[i])
        mesh_.log(i, now ? "became leader" : "stepped down");
      was_leader_[i] = now;
      leaders += now ? 1 : 0;
    }
    if (leaders > 1) {
      mesh_.log(0, "two leaders at once");
      ++split_brains;
    }
  }

  /// The node that leads now, if exactly one does.
  std::optional<size_t> leader() const {
    std::optional<size_t> result;
    for (size_t i = 0; i < leases_.size(); ++i)
      if (leases_[i] && leases_[i]->is_leader()) {
        if (result)
          return std::nullopt;
        result = i;
      }
    return result;
  }

  /// Rounds that ended with two or more leaders.
  int split_brains = 0;

private:
  kit::cluster& mesh_;
  example::leader_lease::options opts_;
  std::vector<std::unique_ptr<syncmesh::sync_socket>> socks_;
  std::vector<std::unique_ptr<example::leader_lease>> leases_;
  std::vector<bool> was_leader_;
};

/// A condition for run_until: every node is linked to every other.
std::function<bool()> all_linked(kit::cluster& mesh) {
  return [&mesh] {
    for (size_t i = 0; i < mesh.size(); ++i)
      if (mesh.stats(i).router().peers() + 1 != mesh.size())
        return false;
    return true;
  };
}

/// Runs the scenario: a leader is elected, cut off from the others for a
/// minute, the cut heals, then the leader crashes and comes back with its
/// identity. Returns the election for the checks.
void run_scenario(kit::cluster& mesh, election& app) {
  mesh.connect(0, 1);
  mesh.connect(0, 2);
  mesh.connect(1, 2);
  for (int r = 0; r < 5; ++r)
    app.round();
  BOOST_REQUIRE_MESSAGE(app.leader(), "no leader after 10 s");
  auto first = *app.leader();
  std::vector<size_t> others;
  for (size_t i = 0; i < mesh.size(); ++i)
    if (i != first)
      others.push_back(i);
  mesh.partition({{first}, others});
  for (int r = 0; r < 30; ++r)
    app.round();
  mesh.heal_all();
  for (int r = 0; r < 10; ++r)
    app.round();
  if (auto now = app.leader()) {
    app.crash(*now);
    for (int r = 0; r < 5; ++r)
      app.round();
    mesh.restart(*now, kit::restart_mode::same_identity);
    for (size_t i = 0; i < mesh.size(); ++i)
      if (i != *now)
        mesh.connect(*now, i);
    app.start(*now);
  }
  for (int r = 0; r < 10; ++r)
    app.round();
}

} // namespace

BOOST_FIXTURE_TEST_CASE(one_leader_at_a_time_through_partition_and_crash,
                        fixture) {
  election app{mesh, {}};
  run_scenario(mesh, app);
  BOOST_CHECK_EQUAL(app.split_brains, 0);
  BOOST_CHECK_MESSAGE(app.leader(), "no single leader at the end");
  BOOST_CHECK(mesh.await_convergence(10s));
}

// The deliberately broken variant: claims without a majority. The kit's
// partition makes the cut-off leader keep leading while the others elect
// a new one; this test checks that the kit catches it.
// A random fault schedule (partitions, one-way cuts, clogged and lossy
// links, stops, crashes, clock skews) for five virtual minutes, the
// election ticking every two seconds throughout. Pauses are left out on
// purpose: a leader frozen for longer than its lease still believes it
// leads when it wakes, which a lease without fencing tokens cannot
// prevent (the kit shows it when they are switched on).
BOOST_FIXTURE_TEST_CASE(one_leader_at_a_time_under_random_faults, fixture) {
  mesh.connect(0, 1);
  mesh.connect(0, 2);
  mesh.connect(1, 2);
  // The schedule heals back to the links it finds at its start.
  BOOST_REQUIRE(mesh.run_until(all_linked(mesh), 10s));
  election app{mesh, {}};
  kit::fault_schedule chaos;
  chaos.span = 300s;
  chaos.pauses = false;
  chaos.tick = 2s;
  chaos.on_tick = [&] {
    app.count_leaders();
    app.tick_all();
  };
  auto summary = mesh.run_faults(chaos);
  BOOST_TEST_MESSAGE(summary.faults.size() << " faults injected");
  BOOST_CHECK_GT(summary.faults.size(), 50u);
  // A leader is due once the mesh is whole again: links that a fault at
  // the very end left broken are found by heartbeats and redialled.
  BOOST_REQUIRE(mesh.run_until(all_linked(mesh), 120s));
  for (int r = 0; r < 10; ++r)
    app.round();
  BOOST_CHECK_EQUAL(app.split_brains, 0);
  BOOST_CHECK_MESSAGE(app.leader(), "no single leader after the faults");
}

BOOST_FIXTURE_TEST_CASE(the_kit_catches_leaders_without_a_quorum, fixture) {
  example::leader_lease::options broken;
  broken.require_majority = false;
  election app{mesh, broken};
  run_scenario(mesh, app);
  BOOST_CHECK_GT(app.split_brains, 0);
}
