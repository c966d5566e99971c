// Deterministic tests of peer links and the listener on CAF's test
// multiplexer: no sockets, no threads, virtual time. A scripted peer feeds
// bytes to the node in arbitrary splits and reads what the node wrote.

#include <boost/test/unit_test.hpp>

#include <chrono>
#include <optional>
#include <random>

#include <caf/all.hpp>
#include <caf/io/all.hpp>
#include <caf/io/network/test_multiplexer.hpp>

#include "actors/atoms.hpp"
#include "actors/facade.hpp"
#include "actors/peer_link_state.hpp"
#include "messages/frame_codec.hpp"
#include "support/caf_setup.hpp"
#include "support/node_fixture.hpp"
#include "support/remote_writes.hpp"
#include "syncmesh/clock.hpp"

using namespace std::chrono_literals;
using namespace syncmesh;

namespace {

using test::node_port;
constexpr uint64_t hour_us = 3'600'000'000;

/// A node with native links, and helpers to read what it wrote to a peer.
struct link_fixture : test::node_fixture {
  explicit link_fixture(size_t max_inbound = 32)
      : node_fixture([=](config& c) { c.max_inbound = max_inbound; }) {}

  /// A framed hello from `id` with the protocol of `c`.
  std::string hello(const std::string& id, const config& c) {
    std::string out;
    append_frame(
      out, make_hello(id, protocol_id(c), "10.0.0.2", 7000, hello_terms_of(c)));
    return out;
  }
};

std::string framed(const pb::Envelope& env) {
  std::string out;
  append_frame(out, env);
  return out;
}

} // namespace

BOOST_FIXTURE_TEST_SUITE(peer_links, link_fixture)

BOOST_AUTO_TEST_CASE(handshake_and_writes_survive_any_read_split) {
  std::mt19937 rng{7};
  auto hdl = connect_peer();
  // The node greets first.
  auto out = received(hdl);
  BOOST_REQUIRE_EQUAL(out.size(), 1u);
  BOOST_REQUIRE(out[0].has_hello());
  BOOST_CHECK_EQUAL(out[0].hello().node_id(), "node-a");
  BOOST_CHECK_EQUAL(out[0].hello().listen_port(), node_port);
  BOOST_CHECK_EQUAL(out[0].hello().protocol_id(), protocol_id(node_cfg));
  send_split(hdl, hello(std::string("node-b"), node_cfg), rng);
  BOOST_CHECK_EQUAL(peer_count(), 1u);
  // Three writes in one burst, cut at random places.
  auto now = clock.now();
  std::string burst;
  for (auto key : {"x", "y", "z"}) {
    auto v = test::remote_version("node-b", 0, now, now, now + hour_us);
    burst += framed(
      test::write_envelope("node-b", {test::set_record(key, value{key}, v)}));
  }
  send_split(hdl, burst, rng);
  for (auto key : {"x", "y", "z"})
    BOOST_CHECK(read_key(key) == value{key});
  BOOST_CHECK(!goodbye(hdl));
}

BOOST_AUTO_TEST_CASE(
  a_peer_on_a_wildcard_address_is_recorded_where_it_came_from) {
  auto hdl = connect_peer();
  std::string bytes;
  append_frame(bytes, make_hello("node-b", protocol_id(node_cfg), "0.0.0.0",
                                 7000, hello_terms_of(node_cfg)));
  send(hdl, bytes);
  auto list = ask<pb::PeerList>(node.router, pb::PeersRequest{});
  BOOST_REQUIRE_EQUAL(list.peers_size(), 1);
  // The test multiplexer names every remote address "test".
  BOOST_CHECK_EQUAL(list.peers(0).host(), "test");
  BOOST_CHECK_EQUAL(list.peers(0).port(), 7000u);
}

BOOST_AUTO_TEST_CASE(heartbeats_measure_and_detect_silence) {
  auto hdl = connect_peer();
  send(hdl, hello("node-b", node_cfg));
  advance(1s);
  auto pings = 0;
  for (auto& env : received(hdl))
    pings += env.has_ping() ? 1 : 0;
  BOOST_CHECK_EQUAL(pings, 1);
  // The peer stays silent past the timeout: dropped with a reason.
  for (int i = 0; i < 6; ++i)
    advance(1s);
  auto bye = goodbye(hdl);
  BOOST_REQUIRE(bye);
  BOOST_CHECK_EQUAL(bye->reason(), pb::Goodbye::HEARTBEAT_TIMEOUT);
  BOOST_CHECK_EQUAL(peer_count(), 0u);
}

BOOST_AUTO_TEST_CASE(each_handshake_failure_has_its_goodbye) {
  struct attempt {
    std::string name;
    std::string bytes;
    pb::Goodbye::Reason reason;
  };
  auto other = node_cfg;
  other.leasing = false;
  pb::Envelope ping;
  ping.mutable_ping()->set_nonce(1);
  std::vector<attempt> attempts{
    {"protocol mismatch", hello("node-b", other),
     pb::Goodbye::PROTOCOL_MISMATCH},
    {"self", hello("node-a", node_cfg), pb::Goodbye::SELF_CONNECTION},
    {"frame before hello", framed(ping), pb::Goodbye::UNEXPECTED},
    {"oversize frame", std::string("\x00\x10\x00\x01", 4),
     pb::Goodbye::FRAME_TOO_LARGE},
    {"garbage", std::string("\0\0\0\3\xff\xff\xff", 7), pb::Goodbye::MALFORMED},
  };
  for (const auto& a : attempts) {
    BOOST_TEST_CONTEXT(a.name) {
      auto hdl = connect_peer();
      send(hdl, a.bytes);
      auto bye = goodbye(hdl);
      BOOST_REQUIRE(bye);
      BOOST_CHECK_EQUAL(bye->reason(), a.reason);
      BOOST_CHECK(!bye->detail().empty());
    }
  }
  BOOST_CHECK_EQUAL(peer_count(), 0u);
  // Silence: the handshake deadline closes the connection.
  auto silent = connect_peer();
  advance(2s);
  auto bye = goodbye(silent);
  BOOST_REQUIRE(bye);
  BOOST_CHECK_EQUAL(bye->reason(), pb::Goodbye::HANDSHAKE_TIMEOUT);
}

BOOST_AUTO_TEST_CASE(an_impostor_cannot_displace_a_healthy_peer) {
  auto first = connect_peer();
  send(first, hello("node-b", node_cfg));
  auto pings_before = received(first).size();
  auto impostor = connect_peer();
  send(impostor, hello("node-b", node_cfg));
  // The existing link is probed at once; its peer answers.
  std::optional<uint64_t> nonce;
  auto out = received(first);
  for (size_t i = pings_before; i < out.size(); ++i)
    if (out[i].has_ping())
      nonce = out[i].ping().nonce();
  BOOST_REQUIRE(nonce);
  BOOST_CHECK(!goodbye(impostor));
  pb::Envelope pong;
  pong.set_hops_left(1);
  pong.mutable_pong()->set_nonce(*nonce);
  send(first, framed(pong));
  auto bye = goodbye(impostor);
  BOOST_REQUIRE(bye);
  BOOST_CHECK_EQUAL(bye->reason(), pb::Goodbye::DUPLICATE_ID);
  BOOST_CHECK(!goodbye(first));
  BOOST_CHECK_EQUAL(peer_count(), 1u);
  auto stats = ask<pb::RouterStats>(node.router, stats_atom::value);
  BOOST_CHECK_EQUAL(stats.duplicate_probes(), 1u);
  BOOST_CHECK_EQUAL(stats.duplicates_refused(), 1u);
  // The real peer still replicates.
  auto now = clock.now();
  auto v = test::remote_version("node-b", 0, now, now, now + hour_us);
  send(first, framed(test::write_envelope(
                "node-b", {test::set_record("k", value{1}, v)})));
  BOOST_CHECK(read_key("k") == value{1});
}

BOOST_AUTO_TEST_CASE(a_restarted_node_replaces_its_silent_link_quickly) {
  auto old_link = connect_peer();
  send(old_link, hello("node-b", node_cfg));
  // The node restarted: its old connection is silent, the new one says
  // hello with the same ID and gets in once the probe times out (well
  // before the peer timeout).
  auto restarted = connect_peer();
  send(restarted, hello("node-b", node_cfg));
  BOOST_CHECK(!goodbye(restarted));
  advance(std::chrono::milliseconds(node_cfg.duplicate_probe_timeout));
  auto bye = goodbye(old_link);
  BOOST_REQUIRE(bye);
  BOOST_CHECK_EQUAL(bye->reason(), pb::Goodbye::HEARTBEAT_TIMEOUT);
  BOOST_CHECK(!goodbye(restarted));
  BOOST_CHECK_EQUAL(peer_count(), 1u);
  BOOST_CHECK_EQUAL(
    ask<pb::RouterStats>(node.router, stats_atom::value).duplicates_replaced(),
    1u);
  auto now = clock.now();
  auto v = test::remote_version("node-b", 0, now, now, now + hour_us);
  send(restarted, framed(test::write_envelope(
                    "node-b", {test::set_record("k", value{2}, v)})));
  BOOST_CHECK(read_key("k") == value{2});
}

BOOST_AUTO_TEST_CASE(malformed_writes_from_a_peer_close_only_that_link) {
  auto good = connect_peer();
  send(good, hello("node-c", node_cfg));
  auto bad = connect_peer();
  send(bad, hello("node-b", node_cfg));
  BOOST_REQUIRE_EQUAL(peer_count(), 2u);
  // A write body that does not parse (a record breaking a rule would only
  // be skipped: see handshake_tests).
  auto garbage = test::write_envelope("node-b", {});
  garbage.set_write(std::string("\xff\xff\xff\xff garbage", 13));
  send(bad, framed(garbage));
  auto bye = goodbye(bad);
  BOOST_REQUIRE(bye);
  BOOST_CHECK_EQUAL(bye->reason(), pb::Goodbye::MALFORMED);
  BOOST_CHECK_EQUAL(peer_count(), 1u);
  BOOST_CHECK(!read_key("k"));
  BOOST_CHECK(!goodbye(good));
}

BOOST_AUTO_TEST_CASE(local_writes_reach_peers_batched) {
  auto hdl = connect_peer();
  send(hdl, hello("node-b", node_cfg));
  // Several writes queued before the router runs leave in one frame.
  for (int i = 0; i < 10; ++i) {
    pb::SetRequest req;
    req.set_key("k" + std::to_string(i));
    to_proto(value{i}, req.mutable_value());
    self->send(node.facade, std::move(req));
  }
  run();
  size_t frames = 0;
  size_t records = 0;
  for (auto& env : received(hdl)) {
    if (!env.has_write())
      continue;
    ++frames;
    pb::WriteBatch batch;
    BOOST_REQUIRE(batch.ParseFromString(env.write()));
    records += static_cast<size_t>(batch.records_size());
  }
  BOOST_CHECK_EQUAL(records, 10u);
  BOOST_CHECK_LT(frames, 10u);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(link_limits)

BOOST_AUTO_TEST_CASE(inbound_peers_are_capped) {
  link_fixture f{1};
  auto first = f.connect_peer();
  f.send(first, f.hello("node-b", f.node_cfg));
  auto second = f.connect_peer();
  f.send(second, f.hello("node-c", f.node_cfg));
  auto bye = f.goodbye(second);
  BOOST_REQUIRE(bye);
  BOOST_CHECK_EQUAL(bye->reason(), pb::Goodbye::TOO_MANY_PEERS);
  BOOST_CHECK(!f.goodbye(first));
  BOOST_CHECK_EQUAL(f.peer_count(), 1u);
}

BOOST_AUTO_TEST_CASE(a_peer_that_does_not_read_is_shed_not_dropped) {
  link_fixture f;
  auto hdl = f.connect_peer();
  f.send(hdl, f.hello("node-b", f.node_cfg));
  // The test multiplexer never reports bytes as written: the queue only
  // grows, as with a receiver that paused us.
  std::string big(15 * 1024, 'x');
  for (int i = 0; i < 40; ++i) {
    pb::SetRequest req;
    req.set_key("k" + std::to_string(i));
    to_proto(value{big}, req.mutable_value());
    f.self->send(f.node.facade, std::move(req));
    f.run();
  }
  // Flood frames beyond max_send_queue are shed and counted; the peer stays.
  BOOST_CHECK(!f.goodbye(hdl));
  BOOST_CHECK_EQUAL(f.peer_count(), 1u);
  auto stats = f.ask<pb::RouterStats>(f.node.router, stats_atom::value);
  BOOST_CHECK_GT(stats.flood_frames_shed(), 0u);
  BOOST_CHECK_LE(f.written(hdl).size(), f.node_cfg.max_send_queue + 1024);
  // Nothing was lost locally.
  BOOST_CHECK(f.read_key("k39").has_value());
}

BOOST_AUTO_TEST_SUITE_END()
