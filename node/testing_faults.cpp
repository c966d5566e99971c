// Fault schedules of the test kit (cluster::run_faults) and the node timers
// for long virtual spans. Built on the cluster's public operations only:
// each fault is one of the kit's own (partition, cut, set_faults, stop,
// pause, set_skew), so it is traced and behaves exactly as when a test
// calls it by hand.

#include "syncmesh/testing.hpp"

#include <algorithm>
#include <cstdio>
#include <functional>
#include <limits>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "syncmesh/pb/requests.pb.h"

namespace syncmesh::testing {

using std::chrono::microseconds;

const char* to_string(fault_kind kind) noexcept {
  switch (kind) {
    case fault_kind::partition:
      return "partition";
    case fault_kind::one_way_cut:
      return "one_way_cut";
    case fault_kind::clog:
      return "clog";
    case fault_kind::lossy:
      return "lossy";
    case fault_kind::stop:
      return "stop";
    case fault_kind::crash:
      return "crash";
    case fault_kind::pause:
      return "pause";
    case fault_kind::clock_skew:
      return "clock_skew";
  }
  return "unknown";
}

size_t fault_summary::count(fault_kind kind) const {
  return static_cast<size_t>(
    std::count_if(faults.begin(), faults.end(),
                  [kind](const injected_fault& f) { return f.kind == kind; }));
}

bool fault_summary::restarted(size_t node) const {
  return std::any_of(
    faults.begin(), faults.end(), [node](const injected_fault& f) {
      return (f.kind == fault_kind::stop || f.kind == fault_kind::crash)
             && f.nodes.front() == node;
    });
}

config long_span_config(config base) {
  // Heartbeats and the router's redial tick are what an idle mesh spends
  // its time on (one tick per node every redial_min, one ping and pong per
  // link every heartbeat); anti-entropy rounds come next.
  base.heartbeat_interval = std::chrono::seconds(10);
  base.peer_timeout = std::chrono::seconds(60);
  base.redial_min = std::chrono::seconds(2);
  base.redial_max = std::chrono::seconds(60);
  base.anti_entropy_interval = std::chrono::seconds(60);
  return base;
}

cluster_options cluster_options::long_span() {
  cluster_options opts;
  opts.node_config = long_span_config(opts.node_config);
  return opts;
}

namespace {

/// SplitMix64: spreads a seed and a time into an unrelated seed.
uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

/// Seconds with millisecond precision, for fault descriptions.
std::string seconds(microseconds d) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.3f s",
                static_cast<double>(d.count()) / 1e6);
  return buf;
}

/// Throws std::invalid_argument with `what` unless `ok`.
void require(bool ok, const char* what) {
  if (!ok)
    throw std::invalid_argument(std::string{"syncmesh::testing::fault_"
                                            "schedule: "}
                                + what);
}

/// Injects and undoes the faults of one schedule on one cluster.
class fault_injector {
public:
  fault_injector(cluster& c, const fault_schedule& s)
      : c_(c), s_(s), n_(c.size()) {
    summary_.seed
      = s.seed ? *s.seed
               : mix(c.seed() ^ mix(static_cast<uint64_t>(c.now().count())));
    rng_.seed(summary_.seed);
    durable_storage_ = n_ > 0 && !c.data_dir(0).empty();
    restart_as_ = s.restart_as
                    ? *s.restart_as
                    : (durable_storage_ ? restart_mode::durable
                                        : restart_mode::same_identity);
    cuts_.assign(n_, std::vector<size_t>(n_, 0));
    cut_before_.assign(n_, std::vector<bool>(n_, false));
    link_busy_.assign(n_, std::vector<bool>(n_, false));
    node_busy_.assign(n_, false);
    skew_busy_.assign(n_, false);
    initial_peers_.resize(n_);
  }

  fault_summary run() {
    validate();
    for (size_t a = 0; a < n_; ++a)
      for (size_t b = 0; b < n_; ++b)
        cut_before_[a][b] = a != b && !c_.reachable(a, b);
    for (size_t i = 0; i < n_; ++i)
      initial_peers_[i] = peers_of(i);
    c_.record_fault("schedule: seed " + std::to_string(summary_.seed)
                    + ", span " + seconds(s_.span));
    auto end = c_.now() + s_.span;
    constexpr auto never = microseconds::max();
    bool ticking = s_.on_tick && s_.tick > microseconds::zero();
    auto next_tick = ticking ? c_.now() + s_.tick : never;
    auto next_fault = c_.now() + gap();
    for (;;) {
      auto next = std::min({end, next_tick, next_fault, next_undo()});
      if (next > c_.now())
        c_.advance(next - c_.now());
      // What falls due at one instant, in a fixed order: faults end, the
      // workload ticks, a new fault begins.
      while (next_undo() <= c_.now())
        undo(earliest_active());
      if (c_.now() >= end)
        break;
      if (next_tick <= c_.now()) {
        s_.on_tick();
        next_tick += s_.tick;
      }
      if (next_fault <= c_.now()) {
        inject();
        next_fault = c_.now() + gap();
      }
    }
    if (s_.heal_at_end)
      heal_everything();
    summary_.still_active = active_.size();
    return std::move(summary_);
  }

private:
  /// A fault in force and how it is undone.
  struct active_fault {
    /// Its index in summary_.faults.
    size_t index;
    /// When it is undone.
    microseconds end;
    /// Undoes it.
    std::function<void()> undo;
  };

  void validate() const {
    require(s_.span >= microseconds::zero(), "span is negative");
    require(s_.mean_gap > microseconds::zero(), "mean_gap must be positive");
    require(s_.min_duration >= microseconds::zero()
              && s_.max_duration >= s_.min_duration,
            "durations must satisfy 0 <= min_duration <= max_duration");
    require(s_.clog_min_latency >= microseconds::zero()
              && s_.clog_max_latency >= s_.clog_min_latency,
            "clog latencies must satisfy 0 <= min <= max");
    require(s_.max_loss >= 0 && s_.max_loss <= 1,
            "max_loss must lie in [0, 1]");
    require(s_.max_skew >= microseconds::zero(), "max_skew is negative");
    require(restart_as_ != restart_mode::durable || durable_storage_,
            "restart_mode::durable needs cluster_options::durable_storage");
  }

  // -- randomness -------------------------------------------------------------

  microseconds gap() {
    std::exponential_distribution<double> dist{
      1.0 / static_cast<double>(s_.mean_gap.count())};
    auto us = static_cast<int64_t>(dist(rng_));
    return microseconds(std::max<int64_t>(us, 1));
  }

  int64_t uniform(int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>{lo, hi}(rng_);
  }

  double uniform01() {
    return std::uniform_real_distribution<double>{0.0, 1.0}(rng_);
  }

  microseconds duration() {
    return microseconds(
      uniform(s_.min_duration.count(), s_.max_duration.count()));
  }

  /// A random element of `xs` (not empty).
  template <class T>
  const T& pick(const std::vector<T>& xs) {
    return xs[static_cast<size_t>(
      uniform(0, static_cast<int64_t>(xs.size()) - 1))];
  }

  // -- the cluster ------------------------------------------------------------

  std::string name(size_t i) const { return c_.id(i).raw(); }

  /// The nodes node i is linked to now (none when it is stopped or paused).
  std::set<size_t> peers_of(size_t i) {
    std::set<size_t> result;
    if (!c_.alive(i) || c_.paused(i))
      return result;
    auto list = c_.ask<pb::PeerList>(i, pb::PeersRequest{});
    for (const auto& p : list.peers())
      for (size_t j = 0; j < n_; ++j)
        if (j != i && c_.alive(j) && c_.id(j).raw() == p.node_id())
          result.insert(j);
    return result;
  }

  /// Nodes stopped or paused, by the schedule or the test.
  size_t down() const {
    size_t k = 0;
    for (size_t i = 0; i < n_; ++i)
      k += !c_.alive(i) || c_.paused(i) ? 1 : 0;
    return k;
  }

  /// Node i dials every node it was linked to when the schedule began.
  void redial_initial_peers(size_t i) {
    for (auto j : initial_peers_[i])
      c_.connect(i, j);
  }

  // -- faults -----------------------------------------------------------------

  microseconds next_undo() const {
    auto t = microseconds::max();
    for (const auto& a : active_)
      t = std::min(t, a.end);
    return t;
  }

  /// The active fault that ends first (the older among equals).
  size_t earliest_active() const {
    size_t best = 0;
    for (size_t k = 1; k < active_.size(); ++k)
      if (active_[k].end < active_[best].end)
        best = k;
    return best;
  }

  void undo(size_t k) {
    auto fault = std::move(active_[k]);
    active_.erase(active_.begin() + static_cast<long>(k));
    fault.undo();
    summary_.faults[fault.index].until = c_.now();
  }

  /// Starts a fault: in the summary, in the trace, undone after `lasts`.
  void begin(fault_kind kind, std::vector<size_t> nodes, std::string text,
             microseconds lasts, std::function<void()> undo_it) {
    c_.record_fault("schedule: " + text + " for " + seconds(lasts));
    summary_.faults.push_back(injected_fault{
      c_.now(), microseconds(-1), kind, std::move(nodes), std::move(text)});
    active_.push_back(active_fault{summary_.faults.size() - 1, c_.now() + lasts,
                                   std::move(undo_it)});
  }

  /// Draws one fault among the kinds allowed and possible now.
  void inject() {
    std::vector<fault_kind> kinds;
    auto free_directions = directions(false);
    auto free_pairs = directions(true);
    auto up = nodes_that_may_go_down();
    std::vector<size_t> unskewed;
    for (size_t i = 0; i < n_; ++i)
      if (!skew_busy_[i])
        unskewed.push_back(i);
    if (s_.partitions && n_ >= 2)
      kinds.push_back(fault_kind::partition);
    if (s_.one_way_cuts && n_ >= 2)
      kinds.push_back(fault_kind::one_way_cut);
    if (s_.clogs && !free_directions.empty())
      kinds.push_back(fault_kind::clog);
    if (s_.lossy_links && !free_pairs.empty())
      kinds.push_back(fault_kind::lossy);
    if (s_.stops && !up.empty())
      kinds.push_back(fault_kind::stop);
    if (s_.crashes && !up.empty())
      kinds.push_back(fault_kind::crash);
    if (s_.pauses && !up.empty())
      kinds.push_back(fault_kind::pause);
    if (s_.clock_skews && !unskewed.empty())
      kinds.push_back(fault_kind::clock_skew);
    if (kinds.empty())
      return;
    switch (pick(kinds)) {
      case fault_kind::partition:
        return partition();
      case fault_kind::one_way_cut:
        return one_way_cut();
      case fault_kind::clog:
        return clog(pick(free_directions));
      case fault_kind::lossy:
        return lossy(pick(free_pairs));
      case fault_kind::stop:
        return stop(pick(up), true);
      case fault_kind::crash:
        return stop(pick(up), false);
      case fault_kind::pause:
        return pause(pick(up));
      case fault_kind::clock_skew:
        return skew(pick(unskewed));
    }
  }

  /// Directions a → b whose link faults the schedule has not changed (with
  /// `both`: pairs a < b with both directions free).
  std::vector<std::pair<size_t, size_t>> directions(bool both) const {
    std::vector<std::pair<size_t, size_t>> result;
    for (size_t a = 0; a < n_; ++a)
      for (size_t b = 0; b < n_; ++b)
        if (a != b && !link_busy_[a][b]
            && (!both || (a < b && !link_busy_[b][a])))
          result.emplace_back(a, b);
    return result;
  }

  /// Running nodes the schedule may stop or pause without exceeding
  /// max_down (and never the last one running).
  std::vector<size_t> nodes_that_may_go_down() const {
    std::vector<size_t> result;
    auto limit = std::min(s_.max_down, n_ > 0 ? n_ - 1 : 0);
    if (down() >= limit)
      return result;
    for (size_t i = 0; i < n_; ++i)
      if (c_.alive(i) && !c_.paused(i) && !node_busy_[i])
        result.push_back(i);
    return result;
  }

  /// Cuts a → b for a fault (counted: overlapping faults share cuts).
  void add_cut(size_t a, size_t b) {
    if (cuts_[a][b]++ == 0 && c_.reachable(a, b))
      c_.cut(a, b);
  }

  /// Ends one fault's cut of a → b; the link heals once no fault and not
  /// the test itself cut it.
  void remove_cut(size_t a, size_t b) {
    if (--cuts_[a][b] == 0 && !cut_before_[a][b] && !c_.reachable(a, b))
      c_.heal(a, b);
  }

  void partition() {
    // Two non-empty groups, every split equally likely.
    std::vector<std::vector<size_t>> groups;
    do {
      groups.assign(2, {});
      for (size_t i = 0; i < n_; ++i)
        groups[static_cast<size_t>(uniform(0, 1))].push_back(i);
    } while (groups[0].empty() || groups[1].empty());
    std::string text = "partition";
    for (const auto& g : groups) {
      text += " {";
      for (auto i : g)
        text += " " + name(i);
      text += " }";
    }
    auto lasts = duration();
    begin(fault_kind::partition, groups[0], text, lasts, [this, groups] {
      for (auto a : groups[0])
        for (auto b : groups[1]) {
          remove_cut(a, b);
          remove_cut(b, a);
        }
    });
    // One trace line for the whole split, then the counts.
    c_.partition(groups);
    for (auto a : groups[0])
      for (auto b : groups[1]) {
        ++cuts_[a][b];
        ++cuts_[b][a];
      }
  }

  void one_way_cut() {
    auto a = static_cast<size_t>(uniform(0, static_cast<int64_t>(n_) - 1));
    auto b = static_cast<size_t>(uniform(0, static_cast<int64_t>(n_) - 2));
    if (b >= a)
      ++b;
    auto lasts = duration();
    begin(fault_kind::one_way_cut, {a, b}, "cut " + name(a) + " -> " + name(b),
          lasts, [this, a, b] { remove_cut(a, b); });
    add_cut(a, b);
  }

  void clog(std::pair<size_t, size_t> dir) {
    auto [a, b] = dir;
    auto saved = c_.faults(a, b);
    auto latency = microseconds(
      uniform(s_.clog_min_latency.count(), s_.clog_max_latency.count()));
    auto clogged = saved;
    // Keep the link's jitter on top of the jump.
    clogged.max_latency = latency + (saved.max_latency - saved.min_latency);
    clogged.min_latency = latency;
    auto lasts = duration();
    begin(fault_kind::clog, {a, b},
          "clog " + name(a) + " -> " + name(b) + " latency " + seconds(latency),
          lasts, [this, a, b, saved] {
            c_.set_faults(a, b, saved);
            link_busy_[a][b] = false;
          });
    link_busy_[a][b] = true;
    c_.set_faults(a, b, clogged);
  }

  void lossy(std::pair<size_t, size_t> pair) {
    auto [a, b] = pair;
    auto saved_ab = c_.faults(a, b);
    auto saved_ba = c_.faults(b, a);
    auto drop = uniform01() * s_.max_loss;
    auto duplicate = uniform01() * s_.max_loss;
    auto reorder = uniform01() * s_.max_loss;
    char buf[96];
    std::snprintf(buf, sizeof(buf), " drop %.3f dup %.3f reorder %.3f", drop,
                  duplicate, reorder);
    auto lasts = duration();
    begin(fault_kind::lossy, {a, b},
          "lossy " + name(a) + " <-> " + name(b) + buf, lasts,
          [this, a, b, saved_ab, saved_ba] {
            c_.set_faults(a, b, saved_ab);
            c_.set_faults(b, a, saved_ba);
            link_busy_[a][b] = link_busy_[b][a] = false;
          });
    link_busy_[a][b] = link_busy_[b][a] = true;
    for (auto [from, to, base] :
         {std::tuple{a, b, saved_ab}, std::tuple{b, a, saved_ba}}) {
      base.drop = drop;
      base.duplicate = duplicate;
      base.reorder = reorder;
      c_.set_faults(from, to, base);
    }
  }

  void stop(size_t i, bool graceful) {
    auto lasts = duration();
    auto mode = restart_as_;
    begin(graceful ? fault_kind::stop : fault_kind::crash, {i},
          std::string{graceful ? "stop " : "crash "} + name(i)
            + (mode == restart_mode::durable         ? ", restart durable"
               : mode == restart_mode::same_identity ? ", restart empty"
                                                     : ", restart fresh"),
          lasts, [this, i, mode] {
            c_.restart(i, mode);
            redial_initial_peers(i);
            node_busy_[i] = false;
          });
    node_busy_[i] = true;
    c_.stop(i, graceful);
  }

  void pause(size_t i) {
    auto lasts = duration();
    begin(fault_kind::pause, {i}, "pause " + name(i), lasts, [this, i] {
      c_.resume(i);
      node_busy_[i] = false;
    });
    node_busy_[i] = true;
    c_.pause(i);
  }

  void skew(size_t i) {
    auto saved = c_.skew(i);
    auto by = microseconds(uniform(-s_.max_skew.count(), s_.max_skew.count()));
    char buf[48];
    std::snprintf(buf, sizeof(buf), " by %+.3f ms",
                  static_cast<double>(by.count()) / 1e3);
    auto lasts = duration();
    begin(fault_kind::clock_skew, {i}, "skew " + name(i) + buf, lasts,
          [this, i, saved] {
            c_.set_skew(i, saved);
            skew_busy_[i] = false;
          });
    skew_busy_[i] = true;
    c_.set_skew(i, by);
  }

  /// Undoes every fault still active, heals every cut and has every node
  /// dial the peers it had at the start that it is not linked to now.
  void heal_everything() {
    while (!active_.empty())
      undo(earliest_active());
    c_.heal_all();
    c_.run();
    for (size_t i = 0; i < n_; ++i) {
      if (!c_.alive(i) || c_.paused(i))
        continue;
      auto now_linked = peers_of(i);
      for (auto j : initial_peers_[i])
        if (i < j && now_linked.count(j) == 0)
          c_.connect(i, j);
    }
    c_.record_fault("schedule: end, " + std::to_string(summary_.faults.size())
                    + " faults, all healed");
  }

  cluster& c_;
  const fault_schedule& s_;
  size_t n_;
  std::mt19937_64 rng_;
  bool durable_storage_ = false;
  restart_mode restart_as_ = restart_mode::same_identity;
  fault_summary summary_;
  std::vector<active_fault> active_;
  /// cuts_[a][b]: faults of this schedule cutting a → b now.
  std::vector<std::vector<size_t>> cuts_;
  /// Cuts the test made before the schedule: left alone until the end.
  std::vector<std::vector<bool>> cut_before_;
  /// A clog or lossy burst holds the direction a → b.
  std::vector<std::vector<bool>> link_busy_;
  /// A stop, crash or pause of this schedule holds the node.
  std::vector<bool> node_busy_;
  /// A skew of this schedule holds the node's clock.
  std::vector<bool> skew_busy_;
  /// Who each node was linked to when the schedule began.
  std::vector<std::set<size_t>> initial_peers_;
};

} // namespace

fault_summary cluster::run_faults(const fault_schedule& schedule) {
  return fault_injector{*this, schedule}.run();
}

} // namespace syncmesh::testing
