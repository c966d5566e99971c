// Anti-entropy between two stores, driven by hand: what goes over the wire
// for a joining node, and how many windows may be in flight.

#include <boost/test/unit_test.hpp>

#include <random>
#include <string>
#include <vector>

#include "actors/anti_entropy.hpp"
#include "actors/store_state.hpp"
#include "syncmesh/config.hpp"
#include "syncmesh/pb/wire.pb.h"
#include "tests/unit/test_support.hpp"

using namespace syncmesh;
using namespace syncmesh::test;

namespace {

/// Writes keys "key<from>" .. "key<to - 1>" with versions stamped at
/// `wall_us + i` by `writer`; values are i, or -i with `negate`.
void write_keys(store_state& st, int from, int to, const raw_node_id& writer,
                uint64_t wall_us, bool negate) {
  for (int i = from; i < to; ++i) {
    std::string err;
    st.apply(
      set_record("key" + std::to_string(i),
                 make_version(wall_us + static_cast<uint64_t>(i), writer),
                 value{negate ? -i : i}),
      false, err);
    BOOST_REQUIRE(err.empty());
  }
}

void fill(store_state& st, int from, int to, const raw_node_id& writer) {
  write_keys(st, from, to, writer, 1000, false);
}

/// Overwrites keys [from, to) with versions written at `wall_us` by
/// `writer`: newer than what `fill` wrote.
void overwrite(store_state& st, int from, int to, const raw_node_id& writer,
               uint64_t wall_us) {
  write_keys(st, from, to, writer, wall_us, true);
}

/// What one side sent.
struct traffic {
  /// Keys listed in KEYS digests.
  size_t digest_keys = 0;
  /// Entry records.
  size_t entries = 0;
  /// Bytes of entry windows.
  size_t entry_bytes = 0;
  /// Bytes of the streamed digests (KEYS, SKETCH, OFFERS, WANT).
  size_t digest_bytes = 0;
  /// Sketches the side's outbox queued, and peer sketches it could not
  /// decode.
  size_t sketches = 0;
  size_t sketch_failures = 0;
};

/// Runs anti-entropy between `a` (which starts) and `b` as the dict stores
/// do, until both outboxes are idle; windows are acknowledged after they are
/// applied, as the peer links do.
void exchange(store_state& a, store_state& b, traffic& from_a, traffic& from_b,
              ae_method method = ae_method::automatic, ae_limits limits = {}) {
  ae_outbox box_a{1, 64 * 1024, method, limits},
    box_b{2, 64 * 1024, method, limits};
  pb::Digest summary;
  make_summary(a, summary);
  box_b.answer(summary, b);
  for (int round = 0; round < 100000; ++round) {
    bool sent = false;
    for (int side = 0; side < 2; ++side) {
      auto& box = side == 0 ? box_a : box_b;
      auto& me = side == 0 ? a : b;
      auto& peer = side == 0 ? b : a;
      auto& peer_box = side == 0 ? box_b : box_a;
      auto& t = side == 0 ? from_a : from_b;
      pb::Envelope env;
      if (!box.next(me, env))
        continue;
      sent = true;
      BOOST_CHECK_LE(env.ByteSizeLong(), limits.max_frame_bytes);
      if (env.has_digest()) {
        t.digest_keys += static_cast<size_t>(env.digest().keys_size());
        t.digest_bytes += env.ByteSizeLong();
        peer_box.answer(env.digest(), peer);
      } else {
        t.entries += static_cast<size_t>(env.entries().records_size());
        t.entry_bytes += env.ByteSizeLong();
        for (const auto& rec : env.entries().records()) {
          std::string err;
          peer.apply(rec, false, err);
        }
      }
      box.acknowledge(side == 0 ? 1 : 2);
    }
    if (!sent)
      break;
  }
  BOOST_CHECK(box_a.idle());
  BOOST_CHECK(box_b.idle());
  from_a.sketches = box_a.sketches();
  from_a.sketch_failures = box_a.sketch_failures();
  from_b.sketches = box_b.sketches();
  from_b.sketch_failures = box_b.sketch_failures();
  BOOST_CHECK_LE(box_a.peak_queued_bytes(), limits.budget_bytes);
  BOOST_CHECK_LE(box_b.peak_queued_bytes(), limits.budget_bytes);
}

/// A SUMMARY from a peer that holds nothing: every bucket empty.
pb::Digest empty_summary() {
  store_state nothing;
  pb::Digest d;
  make_summary(nothing, d);
  return d;
}

/// A SUMMARY in which every bucket differs from any store and none is
/// empty: answered by comparing every bucket.
pb::Digest full_summary(std::mt19937_64& rng) {
  pb::Digest d;
  d.set_stage(pb::Digest::SUMMARY);
  d.set_bucket_count(store_state::digest_buckets);
  for (uint32_t b = 0; b < store_state::digest_buckets; ++b)
    d.add_dense_hashes(rng() | 1);
  return d;
}

/// A KEYS digest that covers every bucket and lists one made-up key in
/// each: answered with every key of the store, key by key.
pb::Digest keys_everywhere() {
  pb::Digest d;
  d.set_stage(pb::Digest::KEYS);
  d.set_bucket_count(store_state::digest_buckets);
  d.set_reply_wanted(true);
  std::vector<bool> listed(store_state::digest_buckets, false);
  for (int i = 0; i < 200000; ++i) {
    auto key = "decoy" + std::to_string(i);
    auto b = store_state::bucket_of(key);
    if (listed[b])
      continue;
    listed[b] = true;
    d.add_buckets()->set_bucket(b);
    auto* k = d.add_keys();
    k->set_key(key);
    k->set_hash(1);
  }
  return d;
}

} // namespace

BOOST_AUTO_TEST_SUITE(anti_entropy)

BOOST_AUTO_TEST_CASE(a_joining_node_gets_entries_without_key_lists) {
  store_state joiner, holder;
  fill(holder, 0, 20000, "h");
  traffic from_joiner, from_holder;
  exchange(joiner, holder, from_joiner, from_holder);
  BOOST_CHECK(joiner.canonical_bytes() == holder.canonical_bytes());
  BOOST_CHECK_EQUAL(from_holder.entries, 20000u);
  // No key lists: the joiner's SUMMARY shows every bucket empty.
  BOOST_CHECK_EQUAL(from_holder.digest_keys, 0u);
  BOOST_CHECK_EQUAL(from_joiner.digest_keys, 0u);
}

BOOST_AUTO_TEST_CASE(a_holder_that_starts_sends_its_key_list_once) {
  // The holder dials the empty node: the empty node lists no keys, so the
  // holder sends entries and no key list of its own in reply.
  store_state joiner, holder;
  fill(holder, 0, 5000, "h");
  traffic from_joiner, from_holder;
  exchange(holder, joiner, from_holder, from_joiner);
  BOOST_CHECK(joiner.canonical_bytes() == holder.canonical_bytes());
  BOOST_CHECK_EQUAL(from_holder.entries, 5000u);
  BOOST_CHECK_EQUAL(from_holder.digest_keys, 0u);
  BOOST_CHECK_EQUAL(from_joiner.digest_keys, 0u);
}

BOOST_AUTO_TEST_CASE(diverged_stores_exchange_only_what_differs) {
  store_state a, b;
  fill(a, 0, 3000, "x");
  fill(b, 0, 3000, "x");
  fill(a, 3000, 3100, "a");
  fill(b, 5000, 5050, "b");
  traffic from_a, from_b;
  exchange(a, b, from_a, from_b);
  BOOST_CHECK(a.canonical_bytes() == b.canonical_bytes());
  BOOST_CHECK_EQUAL(from_a.entries, 100u);
  BOOST_CHECK_EQUAL(from_b.entries, 50u);
  BOOST_CHECK_EQUAL(a.entry_count(), 3150u);
}

BOOST_AUTO_TEST_CASE(few_differences_among_many_keys_move_only_the_winners) {
  // 100,000 shared keys (24 per bucket); each side overwrites 300 others.
  store_state a, b;
  fill(a, 0, 100000, "x");
  fill(b, 0, 100000, "x");
  overwrite(a, 0, 300, "a", 5000000);
  overwrite(b, 300, 600, "b", 5000000);
  traffic from_a, from_b;
  exchange(a, b, from_a, from_b);
  BOOST_CHECK(a.canonical_bytes() == b.canonical_bytes());
  // B sketched once, A decoded it; no key lists.
  BOOST_CHECK_EQUAL(from_b.sketches, 1u);
  BOOST_CHECK_EQUAL(from_a.sketch_failures, 0u);
  BOOST_CHECK_EQUAL(from_a.digest_keys + from_b.digest_keys, 0u);
  // Only the winning version of each differing key travels.
  BOOST_CHECK_EQUAL(from_a.entries, 300u);
  BOOST_CHECK_EQUAL(from_b.entries, 300u);
  // The sketch (two elements per differing key, ~1.3 cells of 14 bytes
  // each) and the offers cost well under 80 bytes per differing key; key
  // lists of the ~560 differing buckets would cost ~900 bytes per key.
  auto reconcile_bytes = from_a.digest_bytes + from_b.digest_bytes;
  BOOST_TEST_MESSAGE("entries " << from_a.entry_bytes + from_b.entry_bytes
                                << " B, sketch + offers + wants "
                                << reconcile_bytes << " B");
  BOOST_CHECK_LT(reconcile_bytes, 80u * 600u);
}

BOOST_AUTO_TEST_CASE(every_method_reaches_the_same_stores) {
  // Small stores with deletes, new keys on either side and overwrites; the
  // forced sketch must agree with key lists and the automatic choice.
  std::string expected;
  for (auto method :
       {ae_method::automatic, ae_method::sketch, ae_method::key_lists}) {
    store_state a, b;
    fill(a, 0, 500, "x");
    fill(b, 0, 500, "x");
    fill(a, 500, 540, "a");
    overwrite(b, 0, 30, "b", 4000000);
    overwrite(a, 20, 50, "a", 4000010);
    std::string err;
    b.apply(delete_record("key100", make_version(4100000, "b")), false, err);
    traffic from_a, from_b;
    exchange(a, b, from_a, from_b, method);
    BOOST_CHECK(a.canonical_bytes() == b.canonical_bytes());
    if (expected.empty())
      expected = a.canonical_bytes();
    BOOST_CHECK(a.canonical_bytes() == expected);
    BOOST_CHECK_EQUAL(from_b.sketches > 0, method == ae_method::sketch);
  }
}

BOOST_AUTO_TEST_CASE(a_sketch_too_small_for_the_difference_is_retried_larger) {
  // 400 differing keys in 4 buckets look like 4 from the bucket digests:
  // the first sketch is far too small; each failure doubles it.
  store_state a, b;
  fill(a, 0, 50000, "x");
  fill(b, 0, 50000, "x");
  int written = 0;
  for (int i = 0; written < 400; ++i) {
    auto key = "key" + std::to_string(i);
    if (store_state::bucket_of(key) >= 4)
      continue;
    std::string err;
    b.apply(set_record(key, make_version(9000000 + i, "b"), value{"new"}),
            false, err);
    ++written;
  }
  traffic from_a, from_b;
  exchange(a, b, from_a, from_b);
  BOOST_CHECK(a.canonical_bytes() == b.canonical_bytes());
  BOOST_CHECK_GE(from_a.sketch_failures + from_b.sketch_failures, 3u);
  BOOST_CHECK_EQUAL(from_b.entries, 400u);
  BOOST_CHECK_EQUAL(from_a.entries, 0u);
}

BOOST_AUTO_TEST_CASE(entries_with_field_writes_are_exchanged_both_ways) {
  store_state a, b;
  fill(a, 0, 60000, "x");
  fill(b, 0, 60000, "x");
  std::string err;
  // key1: fields on both sides; key2: fields on A only; key3: B deleted it.
  a.apply(fields_record("key1", make_version(7000000, "a"),
                        fields_of({{map_key{"f"}, value{1}}})),
          false, err);
  b.apply(fields_record("key1", make_version(7000001, "b"),
                        fields_of({{map_key{"g"}, value{2}}})),
          false, err);
  a.apply(fields_record("key2", make_version(7000002, "a"),
                        fields_of({{map_key{"h"}, value{3}}})),
          false, err);
  b.apply(delete_record("key3", make_version(7000003, "b")), false, err);
  BOOST_REQUIRE(err.empty());
  traffic from_a, from_b;
  exchange(a, b, from_a, from_b);
  BOOST_CHECK(a.canonical_bytes() == b.canonical_bytes());
  BOOST_CHECK(b.find("key1")->read() == a.find("key1")->read());
  BOOST_CHECK(!a.find("key3")->live());
}

BOOST_AUTO_TEST_CASE(hostile_digests_change_nothing) {
  store_state st;
  fill(st, 0, 3000, "x");
  auto before = st.canonical_bytes();
  std::mt19937_64 rng{5};
  ae_outbox box{1, 64 * 1024, ae_method::sketch};
  for (int round = 0; round < 300; ++round) {
    pb::Digest d;
    d.set_bucket_count(store_state::digest_buckets);
    d.set_stage(static_cast<pb::Digest::Stage>(rng() % 6));
    std::string mask(rng() % 3 == 0 ? 100 : store_state::digest_buckets / 8,
                     '\0');
    for (auto& c : mask)
      c = static_cast<char>(rng());
    d.set_bucket_mask(mask);
    d.set_sketch_cells(static_cast<uint32_t>(rng() % 200));
    std::string sketch((rng() % 200) * 14, '\0');
    for (auto& c : sketch)
      c = static_cast<char>(rng());
    d.set_sketch(sketch);
    for (int i = 0; i < 5; ++i) {
      auto* offer = d.add_offers();
      offer->set_key("key" + std::to_string(rng() % 4000));
      offer->mutable_version()->set_wall_us(rng() % 3);
      offer->mutable_version()->set_node(static_cast<uint32_t>(rng() % 4));
      offer->mutable_version()->set_claimer(static_cast<uint32_t>(rng() % 4));
      d.add_wanted(rng());
      d.add_want_keys("key" + std::to_string(rng() % 4000));
    }
    d.add_nodes(std::string(rng() % 200, 'n'));
    box.answer(d, st);
    pb::Envelope env;
    while (box.next(st, env)) {
      BOOST_CHECK_LE(env.ByteSizeLong(), 1024u * 1024u);
      box.acknowledge(1);
      env.Clear();
    }
  }
  BOOST_CHECK(st.canonical_bytes() == before);
}

BOOST_AUTO_TEST_CASE(at_most_two_windows_are_in_flight) {
  store_state st;
  fill(st, 0, 2000, "n");
  ae_outbox box{7, 1024, ae_method::automatic};
  std::vector<std::string> keys;
  for (int i = 0; i < 2000; ++i)
    keys.push_back("key" + std::to_string(i));
  box.add_entries(keys);
  pb::Envelope first, second, third;
  BOOST_CHECK(box.next(st, first));
  BOOST_CHECK(box.next(st, second));
  BOOST_CHECK(!box.next(st, third));
  box.acknowledge(8); // another session's ack changes nothing
  BOOST_CHECK(!box.next(st, third));
  box.acknowledge(7);
  BOOST_CHECK(box.next(st, third));
  BOOST_CHECK_LE(first.ByteSizeLong(), 1024u + 200u);
}

BOOST_AUTO_TEST_CASE(a_peer_that_never_acknowledges_holds_at_most_the_budget) {
  // The attack of issue 13: a peer sends SUMMARY after SUMMARY (empty, then
  // differing everywhere) and KEYS digests, and never acknowledges a window.
  // Before, every SUMMARY queued every key again (~900 MB for 300 of them).
  store_state holder;
  fill(holder, 0, 50000, "h");
  const auto before = holder.canonical_bytes();
  ae_limits limits;
  limits.budget_bytes = 256 * 1024;
  limits.max_frame_bytes = 96 * 1024;
  ae_outbox box{1, 64 * 1024, ae_method::automatic, limits};
  std::mt19937_64 rng{13};
  const auto keys_digest = keys_everywhere();
  size_t frames = 0;
  for (int round = 0; round < 300; ++round) {
    if (round % 3 == 0)
      box.answer(empty_summary(), holder);
    else if (round % 3 == 1)
      box.answer(full_summary(rng), holder);
    else
      box.answer(keys_digest, holder);
    pb::Envelope env;
    while (box.next(holder, env)) {
      BOOST_CHECK_LE(env.ByteSizeLong(), limits.max_frame_bytes);
      ++frames;
      env.Clear();
    }
    BOOST_REQUIRE_LE(box.queued_bytes(), limits.budget_bytes);
  }
  // Two windows went out; nothing more without acknowledgements.
  BOOST_CHECK_EQUAL(frames, ae_outbox::default_max_in_flight);
  BOOST_CHECK_LE(box.peak_queued_bytes(), limits.budget_bytes);
  BOOST_CHECK_GE(box.summaries_dropped(), 199u);
  BOOST_CHECK_GT(box.items_dropped(), 0u);
  BOOST_CHECK(holder.canonical_bytes() == before);
  // An honest peer, with the same bounds, still gets everything.
  store_state joiner;
  traffic from_joiner, from_holder;
  exchange(joiner, holder, from_joiner, from_holder, ae_method::automatic,
           limits);
  BOOST_CHECK(joiner.canonical_bytes() == holder.canonical_bytes());
  BOOST_CHECK_EQUAL(from_holder.entries, 50000u);
}

BOOST_AUTO_TEST_CASE(a_difference_larger_than_the_budget_converges_in_rounds) {
  // Every key differs, so key lists of the whole store are wanted: far more
  // than the budget. They are read from the store a few windows at a time,
  // the answers are cut at the budget, and the stores converge (in one
  // round or a few) without either side ever holding more than the budget.
  store_state a, b;
  fill(a, 0, 6000, "x");
  fill(b, 0, 6000, "x");
  overwrite(a, 0, 3000, "a", 5000000);
  overwrite(b, 3000, 6000, "b", 5000000);
  ae_limits limits;
  limits.budget_bytes = 48 * 1024;
  limits.max_frame_bytes = 16 * 1024;
  int rounds = 0;
  while (a.canonical_bytes() != b.canonical_bytes() && rounds < 200) {
    traffic from_a, from_b;
    exchange(rounds % 2 == 0 ? a : b, rounds % 2 == 0 ? b : a, from_a, from_b,
             ae_method::key_lists, limits);
    ++rounds;
  }
  BOOST_CHECK(a.canonical_bytes() == b.canonical_bytes());
  BOOST_TEST_MESSAGE("converged in " << rounds << " rounds");
  BOOST_CHECK_GT(rounds, 1);
}

BOOST_AUTO_TEST_CASE(entry_frames_never_exceed_the_frame_size) {
  // Values of 3 KB with a window of 64 KB but frames of at most 8 KB: the
  // window is split, every frame fits, everything arrives.
  store_state holder, joiner;
  const std::string big(3000, 'v');
  for (int i = 0; i < 300; ++i) {
    std::string err;
    holder.apply(set_record("key" + std::to_string(i),
                            make_version(1000 + static_cast<uint64_t>(i), "h"),
                            value{big}),
                 false, err);
    BOOST_REQUIRE(err.empty());
  }
  ae_limits limits;
  limits.max_frame_bytes = 8 * 1024;
  traffic from_joiner, from_holder;
  exchange(joiner, holder, from_joiner, from_holder, ae_method::automatic,
           limits);
  BOOST_CHECK(joiner.canonical_bytes() == holder.canonical_bytes());
  BOOST_CHECK_EQUAL(from_holder.entries, 300u);
}

BOOST_AUTO_TEST_SUITE_END()
