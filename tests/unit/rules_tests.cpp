// The ordering and merge rules: versions and the hybrid clock
// (messages/version.hpp), store entries (actors/store_state.hpp) and leases
// (actors/lease_state.hpp).
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <string>
#include <vector>

#include "actors/lease_state.hpp"
#include "actors/router_state.hpp"
#include "actors/store_state.hpp"
#include "syncmesh/clock.hpp"
#include "syncmesh/pb/entry.pb.h"
#include "tests/unit/test_support.hpp"

using namespace syncmesh;
using namespace syncmesh::test;
using std::chrono::microseconds;

namespace {

int sign(int x) {
  return (x > 0) - (x < 0);
}

/// The node-ID table of the heads and entries these tests build by hand
/// (a store owns its own; these have none around them). Never audited:
/// hand-built heads are dropped without `release`.
node_id_table test_ids;

std::vector<std::string> key_list(const std::vector<std::string_view>& xs) {
  std::vector<std::string> result;
  for (auto x : xs)
    result.emplace_back(x);
  return result;
}

/// Applies `rec` to `store`, requiring that it is well-formed.
store_state::outcome apply_ok(store_state& store, const pb::WriteRecord& rec,
                              bool keep_old_value = false) {
  std::string err;
  auto result = store.apply(rec, keep_old_value, err);
  BOOST_REQUIRE_MESSAGE(err.empty(), "apply failed: " << err);
  return result;
}

value read_key(const store_state& store, const std::string& key) {
  const auto* entry = store.find(key);
  BOOST_REQUIRE(entry != nullptr);
  return entry->read();
}

// Lease settings and times used by the lease tests: a lease lasts 1000 µs
// from the write, with a 100 µs margin either side of its end.
const lease_settings leases{true, 1000, 100};
const uint64_t t0 = 1'000'000;
const uint64_t lease_end = t0 + 1000;

/// A head whose newest write is a live value by `claimer` in `epoch`,
/// claimed at `claim_us` and written at t0, leased until `lease_end`.
entry_head live_head(const node_id& claimer, uint64_t epoch = 3,
                     uint64_t claim_us = t0 - 500) {
  entry_head head;
  head.set_base(
    test_ids, make_version(t0, claimer, epoch, claim_us, claimer, 0, lease_end),
    false, false);
  return head;
}

/// A node's lease table on its own manual clock.
struct lease_node {
  lease_node(node_id id, lease_settings cfg = leases, uint64_t start = t0)
      : clock(start), table(std::move(id), clock.as_wall_clock(), cfg, 1000) {}

  /// Decides, stamps and records a local set; returns the record (without a
  /// version when refused).
  pb::WriteRecord write(const std::string& key, const value& val) {
    auto d = table.decide(key, false);
    BOOST_REQUIRE_MESSAGE(d.allowed, "write to " << key << " refused");
    auto rec = set_record(key, table.stamp(d.draft, false), val);
    version v;
    BOOST_REQUIRE(from_proto(rec.version(), v).empty());
    BOOST_TEST(!table.observe(rec, v).has_value());
    return rec;
  }

  /// Like `write`, for a delete.
  pb::WriteRecord erase(const std::string& key) {
    auto d = table.decide(key, true);
    BOOST_REQUIRE_MESSAGE(d.allowed, "delete of " << key << " refused");
    auto rec = delete_record(key, table.stamp(d.draft, true));
    version v;
    BOOST_REQUIRE(from_proto(rec.version(), v).empty());
    BOOST_TEST(!table.observe(rec, v).has_value());
    return rec;
  }

  manual_clock clock;
  lease_table table;
};

/// Records a remote record in `table` the way the lease manager does.
std::optional<lease_loss> receive(lease_table& table,
                                  const pb::WriteRecord& rec) {
  version v;
  BOOST_REQUIRE(from_proto(rec.version(), v).empty());
  BOOST_REQUIRE(table.acceptable(v.stamp));
  table.observe_stamp(v.stamp);
  return table.observe(rec, v);
}

} // namespace

BOOST_AUTO_TEST_SUITE(versions)

BOOST_AUTO_TEST_CASE(compare_orders_by_epoch_claim_claimer_then_stamp) {
  // Ascending: each version loses to every later one.
  const std::vector<version> ascending{
    make_version(100, "a", 1, 500, "b"),
    make_version(100, "a", 1, 500, "b", 1), // same claim: counter, ...
    make_version(100, "b", 1, 500, "b", 1), // ... then node, ...
    make_version(900, "a", 1, 500, "b"),    // ... after the wall time
    make_version(50, "a", 1, 500, "a"),     // smaller claimer wins
    make_version(50, "a", 1, 400, "z"),     // earlier claim wins
    make_version(10, "a", 2, 999, "z"),     // higher epoch wins over all
    make_version(10, "a", 3, 999, "z"),
  };
  for (size_t i = 0; i < ascending.size(); ++i) {
    for (size_t j = 0; j < ascending.size(); ++j) {
      BOOST_TEST_CONTEXT("versions " << i << " and " << j) {
        BOOST_TEST(sign(compare(ascending[i], ascending[j]))
                   == (i < j   ? -1
                       : i > j ? 1
                               : 0));
        BOOST_TEST(newer(ascending[i], ascending[j]) == (i > j));
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(lease_end_is_carried_not_compared) {
  auto x = make_version(100, "a", 1, 50, "a", 0, 1000);
  auto y = make_version(100, "a", 1, 50, "a", 0, 2000);
  BOOST_TEST(compare(x, y) == 0);
  BOOST_TEST(!newer(x, y));
  BOOST_TEST(!newer(y, x));
}

BOOST_AUTO_TEST_CASE(same_claim_needs_epoch_claim_time_and_claimer) {
  auto base = make_version(100, "a", 1, 50, "a");
  BOOST_TEST(same_claim(base, make_version(200, "a", 1, 50, "a", 3)));
  BOOST_TEST(!same_claim(base, make_version(100, "a", 2, 50, "a")));
  BOOST_TEST(!same_claim(base, make_version(100, "a", 1, 51, "a")));
  BOOST_TEST(!same_claim(base, make_version(100, "a", 1, 50, "b")));
}

BOOST_AUTO_TEST_CASE(node_ids_compare_bytewise) {
  // 0xff sorts after 'a' bytewise, whatever char's signedness.
  auto high = make_version(100, std::string("\xff"));
  auto low = make_version(100, "a");
  BOOST_TEST(newer(high, low));
  BOOST_TEST(to_hex(std::string("\x00\xff\x1a", 3)) == "00ff1a");
}

BOOST_AUTO_TEST_CASE(version_proto_round_trips) {
  auto v = make_version(123, "node", 4, 99, "claimer", 7, 5000);
  pb::Version msg;
  to_proto(v, &msg);
  version back;
  BOOST_REQUIRE(from_proto(msg, back).empty());
  BOOST_TEST(back.epoch == 4u);
  BOOST_TEST(back.claim_us == 99u);
  BOOST_TEST(back.claimer == "claimer");
  BOOST_TEST(back.stamp.wall_us == 123u);
  BOOST_TEST(back.stamp.counter == 7u);
  BOOST_TEST(back.stamp.node == "node");
  BOOST_TEST(back.lease_end_us == 5000u);
  // Node IDs of exactly the maximum size are fine.
  auto longest = std::string(max_node_id_size, 'n');
  to_proto(make_version(1, longest, 0, 0, longest), &msg);
  BOOST_TEST(from_proto(msg, back).empty());
}

BOOST_AUTO_TEST_CASE(version_proto_rejects_malformed_input) {
  auto too_long = std::string(max_node_id_size + 1, 'n');
  pb::Version msg;
  version out;
  BOOST_TEST(!from_proto(msg, out).empty()); // no stamp at all
  to_proto(make_version(100, ""), &msg);
  BOOST_TEST(!from_proto(msg, out).empty());
  to_proto(make_version(100, too_long), &msg);
  BOOST_TEST(!from_proto(msg, out).empty());
  to_proto(make_version(100, "n", 1, 1, too_long), &msg);
  BOOST_TEST(!from_proto(msg, out).empty());
  to_proto(make_version(0, "n"), &msg);
  BOOST_TEST(!from_proto(msg, out).empty());
}

BOOST_AUTO_TEST_CASE(versions_whose_arithmetic_would_overflow_are_refused) {
  pb::Version msg;
  version out;
  // epoch + 1 at 2^64 - 1, and epochs without room for later claims.
  to_proto(make_version(100, "n", UINT64_MAX, 1, "n"), &msg);
  BOOST_TEST(!from_proto(msg, out).empty());
  to_proto(make_version(100, "n", max_epoch + 1, 1, "n"), &msg);
  BOOST_TEST(!from_proto(msg, out).empty());
  to_proto(make_version(100, "n", max_epoch, 1, "n"), &msg);
  BOOST_TEST(from_proto(msg, out).empty());
  // Stamps and claim times where stamp + lease would overflow.
  to_proto(make_version(UINT64_MAX - 5, "n"), &msg);
  BOOST_TEST(!from_proto(msg, out).empty());
  to_proto(make_version(max_version_time_us + 1, "n"), &msg);
  BOOST_TEST(!from_proto(msg, out).empty());
  to_proto(make_version(100, "n", 1, UINT64_MAX, "n"), &msg);
  BOOST_TEST(!from_proto(msg, out).empty());
  to_proto(make_version(max_version_time_us, "n", 1, max_version_time_us, "n"),
           &msg);
  BOOST_TEST(from_proto(msg, out).empty());
  // A huge lease end is not malformed: it is clamped, without overflow.
  to_proto(make_version(max_version_time_us, "n", 1, 1, "n", 0, UINT64_MAX),
           &msg);
  BOOST_REQUIRE(from_proto(msg, out).empty());
  BOOST_TEST(clamped_lease_end(out, 1000) == max_version_time_us + 1000);
  // The peer-facing validation refuses such a record as malformed.
  pb::WriteBatch batch;
  *batch.add_records()
    = set_record("k", make_version(100, "n", UINT64_MAX, 1, "n"), 1);
  BOOST_TEST(!validate_remote_batch(batch, write_limits{}).empty());
  batch.Clear();
  *batch.add_records() = set_record(
    "k", make_version(100, "n", 1, 1, "n", 0, uint64_t{1} << 62), 1);
  BOOST_TEST(validate_remote_batch(batch, write_limits{}).empty());
}

BOOST_AUTO_TEST_CASE(lease_end_is_clamped_to_stamp_plus_the_maximum) {
  BOOST_TEST(clamped_lease_end(make_version(100, "n", 1, 1, "n", 0, 900), 1000)
             == 900u);
  BOOST_TEST(clamped_lease_end(make_version(100, "n", 1, 1, "n", 0, 5000), 1000)
             == 1100u);
  BOOST_TEST(clamped_lease_end(make_version(100, "n"), 1000) == 0u);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(hybrid_clocks)

BOOST_AUTO_TEST_CASE(next_follows_the_wall_clock_when_it_moves) {
  manual_clock wall{5000};
  hybrid_clock hlc{"me", wall.as_wall_clock(), 100};
  auto a = hlc.next();
  BOOST_TEST(a.wall_us == 5000u);
  BOOST_TEST(a.counter == 0u);
  BOOST_TEST(a.node == "me");
  wall.advance(microseconds(7));
  auto b = hlc.next();
  BOOST_TEST(b.wall_us == 5007u);
  BOOST_TEST(b.counter == 0u);
  BOOST_TEST(hlc.self() == "me");
  BOOST_TEST(compare(hlc.high_water(), b) == 0);
}

BOOST_AUTO_TEST_CASE(
  next_strictly_increases_when_the_wall_stands_or_goes_back) {
  manual_clock wall{5000};
  hybrid_clock hlc{"me", wall.as_wall_clock(), 100};
  auto last = hlc.next();
  for (int i = 0; i < 5; ++i) { // standing still
    auto s = hlc.next();
    BOOST_TEST(compare(s, last) > 0);
    last = s;
  }
  wall.set(4000); // going back
  for (int i = 0; i < 5; ++i) {
    auto s = hlc.next();
    BOOST_TEST(compare(s, last) > 0);
    BOOST_TEST(s.wall_us == 5000u, "the stamp does not follow the wall back");
    last = s;
  }
}

BOOST_AUTO_TEST_CASE(next_carries_into_the_wall_when_the_counter_is_full) {
  manual_clock wall{5000};
  hybrid_clock hlc{"me", wall.as_wall_clock(), 100};
  BOOST_REQUIRE(hlc.observe(hlc_stamp{5000, UINT32_MAX, "other"}));
  auto s = hlc.next();
  BOOST_TEST(s.wall_us == 5001u);
  BOOST_TEST(s.counter == 0u);
}

BOOST_AUTO_TEST_CASE(observe_refuses_stamps_beyond_the_skew_bound) {
  manual_clock wall{5000};
  hybrid_clock hlc{"me", wall.as_wall_clock(), 100};
  BOOST_TEST(hlc.max_skew_us() == 100u);
  auto before = hlc.next();
  hlc_stamp too_far{5101, 0, "other"};
  BOOST_TEST(!hlc.acceptable(too_far));
  BOOST_TEST(!hlc.observe(too_far));
  BOOST_TEST(compare(hlc.high_water(), before) == 0, "nothing changed");
  BOOST_TEST(compare(hlc.next(), too_far) < 0);
  // Once the wall clock catches up it is accepted.
  wall.advance(microseconds(1));
  BOOST_TEST(hlc.acceptable(too_far));
}

BOOST_AUTO_TEST_CASE(observe_accepts_and_advances_within_the_skew_bound) {
  manual_clock wall{5000};
  hybrid_clock hlc{"me", wall.as_wall_clock(), 100};
  hlc_stamp at_bound{5100, 3, "other"};
  BOOST_TEST(hlc.observe(at_bound));
  BOOST_TEST(hlc.high_water().wall_us == 5100u);
  BOOST_TEST(hlc.high_water().counter == 3u);
  BOOST_TEST(hlc.high_water().node == "me", "stamps stay ours");
  auto s = hlc.next();
  BOOST_TEST(compare(s, at_bound) > 0);
  BOOST_TEST(s.node == "me");
  // An older remote stamp is accepted without moving the clock back.
  BOOST_TEST(hlc.observe(hlc_stamp{10, 0, "old"}));
  BOOST_TEST(compare(hlc.next(), s) > 0);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(store_entries)

const auto v1 = make_version(100, "n");
const auto v2 = make_version(200, "n");
const auto v3 = make_version(300, "n");
const auto v4 = make_version(400, "n");

BOOST_AUTO_TEST_CASE(read_of_a_fresh_entry_is_nil) {
  store_entry e;
  BOOST_TEST(!e.live());
  BOOST_TEST(e.read() == value{});
}

BOOST_AUTO_TEST_CASE(fields_lay_over_a_base_map_in_place) {
  store_entry e;
  BOOST_TEST(e.apply_base(test_ids, v1, false, value{{"a", 1}, {"b", 2}}));
  BOOST_TEST(e.apply_fields(test_ids, v2, fields_of({{"b", 20}, {"c", 3}})));
  BOOST_TEST(e.read() == (value{{"a", 1}, {"b", 20}, {"c", 3}}));
  BOOST_TEST(e.live());
  BOOST_TEST(e.head().is_map());
}

BOOST_AUTO_TEST_CASE(fields_lay_over_an_empty_map_without_a_map_base) {
  store_entry over_tombstone;
  over_tombstone.apply_base(test_ids, v1, true, value{});
  BOOST_TEST(!over_tombstone.live());
  BOOST_TEST(over_tombstone.apply_fields(test_ids, v2, fields_of({{"x", 1}})));
  BOOST_TEST(over_tombstone.read() == (value{{"x", 1}}));
  BOOST_TEST(over_tombstone.live());

  store_entry over_scalar;
  over_scalar.apply_base(test_ids, v1, false, value{5});
  BOOST_TEST(!over_scalar.head().is_map());
  over_scalar.apply_fields(test_ids, v2, fields_of({{"x", 1}}));
  BOOST_TEST(over_scalar.read() == (value{{"x", 1}}));
  BOOST_TEST(over_scalar.head().is_map());

  store_entry without_base;
  without_base.apply_fields(test_ids, v2, fields_of({{"x", 1}}));
  BOOST_TEST(without_base.read() == (value{{"x", 1}}));
}

BOOST_AUTO_TEST_CASE(newer_base_hides_older_fields) {
  store_entry e;
  e.apply_fields(test_ids, v1, fields_of({{"x", 1}}));
  BOOST_TEST(e.apply_base(test_ids, v2, false, value{{"a", 1}}));
  BOOST_TEST(e.read() == (value{{"a", 1}}));
  BOOST_TEST(e.fields().empty());
  BOOST_TEST(!e.head().has_fields());
}

BOOST_AUTO_TEST_CASE(newer_base_keeps_fields_newer_than_itself) {
  store_entry e;
  e.apply_fields(test_ids, v1, fields_of({{"old", 1}}));
  e.apply_fields(test_ids, v3, fields_of({{"new", 3}}));
  BOOST_TEST(e.apply_base(test_ids, v2, false, value{{"a", 2}}));
  BOOST_TEST(e.read() == (value{{"a", 2}, {"new", 3}}));
  BOOST_REQUIRE(e.fields().size() == 1u);
  BOOST_TEST(e.fields()[0].key.data == "new");
}

BOOST_AUTO_TEST_CASE(fields_older_than_the_base_are_ignored) {
  store_entry e;
  e.apply_base(test_ids, v2, false, value{{"a", 1}});
  BOOST_TEST(!e.apply_fields(test_ids, v1, fields_of({{"a", 9}})));
  BOOST_TEST(e.read() == (value{{"a", 1}}));
  BOOST_TEST(e.fields().empty());
}

BOOST_AUTO_TEST_CASE(delete_then_fields_reads_the_fields_alone) {
  store_entry e;
  e.apply_base(test_ids, v1, false, value{{"a", 1}});
  BOOST_TEST(e.apply_base(test_ids, v2, true, value{}));
  BOOST_TEST(!e.live());
  BOOST_TEST(e.read() == value{});
  e.apply_fields(test_ids, v3, fields_of({{"b", 2}}));
  BOOST_TEST(e.read() == (value{{"b", 2}}));
}

BOOST_AUTO_TEST_CASE(each_field_keeps_its_newest_write) {
  store_entry e;
  BOOST_TEST(e.apply_fields(test_ids, v1, fields_of({{"a", 1}, {"b", 1}})));
  BOOST_TEST(e.apply_fields(test_ids, v3, fields_of({{"a", 3}})));
  // v2 is older for "a" but new for "c": only "c" changes.
  BOOST_TEST(e.apply_fields(test_ids, v2, fields_of({{"a", 2}, {"c", 2}})));
  BOOST_TEST(*e.read().find("a") == value{3});
  BOOST_TEST(*e.read().find("b") == value{1});
  BOOST_TEST(*e.read().find("c") == value{2});
  BOOST_TEST(!e.apply_fields(test_ids, v2, fields_of({{"a", 2}, {"c", 2}})));
  BOOST_TEST(compare(e.head().newest(test_ids), v3) == 0);
}

BOOST_AUTO_TEST_CASE(delta_fields_keep_the_order_given) {
  // Issue 17: not sorted by key ({"a", "z"}), as written.
  store_entry e;
  BOOST_TEST(e.apply_fields(test_ids, v1, fields_of({{"z", 1}, {"a", 2}})));
  BOOST_TEST(e.read() == (value{{"z", 1}, {"a", 2}}));
  BOOST_TEST(e.read() != (value{{"a", 2}, {"z", 1}}), "maps compare in order");
  // New fields go after the existing ones, in the order given; a field
  // rewritten with the position it had stays where it was.
  std::vector<field_position> pos{field_position{v1.stamp, 0},
                                  field_position{v2.stamp, 1}};
  BOOST_TEST(
    e.apply_fields(test_ids, v2, fields_of({{"z", 10}, {"m", 3}}), pos));
  BOOST_TEST(e.read() == (value{{"z", 10}, {"a", 2}, {"m", 3}}));
}

BOOST_AUTO_TEST_CASE(a_field_takes_the_position_of_its_winning_write) {
  // Two writers updated "x" concurrently, one seeing it created by v1, the
  // other (which had not) creating it anew: the newer write decides both
  // value and place, whatever the order they arrive in.
  std::vector<field_position> kept{field_position{v1.stamp, 0}};
  store_entry first, second;
  for (auto* e : {&first, &second})
    e->apply_fields(test_ids, v1, fields_of({{"x", 1}, {"y", 1}}));
  first.apply_fields(test_ids, v3, fields_of({{"x", 3}}));
  first.apply_fields(test_ids, v2, fields_of({{"x", 2}}), kept);
  second.apply_fields(test_ids, v2, fields_of({{"x", 2}}), kept);
  second.apply_fields(test_ids, v3, fields_of({{"x", 3}}));
  BOOST_TEST(first.read() == (value{{"y", 1}, {"x", 3}}));
  BOOST_TEST(second.read() == first.read());
  BOOST_TEST(first.version_hash() == second.version_hash());
}

BOOST_AUTO_TEST_CASE(base_writes_apply_only_when_newer) {
  store_entry e;
  BOOST_TEST(e.apply_base(test_ids, v2, false, value{2}));
  BOOST_TEST(!e.apply_base(test_ids, v2, false, value{2}), "duplicate");
  BOOST_TEST(!e.apply_base(test_ids, v1, false, value{1}), "older");
  BOOST_TEST(!e.apply_base(test_ids, v1, true, value{}), "older delete");
  BOOST_TEST(e.read() == value{2});
  BOOST_TEST(e.apply_base(test_ids, v4, false, value{4}));
  BOOST_TEST(e.read() == value{4});
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(store_states)

BOOST_AUTO_TEST_CASE(a_local_delta_keeps_the_places_of_existing_fields) {
  // What the dict store does before it stamps a delta: fields the entry
  // already holds keep their origin, so on every replica (whatever the
  // delivery order) the map reads as written: {x, y, z}, not {x, z, y}.
  store_state writer;
  auto first = fields_record("k", make_version(100, "n"),
                             fields_of({{"x", 1}, {"y", 1}}));
  apply_ok(writer, first);
  auto second = fields_record("k", make_version(200, "n"),
                              fields_of({{"y", 2}, {"z", 2}}));
  writer.add_field_origins(second);
  BOOST_REQUIRE_EQUAL(second.field_origins_size(), 1);
  BOOST_TEST(second.field_origins(0).field() == 0u);
  BOOST_TEST(second.field_origins(0).index() == 1u);
  apply_ok(writer, second);
  const value expected{{"x", 1}, {"y", 2}, {"z", 2}};
  BOOST_TEST(read_key(writer, "k") == expected);
  store_state reversed;
  apply_ok(reversed, second);
  apply_ok(reversed, first);
  BOOST_TEST(read_key(reversed, "k") == expected);
  BOOST_TEST((reversed.canonical_bytes() == writer.canonical_bytes()));
  // What anti-entropy and storage export recreates the same entry.
  store_state copy;
  const auto exported = writer.export_all();
  for (const auto& rec : exported.records())
    apply_ok(copy, rec);
  BOOST_TEST(read_key(copy, "k") == expected);
  BOOST_TEST((copy.canonical_bytes() == writer.canonical_bytes()));
}

BOOST_AUTO_TEST_CASE(malformed_field_origins_change_nothing) {
  store_state store;
  auto rec = fields_record("k", make_version(100, "n"), fields_of({{"x", 1}}));
  auto bad = [&](auto edit) {
    auto copy = rec;
    auto* origin = copy.add_field_origins();
    origin->set_field(0);
    origin->mutable_stamp()->set_wall_us(50);
    origin->mutable_stamp()->set_node("n");
    edit(copy, *origin);
    std::string err;
    store.apply(copy, false, err);
    return err;
  };
  BOOST_TEST(bad([](auto&, auto& o) { o.set_field(1); }).find("field 1 of 1")
             != std::string::npos);
  BOOST_TEST(bad([](auto& r, auto& o) {
               *r.add_field_origins() = o;
             }).find("given twice")
             != std::string::npos);
  BOOST_TEST(bad([](auto&, auto& o) {
               o.mutable_stamp()->clear_node();
             }).find("no valid node")
             != std::string::npos);
  BOOST_TEST(bad([](auto&, auto& o) {
               o.mutable_stamp()->set_wall_us(0);
             }).find("out of range")
             != std::string::npos);
  BOOST_TEST(store.entry_count() == 0u);
  BOOST_TEST(bad([](auto&, auto&) {}).empty());
  BOOST_TEST(store.entry_count() == 1u);
}

BOOST_AUTO_TEST_CASE(apply_reports_what_changed) {
  store_state store;
  auto first = apply_ok(store, set_record("k", make_version(100, "n"), 1));
  BOOST_TEST(first.changed);
  BOOST_TEST(!first.was_live);
  BOOST_TEST(first.now_live);
  BOOST_TEST(store.live_count() == 1u);

  auto second
    = apply_ok(store, set_record("k", make_version(200, "n"), 2), true);
  BOOST_TEST(second.changed);
  BOOST_TEST(second.was_live);
  BOOST_TEST(second.now_live);
  BOOST_TEST(second.old_value == value{1});

  auto without_old
    = apply_ok(store, set_record("k", make_version(250, "n"), 3), false);
  BOOST_TEST(without_old.old_value == value{}, "not asked for");

  auto stale
    = apply_ok(store, set_record("k", make_version(150, "n"), 9), true);
  BOOST_TEST(!stale.changed);
  BOOST_TEST(stale.was_live);
  BOOST_TEST(stale.now_live);
  BOOST_TEST(read_key(store, "k") == value{3});

  auto erased
    = apply_ok(store, delete_record("k", make_version(300, "n")), true);
  BOOST_TEST(erased.changed);
  BOOST_TEST(erased.was_live);
  BOOST_TEST(!erased.now_live);
  BOOST_TEST(erased.old_value == value{3});
  BOOST_TEST(store.live_count() == 0u);
  BOOST_TEST(store.entry_count() == 1u, "the tombstone stays");

  auto fields = apply_ok(
    store, fields_record("k", make_version(400, "n"), fields_of({{"f", 1}})));
  BOOST_TEST(fields.changed);
  BOOST_TEST(!fields.was_live);
  BOOST_TEST(fields.now_live);
  BOOST_TEST(store.live_count() == 1u);
}

BOOST_AUTO_TEST_CASE(delete_of_an_unknown_key_leaves_a_tombstone) {
  store_state store;
  auto r = apply_ok(store, delete_record("k", make_version(100, "n")));
  BOOST_TEST(r.changed);
  BOOST_TEST(!r.was_live);
  BOOST_TEST(!r.now_live);
  BOOST_TEST(store.entry_count() == 1u);
  BOOST_TEST(store.live_count() == 0u);
  // The tombstone keeps an older, late write from resurrecting the key.
  auto late = apply_ok(store, set_record("k", make_version(50, "n"), 1));
  BOOST_TEST(!late.changed);
  BOOST_TEST(!late.now_live);
  BOOST_TEST(store.live_count() == 0u);
}

BOOST_AUTO_TEST_CASE(purge_removes_only_tombstones) {
  store_state store;
  apply_ok(store, set_record("live", make_version(100, "n"), 1));
  apply_ok(store, delete_record("dead", make_version(100, "n")));
  BOOST_TEST(store.purge({"live", "dead", "unknown"}) == 1u);
  BOOST_TEST(store.find("dead") == nullptr);
  BOOST_TEST(store.find("live") != nullptr);
  BOOST_TEST(store.entry_count() == 1u);
  BOOST_TEST(store.live_count() == 1u);
}

BOOST_AUTO_TEST_CASE(sorted_live_keys_filters_by_prefix_and_limit) {
  store_state store;
  for (const char* key : {"b", "ab", "a", "c", "aa", "a\xff"})
    apply_ok(store, set_record(key, make_version(100, "n"), 1));
  apply_ok(store, delete_record("aa", make_version(200, "n")));
  using keys = std::vector<std::string>;
  BOOST_TEST(key_list(store.sorted_live_keys("", 0))
               == (keys{"a", "ab", "a\xff", "b", "c"}),
             boost::test_tools::per_element());
  BOOST_TEST(key_list(store.sorted_live_keys("a", 0))
               == (keys{"a", "ab", "a\xff"}),
             boost::test_tools::per_element());
  BOOST_TEST(key_list(store.sorted_live_keys("", 2)) == (keys{"a", "ab"}),
             boost::test_tools::per_element());
  BOOST_TEST(key_list(store.sorted_live_keys("a", 10))
               == (keys{"a", "ab", "a\xff"}),
             boost::test_tools::per_element());
  BOOST_TEST(store.sorted_live_keys("z", 0).empty());
}

BOOST_AUTO_TEST_CASE(malformed_records_change_nothing) {
  store_state store;
  apply_ok(store, set_record("k", make_version(100, "n"), 1));
  auto before = store.canonical_bytes();

  auto kindless = set_record("k", make_version(200, "n"), 2);
  kindless.mutable_value()->Clear();
  auto kindless_new_key = set_record("new", make_version(200, "n"), 2);
  kindless_new_key.mutable_value()->Clear();
  auto no_op = set_record("k", make_version(200, "n"), 2);
  no_op.clear_value();
  auto no_stamp = set_record("k", make_version(200, "n"), 2);
  no_stamp.mutable_version()->clear_stamp();
  auto duplicate_fields = fields_record("k", make_version(200, "n"), {});
  for (int i = 0; i < 2; ++i) {
    auto* entry = duplicate_fields.mutable_fields()->add_entries();
    entry->mutable_key()->set_text("f");
    entry->mutable_value()->set_int64(i);
  }
  for (const auto& rec :
       {kindless, kindless_new_key, no_op, no_stamp, duplicate_fields}) {
    std::string err;
    auto r = store.apply(rec, true, err);
    BOOST_TEST(!err.empty(), rec.ShortDebugString());
    BOOST_TEST(!r.changed);
  }
  BOOST_TEST(store.canonical_bytes() == before);
  BOOST_TEST(store.entry_count() == 1u);
  BOOST_TEST(store.live_count() == 1u);
}

BOOST_AUTO_TEST_CASE(canonical_bytes_do_not_depend_on_arrival_order) {
  std::vector<pb::WriteRecord> recs{
    set_record("a", make_version(100, "n"), value{{"x", 1}}),
    fields_record("a", make_version(200, "m"), fields_of({{"y", 2}})),
    set_record("b", make_version(100, "n"), 1),
    delete_record("b", make_version(150, "m")),
    fields_record("a", make_version(50, "m"), fields_of({{"z", 3}})),
  };
  store_state forward;
  store_state backward;
  for (const auto& rec : recs)
    apply_ok(forward, rec);
  for (auto i = recs.rbegin(); i != recs.rend(); ++i)
    apply_ok(backward, *i);
  BOOST_TEST(forward.canonical_bytes() == backward.canonical_bytes());
  BOOST_TEST(read_key(forward, "a") == (value{{"x", 1}, {"y", 2}}));
  // A different state gives different bytes.
  store_state fewer;
  apply_ok(fewer, recs[0]);
  BOOST_TEST(fewer.canonical_bytes() != forward.canonical_bytes());
}

BOOST_AUTO_TEST_CASE(entry_meta_names_the_newest_write) {
  entry_head head;
  head.set_base(test_ids, make_version(100, "writer", 1, 90, "owner", 0, 5000),
                false, true);
  head.note_field(test_ids,
                  make_version(200, "writer", 1, 90, "owner", 0, 6000));
  pb::EntryMeta meta;
  to_proto(test_ids, head, &meta);
  BOOST_TEST(meta.owner() == "owner");
  BOOST_TEST(meta.time_us() == 200u);
  BOOST_TEST(meta.lease_end_us() == 6000u);
  BOOST_TEST(meta.version().stamp().wall_us() == 200u);
  // Leasing off: no claimer, so the writer owns it.
  entry_head unleased;
  unleased.set_base(test_ids, make_version(100, "writer"), false, false);
  to_proto(test_ids, unleased, &meta);
  BOOST_TEST(meta.owner() == "writer");
  // A tombstone holds no lease.
  head.set_base(test_ids, make_version(300, "writer", 1, 90, "owner", 0, 7000),
                true, false);
  to_proto(test_ids, head, &meta);
  BOOST_TEST(meta.lease_end_us() == 0u);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(lease_decisions)

BOOST_AUTO_TEST_CASE(unknown_key_is_claimed_in_the_epoch_of_its_claim_time) {
  auto d = decide_local_write(nullptr, test_ids, "me", t0, leases, false);
  BOOST_TEST(d.allowed);
  BOOST_TEST(d.draft.epoch == t0);
  BOOST_TEST(d.draft.claim_us == t0);
  BOOST_TEST(d.draft.claimer == "me");
}

BOOST_AUTO_TEST_CASE(owner_renews_in_its_claim_before_the_margin) {
  auto head = live_head("me");
  for (uint64_t now : {t0, lease_end - leases.margin_us - 1}) {
    BOOST_TEST_CONTEXT("now " << now) {
      auto d = decide_local_write(&head, test_ids, "me", now, leases, false);
      BOOST_TEST(d.allowed);
      BOOST_TEST(d.draft.epoch == 3u);
      BOOST_TEST(d.draft.claim_us == t0 - 500);
      BOOST_TEST(d.draft.claimer == "me");
    }
  }
  auto del = decide_local_write(&head, test_ids, "me", t0, leases, true);
  BOOST_TEST(del.allowed);
  BOOST_TEST(del.draft.epoch == 3u, "the owner deletes in its claim");
}

BOOST_AUTO_TEST_CASE(owner_near_or_after_the_end_claims_the_next_epoch) {
  auto head = live_head("me");
  for (uint64_t now : {lease_end - leases.margin_us, lease_end,
                       lease_end + 10 * leases.margin_us}) {
    BOOST_TEST_CONTEXT("now " << now) {
      auto d = decide_local_write(&head, test_ids, "me", now, leases, false);
      BOOST_TEST(d.allowed);
      BOOST_TEST(d.draft.epoch == now);
      BOOST_TEST(d.draft.claim_us == now);
      BOOST_TEST(d.draft.claimer == "me");
    }
  }
}

BOOST_AUTO_TEST_CASE(other_node_is_refused_until_end_plus_margin) {
  auto head = live_head("owner");
  for (uint64_t now : {t0, lease_end, lease_end + leases.margin_us - 1}) {
    for (bool is_delete : {false, true}) {
      BOOST_TEST_CONTEXT("now " << now << " delete " << is_delete) {
        auto d
          = decide_local_write(&head, test_ids, "me", now, leases, is_delete);
        BOOST_TEST(!d.allowed);
        BOOST_TEST(!d.missing);
        BOOST_TEST(d.owner == "owner");
        BOOST_TEST(d.lease_end_us == lease_end);
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(other_node_claims_the_next_epoch_after_end_plus_margin) {
  auto head = live_head("owner");
  for (uint64_t now : {lease_end + leases.margin_us, lease_end + 5000}) {
    BOOST_TEST_CONTEXT("now " << now) {
      auto d = decide_local_write(&head, test_ids, "me", now, leases, false);
      BOOST_TEST(d.allowed);
      BOOST_TEST(d.draft.epoch == now);
      BOOST_TEST(d.draft.claim_us == now);
      BOOST_TEST(d.draft.claimer == "me");
    }
  }
}

BOOST_AUTO_TEST_CASE(lease_end_comes_from_the_newest_write) {
  // The owner renewed with a field write: its later lease end counts.
  auto head = live_head("owner");
  head.note_field(test_ids, make_version(t0 + 500, "owner", 3, t0 - 500,
                                         "owner", 0, lease_end + 500));
  auto d = decide_local_write(&head, test_ids, "me",
                              lease_end + leases.margin_us, leases, false);
  BOOST_TEST(!d.allowed);
  BOOST_TEST(d.lease_end_us == lease_end + 500);
}

BOOST_AUTO_TEST_CASE(tombstone_holds_no_lease) {
  entry_head head = live_head("owner");
  head.set_base(test_ids, make_version(t0 + 1, "owner", 3, t0 - 500, "owner"),
                true, false);
  // Well before the old lease would have ended, anyone claims anew.
  auto d = decide_local_write(&head, test_ids, "me", t0 + 2, leases, false);
  BOOST_TEST(d.allowed);
  BOOST_TEST(d.draft.epoch == t0 + 2);
  BOOST_TEST(d.draft.claim_us == t0 + 2);
  BOOST_TEST(d.draft.claimer == "me");
}

BOOST_AUTO_TEST_CASE(delete_of_a_missing_or_deleted_key_is_missing) {
  entry_head tombstone;
  tombstone.set_base(test_ids, make_version(t0, "owner", 0, t0, "owner"), true,
                     false);
  for (const auto& cfg : {leases, lease_settings{false, 1000, 100}}) {
    BOOST_TEST_CONTEXT("leasing " << cfg.leasing) {
      auto unknown = decide_local_write(nullptr, test_ids, "me", t0, cfg, true);
      BOOST_TEST(!unknown.allowed);
      BOOST_TEST(unknown.missing);
      auto deleted
        = decide_local_write(&tombstone, test_ids, "me", t0, cfg, true);
      BOOST_TEST(!deleted.allowed);
      BOOST_TEST(deleted.missing);
    }
  }
}

BOOST_AUTO_TEST_CASE(without_leasing_every_write_is_allowed_in_epoch_zero) {
  const lease_settings off{false, 1000, 100};
  auto head = live_head("owner");
  for (const entry_head* h : {static_cast<const entry_head*>(nullptr),
                              static_cast<const entry_head*>(&head)}) {
    for (bool is_delete : {false, true}) {
      if (h == nullptr && is_delete)
        continue; // a missing key, covered above
      auto d = decide_local_write(h, test_ids, "me", t0, off, is_delete);
      BOOST_TEST(d.allowed);
      BOOST_TEST(d.draft.epoch == 0u);
      BOOST_TEST(d.draft.claim_us == 0u);
      BOOST_TEST(d.draft.claimer.empty());
    }
  }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(lease_tables)

BOOST_AUTO_TEST_CASE(stamp_sets_the_lease_end_from_the_stamp) {
  lease_node node{"me"};
  auto d = node.table.decide("k", false);
  auto v = node.table.stamp(d.draft, false);
  BOOST_TEST(v.stamp.node == "me");
  BOOST_TEST(v.stamp.wall_us == t0);
  BOOST_TEST(v.lease_end_us == t0 + leases.duration_us);
  BOOST_TEST(v.claimer == "me");
  auto del = node.table.stamp(d.draft, true);
  BOOST_TEST(del.lease_end_us == 0u);
  BOOST_TEST(newer(del, v), "every stamp is newer than the last");

  lease_node unleased{"me", lease_settings{false, 1000, 100}};
  auto u = unleased.table.stamp(unleased.table.decide("k", false).draft, false);
  BOOST_TEST(u.lease_end_us == 0u);
}

BOOST_AUTO_TEST_CASE(stamp_is_newer_than_observed_remote_writes) {
  lease_node node{"a"};
  // A remote write stamped ahead of our wall clock (within the skew).
  auto remote = set_record(
    "k", make_version(t0 + 500, "b", 0, t0 + 500, "b", 0, t0 + 1500), 1);
  receive(node.table, remote);
  auto v = node.table.stamp(version{}, false);
  BOOST_TEST(v.stamp.wall_us >= t0 + 500);
  BOOST_TEST(v.lease_end_us == v.stamp.wall_us + leases.duration_us);
}

BOOST_AUTO_TEST_CASE(a_forged_endless_lease_ends_after_the_maximum_everywhere) {
  // Issue 13: a record with lease end 2^62 µs made PUT and DELETE of its key
  // 409 on every node, forever. Its end is now clamped to its stamp + the
  // mesh-wide maximum, alike on every replica.
  auto cfg = leases;
  cfg.max_duration_us = 5000;
  lease_node a{"a", cfg}, b{"b", cfg};
  auto forged = set_record(
    "k", make_version(t0, "evil", t0, t0, "evil", 0, uint64_t{1} << 62), 1);
  receive(a.table, forged);
  receive(b.table, forged);
  for (auto* node : {&a, &b})
    BOOST_TEST(node->table.find("k")->newest(node->table.ids()).lease_end_us
               == t0 + 5000);
  // Both replicas hold the same entry: their digests agree.
  BOOST_TEST(a.table.store().canonical_bytes()
             == b.table.store().canonical_bytes());
  BOOST_TEST(a.table.store().buckets()[store_state::bucket_of("k")].hash
             == b.table.store().buckets()[store_state::bucket_of("k")].hash);
  // Within the clamped lease the key is the forger's...
  a.clock.set(t0 + 5000);
  BOOST_TEST(!a.table.decide("k", false).allowed);
  BOOST_TEST(!a.table.decide("k", true).allowed);
  // ...and after it (plus the margin) anyone may claim it, and the claim
  // replicates.
  a.clock.set(t0 + 5000 + cfg.margin_us);
  BOOST_TEST(a.table.decide("k", true).allowed);
  auto rec = a.write("k", 2);
  b.clock.set(t0 + 5000 + cfg.margin_us);
  receive(b.table, rec);
  BOOST_TEST(b.table.find("k")->owner(b.table.ids()) == "a");
  BOOST_TEST(a.table.store().canonical_bytes()
             == b.table.store().canonical_bytes());
}

BOOST_AUTO_TEST_CASE(a_clamped_record_is_reported_so_it_can_be_counted) {
  auto cfg = leases;
  cfg.max_duration_us = 5000;
  lease_node a{"a", cfg};
  auto forged = set_record(
    "k", make_version(t0, "evil", t0, t0, "evil", 0, uint64_t{1} << 62), 1);
  auto honest = set_record(
    "j", make_version(t0, "evil", t0, t0, "evil", 0, t0 + 5000), 1);
  version v;
  BOOST_REQUIRE(from_proto(forged.version(), v).empty());
  BOOST_TEST(a.table.record(forged, v, false).clamped);
  BOOST_REQUIRE(from_proto(honest.version(), v).empty());
  BOOST_TEST(!a.table.record(honest, v, false).clamped);
}

BOOST_AUTO_TEST_CASE(stamp_clamps_a_lease_longer_than_the_maximum) {
  auto cfg = leases;
  cfg.max_duration_us = 400;
  lease_node node{"me", cfg};
  auto v = node.table.stamp(node.table.decide("k", false).draft, false);
  BOOST_TEST(v.lease_end_us == v.stamp.wall_us + 400);
}

BOOST_AUTO_TEST_CASE(a_key_at_the_last_epoch_is_refused_not_overflowed) {
  entry_head head;
  head.set_base(test_ids, make_version(t0, "x", max_epoch, t0, "x", 0, t0 + 10),
                false, false);
  auto d
    = decide_local_write(&head, test_ids, "me", t0 + 100000, leases, false);
  BOOST_TEST(!d.allowed);
  auto successor = py2p_successor(&head, test_ids, "me", t0 + 100000, true);
  BOOST_TEST(successor.epoch == max_epoch);
}

// Found by syncmesh-sim (churn, seed 1): a node that never saw a key claimed
// it in epoch 0 and lost to an older claim whose lease had long ended.
BOOST_AUTO_TEST_CASE(a_later_claim_beats_an_earlier_one_it_never_saw) {
  lease_node old_owner{"zz-old"};
  old_owner.write("k", 1); // claimed at t0, lease until t0 + 1000
  auto old_write = old_owner.table.find("k")->newest(old_owner.table.ids());
  // Long after that lease ended, a node that never saw the key claims it.
  auto d
    = decide_local_write(nullptr, test_ids, "aa-new", t0 + 5000, leases, false);
  BOOST_REQUIRE(d.allowed);
  lease_node fresh{"aa-new"};
  fresh.clock.set(t0 + 5000);
  auto mine = fresh.table.stamp(d.draft, false);
  BOOST_TEST(newer(mine, old_write));
  // The old owner's lease had ended: taking the key over is no loss.
  auto rec = set_record("k", mine, 2);
  old_owner.clock.set(t0 + 5000);
  BOOST_TEST(!receive(old_owner.table, rec).has_value());
  BOOST_TEST(old_owner.table.find("k")->owner(old_owner.table.ids())
             == "aa-new");
}

BOOST_AUTO_TEST_CASE(own_writes_are_never_a_loss) {
  lease_node node{"me"};
  node.write("k", 1);
  node.clock.advance(microseconds(10));
  node.write("k", 2); // renewal
  BOOST_TEST(node.table.find("k")->owner(node.table.ids()) == "me");
}

BOOST_AUTO_TEST_CASE(earlier_claim_in_the_same_epoch_takes_the_lease) {
  lease_node node{"me"};
  node.write("k", 1); // epoch t0, claimed at t0
  auto rival = set_record(
    "k", make_version(t0 + 5, "other", t0, t0 - 10, "other", 0, t0 + 1005), 2);
  auto loss = receive(node.table, rival);
  BOOST_REQUIRE(loss.has_value());
  BOOST_TEST(loss->key == "k");
  BOOST_TEST(loss->new_owner == "other");
  BOOST_TEST(loss->old_lease_end_us == t0 + leases.duration_us);
  BOOST_TEST(node.table.find("k")->owner(node.table.ids()) == "other");
  BOOST_TEST(!node.table.decide("k", false).allowed);
}

BOOST_AUTO_TEST_CASE(same_claim_time_and_smaller_node_id_takes_the_lease) {
  // The seed's same-instant tie: both claim at t0, "alpha" < "beta".
  lease_node beta{"beta"};
  beta.write("k", 1);
  auto rival = set_record(
    "k", make_version(t0, "alpha", t0, t0, "alpha", 0, t0 + 1000), 2);
  auto loss = receive(beta.table, rival);
  BOOST_REQUIRE(loss.has_value());
  BOOST_TEST(loss->new_owner == "alpha");
  // The other way round, alpha keeps its lease.
  lease_node alpha{"alpha"};
  alpha.write("k", 1);
  auto weaker = set_record(
    "k", make_version(t0, "beta", t0, t0, "beta", 0, t0 + 1000), 2);
  BOOST_TEST(!receive(alpha.table, weaker).has_value());
  BOOST_TEST(alpha.table.find("k")->owner(alpha.table.ids()) == "alpha");
}

BOOST_AUTO_TEST_CASE(higher_epoch_claimed_before_our_end_takes_the_lease) {
  // The claimer had missed our renewal: it claimed the next epoch while our
  // renewed lease still ran.
  lease_node node{"me"};
  node.write("k", 1);
  auto rival = fields_record(
    "k",
    make_version(t0 + 300, "other", t0 + 300, t0 + 300, "other", 0, t0 + 1300),
    fields_of({{"f", 1}}));
  auto loss = receive(node.table, rival);
  BOOST_REQUIRE(loss.has_value());
  BOOST_TEST(loss->new_owner == "other");
}

BOOST_AUTO_TEST_CASE(claim_after_our_lease_ended_is_no_loss) {
  lease_node node{"me"};
  node.write("k", 1);
  uint64_t our_end = t0 + leases.duration_us;
  node.clock.set(our_end + leases.margin_us);
  auto successor = set_record("k",
                              make_version(our_end + leases.margin_us, "other",
                                           our_end + leases.margin_us,
                                           our_end + leases.margin_us, "other",
                                           0, our_end + 2000),
                              2);
  BOOST_TEST(!receive(node.table, successor).has_value());
  BOOST_TEST(node.table.find("k")->owner(node.table.ids()) == "other");
}

// Issue 16: a claimer whose clock runs ahead claims "after our end" by its
// clock while our lease still runs by ours, superseding the writes we
// acknowledged meanwhile: the owner is told (lease_lost) whatever the cause.
BOOST_AUTO_TEST_CASE(
  a_claim_from_a_clock_ahead_is_a_loss_though_after_our_end) {
  lease_node node{"me"};
  node.write("k", 1);
  uint64_t our_end = t0 + leases.duration_us;
  // Renewed before end - margin; our clock then nears the old end while
  // the claimer's clock, far ahead, is past the renewed end + margin.
  node.clock.set(t0 + 600);
  node.write("k", 2); // acknowledged, renews in the same epoch
  auto renewed_end = node.table.find("k")->packed_newest().lease_end_us;
  BOOST_TEST(renewed_end > our_end);
  node.clock.set(t0 + 1000);
  auto ahead = renewed_end + leases.margin_us;
  auto successor = set_record(
    "k", make_version(ahead, "other", ahead, ahead, "other", 0, ahead + 1000),
    3);
  auto loss = receive(node.table, successor);
  BOOST_REQUIRE(loss.has_value());
  BOOST_TEST(loss->new_owner == "other");
  BOOST_TEST(loss->old_lease_end_us == renewed_end);
  BOOST_TEST(node.table.find("k")->owner(node.table.ids()) == "other");
}

BOOST_AUTO_TEST_CASE(losing_remote_writes_change_nothing) {
  lease_node node{"me"};
  node.write("k", 1); // claimed at t0
  // A write of an older claim (its lease long over) arrives late.
  auto stale = set_record(
    "k",
    make_version(t0 + 5, "other", t0 - 5000, t0 - 5000, "other", 0, t0 - 4000),
    2);
  BOOST_TEST(!receive(node.table, stale).has_value());
  BOOST_TEST(node.table.find("k")->owner(node.table.ids()) == "me");
  BOOST_TEST(node.table.decide("k", false).allowed);
}

BOOST_AUTO_TEST_CASE(without_leasing_nothing_is_lost) {
  lease_node node{"me", lease_settings{false, 1000, 100}};
  node.write("k", 1);
  auto newer_write = set_record("k", make_version(t0 + 5, "other"), 2);
  BOOST_TEST(!receive(node.table, newer_write).has_value());
  BOOST_TEST(node.table.find("k")->owner(node.table.ids()) == "other");
  BOOST_TEST(node.table.decide("k", false).allowed);
}

BOOST_AUTO_TEST_CASE(tombstone_count_follows_every_change) {
  lease_node node{"me"};
  std::vector<std::string> keys{"a", "b", "c", "d"};
  auto brute_force = [&] {
    size_t n = 0;
    for (const auto& k : keys)
      if (const auto* h = node.table.find(k); h != nullptr && !h->live())
        ++n;
    return n;
  };
  uint64_t t = t0;
  for (int step = 0; step < 40; ++step) {
    const auto& key = keys[static_cast<size_t>(step * 7 % 4)];
    node.clock.set(t += 10);
    switch (step % 3) {
      case 0:
        node.write(key, step);
        break;
      case 1:
        if (node.table.decide(key, true).allowed)
          node.erase(key);
        break;
      default: {
        // A remote delta newer than everything: fields revive a tombstone.
        auto rec = fields_record(
          key, make_version(t + 5, "other", t + 5, t + 5, "other"),
          fields_of({{"f", step}}));
        receive(node.table, rec);
        break;
      }
    }
    BOOST_TEST_CONTEXT("step " << step) {
      BOOST_TEST(node.table.tombstone_count() == brute_force());
    }
  }
  node.clock.advance(microseconds(1'000'000));
  node.table.purge_tombstones(1000);
  BOOST_TEST(node.table.tombstone_count() == brute_force());
  BOOST_TEST(node.table.tombstone_count() == 0u);
}

BOOST_AUTO_TEST_CASE(tombstones_are_purged_after_the_horizon) {
  const uint64_t horizon = 10'000;
  lease_node node{"me"};
  node.write("dead", 1);
  node.write("live", 1);
  node.erase("dead");
  BOOST_TEST(node.table.tombstone_count() == 1u);
  BOOST_TEST(node.table.find("dead")->lease_end_us() == 0u);
  node.clock.advance(microseconds(horizon));
  BOOST_TEST(node.table.purge_tombstones(horizon).empty(), "not yet older");
  node.clock.advance(microseconds(1));
  auto purged = node.table.purge_tombstones(horizon);
  BOOST_TEST(purged == (std::vector<std::string>{"dead"}),
             boost::test_tools::per_element());
  BOOST_TEST(node.table.find("dead") == nullptr);
  BOOST_TEST(node.table.find("live") != nullptr, "live keys stay");
  BOOST_TEST(node.table.tombstone_count() == 0u);
}

// A delta without fields changes nothing in the store, so it must not make
// the lease view believe the key is live and leased.
BOOST_AUTO_TEST_CASE(empty_delta_keeps_the_lease_view_in_step_with_the_store) {
  auto rec = fields_record(
    "k", make_version(t0, "other", 0, t0, "other", 0, t0 + 1000), {});
  store_state store;
  apply_ok(store, rec);
  lease_node node{"me"};
  receive(node.table, rec);
  const auto* entry = store.find("k");
  const auto* head = node.table.find("k");
  BOOST_TEST((entry != nullptr && entry->live())
             == (head != nullptr && head->live()));
  BOOST_TEST(node.table.decide("k", false).allowed,
             "no write of \"k\" exists, so no lease can be held");
}

BOOST_AUTO_TEST_CASE(deletable_key_is_one_this_node_may_delete) {
  lease_node node{"me"};
  BOOST_TEST(!node.table.deletable_key(), "empty table");
  receive(node.table, set_record("theirs",
                                 make_version(t0, "other", 0, t0, "other", 0,
                                              t0 + leases.duration_us),
                                 1));
  BOOST_TEST(!node.table.deletable_key(), "leased by another");
  node.write("mine", 1);
  node.erase("mine");
  BOOST_TEST(!node.table.deletable_key(), "tombstones are not");
  node.write("mine", 2);
  BOOST_REQUIRE(node.table.deletable_key().has_value());
  BOOST_TEST(*node.table.deletable_key() == "mine");
  node.erase("mine");
  // Once the other lease has ended (with the margin) its key may go too.
  node.clock.set(t0 + leases.duration_us + leases.margin_us);
  BOOST_REQUIRE(node.table.deletable_key().has_value());
  BOOST_TEST(*node.table.deletable_key() == "theirs");
}

BOOST_AUTO_TEST_SUITE_END()
