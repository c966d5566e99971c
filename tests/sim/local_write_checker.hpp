#pragma once

// The invariants of local writes and of the event stream, as a plain class
// fed with what the simulator observes (events as a subscriber sees them,
// acknowledgements and the store's entry at the instant each one arrived).
// It holds no cluster, so sim_tests can feed it a broken history and see
// every invariant fail.
//
// The invariants, each reported under its own name:
// - "read-your-writes": when the acknowledgement of a local write arrives,
//   the local store holds that write or something newer.
// - "no-silent-drop": an acknowledged local write was applied by the local
//   store (it published an event with exactly the acknowledged version), so
//   it beat whatever the store had merged before; a write that lost (a stale
//   HLC, a renewal that arrived after the margin) must be refused, not acked.
// - "lease-decision": a local write that took a key from another claimer did
//   so only after that claimer's lease (plus the margin) had ended, judged by
//   the store's entry just before the write (the event before it).
// - "issue-order": local writes to one key issued by one client in order are
//   applied in that order (their acknowledged versions increase with it).
// - "event-order": update/delete events of one key never go backwards in
//   version in a subscriber's stream (an event carries the entry's newest
//   version, so two events may carry the same one).
// - "lease-lost-order": a lease_lost for a key follows an event in which
//   this node held that key's lease (the update that made it owner), with no
//   other loss or change of owner in between.

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "messages/version.hpp"

namespace syncmesh::sim {

/// One broken invariant found by local_write_checker.
struct finding {
  /// The invariant's name (see the top of local_write_checker.hpp).
  std::string invariant;
  /// What exactly went wrong.
  std::string detail;
  /// The key involved.
  std::string key;
};

/// Renders a version compactly for findings and traces.
std::string show_version(const version& v);

/// Checks the invariants at the top of this header for every node of a run.
class local_write_checker {
public:
  /// What the checker needs to know of the nodes' configuration.
  struct settings {
    /// Leasing on: lease-decision is checked.
    bool leasing = true;
    /// The nodes' lease_margin (µs).
    uint64_t lease_margin_us = 0;
    /// The nodes' tombstone_horizon (µs): a purged tombstone lets an older
    /// write back, which is the one way an event may go back in version.
    uint64_t tombstone_horizon_us = 0;
  };

  /// Checks `nodes` node slots.
  local_write_checker(size_t nodes, settings cfg);

  /// Node `node` lost its store (stopped or crashed): forgets its events and
  /// acknowledgements; it starts again from nothing.
  void forget(size_t node);

  /// An update (`live`) or delete event for `key` with version `v` reached
  /// node `node`'s subscriber; `wall_us` is that node's wall clock now.
  void on_event(size_t node, const std::string& key, bool live,
                const version& v, uint64_t wall_us);

  /// A lease_lost event for `key` reached node `node`, whose ID is `self`.
  void on_lease_lost(size_t node, const raw_node_id& self,
                     const std::string& key);

  /// Numbers a local write to `key` on `node` in issue order; hand the
  /// number to on_acked.
  uint64_t issue(size_t node, const std::string& key);

  /// Local write number `seq` to `key` on node `node` (ID `self`) was
  /// acknowledged with version `v`. `store_at_ack` is the newest version the
  /// store held for the key when the acknowledgement arrived (nullopt: no
  /// entry). Call it once the events of that instant have arrived.
  void on_acked(size_t node, const raw_node_id& self, const std::string& key,
                uint64_t seq, const version& v,
                const std::optional<version>& store_at_ack);

  /// The findings so far, oldest first; clears them.
  std::vector<finding> take_findings();

private:
  /// One update or delete event as a subscriber saw it.
  struct observed {
    bool live = false;
    version ver;
    uint64_t wall_us = 0;
  };

  /// The recent events of one key at one node, oldest first.
  struct key_stream {
    std::deque<observed> events;
    /// Events were dropped from the front: the oldest one kept has an
    /// unknown predecessor.
    bool truncated = false;
  };

  /// One acknowledged write, for issue-order.
  struct acked {
    uint64_t seq = 0;
    version ver;
  };

  /// Per node: the streams of its keys, the next issue number and the
  /// acknowledged writes of each key.
  struct node_view {
    std::map<std::string, key_stream> streams;
    std::map<std::string, uint64_t> next_seq;
    std::map<std::string, std::deque<acked>> acks;
  };

  void report(const std::string& invariant, const std::string& key,
              std::string detail);

  settings cfg_;
  std::vector<node_view> nodes_;
  std::vector<finding> findings_;
};

} // namespace syncmesh::sim
