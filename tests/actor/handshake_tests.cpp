// Deterministic tests of the handshake's version negotiation and mesh-wide
// value limits, and of how a node treats records that break those limits,
// on CAF's test multiplexer: a scripted peer (speaking this release or the
// previous one, syncmesh/2) feeds frames to one node and reads its answers.

#include <boost/test/unit_test.hpp>

#include <chrono>
#include <optional>
#include <string>

#include <caf/all.hpp>
#include <caf/io/all.hpp>
#include <caf/io/network/test_multiplexer.hpp>

#include "actors/atoms.hpp"
#include "actors/facade.hpp"
#include "actors/peer_link_state.hpp"
#include "actors/router_state.hpp"
#include "messages/frame_codec.hpp"
#include "messages/value_proto.hpp"
#include "support/caf_setup.hpp"
#include "support/node_fixture.hpp"
#include "support/remote_writes.hpp"
#include "syncmesh/clock.hpp"

using namespace std::chrono_literals;
using namespace syncmesh;

namespace {

constexpr uint64_t hour_us = 3'600'000'000;

/// A hello frame exactly as a syncmesh/2 node (dd00c8d) sends it: envelope
/// {origin "old-node", hops_left 1, hello {protocol_id "syncmesh/2 subnet=
/// leasing=1", node_id "old-node", listen_host "10.0.0.9", listen_port
/// 7009, features "batch", "anti-entropy/1"}}, with no version range and no
/// limits. Hard-coded so the test keeps speaking the old wire version after
/// wire.proto moves on.
const std::string syncmesh2_hello{
  "\x00\x00\x00\x5a\x12\x08\x6f\x6c\x64\x2d\x6e\x6f\x64\x65\x20\x01"
  "\x52\x4c\x0a\x1c\x73\x79\x6e\x63\x6d\x65\x73\x68\x2f\x32\x20\x73"
  "\x75\x62\x6e\x65\x74\x3d\x20\x6c\x65\x61\x73\x69\x6e\x67\x3d\x31"
  "\x12\x08\x6f\x6c\x64\x2d\x6e\x6f\x64\x65\x1a\x08\x31\x30\x2e\x30"
  "\x2e\x30\x2e\x39\x20\xe1\x36\x2a\x05\x62\x61\x74\x63\x68\x2a\x0e"
  "\x61\x6e\x74\x69\x2d\x65\x6e\x74\x72\x6f\x70\x79\x2f\x31",
  94};

/// The protocol ID a syncmesh/2 node with the fixture's settings uses.
const std::string syncmesh2_protocol_id = "syncmesh/2 subnet= leasing=1";

/// A scalar inside `depth` nested lists.
value nested_lists(int depth) {
  value v{int64_t{1}};
  for (int i = 0; i < depth; ++i)
    v = value{value_list{std::move(v)}};
  return v;
}

/// A scalar inside `depth` nested maps.
value nested_maps(int depth) {
  value v{int64_t{1}};
  for (int i = 0; i < depth; ++i) {
    value m = value::empty_map();
    m.as_map().push_back(map_item{map_key{"k"}, std::move(v)});
    v = std::move(m);
  }
  return v;
}

std::string framed(const pb::Envelope& env) {
  std::string out;
  BOOST_REQUIRE(append_frame(out, env, 1 << 20));
  return out;
}

/// One node (test settings: max_value_size 16 KiB, max_value_depth 64)
/// and helpers to read what it told a scripted peer.
struct handshake_fixture : test::node_fixture {
  handshake_fixture() : node_fixture([](config&) {}) {}

  /// The write records the node flooded to the peer.
  std::vector<pb::WriteRecord> writes_to(caf::io::connection_handle hdl) {
    std::vector<pb::WriteRecord> result;
    for (auto& env : received(hdl)) {
      if (!env.has_write())
        continue;
      pb::WriteBatch batch;
      BOOST_REQUIRE(envelope_builder::decode_writes(env, batch).empty());
      for (auto& rec : batch.records())
        result.push_back(rec);
    }
    return result;
  }

  /// A hello from `id` with the node's terms, changed by `tweak`.
  template <class Tweak>
  std::string hello(const std::string& id, Tweak tweak) {
    auto terms = hello_terms_of(node_cfg);
    tweak(terms);
    return framed(
      make_hello(id, protocol_id(node_cfg), "10.0.0.2", 7000, terms));
  }

  /// A hello from `id` with the node's terms.
  std::string hello(const std::string& id) {
    return hello(id, [](hello_terms&) {});
  }

  /// A peer `id` that connected and finished its handshake.
  caf::io::connection_handle handshaken_peer(const std::string& id) {
    auto hdl = connect_peer();
    send(hdl, hello(id));
    BOOST_REQUIRE(!goodbye(hdl));
    return hdl;
  }

  /// A version from `id` stamped now, leased for an hour.
  version now_version(const std::string& id) {
    auto now = clock.now();
    return test::remote_version(id, 0, now, now, now + hour_us);
  }

  pb::RouterStats router_stats() {
    return ask<pb::RouterStats>(node.router, stats_atom::value);
  }

  pb::StoreStats store_stats() {
    return ask<pb::StoreStats>(node.store, stats_atom::value);
  }
};

} // namespace

BOOST_FIXTURE_TEST_SUITE(handshake, handshake_fixture)

BOOST_AUTO_TEST_CASE(the_scripted_syncmesh2_hello_is_what_release_2_sent) {
  // Guards the hard-coded bytes: they decode to release 2's hello.
  frame_decoder decoder;
  decoder.feed(syncmesh2_hello);
  std::string payload;
  BOOST_REQUIRE(decoder.next(payload) == frame_status::ok);
  pb::Envelope env;
  BOOST_REQUIRE(parse_envelope(payload, env).empty());
  BOOST_REQUIRE(env.has_hello());
  BOOST_TEST(env.hello().protocol_id() == syncmesh2_protocol_id);
  BOOST_TEST(env.hello().node_id() == "old-node");
  BOOST_TEST(env.hello().max_version() == 0u);
  BOOST_TEST(env.hello().features_size() == 2);
}

BOOST_AUTO_TEST_CASE(a_syncmesh2_peer_is_refused_cleanly_and_others_served) {
  auto old = connect_peer();
  // What the old node reads first: our hello. Release 2 compares protocol
  // IDs before anything else; ours no longer carries "/2", so from its own
  // point of view the old node refuses us with PROTOCOL_MISMATCH.
  auto ours = received(old);
  BOOST_REQUIRE(!ours.empty());
  BOOST_REQUIRE(ours[0].has_hello());
  BOOST_TEST(ours[0].hello().protocol_id() != syncmesh2_protocol_id);
  BOOST_TEST(ours[0].hello().protocol_id() == "syncmesh subnet= leasing=1");
  // Our side: refused with a goodbye it understands (PROTOCOL_MISMATCH is
  // in release 2's enum) whose detail says what happened.
  send(old, syncmesh2_hello);
  auto bye = goodbye(old);
  BOOST_REQUIRE(bye);
  BOOST_TEST(bye->reason() == pb::Goodbye::PROTOCOL_MISMATCH);
  BOOST_TEST(bye->detail().find("syncmesh/2") != std::string::npos);
  BOOST_TEST(bye->detail().find("upgrade") != std::string::npos);
  BOOST_TEST(closed(old));
  BOOST_TEST(peer_count() == 0u);
  // The node keeps serving current peers.
  auto peer = handshaken_peer("node-b");
  BOOST_TEST(peer_count() == 1u);
  send(peer, framed(test::write_envelope(
               "node-b",
               {test::set_record("k", value{"v"}, now_version("node-b"))})));
  BOOST_CHECK(read_key("k") == value{"v"});
  BOOST_TEST(!goodbye(peer));
}

BOOST_AUTO_TEST_CASE(overlapping_version_ranges_pick_the_highest_common) {
  // The node speaks [min_protocol_version, max_protocol_version]; a newer
  // peer speaking up to five versions more settles on the node's highest.
  auto newer = connect_peer();
  send(newer, hello("node-b", [](hello_terms& t) { t.max_version += 5; }));
  BOOST_REQUIRE(!goodbye(newer));
  auto older = connect_peer();
  send(older, hello("node-c", [](hello_terms& t) { t.min_version = 1; }));
  BOOST_REQUIRE(!goodbye(older));
  auto list = ask<pb::PeerList>(node.router, pb::PeersRequest{});
  BOOST_REQUIRE_EQUAL(list.peers_size(), 2);
  for (const auto& peer : list.peers())
    BOOST_TEST(peer.protocol_version() == max_protocol_version);
}

BOOST_AUTO_TEST_CASE(disjoint_version_ranges_are_refused_naming_both) {
  auto hdl = connect_peer();
  send(hdl, hello("node-b", [](hello_terms& t) {
         t.min_version = max_protocol_version + 1;
         t.max_version = max_protocol_version + 2;
       }));
  auto bye = goodbye(hdl);
  BOOST_REQUIRE(bye);
  BOOST_TEST(bye->reason() == pb::Goodbye::VERSION_MISMATCH);
  BOOST_TEST(bye->detail().find(std::to_string(max_protocol_version + 2))
             != std::string::npos);
  BOOST_TEST(closed(hdl));
  BOOST_TEST(peer_count() == 0u);
}

BOOST_AUTO_TEST_CASE(a_protocol_3_peer_is_refused_naming_both_ranges) {
  // Protocol 3 carried no field positions (issue 17): such a node must not
  // join, or map order and digests would differ forever.
  auto hdl = connect_peer();
  send(hdl, hello("node-b", [](hello_terms& t) {
         t.min_version = 3;
         t.max_version = 3;
       }));
  auto bye = goodbye(hdl);
  BOOST_REQUIRE(bye);
  BOOST_TEST(bye->reason() == pb::Goodbye::VERSION_MISMATCH);
  BOOST_TEST(bye->detail().find("3 to 3 there") != std::string::npos,
             bye->detail());
  BOOST_TEST(closed(hdl));
  BOOST_TEST(peer_count() == 0u);
}

BOOST_AUTO_TEST_CASE(a_peer_with_other_limits_is_refused_naming_both_values) {
  struct change {
    void (*apply)(hello_terms&);
    std::string detail;
  };
  const change changes[] = {
    {[](hello_terms& t) { t.max_value_size = 65536; },
     "max_value_size 16384 here, 65536 there"},
    {[](hello_terms& t) { t.max_key_size = 100; },
     "max_key_size 4096 here, 100 there"},
    {[](hello_terms& t) { t.max_value_depth = 32; },
     "max_value_depth 64 here, 32 there"},
    {[](hello_terms& t) { t.max_lease_duration_us = 1; },
     "max_lease_duration_us 86400000000 here, 1 there"},
  };
  for (const auto& c : changes) {
    auto hdl = connect_peer();
    send(hdl, hello("node-b", c.apply));
    auto bye = goodbye(hdl);
    BOOST_REQUIRE(bye);
    BOOST_TEST(bye->reason() == pb::Goodbye::LIMITS_MISMATCH);
    BOOST_TEST(bye->detail() == c.detail);
    BOOST_TEST(closed(hdl));
  }
  BOOST_TEST(peer_count() == 0u);
  // Our own hello states the limits, so the peer can tell as well.
  auto hdl = connect_peer();
  auto ours = received(hdl);
  BOOST_REQUIRE(!ours.empty());
  BOOST_TEST(ours[0].hello().max_value_size() == node_cfg.max_value_size);
  BOOST_TEST(ours[0].hello().max_value_depth() == node_cfg.max_value_depth);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_FIXTURE_TEST_SUITE(value_limits, handshake_fixture)

BOOST_AUTO_TEST_CASE(values_of_exactly_max_depth_replicate_deeper_are_skipped) {
  auto from = handshaken_peer("node-b");
  auto to = handshaken_peer("node-c");
  const int depth = static_cast<int>(node_cfg.max_value_depth);
  // At the limit, lists and maps: applied and flooded on (the frames parse
  // on the next peer too: protobuf's default recursion limit would not).
  auto v = now_version("node-b");
  send(from, framed(test::write_envelope(
               "node-b", {test::set_record("lists", nested_lists(depth), v),
                          test::set_record("maps", nested_maps(depth), v)})));
  BOOST_CHECK(read_key("lists") == nested_lists(depth));
  BOOST_CHECK(read_key("maps") == nested_maps(depth));
  auto flooded = writes_to(to);
  BOOST_TEST(flooded.size() == 2u);
  for (const auto& rec : flooded)
    BOOST_TEST(validate(rec.value(), depth) == "");
  // One level deeper: skipped alone, counted; the link stays up.
  send(from,
       framed(test::write_envelope(
         "node-b", {test::set_record("deep-lists", nested_lists(depth + 1), v),
                    test::set_record("deep-maps", nested_maps(depth + 1), v),
                    test::set_record("fine", value{"yes"}, v)})));
  BOOST_CHECK(!read_key("deep-lists"));
  BOOST_CHECK(!read_key("deep-maps"));
  BOOST_CHECK(read_key("fine") == value{"yes"});
  BOOST_TEST(router_stats().skipped_records() == 2u);
  BOOST_TEST(!goodbye(from));
  BOOST_TEST(peer_count() == 2u);
}

BOOST_AUTO_TEST_CASE(one_oversized_record_of_three_is_skipped_not_the_link) {
  auto hdl = handshaken_peer("node-b");
  auto v = now_version("node-b");
  auto keys_before = store_stats().live_keys();
  std::string big(node_cfg.max_value_size + 1, 'x');
  send(hdl, framed(test::write_envelope(
              "node-b", {test::set_record("a", value{"1"}, v),
                         test::set_record("big", value{big}, v),
                         test::set_record("c", value{"3"}, v)})));
  BOOST_CHECK(read_key("a") == value{"1"});
  BOOST_CHECK(read_key("c") == value{"3"});
  BOOST_CHECK(!read_key("big"));
  BOOST_TEST(router_stats().skipped_records() == 1u);
  BOOST_TEST(router_stats().rejected_in() == 0u);
  BOOST_TEST(!goodbye(hdl));
  BOOST_TEST(!closed(hdl));
  // Nothing of the skipped record is held: two keys more, no more.
  BOOST_TEST(store_stats().live_keys() == keys_before + 2);
  // Honest replication through the link continues.
  send(hdl, framed(test::write_envelope(
              "node-b", {test::set_record("d", value{"4"}, v)})));
  BOOST_CHECK(read_key("d") == value{"4"});
}

BOOST_AUTO_TEST_CASE(a_bad_anti_entropy_entry_is_skipped_not_the_window) {
  auto hdl = handshaken_peer("node-b");
  auto v = now_version("node-b");
  pb::Envelope env;
  env.set_hops_left(1);
  auto* entries = env.mutable_entries();
  entries->set_session(7);
  *entries->add_records() = test::set_record("e1", value{"1"}, v);
  *entries->add_records() = test::set_record(
    "too-deep", nested_maps(static_cast<int>(node_cfg.max_value_depth) + 1), v);
  *entries->add_records() = test::set_record(
    std::string(node_cfg.max_key_size + 1, 'k'), value{"long key"}, v);
  *entries->add_records() = test::set_record("e2", value{"2"}, v);
  entries->set_last(true);
  send(hdl, framed(env));
  BOOST_CHECK(read_key("e1") == value{"1"});
  BOOST_CHECK(read_key("e2") == value{"2"});
  BOOST_CHECK(!read_key("too-deep"));
  BOOST_TEST(store_stats().ae_records_skipped() == 2u);
  // The window was acknowledged, and the link stays up.
  bool acked = false;
  for (auto& out : received(hdl))
    acked |= out.has_entries_ack() && out.entries_ack().session() == 7;
  BOOST_TEST(acked);
  BOOST_TEST(!goodbye(hdl));
  BOOST_TEST(peer_count() == 1u);
}

BOOST_AUTO_TEST_CASE(the_local_api_refuses_values_deeper_than_the_limit) {
  const int depth = static_cast<int>(node_cfg.max_value_depth);
  auto set = [&](const std::string& key, const value& val) {
    pb::SetRequest req;
    req.set_key(key);
    to_proto(val, req.mutable_value());
    auto handle = self->request(node.facade, caf::infinite, req);
    run();
    std::string error;
    handle.receive([](pb::WriteAck&) {},
                   [&](caf::error& err) { error = sys.render(err); });
    return error;
  };
  BOOST_TEST(set("lists", nested_lists(depth)) == "");
  BOOST_TEST(set("maps", nested_maps(depth)) == "");
  auto err = set("deeper", nested_maps(depth + 1));
  BOOST_TEST(err.find("nests deeper than 64") != std::string::npos, err);
  err = set("deeper", nested_lists(depth + 1));
  BOOST_TEST(err.find("nests deeper than 64") != std::string::npos, err);
  BOOST_CHECK(!read_key("deeper"));
}

BOOST_AUTO_TEST_SUITE_END()
