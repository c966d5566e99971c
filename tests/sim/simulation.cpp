#include "sim/simulation.hpp"

#include <algorithm>
#include <cstdio>
#include <functional>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <sstream>

#include "actors/store_state.hpp"
#include "messages/value_proto.hpp"
#include "messages/version.hpp"
#include "sim/local_write_checker.hpp"
#include "syncmesh/caf_types.hpp"
#include "syncmesh/errors.hpp"
#include "syncmesh/pb/entry.pb.h"
#include "syncmesh/testing.hpp"

namespace syncmesh::sim {

namespace {

using namespace std::chrono_literals;
using std::chrono::microseconds;
using std::chrono::milliseconds;
using testing::cluster;

scenario make(std::string name, size_t lo, size_t hi,
              const std::function<void(scenario&)>& tweak) {
  scenario sc;
  sc.name = std::move(name);
  sc.min_nodes = lo;
  sc.max_nodes = hi;
  tweak(sc);
  return sc;
}

/// The clock offset bound of every node.
constexpr std::chrono::milliseconds clock_bound{500};

/// A node whose clock is further than the bound + this from every other
/// node's must have fenced itself (the measurement's uncertainty is the
/// simulated network's RTT / 2, a few ms)...
constexpr int64_t fence_slack_us = 100'000;

/// ...once this much virtual time passed since it got there: a heartbeat
/// (500 ms) to measure, and the estimator's window (8 samples) in case
/// queueing made the older samples the lowest-RTT ones.
constexpr microseconds fence_grace = 5s;

/// Node settings that make leases, tombstones, heartbeats and anti-entropy
/// happen many times within a run of some virtual seconds.
config node_config(const scenario& sc) {
  config c;
  c.leasing = sc.leasing;
  c.lease_duration = 3s;
  // The lease margin and the hold threshold of remote writes are the clock
  // offset bound (500 ms by default), as in production.
  c.max_clock_offset = clock_bound;
  c.heartbeat_interval = 500ms;
  c.peer_timeout = 3s;
  c.handshake_timeout = 2s;
  c.dial_timeout = 2s;
  c.redial_min = 200ms;
  c.redial_max = 3s;
  c.anti_entropy_interval = 2s;
  // Longer than any fault lasts (see fault_period): a replica cut off for
  // longer than the horizon brings purged keys back (README, "tombstones").
  c.tombstone_horizon = 20s;
  c.seen_set_size = 2048;
  c.seen_ttl = 30s;
  c.max_peers = 4;
  c.max_frame_size = 256 * 1024;
  c.max_send_queue = 1024 * 1024;
  c.max_held_writes = 1000;
  c.max_value_size = 64 * 1024;
  return c;
}

/// Every fault ends within this (links heal, nodes resume and restart):
/// the operating envelope is partitions and downtime shorter than the
/// tombstone horizon.
constexpr microseconds fault_period = 8s;

/// Virtual time allowed for convergence after the last fault.
constexpr microseconds convergence_limit = 120s;

/// How long a tombstone may outlive the horizon (purges run on a timer).
constexpr uint64_t purge_slack_us = 5'000'000;

std::string show(const version& v) {
  std::ostringstream out;
  out << "(e" << v.epoch << " claim=" << v.claim_us % 100'000'000 << "@"
      << v.claimer << " t=" << v.stamp.wall_us % 100'000'000 << "."
      << v.stamp.counter << "@" << v.stamp.node << ")";
  return out.str();
}

/// FNV-1a, to fingerprint a run.
struct digest {
  uint64_t h = 14695981039346656037ull;
  void add(const std::string& s) {
    for (unsigned char c : s) {
      h ^= c;
      h *= 1099511628211ull;
    }
    h ^= 0xff;
    h *= 1099511628211ull;
  }
};

/// An acknowledged write and what must hold for it at the end.
struct acked_write {
  size_t node = 0;
  std::string key;
  version ver;
  enum kind_t { base, tombstone, fields } kind = base;
  std::vector<std::string> field_names;
  /// Lost together with every node that held it (a crash, or a stop
  /// before it spread): not checked.
  bool exempt = false;
};

/// The newest entry metadata a node has seen for a key, from its events.
struct seen_entry {
  std::string owner;
  uint64_t lease_end_us = 0;
  version ver;
  bool live = false;
};

class runner {
public:
  runner(const scenario& sc, uint64_t seed, bool verbose)
      : sc_(sc), seed_(seed), verbose_(verbose), rng_(seed * 7919 + 17) {
    report_.scenario = sc.name;
    report_.seed = seed;
    std::uniform_int_distribution<size_t> pick{sc.min_nodes, sc.max_nodes};
    report_.nodes = pick(rng_);
    testing::cluster_options opts;
    opts.nodes = report_.nodes;
    opts.seed = seed;
    opts.node_config = node_config(sc);
    // Seeds take turns at the three ways to compare differing buckets: the
    // sim's small stores would otherwise always pick key lists.
    constexpr ae_method methods[]
      = {ae_method::automatic, ae_method::sketch, ae_method::key_lists};
    opts.node_config.anti_entropy_method = methods[seed % 3];
    if (sc.durable_restarts) {
      // Both ways an acknowledgement waits for the disk: after an fsync, or
      // after the engine's log write with a timed fsync (on virtual time).
      opts.durable_storage = true;
      opts.node_config.durability
        = seed % 2 == 0 ? durability_mode::always : durability_mode::batch;
    }
    cluster_ = std::make_unique<cluster>(opts);
    local_write_checker::settings checks;
    checks.leasing = sc.leasing;
    checks.lease_margin_us
      = static_cast<uint64_t>(std::chrono::duration_cast<microseconds>(
                                opts.node_config.effective_lease_margin())
                                .count());
    checks.tombstone_horizon_us
      = static_cast<uint64_t>(std::chrono::duration_cast<microseconds>(
                                opts.node_config.tombstone_horizon)
                                .count());
    checker_.emplace(report_.nodes, checks);
    seen_.resize(report_.nodes);
    skew_us_.assign(report_.nodes, 0);
    beyond_since_.assign(report_.nodes, microseconds{-1});
    last_acked_.resize(report_.nodes);
    own_writes_.resize(report_.nodes);
    newest_delete_.resize(report_.nodes);
    cluster_->on_event(
      [this](size_t i, const pb::Event& ev) { on_event(i, ev); });
  }

  /// Runs, turning a request that never returns into a violation.
  run_report run_checked() {
    try {
      return run();
    } catch (const std::exception& ex) {
      fail("liveness", std::string{"the run stopped: "} + ex.what(), "",
           global_trace_);
      report_.digest = digest_.h;
      return std::move(report_);
    }
  }

  run_report run() {
    connect_initial();
    cluster_->advance(2s);
    auto end = cluster_->now()
               + std::chrono::duration_cast<microseconds>(sc_.duration);
    auto gap = microseconds(1'000'000 / std::max(1u, sc_.ops_per_second));
    auto next_fault = cluster_->now() + 1s;
    auto next_calm = cluster_->now() + fault_period;
    auto next_sample = cluster_->now() + 1s;
    while (cluster_->now() < end) {
      if (sc_.faulty() && cluster_->now() >= next_calm) {
        end_faults();
        next_calm = cluster_->now() + fault_period;
      }
      if (sc_.faulty() && cluster_->now() >= next_fault) {
        inject_fault();
        next_fault = cluster_->now()
                     + microseconds(std::uniform_int_distribution<int64_t>{
                       500'000, 2'500'000}(rng_));
      }
      if (cluster_->now() >= next_sample) {
        check_bounds();
        next_sample = cluster_->now() + 1s;
      }
      issue_operation();
      auto jitter = std::uniform_int_distribution<int64_t>{
        gap.count() / 2, gap.count() * 3 / 2}(rng_);
      cluster_->advance(microseconds(jitter));
      settle_completions();
    }
    end_faults();
    auto healed_at = cluster_->now();
    if (!cluster_->await_convergence(convergence_limit)) {
      fail("liveness",
           "no convergence within "
             + std::to_string(convergence_limit.count() / 1'000'000)
             + " s of virtual time after the last fault",
           "", divergent_keys_trace());
    } else {
      report_.convergence_us = (cluster_->now() - healed_at).count();
    }
    settle_completions();
    check_final_state();
    check_bounds();
    auto& net = cluster_->network();
    report_.frames_delivered = net.frames_delivered;
    report_.frames_dropped = net.frames_dropped;
    report_.frames_duplicated = net.frames_duplicated;
    digest_.add(std::to_string(report_.convergence_us));
    report_.digest = digest_.h;
    // Claims are numbered by their claim time, so an older claim wins over
    // a newer one only when clocks disagree.
    if (!sc_.clock_skew && report_.stale_takeovers > 0)
      fail("lease",
           std::to_string(report_.stale_takeovers)
             + " older claim(s) whose lease had ended won over newer ones",
           "", global_trace_);
    if (sc_.skew_within_bound
        && report_.live_takeovers + report_.true_live_takeovers > 0)
      fail("lease",
           std::to_string(report_.live_takeovers) + " + "
             + std::to_string(report_.true_live_takeovers)
             + " live lease(s) taken over while every clock offset was "
               "within the bound",
           "", global_trace_);
    for (size_t i = 0; i < report_.nodes; ++i) {
      if (!cluster_->alive(i))
        continue;
      auto lease = cluster_->stats(i).lease();
      report_.clock_refused_peers += lease.clock_refused_peers();
      report_.clock_fences += lease.clock_fence_raised();
    }
    if (sc_.skew_within_bound
        && report_.clock_refused_peers + report_.clock_fences
               + report_.clock_refusals
             > 0)
      fail("clock-fence",
           "clocks within the bound, yet "
             + std::to_string(report_.clock_refused_peers)
             + " link(s) refused for the clock, "
             + std::to_string(report_.clock_fences) + " fence(s) raised, "
             + std::to_string(report_.clock_refusals)
             + " write(s) refused with clock_offset",
           "", global_trace_);
    if (!sc_.faulty() && report_.live_takeovers + report_.stale_takeovers > 0)
      fail("lease",
           std::to_string(report_.live_takeovers + report_.stale_takeovers)
             + " lease(s) taken over without any fault",
           "", global_trace_);
    return std::move(report_);
  }

private:
  // -- trace ------------------------------------------------------------------

  std::string stamp() const {
    std::ostringstream out;
    out << "t=" << cluster_->now().count() / 1000 << "ms";
    return out.str();
  }

  void trace(const std::string& key, const std::string& line) {
    auto full = stamp() + " " + line;
    digest_.add(full);
    if (verbose_)
      std::printf("%s\n", full.c_str());
    if (key.empty()) {
      global_trace_.push_back(full);
      return;
    }
    auto& lines = key_traces_[key];
    lines.push_back(full);
    if (lines.size() > 40)
      lines.erase(lines.begin());
  }

  void fail(const std::string& invariant, const std::string& detail,
            const std::string& key = {}, std::vector<std::string> lines = {}) {
    if (report_.violations.size() >= 10)
      return;
    violation v{invariant, detail, key, std::move(lines)};
    if (!key.empty() && v.trace.empty())
      v.trace = key_traces_[key];
    if (!global_trace_.empty()) {
      auto n = std::min<size_t>(global_trace_.size(), 15);
      v.trace.insert(v.trace.begin(),
                     "faults (last " + std::to_string(n) + "):");
      v.trace.insert(v.trace.begin() + 1, global_trace_.end() - n,
                     global_trace_.end());
    }
    report_.violations.push_back(std::move(v));
  }

  std::string node_name(size_t i) const {
    return "n" + std::to_string(i) + "(" + cluster_->id(i).raw() + ")";
  }

  // -- topology and faults ----------------------------------------------------

  void connect_initial() {
    auto n = report_.nodes;
    for (size_t i = 0; i < n; ++i)
      cluster_->connect(i, (i + 1) % n);
    for (size_t k = 0; k < n / 2; ++k) {
      auto a = pick_node(), b = pick_node();
      if (a != b)
        cluster_->connect(a, b);
    }
  }

  size_t pick_node() {
    return std::uniform_int_distribution<size_t>{0, report_.nodes - 1}(rng_);
  }

  /// A running, unpaused node, or nullopt.
  std::optional<size_t> pick_live() {
    std::vector<size_t> live;
    for (size_t i = 0; i < report_.nodes; ++i)
      if (cluster_->alive(i) && !cluster_->paused(i))
        live.push_back(i);
    if (live.empty())
      return std::nullopt;
    return live[std::uniform_int_distribution<size_t>{0,
                                                      live.size() - 1}(rng_)];
  }

  size_t live_count() const {
    size_t n = 0;
    for (size_t i = 0; i < report_.nodes; ++i)
      n += cluster_->alive(i) ? 1 : 0;
    return n;
  }

  void inject_fault() {
    std::vector<std::function<void()>> kinds;
    if (sc_.partitions)
      kinds.push_back([this] { fault_partition(); });
    if (sc_.asymmetric_cuts)
      kinds.push_back([this] { fault_one_way_cut(); });
    if (sc_.partitions || sc_.asymmetric_cuts)
      kinds.push_back([this] {
        cluster_->heal_all();
        trace("", "heal all links");
      });
    if (sc_.churn)
      kinds.push_back([this] { fault_stop(testing::restart_mode::fresh); });
    if (sc_.restarts)
      kinds.push_back(
        [this] { fault_stop(testing::restart_mode::same_identity); });
    if (sc_.durable_restarts)
      kinds.push_back([this] { fault_stop(testing::restart_mode::durable); });
    if (sc_.churn || sc_.restarts || sc_.durable_restarts)
      kinds.push_back([this] { restart_one(); });
    if (sc_.pauses)
      kinds.push_back([this] { fault_pause(); });
    if (sc_.clock_skew)
      kinds.push_back([this] { fault_skew(); });
    if (sc_.lossy)
      kinds.push_back([this] { fault_lossy(); });
    auto k = std::uniform_int_distribution<size_t>{0, kinds.size() - 1}(rng_);
    kinds[k]();
    ++report_.faults;
  }

  void fault_partition() {
    std::vector<size_t> side(report_.nodes);
    for (auto& s : side)
      s = std::uniform_int_distribution<size_t>{0, 1}(rng_);
    std::vector<std::vector<size_t>> groups(2);
    std::string text;
    for (size_t i = 0; i < report_.nodes; ++i) {
      groups[side[i]].push_back(i);
      text += (side[i] ? "B" : "A");
    }
    cluster_->heal_all();
    cluster_->partition(groups);
    trace("", "partition " + text);
  }

  void fault_one_way_cut() {
    auto a = pick_node(), b = pick_node();
    if (a == b)
      return;
    cluster_->cut(a, b);
    trace("", "cut " + std::to_string(a) + "->" + std::to_string(b));
  }

  void fault_stop(testing::restart_mode mode) {
    // A paused node cannot tell which writes it holds (see before_node_loss).
    for (size_t j = 0; j < report_.nodes; ++j)
      if (cluster_->alive(j) && cluster_->paused(j))
        return;
    // Keep a majority of slots running so the workload has somewhere to go.
    if (live_count() * 2 <= report_.nodes + 1)
      return;
    auto i = pick_live();
    if (!i)
      return;
    bool graceful = std::uniform_int_distribution<int>{0, 1}(rng_) == 1;
    bool durable = mode == testing::restart_mode::durable;
    if (durable) {
      // It comes back with its storage: nothing it holds is lost.
      down_bytes_[*i] = cluster_->store_bytes(*i);
      down_entries_[*i] = cluster_->entries(*i);
    } else {
      before_node_loss(*i);
    }
    trace("", std::string(graceful ? "stop " : "crash ") + node_name(*i));
    cluster_->stop(*i, graceful);
    restart_modes_[*i] = mode;
    // A node back from a durable restart goes on from the entries it had
    // (check_durable_restart holds it to that): what it saw, wrote and
    // published stays the base of its checks, so for instance a lease_lost
    // for a key it held before the crash is in order.
    if (durable)
      return;
    seen_[*i].clear();
    last_acked_[*i].clear();
    own_writes_[*i].clear();
    newest_delete_[*i].clear();
    checker_->forget(*i);
  }

  /// Starts stopped node i again as it was stopped to come back; a durable
  /// restart is checked at once, before any peer can repair it.
  void restart_node(size_t i) {
    auto mode = restart_modes_[i];
    cluster_->restart(i, mode);
    trace("",
          "restart " + node_name(i)
            + (mode == testing::restart_mode::fresh           ? " fresh"
               : mode == testing::restart_mode::same_identity ? " same identity"
                                                              : " durable"));
    if (mode == testing::restart_mode::durable)
      check_durable_restart(i);
  }

  /// Node i, just back from a durable restart and not yet connected, holds
  /// exactly what it held when it went down: in particular every write it
  /// acknowledged (the kit's crash is a process crash, so the engine's log
  /// survives with every durability mode; with `always` each of those
  /// writes was also fsynced before its acknowledgement).
  void check_durable_restart(size_t i) {
    ++report_.durable_restarts;
    auto before = replica_of(i, down_entries_[i]);
    auto after_batch = cluster_->entries(i);
    auto after = replica_of(i, after_batch);
    for (const auto& w : writes_) {
      if (w.node != i || !holds(*before, w))
        continue;
      ++report_.durable_writes_checked;
      if (!holds(*after, w))
        fail("durable-restart",
             "write " + show(w.ver) + " to " + w.key + " acknowledged by "
               + node_name(i) + " before it went down is missing after its "
               + "durable restart",
             w.key);
    }
    if (cluster_->store_bytes(i) == down_bytes_[i])
      return;
    std::map<std::string, std::string> was, is;
    for (const auto& rec : down_entries_[i].records())
      was[rec.key()] += rec.SerializeAsString();
    for (const auto& rec : after_batch.records())
      is[rec.key()] += rec.SerializeAsString();
    std::string keys;
    for (auto& [k, v] : was)
      if (is[k] != v)
        keys += " " + k;
    for (auto& [k, v] : is)
      if (was[k] != v)
        keys += " " + k;
    fail("durable-restart",
         node_name(i)
           + " holds other entries after its durable restart than when it "
             "went down; keys:"
           + keys);
  }

  void restart_one() {
    for (size_t i = 0; i < report_.nodes; ++i) {
      if (cluster_->alive(i))
        continue;
      restart_node(i);
      connect_somewhere(i);
      return;
    }
  }

  void connect_somewhere(size_t i) {
    for (int k = 0; k < 2; ++k) {
      auto j = pick_live();
      if (j && *j != i)
        cluster_->connect(i, *j);
    }
  }

  void fault_pause() {
    for (size_t i = 0; i < report_.nodes; ++i) {
      if (cluster_->alive(i) && cluster_->paused(i)) {
        cluster_->resume(i);
        trace("", "resume " + node_name(i));
        return;
      }
    }
    if (auto i = pick_live()) {
      cluster_->pause(*i);
      trace("", "pause " + node_name(*i));
    }
  }

  void fault_skew() {
    auto i = pick_node();
    constexpr int64_t bound_us = clock_bound.count() * 1000;
    int64_t skew = 0;
    if (sc_.skew_within_bound
        || std::uniform_int_distribution<int>{0, 1}(rng_) == 0) {
      skew = std::uniform_int_distribution<int64_t>{-bound_us * 2 / 5,
                                                    bound_us * 2 / 5}(rng_);
    } else {
      skew = std::uniform_int_distribution<int64_t>{1'000'000, 4'000'000}(rng_);
      if (std::uniform_int_distribution<int>{0, 1}(rng_) == 0)
        skew = -skew;
    }
    skew_us_[i] = skew;
    cluster_->set_skew(i, microseconds(skew));
    trace("", "skew n" + std::to_string(i) + " by "
                + std::to_string(skew / 1000) + "ms");
  }

  void fault_lossy() {
    testing::link_faults f;
    f.drop = std::uniform_real_distribution<double>{0.0, 0.1}(rng_);
    f.duplicate = std::uniform_real_distribution<double>{0.0, 0.1}(rng_);
    f.reorder = std::uniform_real_distribution<double>{0.0, 0.1}(rng_);
    f.max_latency = microseconds(
      std::uniform_int_distribution<int64_t>{2'000, 200'000}(rng_));
    auto a = pick_node(), b = pick_node();
    if (a == b)
      return;
    cluster_->set_faults(a, b, f);
    cluster_->set_faults(b, a, f);
    trace("", "lossy " + std::to_string(a) + "<->" + std::to_string(b)
                + " drop=" + std::to_string(f.drop)
                + " dup=" + std::to_string(f.duplicate)
                + " reorder=" + std::to_string(f.reorder));
  }

  /// Faults stop: links heal, paused nodes resume, stopped nodes return.
  void end_faults() {
    // Clocks come back within the bound (an operator fixed NTP): nodes
    // refused for their clock are measured within at the next handshake.
    for (size_t i = 0; i < report_.nodes; ++i) {
      if (skew_us_[i] != 0 && !sc_.skew_within_bound) {
        skew_us_[i] = 0;
        cluster_->set_skew(i, microseconds(0));
      }
    }
    cluster_->heal_all();
    cluster_->set_faults(testing::link_faults{});
    for (size_t i = 0; i < report_.nodes; ++i) {
      if (cluster_->alive(i) && cluster_->paused(i))
        cluster_->resume(i);
    }
    for (size_t i = 0; i < report_.nodes; ++i) {
      if (!cluster_->alive(i)) {
        restart_node(i);
        connect_somewhere(i);
      }
    }
    // Nodes that lost every peer during the faults dial a neighbour again.
    for (size_t i = 0; i < report_.nodes; ++i)
      cluster_->connect(i, (i + 1) % report_.nodes);
    trace("", "faults end: all links healed, all nodes running");
  }

  // -- workload ---------------------------------------------------------------

  std::string pick_key(size_t node) {
    std::uniform_int_distribution<int> coin{0, 1};
    if (coin(rng_) == 0)
      return "home/" + std::to_string(node) + "/"
             + std::to_string(std::uniform_int_distribution<int>{0, 4}(rng_));
    return "shared/"
           + std::to_string(std::uniform_int_distribution<int>{0, 19}(rng_));
  }

  value pick_value() {
    auto n = static_cast<int64_t>(++value_counter_);
    switch (std::uniform_int_distribution<int>{0, 2}(rng_)) {
      case 0:
        return value{n};
      case 1:
        return value{"text-" + std::to_string(n)};
      default:
        return value{{{"a", value{n}}, {"b", value{"x"}}}};
    }
  }

  /// What happens when an operation completes, applied after the instant
  /// settles (so the node's events have arrived too).
  struct completion {
    size_t node;
    uint64_t incarnation;
    std::function<void()> apply;
  };

  /// Node i's clock is further than the bound (+ slack) from every other
  /// running node's: whatever it measures, it must fence itself.
  bool clearly_beyond(size_t i) const {
    constexpr int64_t bound_us = clock_bound.count() * 1000;
    size_t others = 0;
    for (size_t j = 0; j < report_.nodes; ++j) {
      if (j == i || !cluster_->alive(j))
        continue;
      ++others;
      auto d = skew_us_[i] - skew_us_[j];
      if (d < 0)
        d = -d;
      if (d <= bound_us + fence_slack_us)
        return false;
    }
    return others > 0;
  }

  /// Tracks since when each node is clearly beyond (only where skew is the
  /// only fault: a partitioned, paused or lossy node may measure no one,
  /// and then it has nothing to fence on).
  void track_clocks() {
    if (!sc_.clock_skew || sc_.partitions || sc_.asymmetric_cuts || sc_.churn
        || sc_.restarts || sc_.durable_restarts || sc_.pauses || sc_.lossy)
      return;
    for (size_t i = 0; i < report_.nodes; ++i) {
      if (!clearly_beyond(i))
        beyond_since_[i] = microseconds{-1};
      else if (beyond_since_[i].count() < 0)
        beyond_since_[i] = cluster_->now();
    }
  }

  /// True when a local write issued now at node i must be refused.
  bool must_fence(size_t i) const {
    return beyond_since_[i].count() >= 0
           && cluster_->now() - beyond_since_[i] >= fence_grace;
  }

  void issue_operation() {
    track_clocks();
    auto picked = pick_live();
    if (!picked)
      return;
    auto i = *picked;
    ++report_.operations;
    auto dice = std::uniform_int_distribution<int>{0, 99}(rng_);
    if (dice < 55)
      op_set(i);
    else if (dice < 67)
      op_delete(i);
    else if (dice < 82)
      op_delta(i);
    else if (dice < 92)
      op_update(i);
    else
      op_read(i);
  }

  /// Leases node i has seen as valid for `key` now; empty when none.
  std::string valid_foreign_lease(size_t i, const std::string& key) {
    if (!sc_.leasing)
      return {};
    auto it = seen_[i].find(key);
    if (it == seen_[i].end() || !it->second.live)
      return {};
    auto& s = it->second;
    if (s.owner == cluster_->id(i).raw()
        || s.lease_end_us <= cluster_->wall_us(i))
      return {};
    return s.owner + " until " + std::to_string(s.lease_end_us % 100'000'000);
  }

  void on_error(size_t i, const std::string& key, const std::string& what,
                const caf::error& err) {
    auto text = cluster_->render(i, err);
    if (code_of(err) == errc::clock_offset)
      ++report_.clock_refusals;
    else if (text.find("lease") != std::string::npos)
      ++report_.lease_refusals;
    trace(key, node_name(i) + " " + what + " refused: " + text);
  }

  void expect_refusal(size_t i, const std::string& key,
                      const std::string& lease, const std::string& what) {
    if (!lease.empty())
      fail("lease",
           node_name(i) + " " + what + " on " + key
             + " succeeded although the node had seen the lease of " + lease,
           key);
  }

  void record(size_t i, const std::string& key, const pb::Version& pv,
              acked_write::kind_t kind, std::vector<std::string> fields = {}) {
    acked_write w;
    w.node = i;
    w.key = key;
    if (auto err = from_proto(pv, w.ver); !err.empty()) {
      fail("lost-write", "unreadable version in an ack: " + err, key);
      return;
    }
    w.kind = kind;
    w.field_names = std::move(fields);
    auto& last = last_acked_[i][key];
    if (!last || newer(w.ver, *last))
      last = w.ver;
    writes_.push_back(std::move(w));
    ++report_.acknowledged;
  }

  /// Submits a write to node i; once acknowledged, checks it against the
  /// leases the node had seen and records it for the final checks.
  template <class Reply, class Request>
  void submit_write(size_t i, const std::string& key, const std::string& what,
                    Request req, acked_write::kind_t kind,
                    std::vector<std::string> fields = {}) {
    auto lease = valid_foreign_lease(i, key);
    auto inc = cluster_->incarnation(i);
    auto seq = checker_->issue(i, key);
    std::string fenced;
    if (must_fence(i))
      fenced
        = "its clock had been more than " + std::to_string(clock_bound.count())
          + " ms (+" + std::to_string(fence_slack_us / 1000)
          + " ms) from every other node's for "
          + std::to_string((cluster_->now() - beyond_since_[i]).count() / 1000)
          + " ms";
    cluster_->submit<Reply>(
      i, std::move(req),
      [=](Reply& reply) {
        // The store as it is when the acknowledgement arrives (not when the
        // instant settles, by which time more may have happened).
        auto at_ack = store_newest(i, key);
        note_true_times(i, reply.meta().version());
        completions_.push_back(
          {i, inc, [=] {
             trace(key, node_name(i) + " " + what + " ack "
                          + show_meta(reply.meta()));
             if (!fenced.empty())
               fail("clock-fence",
                    node_name(i) + " acknowledged a local " + what + " on "
                      + key + " although " + fenced,
                    key);
             expect_refusal(i, key, lease, what);
             record(i, key, reply.meta().version(), kind, fields);
             version v;
             from_proto(reply.meta().version(), v);
             checker_->on_acked(i, cluster_->id(i).raw(), key, seq, v, at_ack);
           }});
      },
      [=](const caf::error& err) { on_error(i, key, what, err); });
  }

  void op_set(size_t i) {
    auto key = pick_key(i);
    pb::SetRequest req;
    req.set_key(key);
    to_proto(pick_value(), req.mutable_value());
    submit_write<pb::WriteAck>(i, key, "set", std::move(req),
                               acked_write::base);
  }

  void op_delete(size_t i) {
    auto key = pick_key(i);
    pb::DeleteRequest req;
    req.set_key(key);
    submit_write<pb::DeleteReply>(i, key, "delete", std::move(req),
                                  acked_write::tombstone);
  }

  void op_delta(size_t i) {
    auto key = pick_key(i);
    pb::DeltaRequest req;
    req.set_key(key);
    value fields = value{value_map{}};
    std::vector<std::string> names;
    auto n = std::uniform_int_distribution<int>{1, 2}(rng_);
    for (int k = 0; k < n; ++k) {
      auto name
        = "f" + std::to_string(std::uniform_int_distribution<int>{0, 3}(rng_));
      fields.insert_or_assign(name,
                              value{static_cast<int64_t>(++value_counter_)});
      names.push_back(name);
    }
    to_proto(fields.as_map(), req.mutable_fields());
    submit_write<pb::WriteAck>(i, key, "delta", std::move(req),
                               acked_write::fields, std::move(names));
  }

  void op_update(size_t i) {
    pb::UpdateRequest req;
    std::vector<std::string> keys;
    std::vector<std::string> leases;
    std::vector<uint64_t> seqs;
    auto n = std::uniform_int_distribution<int>{2, 4}(rng_);
    for (int k = 0; k < n; ++k) {
      auto key = pick_key(i);
      if (std::find(keys.begin(), keys.end(), key) != keys.end())
        continue;
      auto* item = req.add_items();
      item->set_key(key);
      to_proto(pick_value(), item->mutable_value());
      keys.push_back(key);
      leases.push_back(valid_foreign_lease(i, key));
      seqs.push_back(checker_->issue(i, key));
      own_writes_[i].erase(key);
    }
    auto inc = cluster_->incarnation(i);
    cluster_->submit<pb::WriteAck>(
      i, std::move(req),
      [=](pb::WriteAck&) {
        std::vector<std::optional<version>> at_ack;
        for (const auto& key : keys)
          at_ack.push_back(store_newest(i, key));
        completions_.push_back(
          {i, inc, [=] {
             for (size_t k = 0; k < keys.size(); ++k) {
               expect_refusal(i, keys[k], leases[k], "update");
               if (auto v = record_from_events(i, keys[k]))
                 checker_->on_acked(i, cluster_->id(i).raw(), keys[k], seqs[k],
                                    *v, at_ack[k]);
             }
           }});
      },
      [=](const caf::error& err) {
        on_error(i, keys.empty() ? "" : keys.front(), "update", err);
      });
  }

  /// An update() batch acks once: each key's version comes from the
  /// node's own event for it. Returns that version (nullopt: none).
  std::optional<version> record_from_events(size_t i, const std::string& key) {
    auto it = own_writes_[i].find(key);
    if (it == own_writes_[i].end()) {
      fail("lost-write",
           node_name(i) + " acknowledged an update of " + key
             + " but published no event for it",
           key);
      return std::nullopt;
    }
    pb::Version pv;
    to_proto(it->second, &pv);
    trace(key, node_name(i) + " update ack " + show(it->second));
    auto v = it->second;
    own_writes_[i].erase(it);
    record(i, key, pv, acked_write::base);
    return v;
  }

  /// The newest version node i's store holds for `key` right now (peeked,
  /// not asked: callable while a reply is being handled); nullopt when the
  /// key has no entry.
  std::optional<version> store_newest(size_t i, const std::string& key) {
    std::optional<version> newest;
    auto entry = cluster_->peek(i, key);
    for (const auto& rec : entry.records()) {
      version v;
      if (!from_proto(rec.version(), v).empty())
        continue;
      if (!newest || newer(v, *newest))
        newest = std::move(v);
    }
    return newest;
  }

  /// A node reads a key it wrote: it sees its own acknowledged write or
  /// something newer.
  void op_read(size_t i) {
    auto key = pick_key(i);
    pb::GetRequest req;
    req.set_key(key);
    std::optional<version> expected;
    if (auto it = last_acked_[i].find(key); it != last_acked_[i].end())
      expected = it->second;
    auto inc = cluster_->incarnation(i);
    cluster_->submit<pb::GetReply>(
      i, std::move(req),
      [=](pb::GetReply& reply) {
        completions_.push_back({i, inc, [=] {
                                  if (!expected)
                                    return;
                                  check_read(i, key, *expected, reply);
                                }});
      },
      [=](const caf::error& err) { on_error(i, key, "get", err); });
  }

  void check_read(size_t i, const std::string& key, const version& expected,
                  const pb::GetReply& reply) {
    if (!reply.found()) {
      // A newer delete is fine; the read then finds nothing. (A newer write
      // may have revived the key by the time this check runs, so look at
      // every delete the node saw, not only its latest event.)
      auto it = newest_delete_[i].find(key);
      if (it != newest_delete_[i].end() && !newer(expected, it->second))
        return;
      fail("read-own-write",
           node_name(i) + " read nothing at " + key + " after its write "
             + show(expected),
           key);
      return;
    }
    version got;
    from_proto(reply.meta().version(), got);
    if (newer(expected, got))
      fail("read-own-write",
           node_name(i) + " read " + show(got) + " at " + key
             + ", older than its acknowledged " + show(expected),
           key);
  }

  static std::string show_meta(const pb::EntryMeta& meta) {
    version v;
    from_proto(meta.version(), v);
    return show(v)
           + " lease_end=" + std::to_string(meta.lease_end_us() % 100'000'000);
  }

  void settle_completions() {
    auto done = std::move(completions_);
    completions_.clear();
    for (auto& c : done)
      if (cluster_->alive(c.node)
          && cluster_->incarnation(c.node) == c.incarnation)
        c.apply();
    resolve_lease_losses();
    for (auto& f : checker_->take_findings()) {
      trace(f.key, "violation " + f.invariant + ": " + f.detail);
      fail(f.invariant, f.detail, f.key);
    }
  }

  // -- events -----------------------------------------------------------------

  void on_event(size_t i, const pb::Event& ev) {
    if (verbose_ && (ev.has_update() || ev.has_deleted()))
      std::printf(
        "%s   event at %s: %s %s\n", stamp().c_str(), node_name(i).c_str(),
        ev.has_update() ? ev.update().key().c_str()
                        : ev.deleted().key().c_str(),
        show_meta(ev.has_update() ? ev.update().meta() : ev.deleted().meta())
          .c_str());
    if (ev.has_update() || (ev.has_deleted() && ev.deleted().has_meta())) {
      const auto& meta
        = ev.has_update() ? ev.update().meta() : ev.deleted().meta();
      version v;
      from_proto(meta.version(), v);
      checker_->on_event(
        i, ev.has_update() ? ev.update().key() : ev.deleted().key(),
        ev.has_update(), v, cluster_->wall_us(i));
    }
    if (ev.has_update()) {
      auto& s = seen_[i][ev.update().key()];
      from_proto(ev.update().meta().version(), s.ver);
      s.owner = ev.update().meta().owner();
      s.lease_end_us = ev.update().meta().lease_end_us();
      s.live = true;
      if (s.ver.stamp.node == cluster_->id(i).raw())
        own_writes_[i][ev.update().key()] = s.ver;
    } else if (ev.has_deleted()) {
      auto& s = seen_[i][ev.deleted().key()];
      from_proto(ev.deleted().meta().version(), s.ver);
      s.owner.clear();
      s.lease_end_us = 0;
      s.live = false;
      auto [d, fresh]
        = newest_delete_[i].try_emplace(ev.deleted().key(), s.ver);
      if (!fresh && newer(s.ver, d->second))
        d->second = s.ver;
    } else if (ev.has_lease_lost()) {
      checker_->on_lease_lost(i, cluster_->id(i).raw(), ev.lease_lost().key());
      lease_losses_.push_back({i, ev.lease_lost().key(),
                               ev.lease_lost().old_lease_end_us(),
                               ev.lease_lost().new_owner()});
    }
  }

  struct lease_loss {
    size_t node;
    std::string key;
    uint64_t old_end_us;
    std::string new_owner;
  };

  /// Classifies a lease loss. "Stale": the winning claim is older than the
  /// loser's and its lease had ended before the loser claimed (the loser
  /// had never seen it: a fresh node, or one cut off since before). "Live":
  /// the winner claimed while the loser's lease ran (it had not seen the
  /// renewal in time). Otherwise a race at a lease boundary.
  /// Remembers the true (virtual) time of an acknowledged write's claim and
  /// lease end: its node's clock reading minus that node's skew.
  void note_true_times(size_t i, const pb::Version& v) {
    const auto& id = cluster_->id(i).raw();
    auto to_true = [&](uint64_t us) {
      return static_cast<int64_t>(us) - skew_us_[i];
    };
    if (v.claimer() == id)
      true_claims_.try_emplace({id, v.claim_us()}, to_true(v.claim_us()));
    if (v.lease_end_us() != 0)
      true_ends_.try_emplace({id, v.lease_end_us()}, to_true(v.lease_end_us()));
  }

  /// True when the claim that took `loss` over was made, in true time,
  /// before the lost lease ended (both known from acknowledgements).
  bool live_in_true_time(const lease_loss& loss, const version& winner) {
    auto claim = true_claims_.find({winner.claimer, winner.claim_us});
    auto end
      = true_ends_.find({cluster_->id(loss.node).raw(), loss.old_end_us});
    return claim != true_claims_.end() && end != true_ends_.end()
           && claim->second < end->second;
  }

  void resolve_lease_losses() {
    for (auto& loss : lease_losses_) {
      auto it = seen_[loss.node].find(loss.key);
      auto own = own_writes_[loss.node].find(loss.key);
      bool known = it != seen_[loss.node].end();
      bool stale = known && own != own_writes_[loss.node].end()
                   && it->second.ver.claim_us < own->second.claim_us
                   && it->second.lease_end_us <= own->second.claim_us;
      bool live = !stale && known && it->second.ver.claim_us < loss.old_end_us;
      bool live_true = known && live_in_true_time(loss, it->second.ver);
      report_.true_live_takeovers += live_true ? 1 : 0;
      (stale  ? report_.stale_takeovers
       : live ? report_.live_takeovers
              : report_.boundary_takeovers)
        += 1;
      trace(loss.key,
            node_name(loss.node) + " lease_lost on " + loss.key + " to "
              + loss.new_owner
              + (stale  ? " (stale claim)"
                 : live ? " (live lease)"
                        : "")
              + (live_true ? " (live in true time)" : "")
              + " old_end=" + std::to_string(loss.old_end_us % 100'000'000)
              + (it != seen_[loss.node].end()
                   ? " winner " + show(it->second.ver)
                   : std::string{}));
    }
    lease_losses_.clear();
  }

  // -- invariants -------------------------------------------------------------

  /// Rebuilds node i's store from its exported entries.
  std::unique_ptr<store_state> replica(size_t i) {
    return replica_of(i, cluster_->entries(i));
  }

  /// Rebuilds a store from entries node i exported.
  std::unique_ptr<store_state> replica_of(size_t i,
                                          const pb::WriteBatch& batch) {
    auto st = std::make_unique<store_state>();
    for (const auto& rec : batch.records()) {
      std::string error;
      st->apply(rec, false, error);
      if (!error.empty())
        fail("convergence",
             node_name(i) + " exported a bad record for " + rec.key() + ": "
               + error,
             rec.key());
    }
    return st;
  }

  /// True when `st` holds write `w` or something that supersedes it.
  static bool holds(const store_state& st, const acked_write& w) {
    const auto* entry = st.find(w.key);
    if (entry == nullptr)
      return false;
    const auto& head = entry->head();
    if (head.has_base() && compare(head.base_version(st.ids()), w.ver) >= 0)
      return true;
    if (w.kind != acked_write::fields)
      return false;
    for (const auto& name : w.field_names) {
      bool found = false;
      for (const auto& fw : entry->fields())
        if (fw.key == map_key{name} && compare(fw.ver, w.ver) >= 0)
          found = true;
      if (!found)
        return false;
    }
    return true;
  }

  /// Before node i goes away: writes that no other running node holds are
  /// lost with it (no durability is promised for them).
  void before_node_loss(size_t i) {
    std::vector<std::unique_ptr<store_state>> others;
    for (size_t j = 0; j < report_.nodes; ++j) {
      if (j != i && cluster_->alive(j))
        others.push_back(replica(j));
      // A node down for a durable restart brings its entries back.
      else if (j != i && restart_modes_.count(j) > 0
               && restart_modes_[j] == testing::restart_mode::durable)
        others.push_back(replica_of(j, down_entries_[j]));
    }
    for (auto& w : writes_) {
      if (w.exempt)
        continue;
      bool elsewhere = std::any_of(others.begin(), others.end(),
                                   [&](auto& st) { return holds(*st, w); });
      if (!elsewhere) {
        w.exempt = true;
        ++report_.lost_with_node;
        trace(w.key, "write " + show(w.ver) + " exists nowhere but on "
                       + node_name(i) + ", which goes away");
      }
    }
  }

  void check_final_state() {
    std::vector<std::pair<size_t, std::string>> dumps;
    for (size_t i = 0; i < report_.nodes; ++i)
      if (cluster_->alive(i))
        dumps.emplace_back(i, cluster_->store_bytes(i));
    for (size_t k = 1; k < dumps.size(); ++k)
      if (dumps[k].second != dumps[0].second) {
        fail("convergence",
             node_name(dumps[k].first) + " and " + node_name(dumps[0].first)
               + " hold different entries",
             "", divergent_keys_trace());
        break;
      }
    if (dumps.empty())
      return;
    auto st = replica(dumps[0].first);
    report_.entries = st->entry_count();
    digest_.add(dumps[0].second);
    // 2. No acknowledged write is lost.
    for (const auto& w : writes_) {
      if (w.exempt || holds(*st, w))
        continue;
      if (st->find(w.key) == nullptr && tombstone_purged(w))
        continue;
      fail("lost-write",
           "write " + show(w.ver) + " to " + w.key + " acknowledged by "
             + node_name(w.node) + " is missing",
           w.key);
    }
    // 4. Tombstones go within the horizon.
    auto horizon_us
      = static_cast<uint64_t>(std::chrono::duration_cast<microseconds>(
                                node_config(sc_).tombstone_horizon)
                                .count());
    auto batch = cluster_->entries(dumps[0].first);
    for (const auto& rec : batch.records()) {
      if (!rec.has_tombstone())
        continue;
      auto wall = rec.version().stamp().wall_us();
      auto now = cluster_->wall_us(dumps[0].first);
      if (wall + horizon_us + purge_slack_us + 4'000'000 < now)
        fail("bounds",
             "tombstone of " + rec.key() + " from "
               + std::to_string((now - wall) / 1000) + " ms ago outlived the "
               + std::to_string(horizon_us / 1000) + " ms horizon",
             rec.key());
    }
  }

  /// A missing key is fine when a newer acknowledged delete removed it and
  /// its tombstone was purged after the horizon.
  bool tombstone_purged(const acked_write& w) const {
    for (const auto& d : writes_)
      if (d.key == w.key && d.kind == acked_write::tombstone
          && compare(d.ver, w.ver) >= 0)
        return true;
    return false;
  }

  std::vector<std::string> divergent_keys_trace() {
    std::vector<std::string> lines;
    std::optional<std::pair<size_t, pb::WriteBatch>> first;
    std::set<std::string> keys;
    std::map<std::string, std::string> base;
    for (size_t i = 0; i < report_.nodes; ++i) {
      if (!cluster_->alive(i) || cluster_->paused(i))
        continue;
      auto batch = cluster_->entries(i);
      std::map<std::string, std::string> mine;
      for (const auto& rec : batch.records())
        mine[rec.key()] += rec.SerializeAsString();
      if (!first) {
        first.emplace(i, batch);
        base = mine;
        continue;
      }
      for (auto& [k, v] : mine)
        if (base[k] != v)
          keys.insert(k);
      for (auto& [k, v] : base)
        if (mine[k] != v)
          keys.insert(k);
    }
    for (const auto& k : keys) {
      lines.push_back("key " + k + " differs:");
      for (auto& l : key_traces_[k])
        lines.push_back("  " + l);
      if (lines.size() > 60)
        break;
    }
    return lines;
  }

  void check_bounds() {
    auto cfg = node_config(sc_);
    for (size_t i = 0; i < report_.nodes; ++i) {
      if (!cluster_->alive(i) || cluster_->paused(i))
        continue;
      auto st = cluster_->stats(i);
      if (st.router().seen_ids() > cfg.seen_set_size)
        fail("bounds", node_name(i) + " remembers "
                         + std::to_string(st.router().seen_ids())
                         + " message IDs, over seen_set_size");
      if (st.lease().held_records() > cfg.max_held_writes)
        fail("bounds", node_name(i) + " holds "
                         + std::to_string(st.lease().held_records())
                         + " future writes, over max_held_writes");
    }
    // A link may queue one frame beyond its budget before it notices.
    auto limit = cfg.max_send_queue + 2 * cfg.max_frame_size;
    if (cluster_->network().max_send_queue > limit)
      fail("bounds", "a send queue reached "
                       + std::to_string(cluster_->network().max_send_queue)
                       + " bytes, over max_send_queue");
  }

  const scenario& sc_;
  uint64_t seed_;
  bool verbose_;
  std::mt19937_64 rng_;
  run_report report_;
  std::unique_ptr<cluster> cluster_;
  /// The invariants of local writes and events (local_write_checker.hpp).
  std::optional<local_write_checker> checker_;
  std::vector<std::map<std::string, seen_entry>> seen_;
  /// True times of acknowledged claims and lease ends, by (node ID, the
  /// node's clock reading).
  std::map<std::pair<std::string, uint64_t>, int64_t> true_claims_;
  /// See true_claims_.
  std::map<std::pair<std::string, uint64_t>, int64_t> true_ends_;
  /// Each node's clock skew (µs), as last set.
  std::vector<int64_t> skew_us_;
  /// Since when each node's clock is clearly beyond every other's; -1: not.
  std::vector<microseconds> beyond_since_;
  std::vector<std::map<std::string, std::optional<version>>> last_acked_;
  /// The newest delete each node published an event for.
  std::vector<std::map<std::string, version>> newest_delete_;
  /// The newest write each node published an event for, stamped by itself.
  std::vector<std::map<std::string, version>> own_writes_;
  std::map<size_t, testing::restart_mode> restart_modes_;
  /// What each node held when it went down for a durable restart: its
  /// canonical bytes and its entries.
  std::map<size_t, std::string> down_bytes_;
  /// See down_bytes_.
  std::map<size_t, pb::WriteBatch> down_entries_;
  std::vector<acked_write> writes_;
  std::vector<completion> completions_;
  std::vector<lease_loss> lease_losses_;
  std::map<std::string, std::vector<std::string>> key_traces_;
  std::vector<std::string> global_trace_;
  uint64_t value_counter_ = 0;
  digest digest_;
};

} // namespace

const std::vector<scenario>& scenarios() {
  static const std::vector<scenario> all = {
    make("steady", 3, 5, [](scenario&) {}),
    make("steady-nolease", 3, 5, [](scenario& s) { s.leasing = false; }),
    make("partition", 4, 7,
         [](scenario& s) {
           s.partitions = true;
           s.asymmetric_cuts = true;
         }),
    make("churn", 5, 8, [](scenario& s) { s.churn = true; }),
    make("restarts", 3, 6,
         [](scenario& s) {
           s.restarts = true;
           s.pauses = true;
         }),
    make("skew", 3, 5, [](scenario& s) { s.clock_skew = true; }),
    make("skew-within", 3, 5,
         [](scenario& s) { s.clock_skew = s.skew_within_bound = true; }),
    make("lossy", 3, 6, [](scenario& s) { s.lossy = true; }),
    make("durable", 3, 6,
         [](scenario& s) {
           // Chaos's whole fault mix, with durable restarts added.
           s.churn = s.restarts = s.durable_restarts = true;
           s.pauses = s.partitions = s.lossy = true;
           s.asymmetric_cuts = s.clock_skew = true;
         }),
    make("chaos", 4, 8,
         [](scenario& s) {
           s.partitions = s.asymmetric_cuts = s.churn = s.restarts = true;
           s.pauses = s.clock_skew = s.lossy = true;
         }),
    make("large", 20, 25,
         [](scenario& s) {
           s.partitions = s.churn = s.lossy = true;
           s.duration = std::chrono::seconds(10);
           s.ops_per_second = 40;
         }),
  };
  return all;
}

const scenario* find_scenario(const std::string& name) {
  for (const auto& sc : scenarios())
    if (sc.name == name)
      return &sc;
  return nullptr;
}

run_report run(const scenario& sc, uint64_t seed, bool verbose) {
  runner r{sc, seed, verbose};
  return r.run_checked();
}

std::string describe(const run_report& r) {
  std::ostringstream out;
  out << (r.violations.empty() ? "ok  " : "FAIL") << " scenario=" << r.scenario
      << " seed=" << r.seed << " nodes=" << r.nodes << " faults=" << r.faults
      << " ops=" << r.operations << " acked=" << r.acknowledged
      << " lease_refusals=" << r.lease_refusals
      << " clock(refusals/peers/fences)=" << r.clock_refusals << "/"
      << r.clock_refused_peers << "/" << r.clock_fences
      << " takeovers(live/stale/boundary)=" << r.live_takeovers << "/"
      << r.stale_takeovers << "/" << r.boundary_takeovers
      << " live_in_true_time=" << r.true_live_takeovers
      << " lost_with_node=" << r.lost_with_node
      << " durable_restarts=" << r.durable_restarts
      << " durable_writes_checked=" << r.durable_writes_checked
      << " frames=" << r.frames_delivered << " dropped=" << r.frames_dropped
      << " duplicated=" << r.frames_duplicated
      << " converged_after_ms=" << r.convergence_us / 1000
      << " entries=" << r.entries;
  for (const auto& v : r.violations) {
    out << "\n  invariant " << v.invariant << " violated: " << v.detail;
    if (!v.key.empty())
      out << "\n  key " << v.key;
    for (const auto& line : v.trace)
      out << "\n    " << line;
    out << "\n  replay: syncmesh-sim --scenario=" << r.scenario
        << " --seed=" << r.seed << " --verbose";
  }
  return out.str();
}

} // namespace syncmesh::sim
