// Randomized property test of convergence: writes made by simulated nodes
// under the real lease rules, applied to fresh stores in any order and with
// duplicates, always give the same store.
//
// Seed: a fixed default, overridable by SYNCMESH_TEST_SEED; printed with
// --log_level=message and named in every failure.
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <deque>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "actors/lease_state.hpp"
#include "actors/store_state.hpp"
#include "syncmesh/clock.hpp"
#include "tests/unit/test_support.hpp"

using namespace syncmesh;
using namespace syncmesh::test;

namespace {

constexpr uint64_t default_seed = 20240611;

uint64_t test_seed() {
  if (const char* env = std::getenv("SYNCMESH_TEST_SEED"))
    return std::strtoull(env, nullptr, 0);
  return default_seed;
}

using rng_t = std::mt19937_64;

/// A uniform integer in [lo, hi].
uint64_t uniform(rng_t& rng, uint64_t lo, uint64_t hi) {
  return std::uniform_int_distribution<uint64_t>{lo, hi}(rng);
}

bool chance(rng_t& rng, double p) {
  return std::bernoulli_distribution{p}(rng);
}

value random_scalar(rng_t& rng) {
  switch (uniform(rng, 0, 8)) {
    case 0:
      return value{};
    case 1:
      return value{chance(rng, 0.5)};
    case 2:
      return value{static_cast<int64_t>(uniform(rng, 0, 200)) - 100};
    case 3:
      return value{uniform(rng, 0, std::numeric_limits<uint64_t>::max())};
    case 4:
      return value{static_cast<double>(uniform(rng, 0, 1000)) / 8};
    case 5:
      return value{std::string(uniform(rng, 0, 3),
                               static_cast<char>('a' + uniform(rng, 0, 3)))};
    case 6:
      return value::from_bytes(std::string(uniform(rng, 0, 3), '\xfe'));
    case 7:
      return value{ext_value{static_cast<int8_t>(uniform(rng, 0, 3)), "e"}};
    default:
      return value{std::numeric_limits<double>::quiet_NaN()};
  }
}

/// A field name from a small set, so writes collide; sometimes as bytes.
map_key random_field(rng_t& rng) {
  auto name = "f" + std::to_string(uniform(rng, 0, 3));
  return chance(rng, 0.2) ? map_key::from_bytes(name) : map_key{name};
}

value_map random_fields(rng_t& rng) {
  value result = value::empty_map(); // insert_or_assign keeps keys unique
  for (auto n = uniform(rng, 1, 3); n > 0; --n)
    result.insert_or_assign(random_field(rng), random_scalar(rng));
  return result.as_map();
}

value random_value(rng_t& rng) {
  switch (uniform(rng, 0, 3)) {
    case 0: {
      value_list items;
      for (auto n = uniform(rng, 0, 3); n > 0; --n)
        items.push_back(random_scalar(rng));
      return value{std::move(items)};
    }
    case 1:
    case 2:
      return value{random_fields(rng)};
    default:
      return random_scalar(rng);
  }
}

/// How one history behaves: lease rules, how well nodes hear each other and
/// how far their clocks disagree.
struct scenario_config {
  lease_settings leases;
  /// Chance that a step delivers pending writes instead of writing.
  double delivery_rate;
  /// Largest offset of a node's clock from the simulated true time (µs).
  uint64_t max_clock_offset_us;
};

/// A random mix: mostly partitioned or mostly connected meshes, clocks in
/// step, within the lease margin or beyond the HLC skew bound.
scenario_config random_scenario(const lease_settings& leases, rng_t& rng) {
  const double delivery_rates[] = {0.15, 0.4, 0.75};
  const uint64_t clock_offsets[] = {0, 60, 1500};
  return {leases, delivery_rates[uniform(rng, 0, 2)],
          clock_offsets[uniform(rng, 0, 2)]};
}

/// What the generated history contained, to check it exercised the rules.
struct history_stats {
  size_t writes = 0;
  size_t lease_refusals = 0;
  size_t lease_losses = 0;
  size_t later_epochs = 0; // writes in an epoch above 0 (new claims)
  size_t deltas = 0;
  size_t field_origins = 0; // fields of deltas that kept an earlier place
  size_t deletes = 0;
  size_t held = 0; // deliveries put off because a stamp was too far ahead
};

/// One simulated node: the lease manager's rules on a skewed manual clock,
/// plus the writes it has not received yet and every write in the order it
/// saw them.
struct sim_node {
  sim_node(node_id id, const lease_settings& cfg, uint64_t offset_us)
      : table(std::move(id), clock.as_wall_clock(), cfg, max_skew_us),
        offset_us(offset_us) {}

  static constexpr uint64_t max_skew_us = 1'000;

  manual_clock clock;
  lease_table table;
  /// What the node holds: a delta's field origins come from it.
  store_state store;
  uint64_t offset_us;
  std::vector<pb::WriteRecord> inbox;
  std::vector<pb::WriteRecord> arrival_log;
};

version version_of(const pb::WriteRecord& rec) {
  version v;
  BOOST_REQUIRE(from_proto(rec.version(), v).empty());
  return v;
}

/// Delivers pending write `index` of `node` as the lease manager accepts a
/// remote write; returns false (keeping it) when its stamp is too far ahead.
bool deliver(sim_node& node, size_t index, history_stats& stats) {
  const auto rec = node.inbox[index];
  auto v = version_of(rec);
  if (!node.table.acceptable(v.stamp)) {
    ++stats.held; // the lease manager holds it until the clock catches up
    return false;
  }
  node.table.observe_stamp(v.stamp);
  if (node.table.observe(rec, v))
    ++stats.lease_losses;
  std::string err;
  node.store.apply(rec, false, err);
  BOOST_REQUIRE_MESSAGE(err.empty(), err);
  node.arrival_log.push_back(rec);
  node.inbox.erase(node.inbox.begin() + static_cast<ptrdiff_t>(index));
  return true;
}

/// One local write attempt by `writer`, decided, stamped and recorded like
/// actors/lease_manager.cpp does, then queued for every other node.
void local_write(std::vector<sim_node>& nodes, size_t writer, rng_t& rng,
                 std::vector<pb::WriteRecord>& history, history_stats& stats) {
  auto& node = nodes[writer];
  auto key = "k" + std::to_string(uniform(rng, 0, 4));
  auto op = uniform(rng, 0, 99);
  bool is_delete = op < 20;
  bool is_delta = op >= 60;
  const auto* head = node.table.find(key);
  if (is_delta && head != nullptr && head->live() && !head->is_map())
    return; // the lease manager refuses a delta into a non-map value
  auto d = node.table.decide(key, is_delete);
  if (!d.allowed) {
    if (!d.missing)
      ++stats.lease_refusals;
    return;
  }
  auto v = node.table.stamp(d.draft, is_delete);
  pb::WriteRecord rec;
  if (is_delete) {
    rec = delete_record(key, v);
    ++stats.deletes;
  } else if (is_delta) {
    rec = fields_record(key, v, random_fields(rng));
    node.store.add_field_origins(rec); // as the dict store does
    stats.field_origins += static_cast<size_t>(rec.field_origins_size());
    ++stats.deltas;
  } else {
    rec = set_record(key, v, random_value(rng));
  }
  BOOST_TEST(!node.table.observe(rec, v).has_value(),
             "a local write never loses a lease");
  std::string err;
  node.store.apply(rec, false, err);
  BOOST_REQUIRE_MESSAGE(err.empty(), err);
  ++stats.writes;
  if (v.epoch > 0)
    ++stats.later_epochs;
  node.arrival_log.push_back(rec);
  history.push_back(rec);
  for (size_t i = 0; i < nodes.size(); ++i)
    if (i != writer)
      nodes[i].inbox.push_back(rec);
}

/// Runs a random history on `node_count` nodes; returns every write made and
/// leaves every node having received all of them.
std::vector<pb::WriteRecord> run_history(const scenario_config& cfg,
                                         size_t node_count, size_t steps,
                                         rng_t& rng, history_stats& stats,
                                         std::vector<sim_node>& nodes) {
  const uint64_t start_us = 1'700'000'000'000'000;
  for (size_t i = 0; i < node_count; ++i)
    nodes.emplace_back("node-" + std::to_string(i), cfg.leases,
                       uniform(rng, 0, cfg.max_clock_offset_us));
  uint64_t true_time = start_us;
  auto sync_clocks = [&] {
    for (auto& node : nodes)
      node.clock.set(true_time + node.offset_us);
  };
  std::vector<pb::WriteRecord> history;
  for (size_t step = 0; step < steps; ++step) {
    // Steps of up to a fifth of a lease, so leases end within a history.
    true_time += uniform(rng, 0, cfg.leases.duration_us / 5);
    sync_clocks();
    if (chance(rng, cfg.delivery_rate)) {
      // Deliver some pending writes to one node, in any order (different
      // paths through the mesh reorder them).
      auto& node = nodes[uniform(rng, 0, node_count - 1)];
      for (auto n = uniform(rng, 1, 4); n > 0 && !node.inbox.empty(); --n)
        deliver(node, uniform(rng, 0, node.inbox.size() - 1), stats);
    } else {
      local_write(nodes, uniform(rng, 0, node_count - 1), rng, history, stats);
    }
  }
  // Heal: once the clocks have passed every stamp, everyone gets everything.
  true_time += 10 * sim_node::max_skew_us;
  sync_clocks();
  for (auto& node : nodes)
    while (!node.inbox.empty())
      BOOST_REQUIRE(
        deliver(node, uniform(rng, 0, node.inbox.size() - 1), stats));
  return history;
}

store_state apply_all(const std::vector<pb::WriteRecord>& recs) {
  store_state store;
  for (const auto& rec : recs) {
    std::string err;
    store.apply(rec, false, err);
    BOOST_REQUIRE_MESSAGE(err.empty(), "apply failed: " << err);
  }
  return store;
}

/// The records in a random order, some of them several times.
std::vector<pb::WriteRecord>
shuffled_with_duplicates(const std::vector<pb::WriteRecord>& recs, rng_t& rng) {
  std::vector<pb::WriteRecord> result = recs;
  for (const auto& rec : recs)
    for (auto n = chance(rng, 0.3) ? uniform(rng, 1, 3) : 0; n > 0; --n)
      result.push_back(rec);
  std::shuffle(result.begin(), result.end(), rng);
  return result;
}

/// Checks that `store` reads exactly like `reference`, key by key.
void check_same_reads(const store_state& reference, const store_state& store) {
  BOOST_TEST(store.live_count() == reference.live_count());
  BOOST_TEST(store.entry_count() == reference.entry_count());
  for (const auto& [key, entry] : reference.entries()) {
    const auto* other = store.find(key);
    BOOST_REQUIRE(other != nullptr);
    BOOST_TEST(other->live() == entry.live(), key);
    BOOST_TEST(other->read() == entry.read(), key);
  }
}

/// Checks that a node's lease view agrees with the converged store: every
/// key's newest write and liveness are the store's.
void check_lease_view(const sim_node& node, const store_state& store) {
  for (const auto& [key, entry] : store.entries()) {
    const auto* head = node.table.find(key);
    BOOST_REQUIRE(head != nullptr);
    BOOST_TEST_CONTEXT(node.table.self() << " key " << key) {
      BOOST_TEST(head->live() == entry.live());
      BOOST_TEST(compare(head->newest(node.table.ids()),
                         entry.head().newest(store.ids()))
                 == 0);
      BOOST_TEST(head->lease_end_us() == entry.head().lease_end_us());
      BOOST_TEST(head->owner(node.table.ids())
                 == entry.head().owner(store.ids()));
    }
  }
}

/// Runs `scenarios` random histories with `leases` and checks that every
/// order of their writes converges; returns what the histories contained.
history_stats check_convergence(const lease_settings& leases, uint64_t seed,
                                int scenarios) {
  const size_t replicas_per_history = 6;
  history_stats stats;
  for (int scenario = 0; scenario < scenarios; ++scenario) {
    BOOST_TEST_CONTEXT("seed " << seed << ", scenario " << scenario
                               << " (SYNCMESH_TEST_SEED reproduces)") {
      rng_t rng{seed + static_cast<uint64_t>(scenario) * 7919};
      auto cfg = random_scenario(leases, rng);
      std::vector<sim_node> nodes;
      auto history = run_history(cfg, 3, 80, rng, stats, nodes);
      auto reference = apply_all(history);
      auto expected = reference.canonical_bytes();
      // Each node's real arrival order ...
      for (const auto& node : nodes) {
        BOOST_TEST(node.arrival_log.size() == history.size());
        auto store = apply_all(node.arrival_log);
        BOOST_TEST((store.canonical_bytes() == expected));
        check_lease_view(node, reference);
      }
      // ... and random orders with duplicates.
      for (size_t i = 0; i < replicas_per_history; ++i) {
        auto store = apply_all(shuffled_with_duplicates(history, rng));
        BOOST_TEST((store.canonical_bytes() == expected));
        check_same_reads(reference, store);
      }
    }
  }
  return stats;
}

} // namespace

BOOST_AUTO_TEST_SUITE(convergence)

BOOST_AUTO_TEST_CASE(any_order_of_leased_writes_converges) {
  auto seed = test_seed();
  BOOST_TEST_MESSAGE("convergence seed " << seed);
  // Short leases, so claims race and leases are taken over.
  auto stats = check_convergence(lease_settings{true, 400, 20}, seed, 150);
  BOOST_TEST_MESSAGE("leased histories: "
                     << stats.writes << " writes, " << stats.lease_refusals
                     << " refusals, " << stats.lease_losses << " lease losses, "
                     << stats.later_epochs << " writes in later epochs, "
                     << stats.held << " deliveries held for clock skew");
  // The histories must exercise the lease rules, or the test proves little.
  BOOST_TEST(stats.lease_refusals > 0u);
  BOOST_TEST(stats.lease_losses > 0u);
  BOOST_TEST(stats.later_epochs > 0u);
  BOOST_TEST(stats.deltas > 0u);
  BOOST_TEST(stats.field_origins > 0u); // updates that kept a field's place
  BOOST_TEST(stats.deletes > 0u);
  BOOST_TEST(stats.held > 0u);
}

BOOST_AUTO_TEST_CASE(any_order_of_unleased_writes_converges) {
  auto seed = test_seed();
  BOOST_TEST_MESSAGE("convergence seed " << seed);
  auto stats = check_convergence(lease_settings{false, 400, 20}, seed + 1, 50);
  BOOST_TEST(stats.lease_refusals == 0u);
  BOOST_TEST(stats.lease_losses == 0u);
  BOOST_TEST(stats.later_epochs == 0u);
  BOOST_TEST(stats.writes > 0u);
  BOOST_TEST(stats.field_origins > 0u);
}

BOOST_AUTO_TEST_SUITE_END()
