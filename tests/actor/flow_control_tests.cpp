// Deterministic attacks on the bounds of peer links, on CAF's test
// multiplexer: the handshake frame limit and the shared budget of
// unfinished handshakes, and the ingress window (credit-based
// back-pressure from the store to each link). Each attack asserts the
// counted bytes stay bounded and that an honest peer still replicates.

#include <boost/test/unit_test.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include <caf/all.hpp>
#include <caf/io/all.hpp>
#include <caf/io/network/test_multiplexer.hpp>

#include "actors/atoms.hpp"
#include "actors/facade.hpp"
#include "actors/peer_link_state.hpp"
#include "actors/router.hpp"
#include "messages/frame_codec.hpp"
#include "support/node_fixture.hpp"
#include "support/remote_writes.hpp"

using namespace std::chrono_literals;
using namespace syncmesh;

namespace {

constexpr uint64_t hour_us = 3'600'000'000;

/// A node with small link bounds, and access to what its links share.
struct flow_fixture : test::node_fixture {
  flow_fixture()
      : node_fixture([](config& c) {
          c.max_handshake_frame = 4 * 1024;
          c.max_pending_handshake_bytes = 64 * 1024;
          c.ingress_window = 64 * 1024;
        }) {}

  /// A framed hello from `id`.
  std::string hello(const std::string& id) {
    std::string out;
    append_frame(out, make_hello(id, protocol_id(node_cfg), "10.0.0.2", 7000,
                                 hello_terms_of(node_cfg)));
    return out;
  }

  /// A framed write of `key` = `val` from `origin`.
  std::string write(const std::string& origin, const std::string& key,
                    const value& val) {
    auto now = clock.now();
    auto v = test::remote_version(origin, 0, now, now, now + hour_us);
    std::string out;
    append_frame(out,
                 test::write_envelope(origin, {test::set_record(key, val, v)}),
                 node_cfg.max_frame_size);
    return out;
  }

  /// Moves time on for the brokers only: links see their timers, the
  /// router and the store do not run.
  void advance_links_only(std::chrono::milliseconds d) {
    clock.advance(d);
    sched.clock().advance_time(d);
    while (mpx.try_exec_runnable()) {
    }
  }
};

} // namespace

BOOST_AUTO_TEST_SUITE(handshake_bounds)

BOOST_AUTO_TEST_CASE(handshake_budget_drops_the_largest_then_the_newest) {
  handshake_budget budget{100};
  auto honest = budget.enter({});
  auto big = budget.enter({});
  auto newer = budget.enter({});
  BOOST_CHECK(budget.hold(honest, 10).empty());
  BOOST_CHECK(budget.hold(big, 60).empty());
  // 10 + 60 + 40 > 100: the largest (60) goes, not the oldest.
  auto dropped = budget.hold(newer, 40);
  BOOST_REQUIRE_EQUAL(dropped.size(), 1u);
  BOOST_CHECK_EQUAL(dropped[0].ticket, big);
  BOOST_CHECK_EQUAL(budget.total(), 50u);
  // Equal sizes: the newest goes.
  auto newest = budget.enter({});
  dropped = budget.hold(newest, 60);
  BOOST_REQUIRE_EQUAL(dropped.size(), 1u);
  BOOST_CHECK_EQUAL(dropped[0].ticket, newest);
  // An evicted ticket learns it on its next update.
  dropped = budget.hold(big, 1);
  BOOST_REQUIRE_EQUAL(dropped.size(), 1u);
  BOOST_CHECK_EQUAL(dropped[0].ticket, big);
  budget.leave(newer);
  budget.leave(honest);
  BOOST_CHECK_EQUAL(budget.total(), 0u);
  BOOST_CHECK_EQUAL(budget.pending(), 0u);
  BOOST_CHECK_EQUAL(budget.evictions(), 2u);
  BOOST_CHECK_LE(budget.peak(), 100u);
}

BOOST_AUTO_TEST_CASE(ingress_window_pauses_beyond_and_resumes_at_half) {
  ingress_window window{100};
  BOOST_CHECK(!window.received(60));
  BOOST_CHECK(window.received(60));
  BOOST_CHECK(window.paused());
  BOOST_CHECK(!window.received(10)); // already paused
  BOOST_CHECK(!window.applied(60));  // 70 > 50
  BOOST_CHECK(window.applied(20));   // 50: read again
  BOOST_CHECK(!window.paused());
  BOOST_CHECK_EQUAL(window.outstanding(), 50u);
}

BOOST_FIXTURE_TEST_CASE(a_big_frame_before_the_hello_closes_the_connection,
                        flow_fixture) {
  auto hdl = connect_peer();
  send(hdl, test::frame_header(
              static_cast<uint32_t>(node_cfg.max_handshake_frame + 1)));
  auto bye = goodbye(hdl);
  BOOST_REQUIRE(bye);
  BOOST_CHECK_EQUAL(bye->reason(), pb::Goodbye::FRAME_TOO_LARGE);
  auto stats = ask<pb::RouterStats>(node.router, stats_atom::value);
  BOOST_CHECK_EQUAL(stats.frame_errors().at("frame too large"), 1u);
  // Once the handshake is done, frames up to max_frame_size are fine.
  auto peer = connect_peer();
  send(peer, hello("node-b"));
  send(peer, write("node-b", "big", value{std::string(10 * 1024, 'v')}));
  BOOST_CHECK(read_key("big").has_value());
  BOOST_CHECK(!goodbye(peer));
}

BOOST_FIXTURE_TEST_CASE(unfinished_handshakes_stay_within_their_budget,
                        flow_fixture) {
  const auto cap = node_cfg.max_pending_handshake_bytes;
  // An honest peer has sent half of its hello when the attack starts.
  auto honest_hello = hello("node-b");
  auto honest = connect_peer();
  send(honest, honest_hello.substr(0, honest_hello.size() / 2));
  // Without the budget the attackers would hold 100 * 4 KiB.
  auto attackers = flood_handshakes(100);
  BOOST_CHECK_LE(links().handshakes.peak(), cap);
  auto stats = ask<pb::RouterStats>(node.router, stats_atom::value);
  BOOST_CHECK_GT(stats.handshake_evictions(), 0u);
  BOOST_CHECK_LE(stats.pending_handshake_bytes(), cap);
  size_t dropped = 0;
  for (auto hdl : attackers)
    if (auto bye = goodbye(hdl)) {
      BOOST_CHECK_EQUAL(bye->reason(), pb::Goodbye::TOO_MANY_PEERS);
      ++dropped;
    }
  BOOST_CHECK_EQUAL(dropped, stats.handshake_evictions());
  // The honest handshake was never evicted: it finishes and replicates.
  BOOST_CHECK(!goodbye(honest));
  send(honest, honest_hello.substr(honest_hello.size() / 2));
  BOOST_CHECK_EQUAL(peer_count(), 1u);
  send(honest, write("node-b", "k", value{1}));
  BOOST_CHECK(read_key("k") == value{1});
  // So does a peer arriving after the attack.
  auto late = connect_peer();
  send(late, hello("node-c"));
  send(late, write("node-c", "k2", value{2}));
  BOOST_CHECK(read_key("k2") == value{2});
  BOOST_CHECK_EQUAL(peer_count(), 2u);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_FIXTURE_TEST_SUITE(ingress_back_pressure, flow_fixture)

BOOST_AUTO_TEST_CASE(a_flooding_peer_is_paused_within_its_window) {
  auto flooder = connect_peer();
  send(flooder, hello("node-b"));
  auto honest = connect_peer();
  send(honest, hello("node-c"));
  // The flooder sends far more than the window while the store applies
  // nothing (the scheduler does not run).
  std::string payload(8 * 1024, 'f');
  std::string sample = write("node-b", "f0", value{payload});
  const auto window = node_cfg.ingress_window;
  const auto bound = window + sample.size();
  for (int i = 0; i < 64; ++i) {
    send_only(flooder,
              write("node-b", "f" + std::to_string(i), value{payload}));
    BOOST_REQUIRE_LE(links().ingress_outstanding.load(), bound);
  }
  BOOST_CHECK(mpx.passive_mode(flooder));
  BOOST_CHECK_GE(links().ingress_pauses.load(), 1u);
  BOOST_CHECK_LE(links().ingress_peak.load(), bound);
  // Honest replication goes on meanwhile.
  send_only(honest, write("node-c", "honest", value{1}));
  BOOST_CHECK(read_key("honest") == value{1});
  // As the store applies, the flooder is read again, in windows.
  for (int i = 0; i < 200 && !read_key("f63"); ++i) {
    run();
    mpx.read_data(flooder);
    BOOST_REQUIRE_LE(links().ingress_outstanding.load(), bound);
  }
  for (int i = 0; i < 64; ++i)
    BOOST_CHECK(read_key("f" + std::to_string(i)).has_value());
  BOOST_CHECK(!goodbye(flooder));
  BOOST_CHECK_EQUAL(links().ingress_outstanding.load(), 0u);
  BOOST_CHECK_EQUAL(peer_count(), 2u);
  auto stats = ask<pb::RouterStats>(node.router, stats_atom::value);
  BOOST_CHECK_GE(stats.ingress_pauses(), 1u);
}

BOOST_AUTO_TEST_CASE(a_paused_link_does_not_time_out_its_peer) {
  auto hdl = connect_peer();
  send(hdl, hello("node-b"));
  std::string payload(8 * 1024, 'p');
  for (int i = 0; i < 16; ++i)
    send_only(hdl, write("node-b", "p" + std::to_string(i), value{payload}));
  BOOST_REQUIRE(mpx.passive_mode(hdl));
  // The store stalls for longer than the peer timeout: the link does not
  // blame the peer for the silence it caused.
  for (int i = 0; i < 8; ++i)
    advance_links_only(1s);
  BOOST_CHECK(!goodbye(hdl));
  run();
  mpx.read_data(hdl);
  run();
  BOOST_CHECK(!goodbye(hdl));
  BOOST_CHECK(read_key("p15").has_value());
  BOOST_CHECK_EQUAL(peer_count(), 1u);
}

BOOST_AUTO_TEST_CASE(a_slow_receiver_is_repaired_by_anti_entropy_once_drained) {
  auto hdl = connect_peer();
  send(hdl, hello("node-b"));
  // The peer does not read (the test multiplexer never reports writes):
  // flood frames beyond the send queue are shed, the link stays.
  std::string big(15 * 1024, 'x');
  for (int i = 0; i < 40; ++i)
    write_key("s" + std::to_string(i), value{big});
  BOOST_CHECK(!goodbye(hdl));
  BOOST_CHECK_GT(links().flood_frames_shed.load(), 0u);
  auto digests = [&] {
    size_t n = 0;
    for (auto& env : received(hdl))
      n += env.has_digest() ? 1 : 0;
    return n;
  };
  auto before = digests();
  // The queue drains: the link asks for anti-entropy with the peer.
  auto* ptr = caf::actor_cast<caf::abstract_actor*>(node.router);
  auto link = dynamic_cast<router_actor::stateful_base<router_state>&>(*ptr)
                .state.peers.at("node-b")
                .link;
  // An I/O event, outside the link's interface: sent to the broker itself.
  caf::anon_send(caf::actor_cast<caf::actor>(link),
                 caf::io::data_transferred_msg{hdl, 0, 0});
  run();
  BOOST_CHECK_GT(digests(), before);
  BOOST_CHECK(!goodbye(hdl));
  BOOST_CHECK_EQUAL(peer_count(), 1u);
}

BOOST_AUTO_TEST_SUITE_END()
