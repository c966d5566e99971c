#pragma once

// Seeded simulation runs: a workload and a fault schedule against a
// syncmesh::testing::cluster, and the invariants checked at the end of each
// run. Shared by syncmesh-sim (by hand) and sim_tests (under ctest).

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace syncmesh::sim {

/// What kind of trouble a scenario makes.
struct scenario {
  /// Name on the command line and in reports.
  std::string name;
  /// Nodes in the cluster: drawn from [min_nodes, max_nodes].
  size_t min_nodes = 3;
  /// See min_nodes.
  size_t max_nodes = 5;
  /// Leasing on (keys owned by their writer) or off.
  bool leasing = true;
  /// Symmetric partitions into random groups.
  bool partitions = false;
  /// One-way cuts.
  bool asymmetric_cuts = false;
  /// Nodes crash or stop, then come back empty with a new identity.
  bool churn = false;
  /// Nodes stop and come back with their identity (and HLC high-water mark).
  bool restarts = false;
  /// Nodes stop or crash and come back with their identity and everything
  /// their data dir held (every node has one; durability `always` on even
  /// seeds, `batch` on odd ones). Right after such a restart the node must
  /// hold exactly what it held when it went down.
  bool durable_restarts = false;
  /// Nodes freeze for a while (like SIGSTOP).
  bool pauses = false;
  /// Wall clocks drift apart: within the clock offset bound (±40 % of
  /// config::max_clock_offset, so any two stay within it) or, unless
  /// `skew_within_bound`, far beyond it (1-4 s).
  bool clock_skew = false;
  /// Skews stay within the bound: no lease may then be taken over while it
  /// runs, and no node may be refused or fenced for its clock.
  bool skew_within_bound = false;
  /// Frames are lost, duplicated and reordered.
  bool lossy = false;
  /// Virtual time the workload runs.
  std::chrono::seconds duration{20};
  /// Client operations per virtual second, over the whole cluster.
  unsigned ops_per_second = 50;

  /// True when the scenario injects faults at all.
  bool faulty() const noexcept {
    return partitions || asymmetric_cuts || churn || restarts
           || durable_restarts || pauses || clock_skew || lossy;
  }
};

/// The scenarios ctest runs; `syncmesh-sim --scenario=NAME` picks one.
const std::vector<scenario>& scenarios();

/// Finds a scenario by name; nullptr when none has it.
const scenario* find_scenario(const std::string& name);

/// One broken invariant.
struct violation {
  /// Which invariant ("convergence", "lost-write", "lease", "bounds",
  /// "liveness", "read-own-write", "clock-fence", "durable-restart", and
  /// those of local_write_checker.hpp: "read-your-writes", "no-silent-drop",
  /// "lease-decision", "issue-order", "event-order", "lease-lost-order").
  std::string invariant;
  /// What exactly went wrong.
  std::string detail;
  /// The key involved, if any.
  std::string key;
  /// The events of that key (or of the run), oldest first.
  std::vector<std::string> trace;
};

/// What one run did and found.
struct run_report {
  /// The scenario's name.
  std::string scenario;
  /// The seed; the run replays from it.
  uint64_t seed = 0;
  /// Nodes in the cluster.
  size_t nodes = 0;
  /// Faults injected (cuts, partitions, stops, pauses, skew changes, lossy
  /// periods).
  uint64_t faults = 0;
  /// Client operations issued and how many succeeded.
  uint64_t operations = 0;
  /// See operations.
  uint64_t acknowledged = 0;
  /// Writes refused because another node held the lease.
  uint64_t lease_refusals = 0;
  /// lease_lost events where the winner claimed before the old lease ended
  /// (it had not seen the renewal in time).
  uint64_t live_takeovers = 0;
  /// lease_lost events where an older claim whose lease had ended won over
  /// a newer claim by a node that had never seen it: a violation unless
  /// clocks are skewed (README, "Stale claims").
  uint64_t stale_takeovers = 0;
  /// lease_lost events at a lease's boundary (concurrent first claims, or a
  /// claim after the old lease ended).
  uint64_t boundary_takeovers = 0;
  /// lease_lost events where, in true (virtual) time, the winner claimed
  /// before the loser's lease ended: what clock offsets beyond the lease
  /// margin cause (the claim times above are read off skewed clocks).
  uint64_t true_live_takeovers = 0;
  /// Local writes refused with clock_offset (the node's clock fence).
  uint64_t clock_refusals = 0;
  /// Links refused or cut for the peer's clock, and times a fence went up,
  /// summed over the nodes at the end of the run.
  uint64_t clock_refused_peers = 0;
  /// See clock_refused_peers.
  uint64_t clock_fences = 0;
  /// Acknowledged writes lost together with every node that held them.
  uint64_t lost_with_node = 0;
  /// Durable restarts, and the writes their nodes had acknowledged (and
  /// held when they went down) that were checked right after them.
  uint64_t durable_restarts = 0;
  /// See durable_restarts.
  uint64_t durable_writes_checked = 0;
  /// Frames the network delivered, dropped, duplicated.
  uint64_t frames_delivered = 0;
  /// See frames_delivered.
  uint64_t frames_dropped = 0;
  /// See frames_delivered.
  uint64_t frames_duplicated = 0;
  /// Virtual time from the end of the faults to convergence (µs).
  int64_t convergence_us = -1;
  /// Keys (tombstones included) on each node at the end.
  size_t entries = 0;
  /// A digest of everything that happened: equal runs, equal digests.
  uint64_t digest = 0;
  /// Broken invariants; empty when the run passed.
  std::vector<violation> violations;
};

/// Runs `sc` with `seed`. `verbose` prints the trace as it happens.
run_report run(const scenario& sc, uint64_t seed, bool verbose = false);

/// Renders a report: one line when it passed, the seed, the invariant and
/// the trace of the key involved when it did not.
std::string describe(const run_report& report);

} // namespace syncmesh::sim
