#include "syncmesh/testing.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <ostream>
#include <queue>
#include <random>
#include <set>
#include <stdexcept>

#include <unistd.h>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/io/middleman.hpp>
#include <caf/io/network/test_multiplexer.hpp>
#include <caf/io/scribe.hpp>
#include <caf/scheduler/test_coordinator.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "actors/atoms.hpp"
#include "actors/dict_store.hpp"
#include "actors/facade.hpp"
#include "actors/log.hpp"
#include "messages/frame_codec.hpp"
#include "messages/version.hpp"
#include "node/simulated_socket.hpp"
#include "syncmesh/sync_socket.hpp"

namespace syncmesh::testing {

using caf::io::connection_handle;
using std::chrono::microseconds;

namespace {

constexpr uint16_t listen_port = 7000;
const caf::io::accept_handle acceptor = caf::io::accept_handle::from_int(1);

/// Steps of one `run` before the simulator gives up on a node that never
/// becomes idle (a busy loop in the system under test).
constexpr size_t max_steps_per_instant = 10'000'000;

/// A link fault setting for the trace.
std::string describe(const link_faults& f) {
  char buf[160];
  std::snprintf(buf, sizeof(buf),
                "drop %.3f dup %.3f reorder %.3f latency %lld-%lld us", f.drop,
                f.duplicate, f.reorder,
                static_cast<long long>(f.min_latency.count()),
                static_cast<long long>(f.max_latency.count()));
  return buf;
}

} // namespace

deterministic_config::deterministic_config() {
  configure(*this);
  set("scheduler.policy", caf::atom("testing"));
  set("middleman.network-backend", caf::atom("testing"));
  set("middleman.manual-multiplexing", true);
  set("middleman.workers", size_t{0});
}

/// One end of a simulated TCP connection.
struct endpoint {
  size_t node = 0;
  uint64_t incarnation = 0;
  connection_handle hdl;
  /// This side closed (or its node went away): it sends nothing more.
  bool closed = false;
  /// The other side's close arrived here: nothing more is delivered.
  bool peer_closed = false;
};

/// One direction of a connection: bytes taken from the sender's buffer.
struct direction {
  /// Bytes taken from the sender that do not yet form a whole frame.
  std::string partial;
  /// Bytes on the wire (bounded by window_bytes).
  size_t in_flight = 0;
  /// Arrival time of the last in-order frame (TCP keeps order).
  int64_t last_arrival_us = 0;
};

/// A connection between two nodes: side 0 dialled side 1.
struct connection {
  endpoint side[2];
  /// dir[k] carries frames from side[k] to side[1 - k].
  direction dir[2];
  /// Deliveries for this connection queued or held by a paused node: its
  /// slot is reused only when none is left and both sides are done.
  size_t pending = 0;
  /// The slot holds no connection (free for the next dial).
  bool free = false;
};

/// Something the network hands to a node at a virtual time.
struct delivery {
  int64_t at_us;
  uint64_t seq;
  size_t conn;
  int to_side;
  std::string bytes;
  /// Bytes counted against the sender's window.
  size_t wire_bytes;
  /// The sender closed the connection (after everything sent before).
  bool close;

  bool operator>(const delivery& other) const {
    return at_us != other.at_us ? at_us > other.at_us : seq > other.seq;
  }
};

/// One node slot.
struct sim_node {
  size_t index = 0;
  std::string host;
  raw_node_id id;
  uint64_t incarnation = 0;
  bool alive = false;
  bool paused = false;
  std::shared_ptr<std::atomic<int64_t>> skew_us
    = std::make_shared<std::atomic<int64_t>>(0);
  /// The HLC high-water mark kept for restarts with the same identity.
  uint64_t hlc_floor_us = 0;
  std::unique_ptr<deterministic_config> actor_cfg;
  std::unique_ptr<caf::actor_system> sys;
  caf::scheduler::test_coordinator* sched = nullptr;
  caf::io::network::test_multiplexer* mpx = nullptr;
  node_actors actors;
  caf::actor relay;
  /// Maps the node's actor clock to virtual time.
  caf::actor_clock::time_point clock_base;
  int64_t clock_base_us = 0;
  /// Dial handles provided for each target node.
  std::map<size_t, connection_handle> provided;
  /// Frames that arrived while paused, in order.
  std::vector<delivery> deferred;
  /// Connections with bytes the node's brokers have not read yet. The run
  /// loop reads only these: the multiplexer's read_data() visits every
  /// handle it ever had, and a long partition's refused redials leave one
  /// each, so each virtual hour took longer than the one before.
  std::set<connection_handle> unread;
  /// Application actors tied to this node (cluster::spawn): made again at
  /// every start, killed at every stop.
  struct tied_actor {
    cluster::actor_factory make;
    caf::actor current;
  };
  std::vector<tied_actor> tied;
  /// The configuration of the node's current start (a socket's settings).
  config cfg;
  /// sync_sockets on this node (sync_socket(cluster&, i)), in the order
  /// made; closed when the node stops.
  std::vector<std::weak_ptr<sync_socket::impl>> sockets;
};

struct cluster::impl {
  /// What the simulated sync_sockets of this cluster run: this cluster, as
  /// long as it exists (they keep a weak reference).
  struct socket_simulation final : simulation {
    explicit socket_simulation(cluster::impl* owner) : owner(owner) {}
    bool run_until(const std::function<bool()>& done,
                   std::chrono::microseconds limit) override {
      return owner->run_until(done, limit);
    }
    bool inside_actor() const override { return owner->actors_running > 0; }
    cluster::impl* owner;
  };

  cluster_options opts;
  std::shared_ptr<socket_simulation> socket_sim
    = std::make_shared<socket_simulation>(this);
  /// Steps of the nodes' actors running right now (on this thread): a
  /// simulated socket's blocking call from inside one is refused.
  int actors_running = 0;
  std::mt19937_64 rng;
  std::shared_ptr<std::atomic<int64_t>> now_us
    = std::make_shared<std::atomic<int64_t>>(0);
  std::vector<sim_node> nodes;
  /// Connection slots; a slot is reused once its connection is over, so a
  /// long partition's refused redials do not grow this (every network step
  /// looks at each slot).
  std::vector<connection> conns;
  /// Slots of conns that are free.
  std::vector<size_t> free_conns;
  std::priority_queue<delivery, std::vector<delivery>, std::greater<>> queue;
  uint64_t next_seq = 0;
  int64_t next_handle = 1'000'000;
  /// cut[from][to]: frames from → to vanish.
  std::vector<std::vector<bool>> cut;
  std::vector<std::vector<link_faults>> faults;
  network_counters counters;
  /// Every on_event subscriber, in the order added.
  std::vector<event_callback> on_event;
  /// The recorder: entries oldest first, their text bytes, and how many
  /// were dropped from the front.
  std::deque<trace_entry> trace;
  size_t trace_bytes = 0;
  uint64_t trace_dropped = 0;
  /// Node log lines up to this level are printed (cluster_options).
  int print_level = 0;

  /// A node log line while this cluster is the newest alive: to the trace
  /// up to trace_log_level, to stderr up to log_level, with virtual time
  /// and the kit name.
  void on_log(log_level lvl, const std::string& node, const std::string& line) {
    auto name = kit_name(node);
    auto text = with_kit_names(line);
    if (static_cast<int>(lvl) <= opts.trace_log_level)
      record(name, "log", std::string{log_level_name(lvl)} + " " + text);
    if (static_cast<int>(lvl) <= print_level)
      std::fprintf(stderr, "t=%.6fs %s %s %s\n",
                   static_cast<double>(now_us->load()) / 1e6, name.c_str(),
                   log_level_name(lvl), text.c_str());
  }

  /// `line` with the nodes' short hex IDs (the first 12 hex digits, as
  /// node log lines name peers) replaced by their kit names.
  std::string with_kit_names(std::string line) const {
    for (const auto& n : nodes) {
      if (n.id.empty())
        continue;
      auto hex = to_hex(n.id).substr(0, 12);
      auto name = kit_name(n.id);
      for (auto at = line.find(hex); at != std::string::npos;
           at = line.find(hex, at + name.size()))
        line.replace(at, hex.size(), name);
    }
    return line;
  }
  /// Holds one data dir per node (durable_storage only); removed with the
  /// cluster.
  std::string storage_root;

  explicit impl(cluster_options o) : opts(std::move(o)), rng(opts.seed) {
    if (opts.durable_storage)
      storage_root = make_storage_root(opts.nodes);
    auto n = opts.nodes;
    cut.assign(n, std::vector<bool>(n, false));
    faults.assign(n, std::vector<link_faults>(n, opts.faults));
    nodes.resize(n);
    for (size_t i = 0; i < n; ++i) {
      nodes[i].index = i;
      nodes[i].host = "node" + std::to_string(i);
    }
  }

  /// Room one node's data dir may take: RocksDB preallocates its log at
  /// about 1.1 × the write buffer (32 MiB), and tmpfs really allocates it.
  static constexpr uintmax_t room_per_node = 128u << 20;

  /// A new, empty directory, in memory (/dev/shm) where there is one with
  /// room for every node, otherwise under the system's temp dir. The kit's
  /// crashes are process crashes, which keep every written byte whether it
  /// was fsynced or not, so a disk would only add the fsyncs' real time
  /// (about 4 ms each, ten times a simulation's whole run) and change
  /// nothing a node sees. A small /dev/shm (Docker's default is 64 MiB)
  /// would fail the nodes' writes, hence the room check. The name is
  /// unique (mkdtemp): parallel test processes never share one.
  static std::string make_storage_root(size_t nodes) {
    std::error_code ec;
    std::filesystem::path parent = "/dev/shm";
    auto room = std::filesystem::space(parent, ec);
    if (ec || ::access(parent.c_str(), W_OK) != 0
        || room.available < nodes * room_per_node)
      parent = std::filesystem::temp_directory_path();
    auto pattern = (parent / "syncmesh-kit-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr)
      throw std::runtime_error("syncmesh::testing: cannot create " + pattern);
    return pattern;
  }

  /// Node i's data dir: one per slot, kept across its restarts.
  std::string data_dir_of(size_t i) const {
    if (storage_root.empty())
      return {};
    return storage_root + "/" + nodes[i].host;
  }

  /// Removes the data dirs; also when the cluster's constructor threw.
  ~impl() {
    if (!storage_root.empty()) {
      std::error_code ignored;
      std::filesystem::remove_all(storage_root, ignored);
    }
  }

  // -- randomness -------------------------------------------------------------

  double uniform01() {
    return std::uniform_real_distribution<double>{0.0, 1.0}(rng);
  }

  int64_t latency(const link_faults& f) {
    auto lo = f.min_latency.count();
    auto hi = std::max(lo, f.max_latency.count());
    return std::uniform_int_distribution<int64_t>{lo, hi}(rng);
  }

  raw_node_id fresh_id(size_t i) {
    static constexpr char hex[] = "0123456789abcdef";
    std::string id = "n" + std::to_string(i) + "-";
    auto bits = rng();
    for (int k = 0; k < 6; ++k)
      id += hex[(bits >> (4 * k)) & 0xf];
    return id;
  }

  // -- node lifecycle ---------------------------------------------------------

  void start(size_t i, restart_mode mode) {
    auto& n = nodes[i];
    if (mode == restart_mode::fresh || n.id.empty()) {
      n.id = fresh_id(i);
      n.hlc_floor_us = 0;
    }
    auto dir = data_dir_of(i);
    // Only a durable restart finds its disk as it left it; a fresh or
    // same-identity node starts on an empty one.
    if (!dir.empty() && mode != restart_mode::durable)
      std::filesystem::remove_all(dir);
    ++n.incarnation;
    n.actor_cfg = std::make_unique<deterministic_config>();
    n.sys = std::make_unique<caf::actor_system>(*n.actor_cfg);
    n.sched
      = &dynamic_cast<caf::scheduler::test_coordinator&>(n.sys->scheduler());
    n.mpx = &dynamic_cast<caf::io::network::test_multiplexer&>(
      n.sys->middleman().backend());
    n.clock_base = n.sched->clock().now();
    n.clock_base_us = *now_us;
    n.provided.clear();
    n.unread.clear();
    drop_deferred(n);
    n.alive = true;
    n.paused = false;
    config cfg = opts.node_config;
    cfg.node_id = node_id::from_raw(n.id);
    cfg.host = n.host;
    cfg.port = listen_port;
    cfg.listen = true;
    cfg.dial_via_backend = true;
    cfg.sync_inline = true;
    cfg.hlc_floor_us = n.hlc_floor_us;
    cfg.data_dir = dir;
    auto start_us = opts.start_wall_us;
    auto now = now_us;
    auto skew = n.skew_us;
    cfg.clock = [start_us, now, skew] {
      return static_cast<uint64_t>(static_cast<int64_t>(start_us) + now->load()
                                   + skew->load());
    };
    n.mpx->provide_acceptor(listen_port, acceptor);
    n.cfg = cfg;
    n.actors = spawn_node(*n.sys, cfg);
    provide_scribes(i);
    if (!on_event.empty() || opts.trace_events)
      spawn_relay(i);
    for (auto& t : n.tied)
      t.current = spawn_tied(n, t.make);
    run_node(i);
  }

  /// Spawns one tied actor of node n with its factory.
  caf::actor spawn_tied(sim_node& n, const cluster::actor_factory& make) {
    auto facade = n.actors.facade;
    return n.sys->spawn([make, facade](caf::event_based_actor* self) {
      return make(self, facade);
    });
  }

  /// Kit name of the node with ID `id` (its ID, readable text), or the ID
  /// in hex for one this cluster did not make.
  static std::string kit_name(const std::string& id) {
    bool kit_made = id.size() < 32 && id.rfind('n', 0) == 0
                    && id.find('-') != std::string::npos;
    return kit_made ? id : to_hex(id).substr(0, 12);
  }

  /// Appends an entry to the trace, dropping the oldest beyond the bound.
  void record(std::string node, std::string kind, std::string text) {
    auto bytes = node.size() + kind.size() + text.size() + 16;
    trace.push_back(trace_entry{std::chrono::microseconds(now_us->load()),
                                std::move(node), std::move(kind),
                                std::move(text)});
    trace_bytes += bytes;
    while (trace_bytes > opts.trace_bytes && !trace.empty()) {
      const auto& old = trace.front();
      trace_bytes -= old.node.size() + old.kind.size() + old.text.size() + 16;
      trace.pop_front();
      ++trace_dropped;
    }
  }

  /// Records a fault the test caused at node `i`.
  void record_fault(size_t i, std::string text) {
    record(kit_name(nodes.at(i).id), "fault", std::move(text));
  }

  /// Records an event of node `i`.
  void record_event(size_t i, const pb::Event& ev) {
    std::string text;
    if (ev.has_update())
      text = "update " + ev.update().key();
    else if (ev.has_deleted())
      text = "delete " + ev.deleted().key();
    else if (ev.has_lease_lost())
      text = "lease_lost " + ev.lease_lost().key();
    else if (ev.has_peer_up())
      text = "peer_up " + kit_name(ev.peer_up().peer().node_id());
    else if (ev.has_peer_down())
      text = "peer_down " + kit_name(ev.peer_down().node_id()) + " ("
             + ev.peer_down().reason() + ")";
    else
      return;
    record(kit_name(nodes.at(i).id), "event", std::move(text));
  }

  void spawn_relay(size_t i) {
    auto& n = nodes[i];
    auto facade = caf::actor_cast<caf::actor>(n.actors.facade);
    auto cb = &on_event;
    auto* me = this;
    n.relay = n.sys->spawn([facade, cb, i, me](caf::event_based_actor* self) {
      self->send(facade, subscribe_atom::value,
                 caf::actor_cast<caf::actor>(self));
      return caf::behavior{
        [cb, i, me](const pb::Event& ev) {
          if (me->opts.trace_events)
            me->record_event(i, ev);
          // By index: a callback may add another subscriber.
          for (size_t k = 0; k < cb->size(); ++k)
            (*cb)[k](i, ev);
        },
        [](bool) {},
      };
    });
  }

  /// Stops node i; `graceful` lets it say goodbye first.
  void stop(size_t i, bool graceful) {
    auto& n = nodes[i];
    if (!n.alive)
      return;
    if (n.paused)
      resume(i);
    // Sockets on the node are closed and let go of its actors, which die
    // below with their system.
    auto sockets = std::move(n.sockets);
    n.sockets.clear();
    for (auto& weak : sockets)
      if (auto sock = weak.lock())
        detach_simulated_socket(*sock);
    // The application's actors die with their process; `kill` cannot be
    // ignored, unlike the exit message an actor may trap.
    for (auto& t : n.tied) {
      if (t.current)
        caf::anon_send_exit(t.current, caf::exit_reason::kill);
      t.current = nullptr;
    }
    if (graceful) {
      caf::anon_send_exit(n.actors.facade, caf::exit_reason::user_shutdown);
      settle();
    }
    // Everything the node still had to say is lost from here on.
    for (size_t c = 0; c < conns.size(); ++c)
      for (int k = 0; k < 2; ++k) {
        auto& ep = conns[c].side[k];
        if (ep.node == i && ep.incarnation == n.incarnation && !ep.closed) {
          ep.closed = true;
          schedule_close(c, k);
        }
      }
    n.alive = false;
    if (n.relay)
      caf::anon_send_exit(n.relay, caf::exit_reason::kill);
    caf::anon_send_exit(n.actors.facade, caf::exit_reason::kill);
    for (int round = 0; round < 1000; ++round) {
      drain_quietly(i);
      if (!n.sched->has_pending_timeout())
        break;
      n.sched->trigger_timeouts();
    }
    drain_quietly(i);
    // An actor the kit does not know of (spawned on system(i) directly) may
    // re-arm a timer for ever; CAF's test scheduler stops only once no timer
    // is left, so the rest are cancelled: such an actor never runs again.
    n.sched->clock().cancel_all();
    n.relay = nullptr;
    n.actors = node_actors{};
    n.sys->await_actors_before_shutdown(false);
    n.sys.reset();
    n.actor_cfg.reset();
    n.sched = nullptr;
    n.mpx = nullptr;
    drop_deferred(n);
    reclaim_all();
  }

  /// Runs a dying node's actors, discarding what they write.
  void drain_quietly(size_t i) {
    auto& n = nodes[i];
    actor_steps guard{actors_running};
    size_t steps = 0;
    while ((n.sched->try_run_once() || n.mpx->try_exec_runnable())
           && ++steps < max_steps_per_instant) {
    }
  }

  void pause(size_t i) {
    auto& n = nodes[i];
    if (n.alive)
      n.paused = true;
  }

  void resume(size_t i) {
    auto& n = nodes[i];
    if (!n.alive || !n.paused)
      return;
    n.paused = false;
    sync_clock(i);
    auto waiting = std::move(n.deferred);
    n.deferred.clear();
    for (auto& d : waiting)
      hand_over(std::move(d));
  }

  // -- time -------------------------------------------------------------------

  int64_t node_now_us(const sim_node& n) const {
    using namespace std::chrono;
    return n.clock_base_us
           + duration_cast<microseconds>(n.sched->clock().now() - n.clock_base)
               .count();
  }

  /// Moves node i's actor clock to the global time (firing due timers).
  void sync_clock(size_t i) {
    auto& n = nodes[i];
    auto behind = std::max<int64_t>(*now_us - node_now_us(n), 0);
    n.sched->clock().advance_time(microseconds(behind));
  }

  /// Earliest pending timer of any running node, in virtual time.
  std::optional<int64_t> next_timer() const {
    std::optional<int64_t> result;
    for (auto& n : nodes) {
      if (!n.alive || n.paused)
        continue;
      auto& sched = n.sched->clock().schedule();
      if (sched.empty())
        continue;
      using namespace std::chrono;
      auto t
        = n.clock_base_us
          + duration_cast<microseconds>(sched.begin()->first - n.clock_base)
              .count();
      if (!result || t < *result)
        result = t;
    }
    return result;
  }

  // -- running ----------------------------------------------------------------

  /// Lets node n's brokers read what arrived for them; true when any did.
  /// A handle leaves the set once read empty or detached; one whose broker
  /// stopped reading stays until it reads again.
  bool read_unread(sim_node& n) {
    bool progress = false;
    for (auto it = n.unread.begin(); it != n.unread.end();) {
      auto hdl = *it;
      if (!attached(n, hdl)) {
        it = n.unread.erase(it);
        continue;
      }
      progress |= n.mpx->read_data(hdl);
      if (n.mpx->virtual_network_buffer(hdl).empty())
        it = n.unread.erase(it);
      else
        ++it;
    }
    return progress;
  }

  /// Runs node i's actors and brokers until idle; true when anything ran.
  bool run_node(size_t i) {
    auto& n = nodes[i];
    if (!n.alive || n.paused)
      return false;
    actor_steps guard{actors_running};
    size_t steps = 0;
    while (n.sched->try_run_once() || n.mpx->try_exec_runnable()
           || read_unread(n)) {
      if (++steps > max_steps_per_instant)
        throw std::runtime_error("syncmesh::testing: node " + std::to_string(i)
                                 + " never becomes idle");
    }
    return steps > 0;
  }

  /// Counts a stretch of actor steps on this thread (see actors_running).
  struct actor_steps {
    explicit actor_steps(int& n) : n(n) { ++n; }
    ~actor_steps() { --n; }
    actor_steps(const actor_steps&) = delete;
    actor_steps& operator=(const actor_steps&) = delete;
    int& n;
  };

  /// Runs the callbacks queued for simulated sockets of running nodes, in
  /// node and socket order; true when any ran.
  bool run_socket_callbacks() {
    bool any = false;
    for (auto& n : nodes) {
      // By index: a callback may make another socket or stop this node.
      for (size_t k = 0; k < n.sockets.size(); ++k) {
        if (!n.alive || n.paused)
          break;
        if (auto sock = n.sockets[k].lock())
          any |= run_simulated_callbacks(*sock);
      }
    }
    return any;
  }

  /// Makes the implementation of a sync_socket on node i.
  std::shared_ptr<sync_socket::impl> attach_socket(size_t i) {
    auto& n = running(i);
    auto& list = n.sockets;
    list.erase(std::remove_if(list.begin(), list.end(),
                              [](const auto& w) { return w.expired(); }),
               list.end());
    auto sock = make_simulated_socket(*n.sys, n.actors, n.cfg, socket_sim);
    // The node may have stopped while the socket asked for its port.
    if (!nodes[i].alive) {
      detach_simulated_socket(*sock);
      throw std::logic_error("syncmesh::testing: node " + std::to_string(i)
                             + " stopped while a socket attached to it");
    }
    nodes[i].sockets.push_back(sock);
    return sock;
  }

  /// Runs everything due at the current instant.
  void settle() {
    for (size_t round = 0;; ++round) {
      if (round > max_steps_per_instant)
        throw std::runtime_error("syncmesh::testing: the cluster never "
                                 "becomes idle");
      bool progress = false;
      for (size_t i = 0; i < nodes.size(); ++i)
        progress |= run_node(i);
      for (size_t i = 0; i < nodes.size(); ++i)
        progress |= pump(i);
      progress |= deliver_due();
      if (!progress)
        progress |= run_socket_callbacks();
      if (!progress)
        return;
    }
  }

  /// Advances to `target_us`, handling every event on the way in order.
  void advance_to(int64_t target_us) {
    settle();
    for (;;) {
      auto next = target_us;
      if (!queue.empty())
        next = std::min(next, queue.top().at_us);
      if (auto t = next_timer())
        next = std::min(next, *t);
      next = std::max(next, now_us->load());
      now_us->store(next);
      for (size_t i = 0; i < nodes.size(); ++i)
        if (nodes[i].alive && !nodes[i].paused)
          sync_clock(i);
      settle();
      if (next >= target_us)
        return;
    }
  }

  // -- the network ------------------------------------------------------------

  bool attached(const sim_node& n, connection_handle hdl) {
    auto& ptr = n.mpx->impl_ptr(hdl);
    return ptr != nullptr && ptr->parent() != nullptr
           && !n.mpx->stopped_reading(hdl);
  }

  /// Gives node i a dial handle for every other node.
  void provide_scribes(size_t i) {
    auto& n = nodes[i];
    for (size_t j = 0; j < nodes.size(); ++j) {
      if (j == i || n.provided.count(j) > 0)
        continue;
      auto hdl = connection_handle::from_int(next_handle++);
      n.mpx->provide_scribe(nodes[j].host, listen_port, hdl);
      n.provided.emplace(j, hdl);
    }
  }

  /// Moves bytes node i wrote onto the wire; notices dials and closes.
  bool pump(size_t i) {
    auto& n = nodes[i];
    if (!n.alive || n.paused)
      return false;
    bool progress = false;
    // Dials: a provided handle that was taken became a connection.
    for (auto it = n.provided.begin(); it != n.provided.end();) {
      auto target = it->first;
      if (n.mpx->has_pending_scribe(nodes[target].host, listen_port)) {
        ++it;
        continue;
      }
      auto hdl = it->second;
      it = n.provided.erase(it);
      open_connection(i, hdl, target);
      progress = true;
    }
    provide_scribes(i);
    for (size_t c = 0; c < conns.size(); ++c) {
      for (int k = 0; k < 2; ++k) {
        auto& ep = conns[c].side[k];
        if (ep.node != i || ep.incarnation != n.incarnation || ep.closed)
          continue;
        progress |= drain(c, k);
        auto& buf = n.mpx->output_buffer(ep.hdl);
        if (buf.empty() && !attached(n, ep.hdl)) {
          ep.closed = true;
          schedule_close(c, k);
          reclaim(c);
          progress = true;
        }
      }
    }
    return progress;
  }

  /// A dial from node `from` took handle `hdl`: connect it to `to`.
  void open_connection(size_t from, connection_handle hdl, size_t to) {
    connection conn;
    conn.side[0] = endpoint{from, nodes[from].incarnation, hdl};
    auto& target = nodes[to];
    size_t c = 0;
    if (free_conns.empty()) {
      conns.push_back(std::move(conn));
      c = conns.size() - 1;
    } else {
      c = free_conns.back();
      free_conns.pop_back();
      conns[c] = std::move(conn);
    }
    ++counters.connections_held;
    if (!target.alive || target.paused || cut[from][to] || cut[to][from]) {
      ++counters.connections_refused;
      conns[c].side[1].closed = true;
      conns[c].side[1].node = to;
      schedule_close(c, 1);
      return;
    }
    auto peer_hdl = connection_handle::from_int(next_handle++);
    conns[c].side[1] = endpoint{to, target.incarnation, peer_hdl};
    ++counters.connections_opened;
    target.mpx->add_pending_connect(acceptor, peer_hdl);
    target.mpx->accept_connection(acceptor);
  }

  /// Takes what side k of connection c wrote, frame by frame.
  bool drain(size_t c, int k) {
    auto& ep = conns[c].side[k];
    auto& n = nodes[ep.node];
    auto& buf = n.mpx->output_buffer(ep.hdl);
    if (buf.empty())
      return false;
    auto& dir = conns[c].dir[k];
    auto to = conns[c].side[1 - k].node;
    bool blackhole = cut[ep.node][to];
    size_t room = opts.window_bytes > dir.in_flight
                    ? opts.window_bytes - dir.in_flight
                    : 0;
    size_t take = blackhole ? buf.size() : std::min(room, buf.size());
    if (take == 0) {
      counters.max_send_queue = std::max(counters.max_send_queue, buf.size());
      return false;
    }
    dir.partial.append(buf.data(), take);
    buf.erase(buf.begin(), buf.begin() + static_cast<long>(take));
    counters.max_send_queue = std::max(counters.max_send_queue, buf.size());
    if (n.mpx->ack_writes(ep.hdl) && attached(n, ep.hdl))
      n.mpx->impl_ptr(ep.hdl)->data_transferred(n.mpx, take, buf.size());
    // Split into frames; the fault model acts on whole frames.
    size_t off = 0;
    while (dir.partial.size() - off >= frame_header_size) {
      auto len = read_frame_length(dir.partial.data() + off);
      if (dir.partial.size() - off - frame_header_size < len)
        break;
      send_frame(c, k,
                 dir.partial.substr(off, frame_header_size + size_t{len}));
      off += frame_header_size + len;
    }
    dir.partial.erase(0, off);
    return true;
  }

  void send_frame(size_t c, int k, std::string bytes) {
    auto& conn = conns[c];
    auto from = conn.side[k].node;
    auto to = conn.side[1 - k].node;
    auto& dir = conn.dir[k];
    auto& f = faults[from][to];
    if (cut[from][to] || conn.side[1 - k].closed) {
      ++counters.frames_blackholed;
      return;
    }
    if (f.drop > 0 && uniform01() < f.drop) {
      ++counters.frames_dropped;
      return;
    }
    auto at = *now_us + latency(f);
    if (f.reorder > 0 && uniform01() < f.reorder) {
      ++counters.frames_reordered;
    } else {
      at = std::max(at, dir.last_arrival_us);
      dir.last_arrival_us = at;
    }
    auto size = bytes.size();
    if (f.duplicate > 0 && uniform01() < f.duplicate) {
      ++counters.frames_duplicated;
      dir.in_flight += size;
      ++conn.pending;
      queue.push(
        delivery{at + latency(f), next_seq++, c, 1 - k, bytes, size, false});
    }
    dir.in_flight += size;
    ++conn.pending;
    queue.push(
      delivery{at, next_seq++, c, 1 - k, std::move(bytes), size, false});
  }

  /// Side k closed: the other side learns it after what was sent before.
  void schedule_close(size_t c, int k) {
    auto& conn = conns[c];
    auto from = conn.side[k].node;
    auto to = conn.side[1 - k].node;
    if (cut[from][to])
      return; // The FIN is lost too; the peer finds out by its timeouts.
    auto at = std::max(*now_us + latency(faults[from][to]),
                       conn.dir[k].last_arrival_us + 1);
    conn.dir[k].last_arrival_us = at;
    ++conn.pending;
    queue.push(delivery{at, next_seq++, c, 1 - k, {}, 0, true});
  }

  /// Hands every delivery that is due now to its node.
  bool deliver_due() {
    bool progress = false;
    while (!queue.empty() && queue.top().at_us <= *now_us) {
      auto d = queue.top();
      queue.pop();
      conns[d.conn].dir[1 - d.to_side].in_flight -= d.wire_bytes;
      hand_over(std::move(d));
      progress = true;
    }
    return progress;
  }

  void hand_over(delivery d) {
    auto c = d.conn;
    auto& ep = conns[c].side[d.to_side];
    auto& n = nodes[ep.node];
    if (n.alive && n.paused && n.incarnation == ep.incarnation
        && !ep.peer_closed && !ep.closed) {
      n.deferred.push_back(std::move(d));
      return;
    }
    --conns[c].pending;
    consume(std::move(d));
    reclaim(c);
  }

  /// Delivery `d` reaches its (running) side, or vanishes.
  void consume(delivery d) {
    auto& ep = conns[d.conn].side[d.to_side];
    auto& n = nodes[ep.node];
    if (!n.alive || n.incarnation != ep.incarnation || ep.peer_closed
        || ep.closed) {
      if (!d.close)
        ++counters.frames_blackholed;
      return;
    }
    if (d.close) {
      ep.peer_closed = true;
      ++counters.connections_closed;
      if (attached(n, ep.hdl))
        n.mpx->impl_ptr(ep.hdl)->io_failure(n.mpx,
                                            caf::io::network::operation::read);
      return;
    }
    ++counters.frames_delivered;
    caf::io::network::test_multiplexer::buffer_type buf(d.bytes.begin(),
                                                        d.bytes.end());
    n.mpx->virtual_send(ep.hdl, buf);
    n.unread.insert(ep.hdl);
  }

  /// True when side `ep` will neither send nor receive anything more.
  bool done(const endpoint& ep) const {
    const auto& n = nodes[ep.node];
    return ep.closed || !n.alive || n.incarnation != ep.incarnation;
  }

  /// Frees slot `c` once its connection is over on both sides and nothing
  /// for it is queued.
  void reclaim(size_t c) {
    auto& conn = conns[c];
    if (conn.free || conn.pending > 0 || !done(conn.side[0])
        || !done(conn.side[1]))
      return;
    conn = connection{};
    conn.side[0].closed = conn.side[1].closed = true;
    conn.free = true;
    free_conns.push_back(c);
    --counters.connections_held;
  }

  /// Forgets what paused node `n` held for its connections.
  void drop_deferred(sim_node& n) {
    auto held = std::move(n.deferred);
    n.deferred.clear();
    for (auto& d : held)
      --conns[d.conn].pending;
  }

  /// Frees every slot whose connection is over (after a node stopped).
  void reclaim_all() {
    for (size_t c = 0; c < conns.size(); ++c)
      reclaim(c);
  }

  size_t send_queue_bytes(size_t i) {
    auto& n = nodes[i];
    if (!n.alive)
      return 0;
    size_t total = 0;
    for (auto& conn : conns)
      for (auto& ep : conn.side)
        if (ep.node == i && ep.incarnation == n.incarnation && !ep.closed)
          total += n.mpx->output_buffer(ep.hdl).size();
    return total;
  }

  sim_node& running(size_t i) {
    if (i >= nodes.size())
      throw std::out_of_range("syncmesh::testing: no node "
                              + std::to_string(i));
    if (!nodes[i].alive)
      throw std::logic_error("syncmesh::testing: node " + std::to_string(i)
                             + " is stopped");
    return nodes[i];
  }

  /// Asks an actor of node i (the facade or an internal one) and runs
  /// until it answers; throws request_failed on an error.
  template <class Reply, class Dest, class... Ts>
  Reply ask_internal(size_t i, const Dest& dest, Ts... xs) {
    auto& n = running(i);
    // Shared with the requester, which may answer after a timeout threw.
    struct outcome {
      std::optional<Reply> result;
      std::optional<std::string> failure;
    };
    auto out = std::make_shared<outcome>();
    auto* sys = n.sys.get();
    n.sys->spawn([out, sys, dest, xs...](caf::event_based_actor* self) {
      self->request(dest, caf::infinite, xs...)
        .then([out](Reply& x) { out->result = std::move(x); },
              [out, sys](caf::error& err) { out->failure = sys->render(err); });
    });
    wait_for([&] { return out->result || out->failure; }, i);
    if (out->failure)
      throw request_failed("node " + std::to_string(i) + ": " + *out->failure);
    return std::move(*out->result);
  }

  /// Moves time forward event by event until `done()` holds; false when
  /// `limit` of virtual time passed first.
  bool run_until(const std::function<bool()>& done, microseconds limit) {
    settle();
    auto end = now_us->load() + limit.count();
    while (!done()) {
      if (*now_us >= end)
        return false;
      // One event at a time: the next timer or frame, but never past `end`.
      auto next = end;
      if (!queue.empty())
        next = std::min(next, queue.top().at_us);
      if (auto t = next_timer())
        next = std::min(next, *t);
      advance_to(std::max(next, now_us->load() + 1));
    }
    return true;
  }

  /// Runs (advancing time if needed) until `done` holds.
  void wait_for(const std::function<bool()>& done, size_t i) {
    settle();
    if (done())
      return;
    auto limit = *now_us + 60'000'000;
    while (!done() && *now_us < limit)
      advance_to(std::min(limit, *now_us + 1000));
    if (!done())
      throw request_failed("node " + std::to_string(i)
                           + ": no reply within a minute of virtual time");
  }
};

// -- cluster ------------------------------------------------------------------

namespace {

/// Routes the process-wide log sink to the newest cluster alive. Clusters
/// may overlap in any order (a test replacing one with the next constructs
/// the new one first), so none owns the sink: the first to come installs
/// it, the last to go removes it, and a line goes to whichever is newest.
struct log_routing {
  static std::mutex& mtx() {
    static std::mutex m;
    return m;
  }
  /// A cluster alive: its identity and where its lines go.
  struct member {
    const void* owner;
    log_sink sink;
  };
  static std::vector<member>& alive() {
    static std::vector<member> xs;
    return xs;
  }
  static void join(const void* owner, log_sink sink) {
    std::lock_guard<std::mutex> guard{mtx()};
    alive().push_back({owner, std::move(sink)});
    if (alive().size() == 1)
      set_log_sink(&deliver);
  }
  static void leave(const void* owner) {
    std::lock_guard<std::mutex> guard{mtx()};
    auto& xs = alive();
    xs.erase(
      std::remove_if(xs.begin(), xs.end(),
                     [owner](const member& m) { return m.owner == owner; }),
      xs.end());
    if (xs.empty())
      set_log_sink({});
  }
  static void deliver(log_level lvl, const std::string& node,
                      const std::string& text) {
    std::lock_guard<std::mutex> guard{mtx()};
    if (!alive().empty())
      alive().back().sink(lvl, node, text);
  }
};

} // namespace

uint64_t seed_from_env(uint64_t fallback) {
  const char* text = std::getenv("SYNCMESH_TEST_SEED");
  if (text == nullptr || *text == '\0')
    return fallback;
  char* end = nullptr;
  errno = 0;
  auto value = std::strtoull(text, &end, 10);
  if (errno != 0 || *end != '\0' || *text == '-')
    throw std::invalid_argument(std::string{"SYNCMESH_TEST_SEED is not a "
                                            "decimal seed: \""}
                                + text + "\"");
  return value;
}

cluster::cluster(cluster_options opts)
    : impl_(std::make_unique<impl>(std::move(opts))) {
  // Node log lines carry virtual time and kit names, go to the trace up to
  // trace_log_level and to stderr up to log_level.
  auto print_level = impl_->opts.log_level;
  auto level = std::max(print_level, impl_->opts.trace_log_level);
  set_log_level(static_cast<log_level>(level));
  impl_->print_level = print_level;
  auto* me = impl_.get();
  log_routing::join(
    me, [me](log_level lvl, const std::string& node, const std::string& text) {
      me->on_log(lvl, node, text);
    });
  for (size_t i = 0; i < impl_->nodes.size(); ++i)
    impl_->start(i, restart_mode::fresh);
}

cluster::~cluster() {
  for (size_t i = 0; i < impl_->nodes.size(); ++i)
    impl_->stop(i, false);
  log_routing::leave(impl_.get());
}

} // namespace syncmesh::testing

syncmesh::sync_socket::sync_socket(testing::cluster& mesh, size_t node)
    : impl_(mesh.impl_->attach_socket(node)) {}

namespace syncmesh::testing {

size_t cluster::size() const noexcept {
  return impl_->nodes.size();
}

node_id cluster::id(size_t i) const {
  return node_id::from_raw(impl_->nodes.at(i).id);
}

std::string cluster::address(size_t i) const {
  return impl_->nodes.at(i).host + ":" + std::to_string(listen_port);
}

bool cluster::alive(size_t i) const {
  return impl_->nodes.at(i).alive;
}

bool cluster::paused(size_t i) const {
  return impl_->nodes.at(i).paused;
}

facade_actor cluster::facade(size_t i) const {
  return impl_->running(i).actors.facade;
}

caf::actor_system& cluster::system(size_t i) {
  return *impl_->running(i).sys;
}

uint64_t cluster::incarnation(size_t i) const {
  return impl_->nodes.at(i).incarnation;
}

std::string cluster::data_dir(size_t i) const {
  impl_->nodes.at(i);
  return impl_->data_dir_of(i);
}

void cluster::stop(size_t i, bool graceful) {
  auto& n = impl_->running(i);
  if (n.paused)
    impl_->resume(i);
  // What --data-dir would have persisted.
  auto floor = stats(i).lease().hlc_wall_us();
  impl_->record_fault(i, graceful ? "stop" : "crash");
  impl_->stop(i, graceful);
  impl_->nodes[i].hlc_floor_us = floor;
}

size_t cluster::spawn(size_t i, actor_factory make) {
  auto& n = impl_->nodes.at(i);
  n.tied.push_back({std::move(make), caf::actor{}});
  if (n.alive) {
    n.tied.back().current = impl_->spawn_tied(n, n.tied.back().make);
    impl_->settle();
  }
  return n.tied.size() - 1;
}

caf::actor cluster::tied(size_t i, size_t k) const {
  return impl_->nodes.at(i).tied.at(k).current;
}

void cluster::restart(size_t i, restart_mode mode) {
  if (impl_->nodes.at(i).alive)
    throw std::logic_error("syncmesh::testing: node " + std::to_string(i)
                           + " is running");
  if (mode == restart_mode::durable && !impl_->opts.durable_storage)
    throw std::logic_error("syncmesh::testing: a durable restart of node "
                           + std::to_string(i)
                           + " needs cluster_options::durable_storage");
  impl_->start(i, mode);
  impl_->record_fault(i, mode == restart_mode::durable ? "restart durable"
                                                       : "restart fresh");
}

void cluster::pause(size_t i) {
  impl_->running(i);
  impl_->record_fault(i, "pause");
  impl_->pause(i);
}

void cluster::resume(size_t i) {
  impl_->running(i);
  impl_->record_fault(i, "resume");
  impl_->resume(i);
  impl_->settle();
}

void cluster::set_skew(size_t i, std::chrono::microseconds skew) {
  impl_->nodes.at(i).skew_us->store(skew.count());
  impl_->record_fault(i, "clock skew " + std::to_string(skew.count()) + " us");
}

uint64_t cluster::wall_us(size_t i) const {
  return static_cast<uint64_t>(static_cast<int64_t>(impl_->opts.start_wall_us)
                               + impl_->now_us->load()
                               + impl_->nodes.at(i).skew_us->load());
}

void cluster::connect(size_t from, size_t to) {
  pb::ConnectRequest req;
  req.set_host(impl_->nodes.at(to).host);
  req.set_port(listen_port);
  impl_->record_fault(from, "dial " + impl::kit_name(impl_->nodes.at(to).id));
  submit<pb::PeerInfo>(
    from, std::move(req), [](pb::PeerInfo&) {}, [](const caf::error&) {});
}

void cluster::cut(size_t from, size_t to) {
  impl_->cut.at(from).at(to) = true;
  impl_->record_fault(from, "cut to " + impl::kit_name(impl_->nodes.at(to).id));
}

void cluster::partition(const std::vector<std::vector<size_t>>& groups) {
  std::vector<int> group_of(size(), -1);
  for (size_t g = 0; g < groups.size(); ++g)
    for (auto i : groups[g])
      group_of.at(i) = static_cast<int>(g);
  for (size_t a = 0; a < size(); ++a)
    for (size_t b = 0; b < size(); ++b)
      if (a != b && group_of[a] != group_of[b])
        impl_->cut[a][b] = true;
  std::string text = "partition";
  for (const auto& g : groups) {
    text += " {";
    for (auto i : g)
      text += " " + impl::kit_name(impl_->nodes.at(i).id);
    text += " }";
  }
  impl_->record({}, "fault", std::move(text));
}

void cluster::heal(size_t from, size_t to) {
  impl_->cut.at(from).at(to) = false;
  impl_->record_fault(from,
                      "heal to " + impl::kit_name(impl_->nodes.at(to).id));
}

void cluster::heal_all() {
  for (auto& row : impl_->cut)
    std::fill(row.begin(), row.end(), false);
  impl_->record({}, "fault", "heal all");
}

bool cluster::reachable(size_t from, size_t to) const {
  return !impl_->cut.at(from).at(to);
}

void cluster::set_faults(size_t from, size_t to, const link_faults& faults) {
  impl_->faults.at(from).at(to) = faults;
  impl_->record_fault(from, "faults to "
                              + impl::kit_name(impl_->nodes.at(to).id) + ": "
                              + describe(faults));
}

void cluster::set_faults(const link_faults& faults) {
  for (auto& row : impl_->faults)
    std::fill(row.begin(), row.end(), faults);
  impl_->record({}, "fault", "faults everywhere: " + describe(faults));
}

link_faults cluster::faults(size_t from, size_t to) const {
  return impl_->faults.at(from).at(to);
}

std::chrono::microseconds cluster::skew(size_t i) const {
  return std::chrono::microseconds(impl_->nodes.at(i).skew_us->load());
}

void cluster::record_fault(const std::string& text) {
  impl_->record({}, "fault", text);
}

const network_counters& cluster::network() const noexcept {
  return impl_->counters;
}

size_t cluster::send_queue_bytes(size_t i) const {
  return impl_->send_queue_bytes(i);
}

std::chrono::microseconds cluster::now() const noexcept {
  return std::chrono::microseconds(impl_->now_us->load());
}

void cluster::run() {
  impl_->settle();
}

void cluster::advance(std::chrono::microseconds d) {
  impl_->advance_to(impl_->now_us->load() + d.count());
}

bool cluster::run_until(const std::function<bool()>& done,
                        std::chrono::microseconds limit) {
  return impl_->run_until(done, limit);
}

bool cluster::converged() {
  std::optional<std::string> first;
  for (size_t i = 0; i < size(); ++i) {
    if (!alive(i) || paused(i))
      continue;
    auto bytes = store_bytes(i);
    if (!first)
      first = std::move(bytes);
    else if (bytes != *first)
      return false;
  }
  return true;
}

bool cluster::await_convergence(std::chrono::microseconds limit,
                                std::chrono::microseconds step) {
  auto end = impl_->now_us->load() + limit.count();
  for (;;) {
    impl_->settle();
    if (converged())
      return true;
    if (*impl_->now_us >= end)
      return false;
    impl_->advance_to(std::min(end, impl_->now_us->load() + step.count()));
  }
}

void cluster::await_answer(size_t i, const std::function<bool()>& answered) {
  impl_->wait_for(answered, i);
}

pb::WriteBatch cluster::entries(size_t i) {
  return impl_->ask_internal<pb::WriteBatch>(i, impl_->running(i).actors.store,
                                             export_atom::value);
}

pb::WriteBatch cluster::peek(size_t i, const std::string& key) {
  pb::WriteBatch result;
  auto& n = impl_->nodes.at(i);
  if (!n.alive || !n.actors.store)
    return result;
  // The store is the dict store actor; its state is only touched by the
  // actor itself, which cannot be running now (one thread runs them all).
  auto* raw = caf::actor_cast<caf::abstract_actor*>(n.actors.store);
  auto* store
    = dynamic_cast<dict_store_actor::stateful_base<dict_store_state>*>(raw);
  if (store == nullptr)
    return result;
  if (const auto* entry = store->state.store.find(key)) {
    std::vector<pb::WriteRecord> records;
    entry->export_records(store->state.store.ids(), key, records);
    for (auto& rec : records)
      result.mutable_records()->Add()->Swap(&rec);
  }
  return result;
}

std::string cluster::store_bytes(size_t i) {
  return impl_->ask_internal<std::string>(i, impl_->running(i).actors.store,
                                          dump_atom::value);
}

pb::NodeStats cluster::stats(size_t i) {
  return ask<pb::NodeStats>(i, pb::StatsRequest{});
}

std::string cluster::render(size_t i, const caf::error& err) {
  auto& n = impl_->nodes.at(i);
  return n.sys ? n.sys->render(err) : std::string{"error"};
}

void cluster::on_event(event_callback cb) {
  // With trace_events, every node already has its relay.
  bool first = impl_->on_event.empty() && !impl_->opts.trace_events;
  impl_->on_event.push_back(std::move(cb));
  if (first)
    for (size_t i = 0; i < size(); ++i)
      if (impl_->nodes[i].alive)
        impl_->spawn_relay(i);
  impl_->settle();
}

uint64_t cluster::seed() const noexcept {
  return impl_->opts.seed;
}

std::vector<trace_entry> cluster::trace() const {
  return {impl_->trace.begin(), impl_->trace.end()};
}

uint64_t cluster::trace_dropped() const noexcept {
  return impl_->trace_dropped;
}

void cluster::log(size_t i, const std::string& text) {
  impl_->record(impl::kit_name(impl_->nodes.at(i).id), "app", text);
}

void cluster::dump(std::ostream& out) const {
  out << "SYNCMESH_TEST_SEED=" << seed() << " (virtual time "
      << static_cast<double>(impl_->now_us->load()) / 1e6 << " s; "
      << impl_->trace.size() << " trace entries";
  if (impl_->trace_dropped > 0)
    out << ", " << impl_->trace_dropped << " older ones dropped";
  out << ")\n";
  char stamp[32];
  for (const auto& e : impl_->trace) {
    std::snprintf(stamp, sizeof(stamp), "t=%.6fs",
                  static_cast<double>(e.at.count()) / 1e6);
    out << stamp << ' ' << (e.node.empty() ? "*" : e.node) << ' ' << e.kind
        << ' ' << e.text << '\n';
  }
}

} // namespace syncmesh::testing
