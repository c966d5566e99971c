#pragma once

// A simulated syncmesh cluster for tests: N real nodes (the production
// actors and peer links) in one process, each on its own actor system with
// CAF's deterministic test coordinator and test multiplexer, joined by a
// simulated network that delays, reorders, duplicates and drops frames, cuts
// and heals links, and stops, pauses and restarts nodes. One virtual clock
// drives everything and every random choice comes from one seed, so a run
// replays exactly.
//
// Link with syncmesh::syncmesh_testing. Not thread-safe: drive a cluster
// from one thread.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include <caf/actor.hpp>
#include <caf/actor_cast.hpp>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/error.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/fwd.hpp>

#include "syncmesh/config.hpp"
#include "syncmesh/facade.hpp"
#include "syncmesh/node_id.hpp"
#include "syncmesh/pb/requests.pb.h"

namespace syncmesh {
class sync_socket;
} // namespace syncmesh

namespace syncmesh::testing {

/// An actor system configuration for deterministic tests: syncmesh's types,
/// CAF's test coordinator (virtual time, one thread) and test multiplexer
/// (no sockets). Every node of a cluster runs on one; tests of single actors
/// can use it directly.
struct deterministic_config : caf::actor_system_config {
  /// Loads syncmesh and selects the test scheduler and multiplexer.
  deterministic_config();
};

/// What the simulated network does to the frames of one direction of a link.
struct link_faults {
  /// Smallest one-way delay of a frame.
  std::chrono::microseconds min_latency{200};
  /// Largest one-way delay of a frame (uniformly distributed in between).
  std::chrono::microseconds max_latency{2000};
  /// Probability that a frame is lost.
  double drop = 0;
  /// Probability that a frame arrives twice.
  double duplicate = 0;
  /// Probability that a frame may overtake frames sent before it.
  double reorder = 0;

  /// True when frames may be lost, duplicated or reordered.
  bool lossy() const noexcept {
    return drop > 0 || duplicate > 0 || reorder > 0;
  }
};

/// How a stopped node comes back.
enum class restart_mode {
  /// An empty node with a new ID (a replaced machine).
  fresh,
  /// An empty store with the old ID and its persisted HLC high-water mark
  /// (a node whose data dir lost its entries but kept its ID).
  same_identity,
  /// The old ID and everything its data dir held when it stopped or crashed:
  /// the node loads its stored entries before it serves, as
  /// `syncmesh-node --data-dir` does. Needs cluster_options::durable_storage.
  /// A crash here is a process crash: what the store wrote to its engine
  /// survives (the OS holds the log), so every acknowledged write does, in
  /// every durability mode. Losing unsynced writes (a power cut) is what
  /// the crash tests' fault-injecting file layer covers, not this kit.
  durable,
};

/// The seed a test should use: SYNCMESH_TEST_SEED from the environment
/// (decimal) when set, else `fallback`. Throws std::invalid_argument when
/// the variable is set but not a number, so a typo never runs another seed.
uint64_t seed_from_env(uint64_t fallback);

/// One line of a cluster's trace (see cluster::trace).
struct trace_entry {
  /// Virtual time since the cluster started.
  std::chrono::microseconds at{0};
  /// The node's kit name (its ID, "n0-3fa9c1"); empty for the whole cluster.
  std::string node;
  /// "fault" (the test changed the network or a node), "event" (a node's
  /// update, delete or lease_lost), "log" (the node's own log line) or
  /// "app" (cluster::log).
  std::string kind;
  /// What happened.
  std::string text;
};

/// Settings of a simulated cluster.
struct cluster_options {
  /// Number of nodes.
  size_t nodes = 3;
  /// Seed of every random choice (latencies, faults, node IDs).
  uint64_t seed = 1;
  /// Configuration of every node. The cluster sets node_id, host, port,
  /// clock, dial_via_backend and data_dir itself; `durability` and
  /// `durability_interval` apply when durable_storage is on.
  config node_config;
  /// Give every node its own data dir (config::data_dir), in a temporary
  /// directory the cluster owns and removes when it is destroyed (in
  /// /dev/shm where there is one: a process crash keeps written data
  /// whether it was fsynced or not, so a disk would only add time), so that
  /// restart(i, restart_mode::durable) brings a node back with its entries.
  /// Off (the default), nodes keep everything in memory, as fast as ever:
  /// every node pays RocksDB's open and writes only when asked for.
  bool durable_storage = false;
  /// Faults of every link direction until changed.
  link_faults faults;
  /// Most bytes of trace the cluster keeps (text of its entries); the
  /// oldest entries go first, counted in trace_dropped().
  size_t trace_bytes = 4 * 1024 * 1024;
  /// Record every node's events in the trace (updates, deletes, lease_lost).
  bool trace_events = true;
  /// Node log lines up to this level (log_level: 1 error, 2 warning, 3 info,
  /// 4 debug) go to the trace even when log_level prints fewer.
  int trace_log_level = 2;
  /// Bytes one direction of a connection carries at once (the socket
  /// buffers): what a node writes beyond it waits in the node's send queue.
  size_t window_bytes = 256 * 1024;
  /// Wall clock of the nodes at virtual time 0 (µs since the epoch).
  uint64_t start_wall_us = 1'700'000'000'000'000;
  /// Log level of the nodes (0 quiet … 4 debug).
  int log_level = 0;

  /// Options whose node timers suit long virtual spans (see
  /// long_span_config): what a test of hours of virtual time (leases
  /// longer than a partition, say) should start from.
  static cluster_options long_span();
};

/// `base` with the node timers that run on their own, idle or not, made
/// long enough that hours of virtual time cost little real time: heartbeats
/// every 10 s (default 1 s) with a 60 s peer timeout (10 s), the redial
/// tick and first redial at 2 s (200 ms) with backoff up to 60 s (30 s),
/// anti-entropy every 60 s (30 s). An idle five-node mesh then costs about
/// a tenth of the real time per virtual hour (tests/bench/README.md, "Test
/// kit: cost per virtual hour"). The price: a cut link is noticed only
/// after 60 s, and a healed one may take a minute to be redialled, so give
/// await_convergence a few minutes.
config long_span_config(config base = {});

/// What the simulated network did so far.
struct network_counters {
  /// Frames handed to the receiving node.
  uint64_t frames_delivered = 0;
  /// Frames lost by the fault model.
  uint64_t frames_dropped = 0;
  /// Extra copies delivered by the fault model.
  uint64_t frames_duplicated = 0;
  /// Frames that were allowed to overtake earlier ones.
  uint64_t frames_reordered = 0;
  /// Frames swallowed by a cut link or a stopped node.
  uint64_t frames_blackholed = 0;
  /// Connections established.
  uint64_t connections_opened = 0;
  /// Dials that found the target unreachable.
  uint64_t connections_refused = 0;
  /// Connections closed by either side.
  uint64_t connections_closed = 0;
  /// Connections the network holds now: open, or closing with frames or a
  /// close still on their way. Stays flat however often nodes redial.
  size_t connections_held = 0;
  /// Largest send queue (bytes written by a node, not yet on the wire).
  size_t max_send_queue = 0;
};

/// The kinds of fault a fault_schedule injects.
enum class fault_kind {
  /// The nodes split into two groups that cannot reach each other.
  partition,
  /// One direction of one link loses every frame (and its dials fail).
  one_way_cut,
  /// One direction of one link delays every frame by seconds.
  clog,
  /// Both directions of one link drop, duplicate and reorder frames.
  lossy,
  /// A node stops gracefully and restarts after a while.
  stop,
  /// A node crashes (its links close without a word) and restarts.
  crash,
  /// A node freezes (like SIGSTOP) and resumes.
  pause,
  /// A node's wall clock runs ahead or behind for a while.
  clock_skew,
};

/// The name of a fault kind ("partition", "clog", ...).
const char* to_string(fault_kind kind) noexcept;

/// Random faults over a span of virtual time, FoundationDB style
/// (cluster::run_faults). Every choice comes from `seed` (or from the
/// cluster's seed and the virtual time of the call), so the same schedule
/// on the same cluster injects the same faults at the same instants.
struct fault_schedule {
  /// Virtual time the schedule runs (cluster::run_faults advances by it).
  std::chrono::microseconds span = std::chrono::seconds(60);
  /// Mean virtual time between the starts of two faults (exponentially
  /// distributed gaps).
  std::chrono::microseconds mean_gap = std::chrono::seconds(2);
  /// Shortest time a fault lasts before it is undone (the link heals, the
  /// node restarts or resumes, the clock comes back).
  std::chrono::microseconds min_duration = std::chrono::seconds(1);
  /// Longest time a fault lasts (uniformly distributed in between). Keep it
  /// below the nodes' tombstone_horizon: a replica cut off for longer may
  /// bring back keys whose deletes its peers purged.
  std::chrono::microseconds max_duration = std::chrono::seconds(8);

  /// Symmetric partitions into two random groups.
  bool partitions = true;
  /// One direction of a link cut.
  bool one_way_cuts = true;
  /// One direction of a link whose latency jumps to seconds (between
  /// clog_min_latency and clog_max_latency).
  bool clogs = true;
  /// Bursts of lost, duplicated and reordered frames on one link.
  bool lossy_links = true;
  /// Graceful stops, each followed by a restart.
  bool stops = true;
  /// Crashes, each followed by a restart.
  bool crashes = true;
  /// Pauses, each followed by a resume.
  bool pauses = true;
  /// Clock skews of one node, each undone after a while.
  bool clock_skews = true;

  /// Smallest one-way latency of a clogged direction.
  std::chrono::microseconds clog_min_latency = std::chrono::seconds(1);
  /// Largest one-way latency of a clogged direction.
  std::chrono::microseconds clog_max_latency = std::chrono::seconds(5);
  /// Largest probability of loss, of duplication and of reordering in a
  /// lossy burst (each drawn between 0 and this).
  double max_loss = 0.2;
  /// Largest clock skew, ahead or behind. The default keeps any two nodes
  /// within the nodes' default max_clock_offset (500 ms), so leases hold;
  /// beyond it nodes refuse each other and fence themselves, as they should.
  std::chrono::microseconds max_skew = std::chrono::milliseconds(200);
  /// Most nodes stopped, crashed or paused at once, counting those the test
  /// stopped or paused itself (at most size() - 1: one node always runs).
  size_t max_down = 1;
  /// How stopped and crashed nodes come back. Unset: restart_mode::durable
  /// when the cluster has durable_storage (nothing acknowledged is lost),
  /// else restart_mode::same_identity (an empty store, the same ID).
  std::optional<restart_mode> restart_as;
  /// At the end, undo every fault still active and heal every cut (also the
  /// test's own), and have every node dial the peers it had at the start,
  /// so await_convergence can follow. Off: faults still active at the end
  /// stay (fault_summary::still_active).
  bool heal_at_end = true;
  /// Seed of the schedule's choices. Unset: the cluster's seed mixed with
  /// the virtual time of the call.
  std::optional<uint64_t> seed;
  /// Called every `tick` of virtual time during the schedule (when both
  /// are set), to drive a workload from the test between faults.
  std::function<void()> on_tick;
  /// See on_tick.
  std::chrono::microseconds tick{0};
};

/// One fault a schedule injected.
struct injected_fault {
  /// Virtual time (since the cluster started) it began.
  std::chrono::microseconds at{0};
  /// Virtual time it was undone; -1 µs while still active.
  std::chrono::microseconds until{-1};
  /// What kind of fault.
  fault_kind kind = fault_kind::partition;
  /// The nodes it hit: the node (stop, crash, pause, skew), the link's
  /// sender and receiver (cut, clog, lossy), or the first group (partition).
  std::vector<size_t> nodes;
  /// The fault as written to the trace (with kit names).
  std::string text;

  /// Same instants, kind, nodes and text.
  friend bool operator==(const injected_fault& x, const injected_fault& y) {
    return x.at == y.at && x.until == y.until && x.kind == y.kind
           && x.nodes == y.nodes && x.text == y.text;
  }
  /// See operator==.
  friend bool operator!=(const injected_fault& x, const injected_fault& y) {
    return !(x == y);
  }
};

/// What a fault schedule did.
struct fault_summary {
  /// The seed it ran with (fault_schedule::seed, or the one it derived).
  uint64_t seed = 0;
  /// Every fault injected, in the order they began.
  std::vector<injected_fault> faults;
  /// Faults left active at the end (heal_at_end off).
  size_t still_active = 0;

  /// Number of faults of `kind`.
  size_t count(fault_kind kind) const;
  /// True when the schedule stopped or crashed `node` (and restarted it,
  /// unless that fault was still active at the end): without durable
  /// restarts its unreplicated writes may be lost.
  bool restarted(size_t node) const;
};

/// Thrown when a request fails or gets no reply in time.
struct request_failed : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// A cluster of simulated nodes; see the top of this header.
class cluster {
public:
  /// Receives every event of every node: the node's index and the event.
  using event_callback = std::function<void(size_t, const pb::Event&)>;

  /// Makes the behavior of an application actor tied to a node, given the
  /// actor and the facade of the node's current start.
  using actor_factory
    = std::function<caf::behavior(caf::event_based_actor*, facade_actor)>;

  /// Starts `opts.nodes` nodes, unconnected, at virtual time 0.
  explicit cluster(cluster_options opts);
  /// Stops every node.
  ~cluster();
  cluster(const cluster&) = delete;
  cluster& operator=(const cluster&) = delete;

  // -- nodes ------------------------------------------------------------------

  /// Number of node slots.
  size_t size() const noexcept;
  /// The current ID of node `i`.
  node_id id(size_t i) const;
  /// Where node `i` listens ("nodeI:7000").
  std::string address(size_t i) const;
  /// True unless node `i` is stopped.
  bool alive(size_t i) const;
  /// True while node `i` is paused.
  bool paused(size_t i) const;
  /// The facade of node `i` (alive nodes only).
  facade_actor facade(size_t i) const;
  /// The actor system of node `i` (alive nodes only).
  caf::actor_system& system(size_t i);
  /// How many times node `i` was started.
  uint64_t incarnation(size_t i) const;
  /// Node `i`'s data dir; empty unless cluster_options::durable_storage.
  std::string data_dir(size_t i) const;

  /// Stops node `i`. Graceful: it says goodbye to its peers first. Otherwise
  /// it crashes: its connections close without a word.
  void stop(size_t i, bool graceful = true);
  /// Starts a stopped node again. Throws std::logic_error for a running
  /// node, and for restart_mode::durable without durable_storage.
  void restart(size_t i, restart_mode mode);

  /// Spawns an application actor on node `i` whose behavior `make` returns,
  /// tied to the node: stop(i) (graceful or not) and ~cluster kill it, even
  /// if it traps exit messages, and every restart(i) spawns it again with
  /// the new facade. Returns its number on that node (see tied()). Actors
  /// spawned on system(i) directly are not tied: they stop running when
  /// the node stops (their timers are cancelled) and are never restarted.
  size_t spawn(size_t i, actor_factory make);
  /// The current actor of tied actor `k` of node `i` (invalid while the
  /// node is stopped).
  caf::actor tied(size_t i, size_t k) const;
  /// Freezes node `i` (like SIGSTOP): no actor runs and no timer fires;
  /// frames for it wait. Its wall clock keeps running.
  void pause(size_t i);
  /// Unfreezes node `i`: overdue timers fire and waiting frames arrive.
  void resume(size_t i);
  /// Sets how far node `i`'s wall clock is ahead of true time (negative:
  /// behind).
  void set_skew(size_t i, std::chrono::microseconds skew);
  /// The wall clock of node `i` now (µs since the epoch).
  uint64_t wall_us(size_t i) const;

  // -- network ----------------------------------------------------------------

  /// Node `from` dials node `to` (asynchronously; run or advance to see it).
  void connect(size_t from, size_t to);
  /// Frames from `from` to `to` vanish and dials from `from` to `to` fail.
  /// Cut both directions for a symmetric partition.
  void cut(size_t from, size_t to);
  /// Cuts every link between different groups, both directions.
  void partition(const std::vector<std::vector<size_t>>& groups);
  /// Undoes `cut(from, to)`.
  void heal(size_t from, size_t to);
  /// Undoes every cut.
  void heal_all();
  /// True when frames from `from` reach `to`.
  bool reachable(size_t from, size_t to) const;
  /// Sets the faults of the direction `from` → `to`.
  void set_faults(size_t from, size_t to, const link_faults& faults);
  /// Sets the faults of every direction.
  void set_faults(const link_faults& faults);
  /// What the network did so far.
  const network_counters& network() const noexcept;
  /// Bytes node `i` has written but the network has not taken yet (its send
  /// queues), summed over its connections.
  size_t send_queue_bytes(size_t i) const;

  /// The faults of the direction `from` → `to` now.
  link_faults faults(size_t from, size_t to) const;
  /// How far node `i`'s wall clock is ahead of true time now (set_skew).
  std::chrono::microseconds skew(size_t i) const;

  // -- fault schedules --------------------------------------------------------

  /// Runs `schedule`: advances virtual time by its span, injecting random
  /// faults of the kinds it allows (partitions, one-way cuts, clogged and
  /// lossy links, stops, crashes, pauses, clock skews), each undone after a
  /// random duration, and, unless told otherwise, heals everything at the
  /// end. Every fault goes to the trace ("fault" lines starting with
  /// "schedule:") with the nodes' kit names. Tied actors (spawn) die and
  /// come back with their nodes. Throws std::invalid_argument for a
  /// schedule this cluster cannot run (a durable restart without
  /// durable_storage, a span or duration below zero).
  fault_summary run_faults(const fault_schedule& schedule);
  /// Adds a "fault" line for the whole cluster to the trace (for fault
  /// injectors of the test's own).
  void record_fault(const std::string& text);

  // -- time -------------------------------------------------------------------

  /// Virtual time since the cluster started.
  std::chrono::microseconds now() const noexcept;
  /// Runs everything that is due now, without moving time.
  void run();
  /// Moves virtual time forward by `d`, running every timer and frame that
  /// falls due on the way, in order.
  void advance(std::chrono::microseconds d);
  /// Moves time forward event by event until `done()` holds; false when
  /// `limit` of virtual time passed first.
  bool run_until(const std::function<bool()>& done,
                 std::chrono::microseconds limit);
  /// True when every running node holds identical entries (values, versions,
  /// owners and tombstones).
  bool converged();
  /// Advances until converged(); false when `limit` passed first. Checks
  /// every `step` of virtual time.
  bool await_convergence(std::chrono::microseconds limit,
                         std::chrono::microseconds step
                         = std::chrono::milliseconds(50));

  // -- requests ---------------------------------------------------------------

  /// Sends `request` to node `i`'s facade; `on_reply` or `on_error` runs
  /// when the answer arrives (during run/advance). Any request the facade
  /// answers works (its interface, syncmesh/facade.hpp, pairs each request
  /// with its reply type).
  template <class Reply, class Request>
  void submit(size_t i, Request request, std::function<void(Reply&)> on_reply,
              std::function<void(const caf::error&)> on_error) {
    submit_to<Reply>(i, caf::actor_cast<caf::actor>(facade(i)),
                     std::move(on_reply), std::move(on_error),
                     std::move(request));
  }

  /// Sends `xs...` to `dest` (an actor of node `i`: an application actor, or
  /// a facade) from a fresh actor on that node; `on_reply` or `on_error`
  /// runs when the answer arrives.
  template <class Reply, class... Ts>
  void submit_to(size_t i, const caf::actor& dest,
                 std::function<void(Reply&)> on_reply,
                 std::function<void(const caf::error&)> on_error, Ts... xs) {
    system(i).spawn([dest, on_reply = std::move(on_reply),
                     on_error = std::move(on_error),
                     xs...](caf::event_based_actor* self) {
      self->request(dest, caf::infinite, xs...)
        .then([on_reply](Reply& x) { on_reply(x); },
              [on_error](caf::error& err) { on_error(err); });
    });
  }

  /// Sends `request` (and any further elements) to node `i`'s facade and
  /// runs until the reply arrives; every request type of the facade works.
  /// Throws request_failed on an error or after a minute of virtual time.
  template <class Reply, class Request, class... Ts,
            class = std::enable_if_t<
              !std::is_convertible_v<std::decay_t<Request>, caf::actor>>>
  Reply ask(size_t i, Request request, Ts... more) {
    return ask<Reply>(i, caf::actor_cast<caf::actor>(facade(i)),
                      std::move(request), std::move(more)...);
  }

  /// Asks `dest` (an application actor on node `i`, say) with `xs...` and
  /// runs the cluster, advancing virtual time, until it answers. Throws
  /// request_failed on an error or after a minute of virtual time.
  template <class Reply, class... Ts>
  Reply ask(size_t i, const caf::actor& dest, Ts... xs) {
    struct outcome {
      std::optional<Reply> reply;
      std::optional<caf::error> failure;
    };
    auto out = std::make_shared<outcome>();
    submit_to<Reply>(
      i, dest, [out](Reply& x) { out->reply = std::move(x); },
      [out](const caf::error& err) { out->failure = err; }, std::move(xs)...);
    await_answer(i, [out] { return out->reply || out->failure; });
    if (out->failure)
      throw request_failed("node " + std::to_string(i) + ": "
                           + render(i, *out->failure));
    return std::move(*out->reply);
  }

  /// Runs until `answered()` holds; throws request_failed when a minute of
  /// virtual time passes first (what ask waits with).
  void await_answer(size_t i, const std::function<bool()>& answered);

  /// Every entry of node `i`, tombstones included, as records sorted by key.
  pb::WriteBatch entries(size_t i);
  /// Node `i`'s entry for `key` as records (base or tombstone, and field
  /// writes), read straight from its store actor's state without a message:
  /// what the store holds at this very instant, with nothing queued in its
  /// mailbox applied. Meant for checks that must see the store when a reply
  /// arrives, so it may be called from submit() callbacks (every actor of
  /// the cluster runs on this one thread, so none is running meanwhile).
  /// Empty when the key has no entry or the node is not running.
  pb::WriteBatch peek(size_t i, const std::string& key);
  /// Canonical bytes of node `i`'s store: equal bytes, equal replicas.
  std::string store_bytes(size_t i);
  /// Counters of node `i`.
  pb::NodeStats stats(size_t i);
  /// Renders an error of node `i`'s actor system.
  std::string render(size_t i, const caf::error& err);

  /// Calls `cb` with every event of every node, also after restarts. Every
  /// callback added is called, in the order they were added.
  void on_event(event_callback cb);

  // -- the recorder
  // -------------------------------------------------------------

  /// The seed this cluster runs with.
  uint64_t seed() const noexcept;
  /// The trace so far, oldest first: faults, events and log lines stamped
  /// with virtual time and the nodes' kit names, bounded by
  /// cluster_options::trace_bytes.
  std::vector<trace_entry> trace() const;
  /// Entries dropped from the front of the trace to stay within its bound.
  uint64_t trace_dropped() const noexcept;
  /// Adds an application line for node `i` to the trace.
  void log(size_t i, const std::string& text);
  /// Writes the seed (as SYNCMESH_TEST_SEED=...) and the trace to `out`,
  /// one line per entry: what a failed test should show.
  void dump(std::ostream& out) const;

private:
  friend class syncmesh::sync_socket;
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace syncmesh::testing
