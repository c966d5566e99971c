// Deterministic tests of py2p-dialect links on CAF's test multiplexer: a
// scripted py2p/js2p peer feeds frames in py2p's framing to a real py2p link
// broker and decodes what the link wrote with the codec. No sockets, no
// threads, virtual time.

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <chrono>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "actors/py2p_link_state.hpp"
#include "messages/frame_codec.hpp"
#include "messages/py2p_codec.hpp"
#include "messages/value_proto.hpp"
#include "support/node_fixture.hpp"

using namespace std::chrono_literals;
using namespace syncmesh;

namespace {

const std::string node_a = "NodeAAA";
const std::string peer_b = "PeerBBB";
const std::string peer_c = "PeerCCC";

/// A node in py2p mode, and a scripted py2p peer: builds its frames and
/// decodes what the node wrote to it.
struct py2p_fixture : test::node_fixture {
  py2p_fixture() : py2p_fixture([](config&) {}) {}

  /// A node in py2p mode whose settings `tweak` adjusts.
  template <class Tweak>
  explicit py2p_fixture(Tweak tweak)
      : node_fixture([=](config& c) {
          c.wire = wire_kind::py2p;
          c.node_id = node_id::from_raw(node_a);
          tweak(c);
        }) {}

  /// The node's clock in whole seconds (what py2p peers stamp messages with).
  uint64_t now_s() const { return clock.now() / 1'000'000; }

  /// Frames a message from a peer the way py2p does (uncompressed).
  std::string frame(uint8_t type, const std::string& sender, uint64_t time,
                    const std::vector<pb::Value>& payload) {
    return py2p::frame(py2p::make_raw(py2p::build(type, sender, time, payload)),
                       {}, node_cfg.max_frame_size);
  }

  /// Frames a message from a py2p 0.7.870 peer: its id goes out as msgpack
  /// bin, in the sender field and wherever it puts it in the payload.
  std::string frame_bin(uint8_t type, const std::string& sender, uint64_t time,
                        const std::vector<pb::Value>& payload) {
    pb::Value packets;
    auto* items = packets.mutable_list();
    *items->add_items() = py2p::uint(type);
    *items->add_items() = py2p::bin(sender);
    *items->add_items() = py2p::uint(time);
    for (const auto& x : payload)
      *items->add_items() = x;
    std::string msgpack;
    py2p::encode(packets, msgpack);
    return py2p::frame(py2p::make_raw(std::move(msgpack)), {},
                       node_cfg.max_frame_size);
  }

  /// The handshake of a py2p 0.7.870 peer (its id as bin).
  std::string handshake_bin(const std::string& id, const std::string& host,
                            uint16_t port) {
    auto payload = py2p::handshake_payload(id, protocol_id(node_cfg), host,
                                           port, {py2p::method::zlib});
    payload[1] = py2p::bin(id);
    return frame_bin(py2p::flag::whisper, id, now_s(), payload);
  }

  /// The handshake of peer `id`, declaring `host:port` and zlib, with the
  /// node's protocol id unless `protocol` is given.
  std::string handshake(const std::string& id, const std::string& host,
                        uint16_t port, std::string protocol = {}) {
    if (protocol.empty())
      protocol = protocol_id(node_cfg);
    return frame(
      py2p::flag::whisper, id, now_s(),
      py2p::handshake_payload(id, protocol, host, port, {py2p::method::zlib}));
  }

  /// A 3-packet store of `key = val` from `sender` at `time`, as
  /// SyncSocket.set() broadcasts it.
  std::string store(const std::string& sender, const std::string& key,
                    const std::string& val, uint64_t time) {
    pb::Value v;
    to_proto(value{val}, &v);
    return frame(py2p::flag::broadcast, sender, time,
                 py2p::store_payload(key, v));
  }

  /// A peer connects and completes its handshake.
  caf::io::connection_handle attach(const std::string& id,
                                    const std::string& host, uint16_t port) {
    auto hdl = connect_peer();
    send(hdl, handshake(id, host, port));
    return hdl;
  }

  /// Every message the node wrote to the peer, decoded with the codec (it
  /// may compress with zlib or gzip, the methods it advertises).
  std::vector<py2p::message> received(caf::io::connection_handle hdl) {
    frame_decoder decoder{node_cfg.max_frame_size};
    decoder.feed(written(hdl));
    std::vector<py2p::message> result;
    std::string body;
    while (decoder.next(body) == frame_status::ok) {
      py2p::raw_message raw;
      auto err = py2p::open_frame(body, py2p::supported_methods(),
                                  node_cfg.max_frame_size, raw);
      BOOST_REQUIRE_MESSAGE(err.empty(), err);
      py2p::message msg;
      err = py2p::parse(raw.msgpack, msg);
      BOOST_REQUIRE_MESSAGE(err.empty(), err);
      result.push_back(std::move(msg));
    }
    BOOST_CHECK_EQUAL(decoder.buffered(), 0u);
    return result;
  }

  /// The messages with sub-flag `sub` the node wrote to the peer.
  std::vector<py2p::message> received(caf::io::connection_handle hdl, int sub) {
    std::vector<py2p::message> result;
    for (auto& msg : received(hdl))
      if (msg.sub_flag() == sub)
        result.push_back(std::move(msg));
    return result;
  }
};

/// The text or bytes of a payload packet ("" for other kinds).
std::string bytes_of(const pb::Value& x) {
  return py2p::as_bytes(x).value_or(std::string{});
}

/// A payload packet as a syncmesh value.
value value_of(const pb::Value& x) {
  value result;
  BOOST_REQUIRE(from_proto(x, result).empty());
  return result;
}

} // namespace

BOOST_FIXTURE_TEST_SUITE(py2p_links, py2p_fixture)

BOOST_AUTO_TEST_CASE(handshakes_go_both_ways_and_attach_the_peer) {
  std::mt19937 rng{11};
  auto hdl = connect_peer();
  // The node sends its handshake at once, unprompted and uncompressed.
  auto out = received(hdl);
  BOOST_REQUIRE_EQUAL(out.size(), 1u);
  BOOST_CHECK_EQUAL(out[0].type, py2p::flag::whisper);
  BOOST_CHECK_EQUAL(out[0].sender, node_a);
  // Stamped on the node's clock (config::clock), not the system's.
  BOOST_CHECK_EQUAL(out[0].time, now_s());
  BOOST_REQUIRE_EQUAL(out[0].sub_flag(), py2p::flag::handshake);
  py2p::handshake_info hs;
  BOOST_REQUIRE(py2p::read_handshake(out[0].payload, hs).empty());
  BOOST_CHECK_EQUAL(hs.id, node_a);
  BOOST_CHECK_EQUAL(hs.protocol_id, protocol_id(node_cfg));
  BOOST_CHECK_EQUAL(hs.protocol_id, py2p::protocol_id("sync", true));
  BOOST_CHECK_EQUAL(hs.port, test::node_port);
  BOOST_CHECK(hs.methods == py2p::supported_methods());
  BOOST_CHECK_EQUAL(peer_count(), 0u);
  // The peer's handshake, cut at random places, attaches it.
  send_split(hdl, handshake(peer_b, "10.0.0.2", 7000), rng);
  BOOST_CHECK_EQUAL(peer_count(), 1u);
  auto list = ask<pb::PeerList>(node.router, pb::PeersRequest{});
  BOOST_REQUIRE_EQUAL(list.peers_size(), 1);
  BOOST_CHECK_EQUAL(list.peers(0).node_id(), peer_b);
  BOOST_CHECK_EQUAL(list.peers(0).host(), "10.0.0.2");
  BOOST_CHECK_EQUAL(list.peers(0).port(), 7000u);
  // A repeated handshake (js2p sends two) changes nothing; py2p sends no
  // second handshake of its own either.
  send(hdl, handshake(peer_b, "10.0.0.2", 7000));
  BOOST_CHECK_EQUAL(peer_count(), 1u);
  BOOST_CHECK_EQUAL(received(hdl, py2p::flag::handshake).size(), 1u);
  BOOST_CHECK(!closed(hdl));
}

BOOST_AUTO_TEST_CASE(a_new_peer_gets_the_peers_list_then_every_key) {
  write_key("alpha", value{std::string{"one"}});
  auto alpha_s = now_s();
  advance(2s);
  write_key("beta", value{std::string{"two"}});
  auto beta_s = now_s();
  auto c = attach(peer_c, "10.0.0.3", 7001);
  BOOST_REQUIRE_EQUAL(peer_count(), 1u);
  auto hdl = connect_peer();
  // Nothing but the handshake before the peer's handshake.
  BOOST_CHECK_EQUAL(received(hdl).size(), 1u);
  send(hdl, handshake(peer_b, "10.0.0.2", 7000));
  // py2p's _send_peers: handshake, peers, then one 5-packet store per key.
  auto out = received(hdl);
  BOOST_REQUIRE_EQUAL(out.size(), 4u);
  BOOST_CHECK_EQUAL(out[0].sub_flag(), py2p::flag::handshake);
  BOOST_REQUIRE_EQUAL(out[1].sub_flag(), py2p::flag::peers);
  BOOST_CHECK_EQUAL(out[1].type, py2p::flag::whisper);
  std::vector<py2p::peer_address> peers;
  BOOST_REQUIRE(py2p::read_peers(out[1].payload, peers).empty());
  // The other peer, not the recipient itself.
  BOOST_REQUIRE_EQUAL(peers.size(), 1u);
  BOOST_CHECK_EQUAL(peers[0].id, peer_c);
  BOOST_CHECK_EQUAL(peers[0].host, "10.0.0.3");
  BOOST_CHECK_EQUAL(peers[0].port, 7001u);
  struct expected {
    std::string key;
    std::string val;
    uint64_t ts;
  };
  std::vector<expected> keys{{"alpha", "one", alpha_s},
                             {"beta", "two", beta_s}};
  for (size_t i = 0; i < keys.size(); ++i) {
    BOOST_TEST_CONTEXT(keys[i].key) {
      const auto& msg = out[2 + i];
      // A whisper: never relayed by the peer.
      BOOST_CHECK_EQUAL(msg.type, py2p::flag::whisper);
      BOOST_REQUIRE_EQUAL(msg.sub_flag(), py2p::flag::store);
      py2p::store_info st;
      BOOST_REQUIRE(py2p::read_store(msg.payload, st).empty());
      BOOST_CHECK(st.initial_sync);
      // Keys go out as bin: py2p breaks on str keys.
      BOOST_CHECK_EQUAL(msg.payload[1].kind_case(), pb::Value::kBytes);
      BOOST_CHECK_EQUAL(st.key, keys[i].key);
      BOOST_CHECK(value_of(st.value) == value{keys[i].val});
      BOOST_CHECK_EQUAL(st.owner, node_a);
      BOOST_CHECK_EQUAL(st.timestamp, keys[i].ts);
    }
  }
  // The first peer got its sync when it attached, and nothing new now.
  BOOST_CHECK_EQUAL(received(c, py2p::flag::store).size(), 2u);
  BOOST_CHECK_EQUAL(received(c, py2p::flag::peers).size(), 1u);
}

BOOST_AUTO_TEST_CASE(a_peer_store_reaches_the_store_under_the_lease_rule) {
  auto b = attach(peer_b, "10.0.0.2", 7000);
  auto c = attach(peer_c, "10.0.0.3", 7001);
  BOOST_REQUIRE_EQUAL(peer_count(), 2u);
  send(b, store(peer_b, "k", "from-b", now_s()));
  BOOST_CHECK(read_key("k") == value{std::string{"from-b"}});
  // Relayed unchanged to the other peer, not echoed to its sender.
  auto relayed = received(c, py2p::flag::store);
  BOOST_REQUIRE_EQUAL(relayed.size(), 1u);
  BOOST_CHECK_EQUAL(relayed[0].type, py2p::flag::broadcast);
  BOOST_CHECK_EQUAL(relayed[0].sender, peer_b);
  BOOST_CHECK(received(b, py2p::flag::store).empty());
  // Another owner, later, while B's lease lives: not applied (py2p drops it
  // silently and keeps the link).
  advance(10s);
  send(c, store(peer_c, "k", "from-c", now_s()));
  BOOST_CHECK(read_key("k") == value{std::string{"from-b"}});
  BOOST_CHECK(!closed(c));
  // The owner itself may always write (rule 2).
  send(b, store(peer_b, "k", "from-b-again", now_s()));
  BOOST_CHECK(read_key("k") == value{std::string{"from-b-again"}});
  // Once the lease is over (an hour on the node's clock), C may take it.
  advance(3601s);
  send(c, store(peer_c, "k", "from-c-late", now_s()));
  BOOST_CHECK(read_key("k") == value{std::string{"from-c-late"}});
  BOOST_CHECK_EQUAL(peer_count(), 2u);
}

BOOST_AUTO_TEST_CASE(a_local_write_goes_out_as_a_py2p_store) {
  auto b = attach(peer_b, "10.0.0.2", 7000);
  auto before = received(b).size();
  write_key("colour", value{std::string{"green"}});
  auto out = received(b);
  BOOST_REQUIRE_EQUAL(out.size(), before + 1);
  const auto& msg = out.back();
  // [0x00, our id, now, 0x0B, bin key, value]: SyncSocket.set()'s broadcast.
  BOOST_CHECK_EQUAL(msg.type, py2p::flag::broadcast);
  BOOST_CHECK_EQUAL(msg.sender, node_a);
  BOOST_CHECK_EQUAL(msg.time, now_s());
  BOOST_REQUIRE_EQUAL(msg.sub_flag(), py2p::flag::store);
  BOOST_REQUIRE_EQUAL(msg.payload.size(), 3u);
  BOOST_CHECK_EQUAL(msg.payload[1].kind_case(), pb::Value::kBytes);
  BOOST_CHECK_EQUAL(bytes_of(msg.payload[1]), "colour");
  BOOST_CHECK(value_of(msg.payload[2]) == value{std::string{"green"}});
}

BOOST_AUTO_TEST_CASE(owner_ids_go_back_in_the_msgpack_type_they_arrived_in) {
  // A py2p 0.7.870 peer (ids as bin) owns a key with a falsy value, as its
  // initial sync tells us, and writes another key itself.
  auto b = connect_peer();
  send(b, handshake_bin(peer_b, "10.0.0.2", 7000));
  BOOST_REQUIRE_EQUAL(peer_count(), 1u);
  auto owned_s = now_s() - 30;
  send(b, frame_bin(py2p::flag::whisper, peer_b, now_s(),
                    {py2p::uint(py2p::flag::store), py2p::bin("zero"),
                     py2p::uint(0), py2p::bin(peer_b), py2p::uint(owned_s)}));
  send(b, frame_bin(py2p::flag::broadcast, peer_b, now_s(),
                    py2p::store_payload("live", py2p::text("b's"))));
  BOOST_REQUIRE(read_key("zero") == value{int64_t{0}});
  BOOST_REQUIRE(read_key("live") == value{std::string{"b's"}});
  // Our own keys and a js2p peer's (ids as str) stay str.
  write_key("ours", value{std::string{"a's"}});
  auto c = attach(peer_c, "10.0.0.3", 7001);
  BOOST_REQUIRE_EQUAL(peer_count(), 2u);
  std::map<std::string, pb::Value::KindCase> owner_types;
  for (const auto& msg : received(c, py2p::flag::store)) {
    py2p::store_info st;
    BOOST_REQUIRE(py2p::read_store(msg.payload, st).empty());
    if (st.initial_sync)
      owner_types[st.key] = msg.payload[3].kind_case();
  }
  BOOST_CHECK_EQUAL(owner_types["zero"], pb::Value::kBytes);
  BOOST_CHECK_EQUAL(owner_types["live"], pb::Value::kBytes);
  BOOST_CHECK_EQUAL(owner_types["ours"], pb::Value::kText);
  // The peers list names B with its bin id.
  auto lists = received(c, py2p::flag::peers);
  BOOST_REQUIRE_EQUAL(lists.size(), 1u);
  const auto& entries = lists[0].payload[1].list();
  BOOST_REQUIRE_EQUAL(entries.items_size(), 1);
  BOOST_CHECK_EQUAL(entries.items(0).list().items(1).kind_case(),
                    pb::Value::kBytes);
  // B itself gets its own falsy key back with its own (bin) id when it asks
  // for our keys: py2p would otherwise compare bytes with str and drop us
  // (TypeError).
  send(b, frame_bin(py2p::flag::whisper, peer_b, now_s(),
                    {py2p::uint(py2p::flag::request), py2p::bin("*")}));
  size_t echoed = 0;
  for (const auto& msg : received(b, py2p::flag::store)) {
    py2p::store_info st;
    BOOST_REQUIRE(py2p::read_store(msg.payload, st).empty());
    if (st.initial_sync && st.key == "zero") {
      ++echoed;
      BOOST_CHECK_EQUAL(msg.payload[3].kind_case(), pb::Value::kBytes);
      BOOST_CHECK_EQUAL(st.owner, peer_b);
      BOOST_CHECK_EQUAL(st.timestamp, owned_s);
    }
  }
  BOOST_CHECK_EQUAL(echoed, 1u);
}

BOOST_AUTO_TEST_CASE(what_an_initial_sync_changes_is_handed_on_once) {
  auto b = attach(peer_b, "10.0.0.2", 7000);
  auto c = attach(peer_c, "10.0.0.3", 7001);
  BOOST_REQUIRE_EQUAL(peer_count(), 2u);
  auto stores_from_us = [&](caf::io::connection_handle hdl) {
    std::vector<py2p::message> xs;
    for (auto& msg : received(hdl, py2p::flag::store))
      if (msg.type == py2p::flag::broadcast && msg.sender == node_a)
        xs.push_back(std::move(msg));
    return xs;
  };
  // B's initial sync (a whisper) holds a key owned by a py2p node X (bin).
  const std::string owner_x = "OwnerXXX";
  auto owned_s = now_s() - 600;
  auto record = [&](const std::string& key, const std::string& val) {
    pb::Value v;
    to_proto(value{val}, &v);
    return std::vector<pb::Value>{py2p::uint(py2p::flag::store),
                                  py2p::text(key), v, py2p::bin(owner_x),
                                  py2p::uint(owned_s)};
  };
  send(b, frame(py2p::flag::whisper, peer_b, now_s(), record("k", "x's")));
  BOOST_REQUIRE(read_key("k") == value{std::string{"x's"}});
  // C gets it as py2p would take it from X itself: a 5-packet store with
  // X's own owner id (bin) and timestamp, broadcast by us now so C's mesh
  // floods it once; B, where it came from, gets nothing.
  auto out = stores_from_us(c);
  BOOST_REQUIRE_EQUAL(out.size(), 1u);
  BOOST_CHECK_EQUAL(out[0].time, now_s());
  py2p::store_info st;
  BOOST_REQUIRE(py2p::read_store(out[0].payload, st).empty());
  BOOST_CHECK(st.initial_sync);
  BOOST_CHECK_EQUAL(st.key, "k");
  BOOST_CHECK(value_of(st.value) == value{std::string{"x's"}});
  BOOST_CHECK_EQUAL(st.owner, owner_x);
  BOOST_CHECK_EQUAL(out[0].payload[3].kind_case(), pb::Value::kBytes);
  BOOST_CHECK_EQUAL(st.timestamp, owned_s);
  BOOST_CHECK(stores_from_us(b).empty());
  // The same record again changes nothing, so nothing more goes out.
  advance(1s);
  send(b, frame(py2p::flag::whisper, peer_b, now_s(), record("k", "x's")));
  BOOST_CHECK_EQUAL(stores_from_us(c).size(), 1u);
  // A catch-up record arriving as a broadcast (another node handed it on)
  // was flooded as received: applied, relayed unchanged, never handed on a
  // second time, so it cannot echo between nodes.
  send(c, frame(py2p::flag::broadcast, peer_c, now_s(), record("k2", "y")));
  BOOST_CHECK(read_key("k2") == value{std::string{"y"}});
  auto relayed = received(b, py2p::flag::store);
  BOOST_CHECK(std::any_of(relayed.begin(), relayed.end(), [&](const auto& m) {
    return m.sender == peer_c && m.type == py2p::flag::broadcast;
  }));
  BOOST_CHECK(stores_from_us(b).empty());
  BOOST_CHECK_EQUAL(stores_from_us(c).size(), 1u);
  // A peer attaching while py2p still accepts that broadcast gets the same
  // bytes (its mesh may lack the entry too); once it is too old, nobody.
  auto d = attach("PeerDDD", "10.0.0.4", 7002);
  auto late = stores_from_us(d);
  BOOST_REQUIRE_EQUAL(late.size(), 1u);
  BOOST_CHECK_EQUAL(late[0].time, out[0].time);
  py2p::store_info late_st;
  BOOST_REQUIRE(py2p::read_store(late[0].payload, late_st).empty());
  BOOST_CHECK_EQUAL(late_st.key, "k");
  BOOST_CHECK_EQUAL(late_st.owner, owner_x);
  BOOST_CHECK_EQUAL(late_st.timestamp, owned_s);
  advance(60s);
  auto e = attach("PeerEEE", "10.0.0.5", 7003);
  BOOST_CHECK(stores_from_us(e).empty());
  BOOST_CHECK_EQUAL(peer_count(), 4u);
}

BOOST_AUTO_TEST_CASE(hostile_input_closes_only_that_connection) {
  auto good = attach(peer_b, "10.0.0.2", 7000);
  BOOST_REQUIRE_EQUAL(peer_count(), 1u);
  auto body = py2p::build(py2p::flag::broadcast, peer_c, now_s(), {});
  auto bad_id = std::string(py2p::id_size, '\x5a') + body;
  auto raw_not_msgpack = py2p::make_raw(std::string{"\xc1\xc1", 2});
  struct attempt {
    std::string name;
    std::string bytes;
  };
  auto len = [](const std::string& x) {
    auto n = static_cast<uint32_t>(x.size());
    return std::string{static_cast<char>(n >> 24), static_cast<char>(n >> 16),
                       static_cast<char>(n >> 8), static_cast<char>(n)};
  };
  std::vector<attempt> attempts{
    {"garbage frame", std::string("\0\0\0\3\xff\xff\xff", 7)},
    {"oversize length", std::string("\x00\x10\x00\x01", 4)},
    {"checksum mismatch", len(bad_id) + bad_id},
    {"not msgpack", py2p::frame(raw_not_msgpack, {}, node_cfg.max_frame_size)},
    {"foreign protocol id",
     handshake(peer_c, "10.0.0.3", 7001, py2p::protocol_id("sync", false))},
    {"our own id", handshake(node_a, "10.0.0.3", 7001)},
  };
  for (const auto& a : attempts) {
    BOOST_TEST_CONTEXT(a.name) {
      // Before the handshake...
      auto early = connect_peer();
      send(early, a.bytes);
      BOOST_CHECK(closed(early));
      // ... and after it.
      auto late = attach(peer_c, "10.0.0.3", 7001);
      BOOST_CHECK_EQUAL(peer_count(), 2u);
      send(late, a.bytes);
      BOOST_CHECK(closed(late));
      BOOST_CHECK_EQUAL(peer_count(), 1u);
      BOOST_CHECK(!closed(good));
    }
  }
  // The good link still carries writes both ways.
  send(good, store(peer_b, "still", "here", now_s()));
  BOOST_CHECK(read_key("still") == value{std::string{"here"}});
  write_key("mine", value{std::string{"too"}});
  auto stores = received(good, py2p::flag::store);
  BOOST_REQUIRE(!stores.empty());
  BOOST_CHECK_EQUAL(bytes_of(stores.back().payload[1]), "mine");
}

BOOST_AUTO_TEST_CASE(frames_before_the_handshake_wait_for_it) {
  // py2p processes messages from a peer that never sent a handshake; the
  // link holds them until the peer is attached, then applies them in order.
  auto b = connect_peer();
  send(b, store(peer_b, "early", "first", now_s()));
  send(b, store(peer_b, "early", "second", now_s()));
  BOOST_CHECK(!read_key("early"));
  BOOST_CHECK(!closed(b));
  send(b, handshake(peer_b, "10.0.0.2", 7000));
  BOOST_CHECK_EQUAL(peer_count(), 1u);
  BOOST_CHECK(read_key("early") == value{std::string{"second"}});
  // Without a handshake, the deadline closes the connection and what it
  // sent is never applied.
  auto silent = connect_peer();
  send(silent, store(peer_c, "never", "applied", now_s()));
  advance(2s);
  BOOST_CHECK(closed(silent));
  BOOST_CHECK(!read_key("never"));
  BOOST_CHECK(!closed(b));
  BOOST_CHECK_EQUAL(peer_count(), 1u);
}

BOOST_AUTO_TEST_CASE(a_frame_left_unfinished_is_dropped_after_py2p_60_s) {
  // py2p drops a connection that holds part of a frame and sent nothing
  // for 60 s; the link does the same, so half a frame cannot hold a
  // connection and its buffer forever.
  auto stalled = attach(peer_b, "10.0.0.2", 7000);
  auto trickling = attach(peer_c, "10.0.0.3", 7001);
  BOOST_REQUIRE_EQUAL(peer_count(), 2u);
  auto whole = store(peer_b, "half", "frame", now_s());
  send(stalled, whole.substr(0, whole.size() / 2));
  // A peer that keeps sending bytes of its frame is not stalled, however
  // slowly the frame completes. (A whisper: an initial-sync store, which
  // py2p's 60 s age limit for broadcasts does not apply to.)
  pb::Value frame_text;
  to_proto(value{std::string{"frame"}}, &frame_text);
  auto slow
    = frame(py2p::flag::whisper, peer_c, now_s(),
            py2p::store5_payload("slow", frame_text,
                                 py2p::id_value(peer_c, false), now_s()));
  size_t sent = 0;
  for (int i = 0; i < 59; ++i) {
    send(trickling, slow.substr(sent++, 1));
    advance(1s);
  }
  BOOST_CHECK(!closed(stalled));
  advance(2s);
  BOOST_CHECK(closed(stalled));
  BOOST_CHECK_EQUAL(peer_count(), 1u);
  BOOST_CHECK(!read_key("half"));
  // Counted in syncmesh_link_closes_total under its reason.
  auto stats = ask<pb::RouterStats>(node.router, stats_atom::value);
  size_t stalls = 0;
  for (const auto& [reason, n] : stats.frame_errors())
    if (reason.find("frame incomplete") != std::string::npos)
      stalls += n;
  BOOST_CHECK_EQUAL(stalls, 1u);
  // The trickling peer is still there; its frame completes and applies.
  BOOST_CHECK(!closed(trickling));
  send(trickling, slow.substr(sent));
  BOOST_CHECK(read_key("slow") == value{std::string{"frame"}});
  // With nothing left unfinished, silence is not a reason to drop it
  // (py2p has no pings).
  advance(120s);
  BOOST_CHECK(!closed(trickling));
}

BOOST_AUTO_TEST_CASE(traffic_before_the_attach_is_bounded) {
  // Frames that arrive before the router answered the attach are kept, at
  // most max_send_queue bytes of them.
  std::string big(12 * 1024, 'x');
  auto frames_of = [&](const std::string& sender, size_t n) {
    std::string out;
    for (size_t i = 0; i < n; ++i)
      out += store(sender, sender + std::to_string(i), big, now_s());
    return out;
  };
  auto per_frame = store(peer_b, peer_b + "0", big, now_s()).size();
  auto fits = node_cfg.max_send_queue / per_frame - 1;
  // Under the bound: kept, then applied once attached.
  auto b = connect_peer();
  send(b, handshake(peer_b, "10.0.0.2", 7000) + frames_of(peer_b, fits));
  BOOST_CHECK(!closed(b));
  BOOST_CHECK_EQUAL(peer_count(), 1u);
  BOOST_CHECK(read_key(peer_b + std::to_string(fits - 1)).has_value());
  // Over it: closed, and nothing it sent is applied.
  auto c = connect_peer();
  send(c, handshake(peer_c, "10.0.0.3", 7001) + frames_of(peer_c, fits + 3));
  BOOST_CHECK(closed(c));
  BOOST_CHECK(!read_key(peer_c + "0"));
  BOOST_CHECK_EQUAL(peer_count(), 1u);
  BOOST_CHECK(!closed(b));
}

BOOST_AUTO_TEST_SUITE_END()

namespace {

/// A py2p node with small link bounds (as in flow_control_tests): 4 KiB
/// frames before a handshake, 64 KiB for all unfinished handshakes, 64 KiB
/// of unapplied writes per link.
struct py2p_bounds_fixture : py2p_fixture {
  py2p_bounds_fixture()
      : py2p_fixture([](config& c) {
          c.max_handshake_frame = 4 * 1024;
          c.max_pending_handshake_bytes = 64 * 1024;
          c.ingress_window = 64 * 1024;
        }) {}
};

} // namespace

BOOST_FIXTURE_TEST_SUITE(py2p_bounds, py2p_bounds_fixture)

BOOST_AUTO_TEST_CASE(a_big_frame_before_the_py2p_handshake_closes_it) {
  auto hdl = connect_peer();
  send(hdl, test::frame_header(
              static_cast<uint32_t>(node_cfg.max_handshake_frame + 1)));
  BOOST_CHECK(closed(hdl));
  // Counted like a native link's (syncmesh_link_closes_total).
  auto stats = ask<pb::RouterStats>(node.router, stats_atom::value);
  BOOST_CHECK_EQUAL(stats.frame_errors().at("frame too large"), 1u);
  // After its handshake a peer may send frames up to max_frame_size.
  auto b = attach(peer_b, "10.0.0.2", 7000);
  std::string big(10 * 1024, 'v');
  BOOST_REQUIRE_GT(store(peer_b, "big", big, now_s()).size(),
                   node_cfg.max_handshake_frame);
  send(b, store(peer_b, "big", big, now_s()));
  BOOST_CHECK(read_key("big") == value{big});
  BOOST_CHECK(!closed(b));
}

BOOST_AUTO_TEST_CASE(unfinished_py2p_handshakes_stay_within_their_budget) {
  const auto cap = node_cfg.max_pending_handshake_bytes;
  // An honest py2p peer has sent half of its handshake when the attack
  // starts.
  auto honest_hs = handshake(peer_b, "10.0.0.2", 7000);
  auto honest = connect_peer();
  send(honest, honest_hs.substr(0, honest_hs.size() / 2));
  // Without the budget the attackers would hold 100 * 4 KiB.
  auto attackers = flood_handshakes(100);
  BOOST_CHECK_LE(links().handshakes.peak(), cap);
  auto stats = ask<pb::RouterStats>(node.router, stats_atom::value);
  BOOST_TEST_MESSAGE("py2p handshake budget: peak "
                     << links().handshakes.peak() << " of " << cap << " bytes, "
                     << stats.handshake_evictions() << " evictions");
  BOOST_CHECK_GT(stats.handshake_evictions(), 0u);
  BOOST_CHECK_LE(stats.pending_handshake_bytes(), cap);
  size_t dropped = 0;
  for (auto hdl : attackers)
    dropped += closed(hdl) ? 1 : 0;
  BOOST_CHECK_EQUAL(dropped, stats.handshake_evictions());
  // The honest handshake was never evicted: it finishes and replicates.
  BOOST_CHECK(!closed(honest));
  send(honest, honest_hs.substr(honest_hs.size() / 2));
  BOOST_CHECK_EQUAL(peer_count(), 1u);
  send(honest, store(peer_b, "k", "v", now_s()));
  BOOST_CHECK(read_key("k") == value{std::string{"v"}});
  // So does a peer arriving after the attack.
  auto late = attach(peer_c, "10.0.0.3", 7001);
  send(late, store(peer_c, "k2", "v2", now_s()));
  BOOST_CHECK(read_key("k2") == value{std::string{"v2"}});
  BOOST_CHECK_EQUAL(peer_count(), 2u);
  // The attackers that were not evicted still wait, within the budget.
  BOOST_CHECK_LE(links().handshakes.total(), cap);
}

BOOST_AUTO_TEST_CASE(a_flooding_py2p_peer_is_paused_within_its_window) {
  auto flooder = attach(peer_b, "10.0.0.2", 7000);
  auto honest = attach(peer_c, "10.0.0.3", 7001);
  BOOST_REQUIRE_EQUAL(peer_count(), 2u);
  // The flooder sends far more than the window while the store applies
  // nothing (the scheduler does not run).
  std::string payload(8 * 1024, 'f');
  auto sample = store(peer_b, "f0", payload, now_s());
  const auto window = node_cfg.ingress_window;
  const auto bound = window + sample.size();
  for (int i = 0; i < 64; ++i) {
    send_only(flooder,
              store(peer_b, "f" + std::to_string(i), payload, now_s()));
    BOOST_REQUIRE_LE(links().ingress_outstanding.load(), bound);
  }
  BOOST_CHECK(mpx.passive_mode(flooder));
  BOOST_CHECK_GE(links().ingress_pauses.load(), 1u);
  BOOST_CHECK_LE(links().ingress_peak.load(), bound);
  BOOST_TEST_MESSAGE("py2p ingress: peak "
                     << links().ingress_peak.load() << " bytes, window "
                     << window << ", pauses " << links().ingress_pauses.load());
  // Honest replication goes on meanwhile.
  send_only(honest, store(peer_c, "honest", "yes", now_s()));
  BOOST_CHECK(read_key("honest") == value{std::string{"yes"}});
  // As the store applies, the flooder is read again, in windows.
  for (int i = 0; i < 200 && !read_key("f63"); ++i) {
    run();
    mpx.read_data(flooder);
    BOOST_REQUIRE_LE(links().ingress_outstanding.load(), bound);
  }
  for (int i = 0; i < 64; ++i)
    BOOST_CHECK(read_key("f" + std::to_string(i)) == value{payload});
  BOOST_CHECK(!closed(flooder));
  BOOST_CHECK(!closed(honest));
  BOOST_CHECK_EQUAL(links().ingress_outstanding.load(), 0u);
  BOOST_CHECK_EQUAL(peer_count(), 2u);
  auto stats = ask<pb::RouterStats>(node.router, stats_atom::value);
  BOOST_CHECK_GE(stats.ingress_pauses(), 1u);
}

BOOST_AUTO_TEST_CASE(a_py2p_peer_that_does_not_read_is_shed_not_dropped) {
  auto b = attach(peer_b, "10.0.0.2", 7000);
  // The peer does not read (the test multiplexer never reports writes):
  // flood frames beyond the send queue are shed and counted, the link stays
  // and the bytes queued for it stay within the queue.
  // Random letters: the link compresses for the peer (zlib), and a
  // repeated byte would shrink to nothing.
  std::mt19937 rng{7};
  std::uniform_int_distribution<int> letter{'a', 'z'};
  for (int i = 0; i < 40; ++i) {
    std::string big(15 * 1024, ' ');
    for (auto& c : big)
      c = static_cast<char>(letter(rng));
    write_key("s" + std::to_string(i), value{big});
  }
  BOOST_CHECK(!closed(b));
  BOOST_CHECK_GT(links().flood_frames_shed.load(), 0u);
  BOOST_CHECK_LE(written(b).size(),
                 node_cfg.max_send_queue + node_cfg.max_frame_size);
  auto before = received(b, py2p::flag::store).size();
  BOOST_CHECK_LT(before, 40u);
  // The queue drains: the link repeats its initial sync, which repairs
  // what was shed (every key, as 5-packet stores).
  auto* ptr = caf::actor_cast<caf::abstract_actor*>(node.router);
  auto link = dynamic_cast<router_actor::stateful_base<router_state>&>(*ptr)
                .state.peers.at(peer_b)
                .link;
  // An I/O event, outside the link's interface: sent to the broker itself.
  caf::anon_send(caf::actor_cast<caf::actor>(link),
                 caf::io::data_transferred_msg{b, 0, 0});
  run();
  BOOST_CHECK_GT(received(b, py2p::flag::store).size(), before);
  BOOST_CHECK(!closed(b));
  BOOST_CHECK_EQUAL(peer_count(), 1u);
}

BOOST_AUTO_TEST_SUITE_END()

// -- the mesh_socket half (actors/router_py2p_messages.cpp) -------------------

namespace {

/// Takes up to 100 messages from the node's receive queue.
pb::MessageList recv_all(py2p_fixture& f) {
  pb::RecvRequest req;
  req.set_max(100);
  return f.ask<pb::MessageList>(f.node.facade, std::move(req));
}

/// A SendRequest with one text packet.
pb::SendRequest send_text(const std::string& text) {
  pb::SendRequest req;
  to_proto(value{text}, req.add_packets());
  return req;
}

} // namespace

BOOST_FIXTURE_TEST_SUITE(py2p_messages, py2p_fixture)

BOOST_AUTO_TEST_CASE(peer_messages_reach_recv_without_their_sub_flag) {
  auto b = attach(peer_b, "10.0.0.2", 7000);
  auto c = attach(peer_c, "10.0.0.3", 7001);
  // B's send('hi', 5): delivered here, relayed to C.
  auto hello = frame(py2p::flag::broadcast, peer_b, now_s(),
                     py2p::user_payload(py2p::flag::broadcast,
                                        {py2p::text("hi"), py2p::uint(5)}));
  send(b, hello);
  auto list = recv_all(*this);
  BOOST_REQUIRE_EQUAL(list.messages_size(), 1);
  const auto& m = list.messages(0).message();
  BOOST_CHECK_EQUAL(m.sender(), peer_b);
  BOOST_CHECK_EQUAL(list.messages(0).via(), peer_b);
  BOOST_CHECK_EQUAL(m.time_us(), now_s() * 1'000'000);
  BOOST_CHECK_EQUAL(m.message_id().size(), py2p::id_size);
  BOOST_REQUIRE_EQUAL(m.packets_size(), 2);
  BOOST_CHECK(value_of(m.packets(0)) == value{std::string{"hi"}});
  BOOST_CHECK(value_of(m.packets(1)) == value{int64_t{5}});
  BOOST_CHECK(!m.whisper());
  BOOST_CHECK(m.to().empty());
  BOOST_CHECK_EQUAL(received(c, py2p::flag::broadcast).size(), 1u);
  // The same broadcast again (another path): shown once.
  send(c, hello);
  BOOST_CHECK_EQUAL(recv_all(*this).messages_size(), 0);
  // C's reply(): a whisper addressed to this node.
  send(c, frame(py2p::flag::whisper, peer_c, now_s(),
                py2p::user_payload(py2p::flag::whisper, {py2p::text("re")})));
  list = recv_all(*this);
  BOOST_REQUIRE_EQUAL(list.messages_size(), 1);
  BOOST_CHECK(list.messages(0).message().whisper());
  BOOST_CHECK_EQUAL(list.messages(0).message().to(), node_a);
  // Whispers are never relayed.
  BOOST_CHECK(received(b, py2p::flag::whisper).empty());
}

BOOST_AUTO_TEST_CASE(send_goes_out_as_py2p_send_whisper_and_reply) {
  auto b = attach(peer_b, "10.0.0.2", 7000);
  auto c = attach(peer_c, "10.0.0.3", 7001);
  // A broadcast: py2p's send() to every peer.
  auto reply = ask<pb::SendReply>(node.facade, send_text("all"));
  BOOST_CHECK_EQUAL(reply.peers(), 2u);
  for (auto hdl : {b, c}) {
    auto out = received(hdl, py2p::flag::broadcast);
    BOOST_REQUIRE_EQUAL(out.size(), 1u);
    BOOST_CHECK_EQUAL(out[0].type, py2p::flag::broadcast);
    BOOST_CHECK_EQUAL(out[0].sender, node_a);
    BOOST_CHECK_EQUAL(out[0].time, now_s());
    BOOST_REQUIRE_EQUAL(out[0].payload.size(), 2u);
    BOOST_CHECK_EQUAL(bytes_of(out[0].payload[1]), "all");
  }
  // Its echo from a peer is dropped, not delivered to our users.
  auto echo = py2p::build(
    py2p::flag::broadcast, node_a, now_s(),
    py2p::user_payload(py2p::flag::broadcast, {py2p::text("all")}));
  BOOST_CHECK_EQUAL(reply.message_id(), py2p::sha256(echo));
  send(b, py2p::frame(py2p::make_raw(echo), {}, node_cfg.max_frame_size));
  BOOST_CHECK_EQUAL(recv_all(*this).messages_size(), 0);
  BOOST_CHECK_EQUAL(received(c, py2p::flag::broadcast).size(), 1u);
  // To a neighbour (reply): py2p's reply() whisper, to it only.
  auto to_b = send_text("just b");
  to_b.set_to(peer_b);
  BOOST_CHECK_EQUAL(ask<pb::SendReply>(node.facade, std::move(to_b)).peers(),
                    1u);
  auto out = received(b, py2p::flag::whisper);
  BOOST_REQUIRE_EQUAL(out.size(), 1u);
  BOOST_CHECK_EQUAL(out[0].type, py2p::flag::whisper);
  BOOST_CHECK_EQUAL(bytes_of(out[0].payload[1]), "just b");
  BOOST_CHECK(received(c, py2p::flag::whisper).empty());
  // A whisper: to every direct peer.
  auto whisper = send_text("neighbours");
  whisper.set_whisper(true);
  BOOST_CHECK_EQUAL(ask<pb::SendReply>(node.facade, std::move(whisper)).peers(),
                    2u);
  BOOST_CHECK_EQUAL(received(b, py2p::flag::whisper).size(), 2u);
  BOOST_CHECK_EQUAL(received(c, py2p::flag::whisper).size(), 1u);
}

BOOST_AUTO_TEST_CASE(a_lookup_for_a_neighbour_is_answered_as_py2p_does) {
  auto b = attach(peer_b, "10.0.0.2", 7000);
  attach(peer_c, "10.0.0.3", 7001);
  send(b, frame(py2p::flag::broadcast, peer_b, now_s(),
                {py2p::uint(py2p::flag::request), py2p::text("rid"),
                 py2p::bin(peer_c)}));
  auto answers = received(b, py2p::flag::response);
  BOOST_REQUIRE_EQUAL(answers.size(), 1u);
  BOOST_CHECK_EQUAL(answers[0].type, py2p::flag::broadcast);
  py2p::lookup_answer answer;
  BOOST_REQUIRE(py2p::read_lookup_answer(answers[0].payload, answer).empty());
  BOOST_CHECK_EQUAL(answer.request_id, "rid");
  BOOST_CHECK_EQUAL(answer.peer.host, "10.0.0.3");
  BOOST_CHECK_EQUAL(answer.peer.port, 7001u);
  BOOST_CHECK_EQUAL(answer.peer.id, peer_c);
  // The target is echoed in the type it came in (py2p keys by type).
  BOOST_CHECK_EQUAL(answers[0].payload[2].list().items(1).kind_case(),
                    pb::Value::kBytes);
  // An id we do not hold: no answer.
  send(b, frame(py2p::flag::broadcast, peer_b, now_s(),
                {py2p::uint(py2p::flag::request), py2p::text("rid2"),
                 py2p::text("Unknown")}));
  BOOST_CHECK_EQUAL(received(b, py2p::flag::response).size(), 1u);
  BOOST_CHECK_EQUAL(ask<pb::RouterStats>(node.router, stats_atom::value)
                      .py2p_lookups_answered(),
                    1u);
}

BOOST_AUTO_TEST_CASE(a_reply_to_a_non_neighbour_waits_for_it) {
  const std::string peer_d = "PeerDDD";
  auto b = attach(peer_b, "10.0.0.2", 7000);
  auto req = send_text("for d");
  req.set_to(peer_d);
  auto reply = ask<pb::SendReply>(node.facade, std::move(req));
  // py2p's reply() fallback: a lookup broadcast, in both id types since D's
  // never arrived.
  auto lookups = received(b, py2p::flag::request);
  BOOST_REQUIRE_EQUAL(lookups.size(), 2u);
  for (const auto& l : lookups) {
    BOOST_CHECK_EQUAL(l.type, py2p::flag::broadcast);
    BOOST_REQUIRE_EQUAL(l.payload.size(), 3u);
    BOOST_CHECK_EQUAL(bytes_of(l.payload[1]), reply.message_id());
    BOOST_CHECK_EQUAL(bytes_of(l.payload[2]), peer_d);
  }
  BOOST_CHECK(lookups[0].payload[2].kind_case()
              != lookups[1].payload[2].kind_case());
  // D attaches (dialled after an answer, or on its own): it gets the reply.
  auto d = attach(peer_d, "10.0.0.4", 7002);
  auto out = received(d, py2p::flag::whisper);
  BOOST_REQUIRE_EQUAL(out.size(), 1u);
  BOOST_CHECK_EQUAL(out[0].type, py2p::flag::whisper);
  BOOST_CHECK_EQUAL(bytes_of(out[0].payload[1]), "for d");
  // Unanswered replies give up after 60 s, counted.
  auto lost = send_text("for nobody");
  lost.set_to("PeerEEE");
  ask<pb::SendReply>(node.facade, std::move(lost));
  advance(61s);
  auto stats = ask<pb::RouterStats>(node.router, stats_atom::value);
  BOOST_CHECK_EQUAL(stats.py2p_messages_dropped().count("reply_undelivered"),
                    1u);
}

BOOST_AUTO_TEST_CASE(hostile_user_messages_are_dropped_and_counted) {
  auto b = attach(peer_b, "10.0.0.2", 7000);
  std::vector<pb::Value> many(4097, py2p::uint(1));
  send(b, frame(py2p::flag::broadcast, peer_b, now_s(),
                py2p::user_payload(py2p::flag::broadcast, many)));
  pb::Value deep = py2p::text("leaf");
  for (int i = 0; i < default_max_value_depth + 2; ++i) {
    pb::Value outer;
    *outer.mutable_list()->add_items() = deep;
    deep = outer;
  }
  send(b, frame(py2p::flag::whisper, peer_b, now_s(),
                py2p::user_payload(py2p::flag::whisper, {deep})));
  BOOST_CHECK_EQUAL(recv_all(*this).messages_size(), 0);
  auto stats = ask<pb::RouterStats>(node.router, stats_atom::value);
  BOOST_CHECK_EQUAL(stats.py2p_messages_dropped().at("too_many_packets"), 1u);
  BOOST_CHECK_EQUAL(stats.py2p_messages_dropped().at("invalid_packet"), 1u);
  // The link stays and its next message is delivered.
  BOOST_CHECK(!closed(b));
  send(b, frame(py2p::flag::whisper, peer_b, now_s(),
                py2p::user_payload(py2p::flag::whisper, {py2p::text("ok")})));
  BOOST_CHECK_EQUAL(recv_all(*this).messages_size(), 1);
}

BOOST_AUTO_TEST_SUITE_END()
