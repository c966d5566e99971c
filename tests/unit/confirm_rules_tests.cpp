// Confirmed writes' plain rules (actors/confirm_rules.hpp): the concern's
// node count, whether a store holds a write, and the bounded tables of
// held queries and pending confirmations.

#include <boost/test/unit_test.hpp>

#include <string>
#include <vector>

#include "actors/confirm_rules.hpp"
#include "actors/store_state.hpp"
#include "tests/unit/test_support.hpp"

using namespace syncmesh;
using namespace syncmesh::test;

namespace {

/// A version of claim (epoch, claim_us, claimer) stamped at `wall_us`.
version claim(uint64_t epoch, uint64_t claim_us, const raw_node_id& claimer,
              uint64_t wall_us) {
  return make_version(wall_us, claimer, epoch, claim_us, claimer, 0,
                      wall_us + 3'600'000'000);
}

/// Applies a whole-value write to `store`.
void apply(store_state& store, const std::string& key, const version& v,
           const value& val) {
  std::string err;
  store.apply(set_record(key, v, val), v, false, err);
  BOOST_REQUIRE(err.empty());
}

/// Applies field writes to `store`.
void apply_fields(store_state& store, const std::string& key, const version& v,
                  const value_map& fields) {
  std::string err;
  store.apply(fields_record(key, v, fields), v, false, err);
  BOOST_REQUIRE(err.empty());
}

confirm_item item(const std::string& key, const version& v,
                  std::vector<map_key> fields = {}) {
  return confirm_item{key, v, std::move(fields)};
}

} // namespace

BOOST_AUTO_TEST_SUITE(confirm_rules)

BOOST_AUTO_TEST_CASE(required_nodes_count_the_configured_membership) {
  std::string err;
  BOOST_TEST(required_nodes(concern_kind::majority, 0, 5, err) == 3u);
  BOOST_TEST(required_nodes(concern_kind::majority, 0, 4, err) == 3u);
  BOOST_TEST(required_nodes(concern_kind::majority, 0, 1, err) == 1u);
  BOOST_TEST(required_nodes(concern_kind::all, 0, 5, err) == 5u);
  BOOST_TEST(required_nodes(concern_kind::nodes, 2, 5, err) == 2u);
  BOOST_TEST(required_nodes(concern_kind::nodes, 2, 0, err) == 2u);
  BOOST_TEST(required_nodes(concern_kind::local, 0, 0, err) == 1u);
  BOOST_TEST(err.empty());
  // Unknown membership: majority and all are refused with a reason.
  BOOST_TEST(required_nodes(concern_kind::majority, 0, 0, err) == 0u);
  BOOST_TEST(err.find("cluster_size") != std::string::npos);
  err.clear();
  BOOST_TEST(required_nodes(concern_kind::all, 0, 0, err) == 0u);
  BOOST_TEST(!err.empty());
  err.clear();
  BOOST_TEST(required_nodes(concern_kind::nodes, 0, 3, err) == 0u);
  BOOST_TEST(!err.empty());
  err.clear();
  BOOST_TEST(required_nodes(concern_kind::nodes, 4, 3, err) == 0u);
  BOOST_TEST(err.find("exceeds") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_store_holds_this_version_or_a_later_one_of_the_claim) {
  store_state store;
  auto v1 = claim(1000, 1000, "a", 1000);
  auto v2 = claim(1000, 1000, "a", 2000); // same claim, later
  // Absent: pending.
  BOOST_TEST((check_record(store, item("k", v1)) == confirm_status::pending));
  // An older version of another claim that v1 beats: still pending.
  apply(store, "k", claim(900, 900, "z", 900), value{"old"});
  BOOST_TEST((check_record(store, item("k", v1)) == confirm_status::pending));
  apply(store, "k", v1, value{"one"});
  BOOST_TEST((check_record(store, item("k", v1)) == confirm_status::held));
  // A later write of the same claim holds the earlier one too.
  apply(store, "k", v2, value{"two"});
  BOOST_TEST((check_record(store, item("k", v1)) == confirm_status::held));
  // ... but not a write the store has not seen yet.
  auto v3 = claim(1000, 1000, "a", 3000);
  BOOST_TEST((check_record(store, item("k", v3)) == confirm_status::pending));
}

BOOST_AUTO_TEST_CASE(an_earlier_concurrent_claim_supersedes) {
  store_state store;
  // "b" claimed the fresh key first (smaller claim time: it wins).
  auto earlier = claim(1000, 1000, "b", 1000);
  auto ours = claim(1000, 1005, "a", 1005);
  apply(store, "k", earlier, value{"theirs"});
  superseding_claim by;
  BOOST_TEST(
    (check_record(store, item("k", ours), &by) == confirm_status::superseded));
  BOOST_TEST(by.owner == "b");
  BOOST_TEST(by.lease_end_us == earlier.lease_end_us);
  // Our own later claim (the lease ran out and we claimed again) is not a
  // loss of the earlier write's claim.
  store_state mine;
  apply(mine, "k", claim(5000, 5000, "a", 5000), value{"again"});
  BOOST_TEST((check_record(mine, item("k", ours)) == confirm_status::held));
}

BOOST_AUTO_TEST_CASE(leasing_off_every_later_write_holds_it) {
  store_state store;
  auto v1 = make_version(1000, "a");
  auto later = make_version(2000, "b"); // leasing off: one claim
  apply(store, "k", later, value{"b"});
  BOOST_TEST((check_record(store, item("k", v1)) == confirm_status::held));
}

BOOST_AUTO_TEST_CASE(a_delta_is_held_once_each_of_its_fields_is) {
  store_state store;
  auto base = claim(1000, 1000, "a", 1000);
  apply(store, "m", base, value{value_map{}});
  auto d1 = claim(1000, 1000, "a", 2000);
  auto d2 = claim(1000, 1000, "a", 3000);
  auto delta = item("m", d1, {map_key{"x"}, map_key{"y"}});
  BOOST_TEST((check_record(store, delta) == confirm_status::pending));
  // A later delta of the same claim to one field only: still pending.
  apply_fields(store, "m", d2, fields_of({{"x", 2}}));
  BOOST_TEST((check_record(store, delta) == confirm_status::pending));
  apply_fields(store, "m", d1, fields_of({{"x", 1}, {"y", 1}}));
  BOOST_TEST((check_record(store, delta) == confirm_status::held));
}

BOOST_AUTO_TEST_CASE(held_queries_finish_when_their_writes_arrive) {
  store_state store;
  confirm_waits waits{10, 1 << 20};
  auto v = claim(1000, 1000, "a", 1000);
  auto w = claim(1000, 1000, "a", 1001);
  waits.add(confirm_wait{"origin", 7, 5000, {item("k", v), item("j", w)}});
  auto check = [&](const confirm_item& i, superseding_claim* by) {
    return check_record(store, i, by);
  };
  BOOST_TEST(waits.on_change("k", check).empty());
  apply(store, "k", v, value{1});
  BOOST_TEST(waits.on_change("k", check).empty()); // j still missing
  BOOST_TEST(waits.size() == 1u);
  apply(store, "j", w, value{2});
  auto done = waits.on_change("j", check);
  BOOST_REQUIRE(done.size() == 1u);
  BOOST_TEST(done[0].held);
  BOOST_TEST(done[0].origin == "origin");
  BOOST_TEST(done[0].query_id == 7u);
  BOOST_TEST(waits.empty());
  BOOST_TEST(waits.bytes() == 0u);
}

BOOST_AUTO_TEST_CASE(a_held_query_ends_superseded_when_another_claim_wins) {
  store_state store;
  confirm_waits waits;
  auto ours = claim(1000, 1005, "a", 1005);
  waits.add(confirm_wait{"a", 1, 5000, {item("k", ours)}});
  apply(store, "k", claim(1000, 1000, "b", 1000), value{"b"});
  auto done
    = waits.on_change("k", [&](const confirm_item& i, superseding_claim* by) {
        return check_record(store, i, by);
      });
  BOOST_REQUIRE(done.size() == 1u);
  BOOST_TEST(!done[0].held);
  BOOST_TEST(done[0].key == "k");
  BOOST_TEST(done[0].by.owner == "b");
}

BOOST_AUTO_TEST_CASE(held_queries_stay_within_count_and_bytes) {
  // An attacker asks about writes that never come: the table keeps the
  // newest within both bounds and reports every query it dropped.
  const size_t max_count = 16;
  const size_t max_bytes = 8 * 1024;
  confirm_waits waits{max_count, max_bytes};
  size_t dropped = 0;
  for (uint64_t i = 0; i < 1000; ++i) {
    auto v = claim(1000, 1000, "x", 1000 + i);
    dropped += waits.add(confirm_wait{
      "attacker", i, 1'000'000, {item("key-" + std::to_string(i), v)}});
    BOOST_TEST(waits.size() <= max_count);
    BOOST_TEST(waits.bytes() <= max_bytes);
  }
  BOOST_TEST(dropped == 1000u - waits.size());
  // Big queries count by bytes: one larger than the whole budget is
  // dropped itself.
  std::vector<confirm_item> many;
  for (int i = 0; i < 200; ++i)
    many.push_back(
      item(std::string(100, 'k') + std::to_string(i), claim(1, 1, "x", 1)));
  BOOST_TEST(waits.add(confirm_wait{"attacker", 5000, 1'000'000, many}) == 1u);
  BOOST_TEST(waits.bytes() <= max_bytes);
  // A resent query replaces its wait instead of adding one.
  auto before = waits.size();
  auto v = claim(1000, 1000, "x", 5000);
  waits.add(confirm_wait{"attacker", 999, 1'000'000, {item("key-999", v)}});
  BOOST_TEST(waits.size() == before);
  // Deadlines: everything expires and the table is empty again.
  BOOST_TEST(waits.expire(1'000'000) == before);
  BOOST_TEST(waits.empty());
  BOOST_TEST(waits.bytes() == 0u);
}

BOOST_AUTO_TEST_CASE(the_origin_counts_distinct_nodes_and_is_bounded) {
  confirm_tracker t{2};
  auto id = t.add(3, "self", 1000, {"k"});
  BOOST_REQUIRE(id != 0u);
  using outcome = confirm_tracker::outcome;
  // The same node answering twice (a resent query) counts once.
  BOOST_TEST((t.on_answer(id, "n1", true, false) == outcome::waiting));
  BOOST_TEST((t.on_answer(id, "n1", true, false) == outcome::waiting));
  BOOST_TEST((t.on_answer(id, "self", true, false) == outcome::waiting));
  BOOST_TEST((t.on_answer(id, "n2", true, false) == outcome::confirmed));
  BOOST_TEST((t.on_answer(id + 100, "n2", true, false) == outcome::unknown));
  BOOST_TEST((t.on_answer(id, "n3", false, true) == outcome::superseded));
  BOOST_TEST(t.waiting_on("k") == std::vector<uint64_t>{id});
  BOOST_TEST(t.expired(999).empty());
  BOOST_TEST(t.expired(1000) == std::vector<uint64_t>{id});
  // Full at two: the third is refused.
  BOOST_TEST(t.add(2, "self", 1000, {"j"}) != 0u);
  BOOST_TEST(t.full());
  BOOST_TEST(t.add(2, "self", 1000, {"x"}) == 0u);
  t.erase(id);
  BOOST_TEST(t.waiting_on("k").empty());
  BOOST_TEST(!t.full());
}

BOOST_AUTO_TEST_SUITE_END()
