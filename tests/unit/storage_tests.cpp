// The compact per-key storage: interned node IDs and packed versions
// (messages/packed_version.hpp), each store's own node-ID table and its
// reference counts (actors/store_state.hpp), packed keys and the key table
// (actors/key_table.hpp), packed values (messages/packed_value.hpp).
#include <boost/test/unit_test.hpp>

#include <functional>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "actors/key_table.hpp"
#include "actors/lease_state.hpp"
#include "actors/store_state.hpp"
#include "messages/keyed_hash.hpp"
#include "messages/packed_value.hpp"
#include "messages/packed_version.hpp"
#include "messages/value_proto.hpp"
#include "tests/unit/test_support.hpp"

using namespace syncmesh;
using namespace syncmesh::test;

namespace {

int sign(int x) {
  return (x > 0) - (x < 0);
}

} // namespace

BOOST_AUTO_TEST_SUITE(node_id_tables)

BOOST_AUTO_TEST_CASE(empty_id_is_ref_zero) {
  node_id_table ids;
  BOOST_TEST(ids.intern("") == 0u);
  BOOST_TEST(ids.bytes(0).empty());
  BOOST_TEST(ids.size() == 1u);
}

BOOST_AUTO_TEST_CASE(each_id_gets_one_stable_ref) {
  node_id_table ids;
  auto a = ids.intern("alpha");
  auto b = ids.intern("beta");
  BOOST_TEST(a != b);
  BOOST_TEST(a != 0u);
  BOOST_TEST(ids.intern("alpha") == a);
  BOOST_TEST(ids.intern(std::string{"beta"}) == b);
  BOOST_TEST(ids.bytes(a) == "alpha");
  BOOST_TEST(ids.bytes(b) == "beta");
  BOOST_TEST(ids.size() == 3u);
  // References stay valid while the table grows.
  const auto& alpha = ids.bytes(a);
  for (int i = 0; i < 10'000; ++i)
    ids.intern("n" + std::to_string(i));
  BOOST_TEST(alpha == "alpha");
  BOOST_TEST(ids.intern("alpha") == a);
}

BOOST_AUTO_TEST_CASE(an_id_is_forgotten_with_its_last_reference) {
  node_id_table ids;
  auto a = ids.intern("alpha");
  ids.retain(a); // a second holder
  BOOST_TEST(ids.references(a) == 2u);
  ids.release(a);
  BOOST_TEST(ids.size() == 2u);
  BOOST_TEST(ids.bytes(a) == "alpha");
  ids.release(a); // the last
  BOOST_TEST(ids.size() == 1u);
  BOOST_TEST(ids.references(a) == 0u);
  // Its ref is reused for the next new ID; the old ID gets a fresh one.
  auto b = ids.intern(std::string(40, 'b'));
  BOOST_TEST(b == a);
  BOOST_TEST(ids.bytes(b) == std::string(40, 'b'));
  auto again = ids.intern("alpha");
  BOOST_TEST(again != b);
  BOOST_TEST(ids.bytes(again) == "alpha");
  BOOST_TEST(ids.size() == 3u);
}

BOOST_AUTO_TEST_CASE(two_tables_intern_independently) {
  // Issue 13: each store interns in its own table, so one node's writers
  // neither grow nor pin another's, and no table is shared across threads.
  node_id_table first;
  node_id_table second;
  auto a1 = first.intern("alpha");
  auto b1 = first.intern("beta");
  auto b2 = second.intern("beta");
  BOOST_TEST(first.size() == 3u);
  BOOST_TEST(second.size() == 2u);
  BOOST_TEST(second.bytes(b2) == "beta");
  BOOST_TEST(b2 == a1); // refs are local: the same number, another ID
  BOOST_TEST(first.bytes(b2) == "alpha");
  // Releasing in one table leaves the other's counts alone.
  first.release(b1);
  BOOST_TEST(first.size() == 2u);
  BOOST_TEST(second.size() == 2u);
  BOOST_TEST(second.bytes(b2) == "beta");
  second.release(b2);
  BOOST_TEST(second.size() == 1u);
  BOOST_TEST(first.bytes(a1) == "alpha");
}

BOOST_AUTO_TEST_CASE(packed_versions_are_counted_by_their_holder) {
  node_id_table ids;
  auto v
    = pack(ids, make_version(5, "writer-counted", 1, 2, "claimer-counted"));
  BOOST_TEST(ids.size() == 3u);
  // A plain value: copies count nothing and read the same IDs.
  packed_version copy = v;
  BOOST_TEST(ids.size() == 3u);
  BOOST_TEST(unpack(ids, copy).stamp.node == "writer-counted");
  BOOST_TEST(unpack(ids, copy).claimer == "claimer-counted");
  // A second pack of the same IDs counts a second reference to each.
  auto w
    = pack(ids, make_version(6, "writer-counted", 1, 2, "claimer-counted"));
  BOOST_TEST(w.node == v.node);
  BOOST_TEST(ids.references(v.node) == 2u);
  release(ids, v);
  BOOST_TEST(ids.size() == 3u);
  release(ids, w);
  BOOST_TEST(ids.size() == 1u);
}

BOOST_AUTO_TEST_CASE(ids_with_zero_bytes_are_distinct) {
  node_id_table ids;
  auto x = ids.intern(std::string("a\0b", 3));
  auto y = ids.intern(std::string("a\0c", 3));
  BOOST_TEST(x != y);
  BOOST_TEST(ids.bytes(x) == std::string("a\0b", 3));
}

BOOST_AUTO_TEST_CASE(compare_orders_by_bytes_not_by_ref) {
  node_id_table ids;
  // Interned in descending order, so refs ascend while bytes descend.
  auto z = ids.intern("zz");
  auto m = ids.intern("mm");
  auto a = ids.intern("aa");
  BOOST_TEST(z < m);
  BOOST_TEST(ids.compare(z, m) > 0);
  BOOST_TEST(ids.compare(a, m) < 0);
  BOOST_TEST(ids.compare(m, m) == 0);
  BOOST_TEST(ids.compare(0, a) < 0); // empty sorts first
  BOOST_TEST(ids.compare(std::string{"zz"}, z) == 0);
  BOOST_TEST(ids.compare(std::string{"b"}, a) > 0);
  BOOST_TEST(ids.compare(std::string{""}, a) < 0);
  BOOST_TEST(ids.compare(std::string{"b"}, 0) > 0);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(packed_versions)

BOOST_AUTO_TEST_CASE(pack_round_trips) {
  node_id_table ids;
  auto v = make_version(123456789, "writer", 7, 1000, "claimer", 42, 99999);
  auto p = pack(ids, v);
  BOOST_TEST(sizeof(packed_version) == 48u);
  BOOST_TEST(sizeof(entry_head) == 56u);
  auto back = unpack(ids, p);
  BOOST_TEST(back.epoch == 7u);
  BOOST_TEST(back.claim_us == 1000u);
  BOOST_TEST(back.claimer == "claimer");
  BOOST_TEST(back.stamp.wall_us == 123456789u);
  BOOST_TEST(back.stamp.counter == 42u);
  BOOST_TEST(back.stamp.node == "writer");
  BOOST_TEST(back.lease_end_us == 99999u);
  BOOST_TEST(compare(back, v) == 0);
  BOOST_TEST(pack(ids, make_version(1, "w")).claimer == 0u);
}

// Property: packed comparisons (packed/packed and full/packed) order exactly
// like the full versions, whatever order the IDs were interned in.
BOOST_AUTO_TEST_CASE(packed_order_matches_version_order) {
  const unsigned seed = 20261126;
  BOOST_TEST_MESSAGE("seed " << seed);
  std::mt19937 rng{seed};
  node_id_table ids;
  // Interned in an order unrelated to their bytes.
  const std::vector<raw_node_id> nodes{"zeta", "", "alpha", "mu", "alphb", "a"};
  auto pick = [&](auto& xs) {
    return xs[rng() % xs.size()];
  };
  std::vector<uint64_t> small{0, 1, 2};
  auto random_version = [&] {
    return make_version(pick(small), pick(nodes), pick(small), pick(small),
                        pick(nodes), static_cast<uint32_t>(pick(small)),
                        pick(small));
  };
  for (int i = 0; i < 20'000; ++i) {
    auto x = random_version();
    auto y = random_version();
    auto expected = sign(compare(x, y));
    auto px = pack(ids, x);
    auto py = pack(ids, y);
    BOOST_TEST_REQUIRE(sign(compare(ids, px, py)) == expected);
    BOOST_TEST_REQUIRE(sign(compare(ids, x, py)) == expected);
    BOOST_TEST_REQUIRE(newer(ids, px, py) == newer(x, y));
    release(ids, px);
    release(ids, py);
  }
  BOOST_TEST(ids.size() == 1u);
}

BOOST_AUTO_TEST_SUITE_END()

// The store's own node-ID table (issue 13): every path that installs,
// replaces or drops a version counts its IDs, so the table holds exactly
// the writers and claimers of what is stored.
BOOST_AUTO_TEST_SUITE(store_node_ids)

namespace {

/// Applies `rec` to `store`, requiring that it is well-formed.
void apply_ok(store_state& store, const pb::WriteRecord& rec) {
  std::string err;
  store.apply(rec, false, err);
  BOOST_REQUIRE_MESSAGE(err.empty(), "apply failed: " << err);
}

/// Keys of every tombstone in `store`.
std::vector<std::string> tombstones(const store_state& store) {
  std::vector<std::string> result;
  for (const auto& [key, entry] : store.entries())
    if (!entry.live())
      result.emplace_back(key);
  return result;
}

} // namespace

BOOST_AUTO_TEST_CASE(a_fresh_store_knows_only_the_empty_id) {
  store_state store;
  BOOST_TEST(store.ids().size() == 1u);
  BOOST_TEST(store.audit_node_ids());
}

BOOST_AUTO_TEST_CASE(
  overwriting_one_key_with_fresh_writers_keeps_the_table_small) {
  // A peer (hostile or buggy) writes one key over and over, each time with
  // a new writer and claimer ID: only the winning version's IDs stay
  // interned, in whole values, field writes and deletes alike.
  store_state store;
  for (int i = 0; i < 5000; ++i) {
    auto writer = "fresh-" + std::to_string(i);
    auto claimer = "claim-" + std::to_string(i);
    auto v = make_version(1000 + 3 * i, writer, 5 + i, 10, claimer);
    apply_ok(store, set_record("k", v, value{{"a", i}}));
    v.stamp.wall_us += 1;
    apply_ok(store, fields_record("k", v, fields_of({{"b", i}})));
    if (i % 10 == 9) {
      v.stamp.wall_us += 1;
      apply_ok(store, delete_record("k", v));
    }
    BOOST_TEST_REQUIRE(store.ids().size() <= 5u, "after write " << i);
  }
  BOOST_TEST(store.audit_node_ids());
  BOOST_TEST(store.entry_count() == 1u);
}

BOOST_AUTO_TEST_CASE(delete_and_purge_of_everything_leaves_the_table_empty) {
  store_state store;
  const int keys = 2000;
  for (int i = 0; i < keys; ++i) {
    auto key = "key-" + std::to_string(i);
    auto writer = "writer-" + std::to_string(i % 37);
    auto claimer = "owner-" + std::to_string(i % 11);
    apply_ok(store, set_record(key, make_version(100, writer, 3, 50, claimer),
                               value{{"a", i}}));
    if (i % 3 == 0) // some keys carry a top field write too
      apply_ok(store, fields_record(
                        key, make_version(200, "fw-" + writer, 3, 50, claimer),
                        fields_of({{"b", i}})));
    if (i % 5 == 0) // a stale write refused
      apply_ok(store, set_record(key, make_version(10, "stale"), value{0}));
  }
  BOOST_TEST(store.ids().size() > 40u);
  BOOST_TEST(store.audit_node_ids());
  // A record that changes nothing on a key the store never saw (no fields)
  // leaves no entry and no ID behind.
  const auto before = store.ids().size();
  apply_ok(store, fields_record("never", make_version(100, "nobody-else"),
                                value_map{}));
  BOOST_TEST(store.find("never") == nullptr);
  BOOST_TEST(store.ids().size() == before);
  for (int i = 0; i < keys; ++i) {
    auto key = "key-" + std::to_string(i);
    apply_ok(store, delete_record(key, make_version(300, "deleter-" + key, 4,
                                                    300, "deleter-" + key)));
  }
  BOOST_TEST(store.live_count() == 0u);
  // Tombstones still hold their deleters.
  BOOST_TEST(store.ids().size() == 1u + keys);
  BOOST_TEST(store.audit_node_ids());
  BOOST_TEST(store.purge(tombstones(store)) == size_t(keys));
  BOOST_TEST(store.entry_count() == 0u);
  BOOST_TEST(store.ids().size() == 1u);
  BOOST_TEST(store.audit_node_ids());
  // The store still works, and counts afresh.
  apply_ok(store, set_record("again", make_version(400, "writer-0"), value{1}));
  BOOST_TEST(store.ids().size() == 2u);
  BOOST_TEST(store.audit_node_ids());
}

BOOST_AUTO_TEST_CASE(lease_rules_purge_releases_the_ids_of_expired_tombstones) {
  // The same through the lease rules (leasing on, claims, the purge timer's
  // path), with this node's own writes mixed in.
  manual_clock clock{1'000'000};
  lease_settings cfg;
  cfg.duration_us = 1000;
  cfg.margin_us = 10;
  lease_table node{"me", clock.as_wall_clock(), cfg, 1'000'000};
  auto record = [&](const pb::WriteRecord& rec) {
    version v;
    BOOST_REQUIRE(from_proto(rec.version(), v).empty());
    auto r = node.record(rec, v, false);
    BOOST_REQUIRE(r.error.empty());
  };
  for (int i = 0; i < 300; ++i) {
    auto key = "k" + std::to_string(i);
    if (i % 2 == 0) {
      auto d = node.decide(key, false);
      BOOST_REQUIRE(d.allowed);
      record(set_record(key, node.stamp(d.draft, false), value{i}));
    } else {
      auto peer = "peer-" + std::to_string(i);
      record(set_record(key,
                        make_version(clock.now(), peer, 1, clock.now(), peer, 0,
                                     clock.now() + 1000),
                        value{i}));
    }
  }
  BOOST_TEST(node.ids().size() == 1u + 1 + 150); // empty, me, the peers
  BOOST_TEST(node.store().audit_node_ids());
  clock.advance(std::chrono::microseconds{5000}); // every lease is over
  for (int i = 0; i < 300; ++i) {
    auto key = "k" + std::to_string(i);
    auto d = node.decide(key, true);
    BOOST_REQUIRE(d.allowed);
    record(delete_record(key, node.stamp(d.draft, true)));
  }
  BOOST_TEST(node.ids().size() == 2u); // the tombstones are ours
  clock.advance(std::chrono::microseconds{5000});
  BOOST_TEST(node.purge_tombstones(1000).size() == 300u);
  BOOST_TEST(node.ids().size() == 1u);
  BOOST_TEST(node.store().audit_node_ids());
}

// Property: under a random mix of writes, field writes, deletes, stale
// records and purges, the table's counts always equal what the entries hold.
BOOST_AUTO_TEST_CASE(random_histories_never_leak_a_reference) {
  const unsigned seed = 1313;
  BOOST_TEST_MESSAGE("seed " << seed);
  std::mt19937 rng{seed};
  store_state store;
  auto id = [&](const char* prefix) {
    return std::string{prefix} + std::to_string(rng() % 20);
  };
  for (int step = 0; step < 20'000; ++step) {
    auto key = "k" + std::to_string(rng() % 50);
    auto v = make_version(1 + rng() % 1000, id("w"), rng() % 3, rng() % 3,
                          rng() % 2 ? id("c") : std::string{});
    switch (rng() % 4) {
      case 0:
        apply_ok(store, set_record(key, v, value{step}));
        break;
      case 1:
        apply_ok(store, fields_record(key, v, fields_of({{"f", step}})));
        break;
      case 2:
        apply_ok(store, delete_record(key, v));
        break;
      default:
        store.purge(tombstones(store));
    }
    if (step % 500 == 0)
      BOOST_TEST_REQUIRE(store.audit_node_ids(), "step " << step);
  }
  BOOST_TEST(store.audit_node_ids());
  // Delete everything with a version that beats every write, then purge.
  std::vector<std::string> keys;
  for (const auto& kv : store.entries())
    keys.emplace_back(kv.first);
  for (const auto& key : keys)
    apply_ok(store,
             delete_record(key, make_version(5000, "last", 9, 0, "last")));
  store.purge(tombstones(store));
  BOOST_TEST(store.entry_count() == 0u);
  BOOST_TEST(store.ids().size() == 1u);
}

BOOST_AUTO_TEST_CASE(stores_on_two_threads_share_no_table) {
  // Two nodes of one process (an in-process mesh) apply at the same time,
  // each in its own store: no lock, and each table holds only its own IDs.
  store_state first;
  store_state second;
  auto fill = [](store_state& store, const std::string& prefix) {
    for (int i = 0; i < 20'000; ++i) {
      std::string err;
      store.apply(
        set_record("k" + std::to_string(i % 100),
                   make_version(1000 + i, prefix + std::to_string(i % 7)),
                   value{i}),
        false, err);
    }
  };
  std::thread other{fill, std::ref(second), "second-"};
  fill(first, "first-");
  other.join();
  BOOST_TEST(first.audit_node_ids());
  BOOST_TEST(second.audit_node_ids());
  BOOST_TEST(first.ids().size() <= 8u);
  BOOST_TEST(second.ids().size() <= 8u);
  for (const auto& [key, entry] : first.entries())
    BOOST_TEST_REQUIRE(entry.head().owner(first.ids()).rfind("first-", 0)
                       == 0u);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(key_tables)

BOOST_AUTO_TEST_CASE(packed_keys_hold_short_and_long_bytes) {
  for (size_t n : {0, 1, 8, 15, 16, 17, 300}) {
    std::string bytes(n, 'x');
    if (n > 0)
      bytes[n / 2] = '\0';
    packed_key k{bytes};
    BOOST_TEST(k.view() == bytes);
    packed_key moved{std::move(k)};
    BOOST_TEST(moved.view() == bytes);
    BOOST_TEST(k.view().empty());
    packed_key assigned{"other"};
    assigned = std::move(moved);
    BOOST_TEST(assigned.view() == bytes);
  }
}

BOOST_AUTO_TEST_CASE(insert_find_erase) {
  key_table<int> t;
  BOOST_TEST(t.find("a") == nullptr);
  BOOST_TEST(!t.erase("a"));
  auto [a, added] = t.try_emplace("a");
  BOOST_TEST(added);
  BOOST_TEST(*a == 0);
  *a = 7;
  auto [again, added_again] = t.try_emplace("a");
  BOOST_TEST(!added_again);
  BOOST_TEST(*again == 7);
  *t.try_emplace("a long key beyond fifteen bytes").first = 8;
  BOOST_TEST(t.size() == 2u);
  BOOST_TEST(*t.find("a long key beyond fifteen bytes") == 8);
  BOOST_TEST(t.erase("a"));
  BOOST_TEST(t.find("a") == nullptr);
  BOOST_TEST(*t.find("a long key beyond fifteen bytes") == 8);
  BOOST_TEST(t.size() == 1u);
}

// Property: a random mix of inserts and erases (enough to grow the index and
// wrap probe runs around its end) leaves the table equal to a std::map that
// saw the same operations, by lookup and by iteration.
BOOST_AUTO_TEST_CASE(matches_a_map_under_random_operations) {
  const unsigned seed = 424242;
  BOOST_TEST_MESSAGE("seed " << seed);
  std::mt19937 rng{seed};
  key_table<uint64_t> table;
  std::map<std::string, uint64_t> model;
  for (int round = 0; round < 200'000; ++round) {
    auto key = "k" + std::to_string(rng() % 5000);
    if (round % 7 == 0)
      key += std::string(20, 'L'); // some heap-held keys
    if (rng() % 3 == 0) {
      BOOST_TEST_REQUIRE(table.erase(key) == (model.erase(key) == 1));
    } else {
      auto [entry, added] = table.try_emplace(key);
      BOOST_TEST_REQUIRE(added == (model.count(key) == 0));
      *entry = round;
      model[key] = round;
    }
  }
  BOOST_TEST(table.size() == model.size());
  for (const auto& [key, val] : model) {
    const auto* found = table.find(key);
    BOOST_TEST_REQUIRE(found != nullptr);
    BOOST_TEST_REQUIRE(*found == val);
  }
  std::map<std::string, uint64_t> iterated;
  for (const auto& [key, val] : std::as_const(table))
    iterated.emplace(std::string{key}, val);
  BOOST_TEST((iterated == model));
  for (const auto& [key, val] : model)
    BOOST_TEST_REQUIRE(table.erase(key));
  BOOST_TEST(table.empty());
  BOOST_TEST(table.find("k1") == nullptr);
}

BOOST_AUTO_TEST_CASE(keys_crafted_against_an_unkeyed_hash_do_not_collide) {
  // Issue 13: with std::hash a peer could choose keys that all start their
  // probe at one slot (here: the first thousandth of the tag range, slot 0
  // of any table up to 1000 slots), making lookups linear. The keyed hash
  // spreads the same keys over the table, and differently per seed.
  std::vector<std::string> crafted;
  const uint64_t narrow = (uint64_t{1} << 32) / 1000;
  for (uint64_t i = 0; crafted.size() < 1000; ++i) {
    auto key = "crafted" + std::to_string(i);
    if ((std::hash<std::string_view>{}(key) >> 32) < narrow)
      crafted.push_back(std::move(key));
  }
  key_table<int> first{1}, second{2};
  size_t still_narrow = 0;
  size_t same_tag = 0;
  for (size_t i = 0; i < crafted.size(); ++i) {
    if (first.tag_of(crafted[i]) < narrow)
      ++still_narrow;
    if (first.tag_of(crafted[i]) == second.tag_of(crafted[i]))
      ++same_tag;
    *first.try_emplace(crafted[i]).first = static_cast<int>(i);
  }
  // Uniform tags put ~1 of 1000 keys in that range; allow generous slack.
  BOOST_TEST(still_narrow < 20u);
  BOOST_TEST(same_tag < 5u);
  // The process's own tables are keyed too (with its random seed).
  key_table<int> process_table;
  BOOST_TEST(process_table.tag_of("k")
             == static_cast<uint32_t>(keyed_hash("k") >> 32));
  // Lookups stay correct.
  for (size_t i = 0; i < crafted.size(); ++i) {
    const auto* found = first.find(crafted[i]);
    BOOST_TEST_REQUIRE(found != nullptr);
    BOOST_TEST_REQUIRE(*found == static_cast<int>(i));
  }
  BOOST_TEST(first.find("crafted-absent") == nullptr);
}

BOOST_AUTO_TEST_CASE(reserve_keeps_entries_and_sizes_the_index) {
  key_table<std::string> t;
  for (int i = 0; i < 100; ++i)
    *t.try_emplace(std::to_string(i)).first = std::to_string(i * i);
  auto before = t.footprint();
  t.reserve(100'000);
  BOOST_TEST(t.footprint() > before);
  BOOST_TEST(t.size() == 100u);
  for (int i = 0; i < 100; ++i)
    BOOST_TEST(*t.find(std::to_string(i)) == std::to_string(i * i));
  // No power-of-two rounding: about 10 index bytes per reserved entry.
  BOOST_TEST(t.footprint()
             < 100'000u * 11
                 + 2 * 1024 * sizeof(key_table<std::string>::record));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(packed_values)

BOOST_AUTO_TEST_CASE(every_kind_round_trips) {
  std::vector<value> samples{
    value{},
    value{true},
    value{false},
    value{int64_t{-42}},
    value{uint64_t{1} << 63},
    value{3.25},
    value{"text with \0 inside and \xff"},
    value::from_bytes(std::string("\0\1\2", 3)),
    value{std::string(300, 'x')},
    value{value_list{value{1}, value{"two"}, value{value_list{}}}},
    value{{"a", 1}, {"b", value{{"nested", value::from_bytes("raw")}}}},
    value{value_map{map_item{map_key::from_bytes("k"), value{1}},
                    map_item{map_key{"k"}, value{2}}}},
    value{ext_value{-7, "payload"}},
  };
  for (const auto& x : samples) {
    auto packed = packed_value::encode(x);
    BOOST_TEST(!packed.empty());
    BOOST_TEST(packed.decode() == x);
    std::string canonical;
    encode_canonical(x, canonical);
    BOOST_TEST(packed.canonical() == canonical);
    std::string_view in{canonical};
    value back;
    BOOST_TEST(decode_canonical(in, back));
    BOOST_TEST(in.empty());
    BOOST_TEST(back == x);
  }
  packed_value none;
  BOOST_TEST(none.empty());
  BOOST_TEST(none.decode() == value{});
  BOOST_TEST(none.canonical().empty());
}

BOOST_AUTO_TEST_CASE(truncated_or_bogus_encodings_are_refused) {
  std::string canonical;
  encode_canonical(value{{"a", value{value_list{value{1}, value{"x"}}}}},
                   canonical);
  for (size_t n = 0; n < canonical.size(); ++n) {
    std::string_view in{canonical.data(), n};
    value out;
    BOOST_TEST(!decode_canonical(in, out), "prefix of " << n << " bytes");
  }
  // A list that claims far more elements than there are bytes.
  std::string huge{static_cast<char>(value::kind::list)};
  put_u64(huge, uint64_t{1} << 40);
  std::string_view in{huge};
  value out;
  BOOST_TEST(!decode_canonical(in, out));
  std::string unknown_kind{"\x7f"};
  std::string_view bad{unknown_kind};
  BOOST_TEST(!decode_canonical(bad, out));
  // Lists nested past max_value_depth: refused, not recursed into until
  // the stack runs out.
  std::string deep;
  for (int i = 0; i < 100000; ++i) {
    deep += static_cast<char>(value::kind::list);
    put_u64(deep, 1);
  }
  deep += static_cast<char>(value::kind::nil);
  std::string_view deep_in{deep};
  BOOST_TEST(!decode_canonical(deep_in, out));
}

BOOST_AUTO_TEST_CASE(large_maps_round_trip_with_their_order) {
  // 50,000 fields (as a 1 MiB value may hold): the decoder must not check
  // each key against all before it (that took seconds per read).
  value_map fields;
  for (int i = 0; i < 50000; ++i)
    fields.push_back(
      map_item{map_key{"f" + std::to_string(49999 - i)}, value{i}});
  auto big = value::empty_map();
  big.as_map() = fields;
  auto packed = packed_value::encode(big);
  auto back = packed.decode();
  BOOST_TEST(back == big);
  BOOST_TEST(back.as_map().size() == 50000u);
}

BOOST_AUTO_TEST_SUITE_END()
