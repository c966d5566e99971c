#pragma once

#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <utility>

#include <caf/fwd.hpp>
#include <caf/stateful_actor.hpp>

#include "actors/anti_entropy.hpp"
#include "actors/backup_checkpoints.hpp"
#include "actors/clock_offset.hpp"
#include "actors/confirm_rules.hpp"
#include "actors/data_dir.hpp"
#include "actors/dict_store_actor.hpp"
#include "actors/lease_manager_actor.hpp"
#include "actors/lease_state.hpp"
#include "actors/router_actor.hpp"
#include "actors/router_state.hpp"
#include "actors/store_persistence.hpp"
#include "actors/store_reader.hpp"
#include "actors/store_state.hpp"
#include "syncmesh/clock.hpp"
#include "syncmesh/config.hpp"

namespace syncmesh {

/// State of the dict store actor (interface: dict_store_actor.hpp).
///
/// Why the per-write lease decision lives here and not in the lease manager:
/// the store is the single sequencer of every write that reaches the node,
/// so deciding, stamping and applying a local write in one step of the
/// store's mailbox keeps the invariants by construction: an acknowledged
/// write is in the store when acknowledged (read-your-writes, also with
/// leasing off, since the stamp comes from the clock that has seen every
/// merged stamp); a local write never takes a live lease the store knows of
/// and a renewal after the owner's margin is refused, not lost, because the
/// decision reads the entry it is applied to; local writes to one key apply
/// in issue order; answers the store alone can give (404, wrong type, pop,
/// popitem, py2p's arrival-order rule) need no second copy of the keys. A
/// lease manager deciding from its own view of leases would need a second
/// table of every key (over the memory target) and compare-and-set retries
/// against a view that can be stale. The rule is the plain `lease_rules`
/// class; the lease manager actor takes the time-driven and policy duties.
struct dict_store_state {
  /// Sets the store of node `self` up from the node's configuration.
  void init(const config& cfg, const raw_node_id& self);

  /// The dictionary: every key's entry (the node's one table of keys).
  store_state store;
  /// The lease rules and the hybrid clock; they work on `store`.
  lease_rules rules;
  /// Receives every write that changed the store, to flood it.
  router_actor router;
  /// Receives the notes of every applied write, in order (events, changes
  /// of our leases), writes held for the clock, and purge requests.
  lease_manager_actor lease_manager;
  /// Events are built only while someone listens.
  bool publish_events = false;
  /// Notes of the batch being applied (sent when the batch is done).
  store_notes notes;
  /// The lease manager knows that tombstones exist (until a purge leaves
  /// none).
  bool purge_pending = false;
  /// py2p mode: erase/pop allowed (config::py2p_allow_delete).
  bool py2p_allow_delete = false;
  /// Limits checked on anti-entropy entries.
  write_limits limits;
  /// Anti-entropy traffic to each peer link.
  std::map<caf::actor_addr, std::pair<link_actor, ae_outbox>> outboxes;
  /// Size of anti-entropy windows in bytes.
  size_t window_bytes = 1024 * 1024;
  /// Bounds of each peer's anti-entropy outbox (budget, frame size).
  ae_limits ae_bounds;
  /// This node's ID, for log lines.
  std::string self_id;
  /// Peer TLS is on: records stamped with this node's ID that it never
  /// made are refused (see accept_remote).
  bool guard_own_stamps = false;
  /// Every write this run makes is stamped at or after this time (µs):
  /// the start of the run, or the persisted HLC floor when later.
  uint64_t run_floor_us = 0;
  /// The data dir's storage (config::data_dir), or null in memory.
  std::shared_ptr<store_persistence> persistence;
  /// What waits for the group's engine write (and fsync with `always`):
  /// acknowledgements and floods, in the order the writes were applied.
  std::vector<std::function<void()>> after_write;
  /// A storage_sync_atom (the group's write) is in the mailbox.
  bool write_queued = false;
  /// An urgent storage_sync_atom is in the mailbox: the group is full and
  /// is written right after the current message.
  bool urgent_write_queued = false;
  /// Durability `always`: groups written to the engine whose sync is
  /// under way, with the ticket of that sync and what waits for it, oldest
  /// first.
  std::deque<std::pair<uint64_t, std::vector<std::function<void()>>>>
    sync_waiting;
  /// Durability `batch`: a storage_tick_atom is on its way.
  bool tick_scheduled = false;
  /// How often the data dir's "last alive" mark is refreshed.
  std::chrono::milliseconds alive_interval{60'000};
  /// What the start loaded (for stats).
  uint64_t entries_loaded = 0;
  /// How long the load took (ms).
  uint64_t load_ms = 0;
  /// The data dir, for stats and log lines.
  std::string data_dir;
  /// Where backups' consistent copies go (inside the data dir).
  backup_checkpoints checkpoints;
  /// Durability `batch`: the longest wait before a sync.
  std::chrono::milliseconds sync_interval{10};
  /// How anti-entropy compares differing buckets.
  ae_method method{};
  /// Tags of anti-entropy sessions.
  uint64_t next_session = 1;
  /// Wall clock for propagation delays.
  wall_clock clock;
  /// Counters (live_keys and entries are filled in when asked).
  pb::StoreStats stats;
  /// The lease counters of the write path (local writes, refusals, remote
  /// records); the lease manager adds its own.
  pb::LeaseStats lease_stats;
  /// The node's clock fence: while it is up every local write is refused
  /// (errc::clock_offset). None in tests of a lone store.
  std::shared_ptr<clock_fence> fence;
  /// Confirmation queries from other nodes, held until their writes arrive
  /// (bounded: config::max_confirm_waits, max_confirm_wait_bytes).
  confirm_waits waits;
  /// The longest a query is held (config::max_confirm_timeout, µs).
  uint64_t max_confirm_ttl_us = 300'000'000;
  /// A confirm_tick_atom is on its way.
  bool confirm_tick_armed = false;

  /// The actor's name in CAF's registry and logs.
  static inline const char* name = "syncmesh.dict_store";
};

/// The dict store's behavior (see dict_store_actor for its messages). The
/// key table is sized for `cfg.expected_keys` up front.
dict_store_actor::behavior_type dict_store_behavior(
  dict_store_actor::stateful_pointer<dict_store_state> self, const config& cfg,
  const raw_node_id& id, router_actor router, lease_manager_actor lease_manager,
  size_t window_bytes, std::shared_ptr<clock_fence> fence,
  std::shared_ptr<store_reader> reader, std::shared_ptr<durable_start> durable);

} // namespace syncmesh
