// Anti-entropy between two stores, driven by hand: what goes over the wire
// for a joining node, and how many windows may be in flight.

#include <boost/test/unit_test.hpp>

#include <string>
#include <vector>

#include "actors/anti_entropy.hpp"
#include "actors/store_state.hpp"
#include "syncmesh/pb/wire.pb.h"
#include "tests/unit/test_support.hpp"

using namespace syncmesh;
using namespace syncmesh::test;

namespace {

void fill(store_state& st, int from, int to, const node_id& writer) {
  for (int i = from; i < to; ++i) {
    std::string err;
    st.apply(set_record("key" + std::to_string(i),
                        make_version(1000 + i, writer), value{i}),
             false, err);
    BOOST_REQUIRE(err.empty());
  }
}

/// What one side sent: KEYS digest keys and entries.
struct traffic {
  size_t digest_keys = 0;
  size_t entries = 0;
};

/// Runs anti-entropy between `a` (which starts) and `b` as the dict stores
/// do, until both outboxes are idle; windows are acknowledged after they are
/// applied, as the peer links do.
void exchange(store_state& a, store_state& b, traffic& from_a,
              traffic& from_b) {
  ae_outbox box_a{1, 64 * 1024}, box_b{2, 64 * 1024};
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
      if (env.has_digest()) {
        t.digest_keys += static_cast<size_t>(env.digest().keys_size());
        peer_box.answer(env.digest(), peer);
      } else {
        t.entries += static_cast<size_t>(env.entries().records_size());
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

BOOST_AUTO_TEST_CASE(at_most_two_windows_are_in_flight) {
  store_state st;
  fill(st, 0, 2000, "n");
  ae_outbox box{7, 1024};
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

BOOST_AUTO_TEST_SUITE_END()
