// Clock discipline (issue 16) on CAF's test coordinator and test
// multiplexer: a scripted peer whose clock is set against the node's manual
// clock connects, answers the node's pings with its (skewed) wall clock, and
// the node refuses it, cuts it, fences itself, or accepts it.

#include <boost/test/unit_test.hpp>

#include <chrono>
#include <map>
#include <optional>
#include <string>

#include <caf/all.hpp>
#include <caf/io/all.hpp>

#include "actors/atoms.hpp"
#include "actors/clock_offset.hpp"
#include "actors/facade.hpp"
#include "actors/peer_link_state.hpp"
#include "actors/router_state.hpp"
#include "messages/frame_codec.hpp"
#include "messages/value_proto.hpp"
#include "support/node_fixture.hpp"
#include "support/remote_writes.hpp"
#include "syncmesh/clock.hpp"
#include "syncmesh/errors.hpp"

using namespace std::chrono_literals;
using namespace syncmesh;

namespace {

constexpr int64_t ms = 1000;

std::string framed(const pb::Envelope& env) {
  std::string out;
  BOOST_REQUIRE(append_frame(out, env, 1 << 20));
  return out;
}

/// One node (bound: 500 ms unless `tweak` says otherwise) and a scripted
/// peer API whose clock runs `offset` µs from the node's.
struct clock_fixture : test::node_fixture {
  template <class Tweak>
  explicit clock_fixture(Tweak tweak) : node_fixture(tweak) {}

  clock_fixture() : node_fixture([](config&) {}) {}

  /// The peer's wall clock.
  uint64_t peer_now(int64_t offset) const {
    return static_cast<uint64_t>(static_cast<int64_t>(clock.now()) + offset);
  }

  /// A hello from `id` announcing a clock `offset` µs from ours.
  std::string hello(const std::string& id, int64_t offset) {
    auto env = make_hello(id, protocol_id(node_cfg), "10.0.0.2", 7000,
                          hello_terms_of(node_cfg));
    env.mutable_hello()->set_wall_us(peer_now(offset));
    return framed(env);
  }

  /// Answers every ping the node sent on `hdl` since the last call, with a
  /// clock `offset` µs from ours.
  void answer_pings(caf::io::connection_handle hdl, int64_t offset) {
    auto envs = received(hdl);
    size_t seen = 0;
    for (const auto& env : envs) {
      if (!env.has_ping())
        continue;
      if (seen++ < answered_[hdl.id()])
        continue;
      pb::Envelope pong;
      pong.set_hops_left(1);
      pong.mutable_pong()->set_nonce(env.ping().nonce());
      pong.mutable_pong()->set_sent_us(env.ping().sent_us());
      pong.mutable_pong()->set_ping_wall_us(env.ping().wall_us());
      pong.mutable_pong()->set_wall_us(peer_now(offset));
      send(hdl, framed(pong));
    }
    answered_[hdl.id()] = seen;
  }

  /// A peer `id` with a clock `offset` µs from ours that connects and
  /// answers the node's clock check.
  caf::io::connection_handle clocked_peer(const std::string& id,
                                          int64_t offset) {
    auto hdl = connect_peer();
    send(hdl, hello(id, offset));
    answer_pings(hdl, offset);
    return hdl;
  }

  /// Sets `key` through the facade; the error code (errc::none on success).
  errc local_set(const std::string& key) {
    pb::SetRequest req;
    req.set_key(key);
    to_proto(value{"v"}, req.mutable_value());
    auto handle = self->request(node.facade, caf::infinite, std::move(req));
    run();
    errc result = errc::timeout;
    handle.receive([&](pb::WriteAck&) { result = errc::none; },
                   [&](caf::error& err) { result = code_of(err); });
    return result;
  }

  pb::NodeInfo info() {
    return ask<pb::NodeInfo>(node.facade, pb::InfoRequest{});
  }

  pb::LeaseStats lease_stats() {
    return ask<pb::LeaseStats>(node.lease_manager, stats_atom::value,
                               lease_atom::value);
  }

  std::map<int64_t, size_t> answered_;
};

/// A clock_fixture with a 5 s bound and one-minute leases.
struct wide_bound_fixture : clock_fixture {
  wide_bound_fixture()
      : clock_fixture([](config& c) {
          c.max_clock_offset = 5s;
          c.lease_duration = 60s;
        }) {}
};

} // namespace

BOOST_FIXTURE_TEST_SUITE(clock_discipline, clock_fixture)

BOOST_AUTO_TEST_CASE(the_node_pings_a_clocked_peer_before_accepting_it) {
  auto hdl = connect_peer();
  send(hdl, hello("node-b", 0));
  // No answer yet: not attached, a ping with our wall clock is out.
  BOOST_TEST(peer_count() == 0u);
  auto envs = received(hdl);
  bool pinged = false;
  for (const auto& env : envs)
    if (env.has_ping())
      pinged = env.ping().wall_us() == clock.now();
  BOOST_TEST(pinged);
  answer_pings(hdl, 0);
  BOOST_TEST(peer_count() == 1u);
  BOOST_TEST(!goodbye(hdl));
}

BOOST_AUTO_TEST_CASE(a_peer_2s_ahead_is_refused_with_a_500ms_bound) {
  auto hdl = clocked_peer("node-b", 2000 * ms);
  auto bye = goodbye(hdl);
  BOOST_REQUIRE(bye);
  BOOST_TEST(bye->reason() == pb::Goodbye::CLOCK_OFFSET);
  BOOST_TEST(bye->detail().find("+2000.0 ms") != std::string::npos,
             bye->detail());
  BOOST_TEST(bye->detail().find("500 ms") != std::string::npos);
  BOOST_TEST(closed(hdl));
  BOOST_TEST(peer_count() == 0u);
  BOOST_TEST(lease_stats().clock_refused_peers() == 1u);
}

BOOST_AUTO_TEST_CASE(a_peer_behind_beyond_the_bound_is_refused_too) {
  auto hdl = clocked_peer("node-b", -700 * ms);
  auto bye = goodbye(hdl);
  BOOST_REQUIRE(bye);
  BOOST_TEST(bye->reason() == pb::Goodbye::CLOCK_OFFSET);
}

BOOST_AUTO_TEST_CASE(a_peer_within_the_bound_is_accepted_and_shown) {
  auto hdl = clocked_peer("node-b", 400 * ms);
  BOOST_TEST(!goodbye(hdl));
  BOOST_TEST(peer_count() == 1u);
  auto x = info();
  BOOST_TEST(!x.clock_fenced());
  BOOST_TEST(x.max_clock_offset_us() == 500'000u);
  BOOST_REQUIRE_EQUAL(x.clocks_size(), 1);
  BOOST_TEST(x.clocks(0).node_id() == "node-b");
  BOOST_TEST(x.clocks(0).offset_us() == 400 * ms);
  BOOST_TEST(!x.clocks(0).beyond());
  BOOST_CHECK(local_set("k") == errc::none);
}

BOOST_AUTO_TEST_CASE(a_peer_drifting_beyond_is_disconnected_by_heartbeats) {
  auto hdl = clocked_peer("node-b", 100 * ms);
  BOOST_REQUIRE(peer_count() == 1u);
  advance(1s);
  answer_pings(hdl, 100 * ms);
  BOOST_TEST(!goodbye(hdl));
  // Its clock steps 3 s ahead.
  advance(1s);
  answer_pings(hdl, 3000 * ms);
  auto bye = goodbye(hdl);
  BOOST_REQUIRE(bye);
  BOOST_TEST(bye->reason() == pb::Goodbye::CLOCK_OFFSET);
  BOOST_TEST(peer_count() == 0u);
}

// Two nodes: each finds the other beyond the bound and neither can tell
// whose clock is wrong, so both fence (here: the node that refused).
BOOST_AUTO_TEST_CASE(two_nodes_beyond_the_bound_both_fence_until_within) {
  BOOST_CHECK(local_set("before") == errc::none);
  clocked_peer("node-b", 2000 * ms);
  BOOST_TEST(node.fence->fenced());
  BOOST_CHECK(local_set("k") == errc::clock_offset);
  auto x = info();
  BOOST_TEST(x.clock_fenced());
  BOOST_REQUIRE_EQUAL(x.clocks_size(), 1);
  BOOST_TEST(x.clocks(0).beyond());
  BOOST_TEST(x.clocks(0).offset_us() == 2000 * ms);
  auto stats = lease_stats();
  BOOST_TEST(stats.clock_fenced() == 1u);
  BOOST_TEST(stats.clock_refused_writes() == 1u);
  // Remote writes still merge while fenced (only local writes stop).
  // The peer fixes its clock and redials: measured within, fence down.
  auto hdl = clocked_peer("node-b", 50 * ms);
  BOOST_TEST(!goodbye(hdl));
  BOOST_TEST(!node.fence->fenced());
  BOOST_CHECK(local_set("k") == errc::none);
  BOOST_TEST(lease_stats().clock_fenced() == 0u);
}

BOOST_AUTO_TEST_CASE(a_node_every_peer_disconnected_for_its_clock_fences) {
  auto b = clocked_peer("node-b", 0);
  auto c = clocked_peer("node-c", 0);
  BOOST_REQUIRE(peer_count() == 2u);
  // Both peers (with a tighter bound than ours, say) cut us for our clock.
  pb::Envelope bye;
  bye.set_hops_left(1);
  bye.mutable_goodbye()->set_reason(pb::Goodbye::CLOCK_OFFSET);
  bye.mutable_goodbye()->set_detail("clock offset -800.0 ms ± 0.0 ms");
  send(b, framed(bye));
  BOOST_TEST(!node.fence->fenced()); // 1 of 2: no majority yet
  BOOST_CHECK(local_set("k1") == errc::none);
  send(c, framed(bye));
  BOOST_TEST(peer_count() == 0u);
  // Alone now, it must not keep writing.
  BOOST_TEST(node.fence->fenced());
  BOOST_CHECK(local_set("k2") == errc::clock_offset);
  auto x = info();
  BOOST_REQUIRE_EQUAL(x.clocks_size(), 2);
  BOOST_TEST(x.clocks(0).refused_us());
  BOOST_TEST(x.clocks(1).refused_us());
  // Time alone does not lift it.
  advance(10s);
  BOOST_CHECK(local_set("k2") == errc::clock_offset);
  // One of them measures within the bound again: 1 of 2, back to writing.
  clocked_peer("node-b", 0);
  BOOST_TEST(!node.fence->fenced());
  BOOST_CHECK(local_set("k2") == errc::none);
}

BOOST_AUTO_TEST_CASE(fence_on_and_off_with_a_majority_of_three) {
  clocked_peer("node-b", 0);
  clocked_peer("node-c", 0);
  auto d = clocked_peer("node-d", 0);
  BOOST_REQUIRE(peer_count() == 3u);
  // d drifts beyond: cut, remembered; 1 of 3 is no majority.
  advance(1s);
  answer_pings(d, 900 * ms);
  BOOST_TEST(peer_count() == 2u);
  BOOST_TEST(!node.fence->fenced());
  BOOST_CHECK(local_set("k") == errc::none);
  BOOST_TEST(lease_stats().clock_fence_raised() == 0u);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_FIXTURE_TEST_SUITE(clock_margins, wide_bound_fixture)

// With a 5 s bound a peer 2 s off is accepted, and the lease margin is the
// bound: a node never claims another's key before its end + 5 s (by its own
// clock), whatever the 2 s.
BOOST_AUTO_TEST_CASE(with_a_5s_bound_claims_wait_for_the_margin) {
  auto hdl = clocked_peer("node-b", -2000 * ms);
  BOOST_REQUIRE(!goodbye(hdl));
  BOOST_REQUIRE(peer_count() == 1u);
  // node-b (2 s behind) writes "k", leased for a minute of its clock.
  auto t = peer_now(-2000 * ms);
  auto end = t + 60'000'000;
  send(hdl,
       framed(test::write_envelope(
         "node-b",
         {test::set_record("k", value{"b"},
                           test::remote_version("node-b", t, t, t, end))})));
  BOOST_REQUIRE(read_key("k") == value{"b"});
  BOOST_CHECK(local_set("k") == errc::lease_held);
  // Our clock reaches its end + 4.9 s: still refused. (Only the wall clock
  // moves: no heartbeat falls due meanwhile.)
  clock.set(end + 4'900'000);
  BOOST_CHECK(local_set("k") == errc::lease_held);
  clock.set(end + 5'000'001);
  BOOST_CHECK(local_set("k") == errc::none);
}

BOOST_AUTO_TEST_SUITE_END()
