// Deterministic tests of one node's actors (facade -> dict store -> router,
// dict store -> lease manager -> facade) on CAF's test coordinator: no
// threads, no sleeps, virtual time. The last suites drive the lease manager
// and the dict store alone, with collectors in place of their neighbours.

#define BOOST_TEST_MODULE syncmesh_actors
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include <caf/all.hpp>
#include <caf/io/middleman.hpp>

#include "actors/atoms.hpp"
#include "actors/dict_store.hpp"
#include "actors/facade.hpp"
#include "actors/lease_conflicts.hpp"
#include "actors/lease_manager.hpp"
#include "actors/node_error_proto.hpp"
#include "actors/router_state.hpp"
#include "actors/store_state.hpp"
#include "messages/frame_codec.hpp"
#include "messages/value_proto.hpp"
#include "support/caf_setup.hpp"
#include "support/remote_writes.hpp"
#include "syncmesh/clock.hpp"

using namespace std::chrono_literals;
using namespace syncmesh;
using syncmesh::test::delete_record;
using syncmesh::test::remote_version;
using syncmesh::test::set_record;
using syncmesh::test::write_envelope;

namespace {

const std::string self_id = "node-a";
const std::string other_id = "node-b";
constexpr uint64_t hour_us = 3'600'000'000;

/// A node on the test coordinator with a manual wall clock; `advance` moves
/// the wall clock and CAF's actor clock together.
struct node_fixture {
  test::deterministic_config cfg_;
  caf::actor_system sys;
  caf::scheduler::test_coordinator& sched;
  caf::scoped_actor self;
  manual_clock clock;
  config node_cfg;
  node_actors node;

  explicit node_fixture(config base = {})
      : sys(cfg_),
        sched(dynamic_cast<caf::scheduler::test_coordinator&>(sys.scheduler())),
        self(sys, true) {
    node_cfg = std::move(base);
    node_cfg.node_id = node_id::from_raw(self_id);
    node_cfg.listen = false; // these tests inject traffic through the router
    node_cfg.clock = clock.as_wall_clock();
    node = spawn_node(sys, node_cfg);
    sched.run();
  }

  ~node_fixture() {
    caf::anon_send_exit(node.facade, caf::exit_reason::user_shutdown);
    for (int i = 0; i < 100 && (sched.has_job() || sched.has_pending_timeout());
         ++i) {
      sched.run();
      sched.trigger_timeouts();
    }
  }

  void advance(std::chrono::microseconds d) {
    clock.advance(d);
    sched.clock().advance_time(d);
    sched.run();
  }

  /// Sends `msg` as a request to `dest`, runs everything, and returns the
  /// reply or the error.
  template <class Reply, class Dest, class... Ts>
  caf::expected<Reply> ask(const Dest& dest, Ts&&... xs) {
    auto handle = self->request(dest, caf::infinite, std::forward<Ts>(xs)...);
    sched.run();
    // A blocking receive would wait forever on the single-threaded test
    // coordinator: only read the reply once it is there.
    if (self->mailbox().size() == 0)
      return caf::make_error(caf::sec::request_timeout, "no reply");
    std::optional<caf::expected<Reply>> result;
    handle.receive([&](Reply& x) { result = std::move(x); },
                   [&](caf::error& err) { result = std::move(err); });
    return std::move(*result);
  }

  caf::expected<pb::WriteAck> set(const std::string& key, const value& val) {
    pb::SetRequest req;
    req.set_key(key);
    to_proto(val, req.mutable_value());
    return ask<pb::WriteAck>(node.facade, std::move(req));
  }

  caf::expected<pb::DeleteReply> erase(const std::string& key) {
    pb::DeleteRequest req;
    req.set_key(key);
    return ask<pb::DeleteReply>(node.facade, std::move(req));
  }

  caf::expected<pb::GetReply> get(const std::string& key) {
    pb::GetRequest req;
    req.set_key(key);
    return ask<pb::GetReply>(node.facade, std::move(req));
  }

  std::optional<value> read(const std::string& key) {
    auto reply = get(key);
    if (!reply || !reply->found())
      return std::nullopt;
    value result;
    BOOST_REQUIRE(from_proto(reply->value(), result).empty());
    return result;
  }

  caf::expected<bool> inject(const pb::Envelope& env,
                             const std::string& peer = "peer-1") {
    return ask<bool>(node.router, inbound_atom::value, peer, env);
  }

  pb::RouterStats router_stats() {
    auto stats = ask<pb::RouterStats>(node.router, stats_atom::value);
    BOOST_REQUIRE(stats);
    return *stats;
  }

  std::string dump() {
    auto bytes = ask<std::string>(node.store, dump_atom::value);
    BOOST_REQUIRE(bytes);
    return *bytes;
  }

  /// Spawns an actor that collects every message it receives.
  /// Spawns an actor that collects every message it receives. The inbox is
  /// shared: the collector may outlive the test's variables while the
  /// fixture shuts the node down.
  caf::actor collector(std::shared_ptr<std::vector<caf::message>> inbox) {
    return sys.spawn([inbox](caf::event_based_actor* me) -> caf::behavior {
      me->set_default_handler(
        [inbox](caf::scheduled_actor*,
                caf::message_view& x) -> caf::result<caf::message> {
          inbox->push_back(x.move_content_to_message());
          return caf::message{};
        });
      return {[](caf::unit_t) {
      }};
    });
  }

  /// Attaches `link` to the router as an established inbound peer, the way
  /// a peer link does after its handshake.
  void attach(const std::string& peer, const caf::actor& link) {
    pb::PeerInfo info;
    info.set_node_id(peer);
    caf::send_as(link, node.router, attach_atom::value, info);
    sched.run();
  }

  errc code(const caf::error& err) { return code_of(err); }
};

/// Decodes the write records of frames a peer link would receive.
std::vector<pb::WriteRecord>
records_in(const std::vector<caf::message>& inbox) {
  std::vector<pb::WriteRecord> result;
  for (const auto& msg : inbox) {
    if (!msg.match_elements<frame_atom, std::string>())
      continue; // e.g. the router's answer to the attach
    const auto& frame = msg.get_as<std::string>(1);
    frame_decoder decoder;
    decoder.feed(frame);
    std::string payload;
    BOOST_REQUIRE(decoder.next(payload) == frame_status::ok);
    pb::Envelope env;
    BOOST_REQUIRE(parse_envelope(payload, env).empty());
    BOOST_CHECK_EQUAL(env.origin(), self_id);
    pb::WriteBatch batch;
    BOOST_REQUIRE(envelope_builder::decode_writes(env, batch).empty());
    for (auto& rec : batch.records())
      result.push_back(rec);
  }
  return result;
}

std::vector<pb::Event> events_in(const std::vector<caf::message>& inbox) {
  std::vector<pb::Event> result;
  for (const auto& msg : inbox)
    if (msg.match_elements<pb::Event>())
      result.push_back(msg.get_as<pb::Event>(0));
  return result;
}

} // namespace

BOOST_AUTO_TEST_SUITE(local_writes)

BOOST_AUTO_TEST_CASE(set_then_get_returns_value_and_owner) {
  node_fixture f;
  auto ack = f.set("k", value{"v"});
  BOOST_REQUIRE(ack);
  BOOST_CHECK_EQUAL(ack->applied(), 1u);
  BOOST_CHECK_EQUAL(ack->meta().owner(), self_id);
  BOOST_CHECK_EQUAL(ack->meta().lease_end_us(), f.clock.now() + hour_us);
  auto got = f.get("k");
  BOOST_REQUIRE(got);
  BOOST_CHECK(got->found());
  BOOST_CHECK_EQUAL(got->value().text(), "v");
  BOOST_CHECK_EQUAL(got->meta().time_us(), f.clock.now());
  auto missing = f.get("nope");
  BOOST_REQUIRE(missing);
  BOOST_CHECK(!missing->found());
}

BOOST_AUTO_TEST_CASE(every_changing_local_write_hands_router_one_record) {
  node_fixture f;
  auto inbox = std::make_shared<std::vector<caf::message>>();
  auto sink = f.collector(inbox);
  f.attach("peer-1", sink);
  f.sched.run();
  BOOST_REQUIRE(f.set("a", value{1}));
  BOOST_REQUIRE(f.set("a", value{2}));
  pb::UpdateRequest update;
  for (auto key : {"x", "y", "z"}) {
    auto* item = update.add_items();
    item->set_key(key);
    to_proto(value{key}, item->mutable_value());
  }
  auto ack = f.ask<pb::WriteAck>(f.node.facade, update);
  BOOST_REQUIRE(ack);
  BOOST_CHECK_EQUAL(ack->applied(), 3u);
  BOOST_REQUIRE(f.erase("x"));
  pb::DeltaRequest delta;
  delta.set_key("m");
  value_map fields{{map_key{"f"}, value{1}}};
  to_proto(fields, delta.mutable_fields());
  BOOST_REQUIRE(f.ask<pb::WriteAck>(f.node.facade, delta));
  // 2 sets + 3 updates + 1 delete + 1 delta: one record each, no more.
  BOOST_CHECK_EQUAL(f.router_stats().records_out(), 7u);
  auto records = records_in(*inbox);
  BOOST_REQUIRE_EQUAL(records.size(), 7u);
  BOOST_CHECK_EQUAL(records[0].key(), "a");
  BOOST_CHECK_EQUAL(records[1].value().int64(), 2);
  BOOST_CHECK(records[5].has_tombstone());
  BOOST_CHECK(records[6].has_fields());
  // The update went out as one frame (batched), not three.
  auto frames = std::count_if(inbox->begin(), inbox->end(), [](const auto& m) {
    return m.template match_elements<frame_atom, std::string>();
  });
  BOOST_CHECK_EQUAL(frames, 5);
}

BOOST_AUTO_TEST_CASE(refused_writes_reach_neither_store_nor_router) {
  node_fixture f;
  auto before = f.dump();
  pb::SetRequest empty_key;
  to_proto(value{"v"}, empty_key.mutable_value());
  auto err = f.ask<pb::WriteAck>(f.node.facade, empty_key);
  BOOST_REQUIRE(!err);
  BOOST_CHECK(f.code(err.error()) == errc::invalid_key);
  pb::SetRequest no_kind;
  no_kind.set_key("k");
  no_kind.mutable_value();
  err = f.ask<pb::WriteAck>(f.node.facade, no_kind);
  BOOST_REQUIRE(!err);
  BOOST_CHECK(f.code(err.error()) == errc::malformed);
  auto del = f.erase("absent");
  BOOST_REQUIRE(!del);
  BOOST_CHECK(f.code(del.error()) == errc::key_not_found);
  BOOST_CHECK_EQUAL(f.dump(), before);
  BOOST_CHECK_EQUAL(f.router_stats().records_out(), 0u);
}

BOOST_AUTO_TEST_CASE(deltas_keep_the_order_written_here_and_on_the_wire) {
  // Issue 17: apply_delta("m", {z, a}) then {a, b} reads {z, a, b} (not
  // sorted by key, "a" not moved), and the records flooded to a peer say
  // so: the second carries the place of "a", so any replica reads the same.
  node_fixture f;
  auto inbox = std::make_shared<std::vector<caf::message>>();
  f.attach("peer-1", f.collector(inbox));
  f.sched.run();
  auto delta = [&](value_map fields) {
    pb::DeltaRequest req;
    req.set_key("m");
    to_proto(fields, req.mutable_fields());
    return static_cast<bool>(f.ask<pb::WriteAck>(f.node.facade, req));
  };
  BOOST_REQUIRE(delta({{map_key{"z"}, value{1}}, {map_key{"a"}, value{2}}}));
  BOOST_REQUIRE(delta({{map_key{"a"}, value{3}}, {map_key{"b"}, value{4}}}));
  const value expected{{"z", 1}, {"a", 3}, {"b", 4}};
  BOOST_REQUIRE(f.read("m").has_value());
  BOOST_CHECK(*f.read("m") == expected);
  auto records = records_in(*inbox);
  BOOST_REQUIRE_EQUAL(records.size(), 2u);
  BOOST_CHECK_EQUAL(records[0].field_origins_size(), 0);
  BOOST_REQUIRE_EQUAL(records[1].field_origins_size(), 1);
  BOOST_CHECK_EQUAL(records[1].field_origins(0).field(), 0u);
  BOOST_CHECK_EQUAL(records[1].field_origins(0).index(), 1u);
  store_state replica;
  for (auto i : {1, 0}) {
    std::string err;
    replica.apply(records[i], false, err);
    BOOST_REQUIRE_MESSAGE(err.empty(), err);
  }
  BOOST_REQUIRE(replica.find("m") != nullptr);
  BOOST_CHECK(replica.find("m")->read() == expected);
}

BOOST_AUTO_TEST_CASE(delta_on_non_map_is_a_type_error) {
  node_fixture f;
  BOOST_REQUIRE(f.set("s", value{"text"}));
  auto before = f.dump();
  pb::DeltaRequest delta;
  delta.set_key("s");
  to_proto(value_map{{map_key{"f"}, value{1}}}, delta.mutable_fields());
  auto ack = f.ask<pb::WriteAck>(f.node.facade, delta);
  BOOST_REQUIRE(!ack);
  BOOST_CHECK(f.code(ack.error()) == errc::wrong_type);
  BOOST_CHECK_EQUAL(f.dump(), before);
}

BOOST_AUTO_TEST_CASE(update_is_all_or_nothing_under_leases) {
  node_fixture f;
  auto now = f.clock.now();
  auto v = remote_version(other_id, 0, now, now, now + hour_us);
  BOOST_REQUIRE(
    f.inject(write_envelope(other_id, {set_record("taken", value{"b"}, v)})));
  auto before = f.dump();
  pb::UpdateRequest update;
  for (auto key : {"free1", "taken", "free2"}) {
    auto* item = update.add_items();
    item->set_key(key);
    to_proto(value{"a"}, item->mutable_value());
  }
  auto ack = f.ask<pb::WriteAck>(f.node.facade, update);
  BOOST_REQUIRE(!ack);
  BOOST_CHECK(f.code(ack.error()) == errc::lease_held);
  BOOST_CHECK_EQUAL(f.dump(), before);
  BOOST_CHECK(!f.read("free1"));
}

BOOST_AUTO_TEST_CASE(a_refused_update_names_every_leased_key) {
  node_fixture f;
  auto now = f.clock.now();
  auto end1 = now + hour_us;
  auto end2 = now + 2 * hour_us;
  BOOST_REQUIRE(f.inject(write_envelope(
    other_id, {set_record("taken1", value{"b"},
                          remote_version(other_id, 0, now, now, end1)),
               set_record("taken2", value{"b"},
                          remote_version(other_id, 0, now, now, end2))})));
  BOOST_REQUIRE(f.set("mine", value{1}));
  auto before = f.dump();
  pb::UpdateRequest update;
  for (auto key : {"free", "taken2", "mine"}) {
    auto* item = update.add_items();
    item->set_key(key);
    to_proto(value{"a"}, item->mutable_value());
  }
  update.add_deletes("absent");
  update.add_deletes("taken1");
  auto ack = f.ask<pb::WriteAck>(f.node.facade, update);
  BOOST_REQUIRE(!ack);
  BOOST_CHECK(f.code(ack.error()) == errc::lease_held);
  auto conflicts = lease_conflicts_of(ack.error());
  BOOST_REQUIRE_EQUAL(conflicts.size(), 2u);
  // In the request's order: the sets, then the deletes.
  BOOST_CHECK_EQUAL(conflicts[0].key, "taken2");
  BOOST_CHECK_EQUAL(conflicts[0].owner, node_id::from_raw(other_id));
  BOOST_CHECK_EQUAL(conflicts[0].lease_end_us, end2);
  BOOST_CHECK_EQUAL(conflicts[1].key, "taken1");
  BOOST_CHECK_EQUAL(conflicts[1].lease_end_us, end1);
  // The first conflict keeps the single refusal's shape for old readers.
  const auto& ctx = ack.error().context();
  BOOST_REQUIRE(ctx.size() >= 3u);
  BOOST_CHECK_EQUAL(ctx.get_as<std::string>(0), "taken2");
  BOOST_CHECK_EQUAL(ctx.get_as<uint64_t>(2), end2);
  BOOST_CHECK_EQUAL(f.dump(), before); // nothing applied
  // A single-key refusal reads the same way, with its one conflict.
  auto one = f.set("taken1", value{"a"});
  BOOST_REQUIRE(!one);
  conflicts = lease_conflicts_of(one.error());
  BOOST_REQUIRE_EQUAL(conflicts.size(), 1u);
  BOOST_CHECK_EQUAL(conflicts[0].key, "taken1");
  BOOST_CHECK_EQUAL(conflicts[0].lease_end_us, end1);
}

BOOST_AUTO_TEST_CASE(set_many_answers_every_write_on_its_own) {
  node_fixture f;
  auto inbox = std::make_shared<std::vector<caf::message>>();
  auto sink = f.collector(inbox);
  f.attach("peer-1", sink);
  auto now = f.clock.now();
  auto end = now + hour_us;
  BOOST_REQUIRE(f.inject(write_envelope(
    other_id, {set_record("taken", value{"b"},
                          remote_version(other_id, 0, now, now, end))})));
  inbox->clear();
  pb::SetManyRequest req;
  auto add = [&](const std::string& key, const value& val) {
    auto* item = req.add_items();
    item->set_key(key);
    to_proto(val, item->mutable_value());
  };
  add("a", value{1});
  add("taken", value{"a"}); // another node's live lease: refused alone
  add("b", value{2});
  add("a", value{3}); // a later write of the same key wins, as in order
  auto reply = f.ask<pb::SetManyReply>(f.node.facade, req);
  BOOST_REQUIRE(reply);
  BOOST_REQUIRE_EQUAL(reply->outcomes_size(), 4);
  BOOST_CHECK(!reply->outcomes(0).has_error());
  BOOST_CHECK(!reply->outcomes(2).has_error());
  BOOST_CHECK(!reply->outcomes(3).has_error());
  BOOST_REQUIRE(reply->outcomes(1).has_error());
  // The refusal a SetRequest gets, with its context intact.
  auto err = from_proto(reply->outcomes(1).error());
  BOOST_CHECK(f.code(err) == errc::lease_held);
  auto conflicts = lease_conflicts_of(err);
  BOOST_REQUIRE_EQUAL(conflicts.size(), 1u);
  BOOST_CHECK_EQUAL(conflicts[0].key, "taken");
  BOOST_CHECK_EQUAL(conflicts[0].owner, node_id::from_raw(other_id));
  BOOST_CHECK_EQUAL(conflicts[0].lease_end_us, end);
  BOOST_CHECK_EQUAL(f.read("a")->as_int64(), 3);
  BOOST_CHECK_EQUAL(f.read("b")->as_int64(), 2);
  BOOST_CHECK_EQUAL(f.read("taken")->as_text(), "b");
  // The three applied writes went to the peer as one frame, in order.
  auto records = records_in(*inbox);
  BOOST_REQUIRE_EQUAL(records.size(), 3u);
  BOOST_CHECK_EQUAL(records[0].key(), "a");
  BOOST_CHECK_EQUAL(records[1].key(), "b");
  BOOST_CHECK_EQUAL(records[2].value().int64(), 3);
  auto frames = std::count_if(inbox->begin(), inbox->end(), [](const auto& m) {
    return m.template match_elements<frame_atom, std::string>();
  });
  BOOST_CHECK_EQUAL(frames, 1);
}

BOOST_AUTO_TEST_CASE(set_many_is_refused_whole_only_for_a_broken_limit) {
  config small;
  small.max_frame_size = 64 * 1024;
  small.max_value_size = 16 * 1024;
  node_fixture f{small};
  auto before = f.dump();
  pb::SetManyRequest req;
  auto* good = req.add_items();
  good->set_key("good");
  to_proto(value{1}, good->mutable_value());
  auto* bad = req.add_items();
  to_proto(value{2}, bad->mutable_value()); // no key
  auto reply = f.ask<pb::SetManyReply>(f.node.facade, req);
  BOOST_REQUIRE(!reply);
  BOOST_CHECK(f.code(reply.error()) == errc::invalid_key);
  // More than one frame's worth (the store floods a batch as one).
  pb::SetManyRequest big;
  for (int i = 0; i < 40; ++i) {
    auto* item = big.add_items();
    item->set_key("k" + std::to_string(i));
    to_proto(value{std::string(2000, 'x')}, item->mutable_value());
  }
  reply = f.ask<pb::SetManyReply>(f.node.facade, big);
  BOOST_REQUIRE(!reply);
  BOOST_CHECK(f.code(reply.error()) == errc::value_too_large);
  BOOST_CHECK_EQUAL(f.dump(), before);
}

BOOST_AUTO_TEST_CASE(update_deletes_in_the_same_step_and_skips_absent_keys) {
  node_fixture f;
  BOOST_REQUIRE(f.set("old", value{1}));
  pb::UpdateRequest update;
  auto* item = update.add_items();
  item->set_key("new");
  to_proto(value{2}, item->mutable_value());
  update.add_deletes("old");
  update.add_deletes("absent");
  auto ack = f.ask<pb::WriteAck>(f.node.facade, update);
  BOOST_REQUIRE(ack);
  BOOST_CHECK_EQUAL(ack->applied(), 2u);
  BOOST_CHECK(f.read("new").has_value());
  BOOST_CHECK(!f.read("old").has_value());
  // A leased key among the deletes refuses the whole batch.
  auto now = f.clock.now();
  auto v = remote_version(other_id, 0, now, now, now + hour_us);
  BOOST_REQUIRE(
    f.inject(write_envelope(other_id, {set_record("taken", value{"b"}, v)})));
  auto before = f.dump();
  pb::UpdateRequest refused;
  item = refused.add_items();
  item->set_key("free");
  to_proto(value{3}, item->mutable_value());
  refused.add_deletes("new");
  refused.add_deletes("taken");
  auto err = f.ask<pb::WriteAck>(f.node.facade, refused);
  BOOST_REQUIRE(!err);
  BOOST_CHECK(f.code(err.error()) == errc::lease_held);
  BOOST_CHECK_EQUAL(f.dump(), before);
  // A bad key among the deletes is refused by the facade.
  pb::UpdateRequest bad_key;
  bad_key.add_deletes("");
  err = f.ask<pb::WriteAck>(f.node.facade, bad_key);
  BOOST_REQUIRE(!err);
  BOOST_CHECK(f.code(err.error()) == errc::invalid_key);
}

BOOST_AUTO_TEST_CASE(get_many_answers_every_key_in_request_order) {
  node_fixture f;
  BOOST_REQUIRE(f.set("a", value{1}));
  BOOST_REQUIRE(f.set("b", value{"two"}));
  BOOST_REQUIRE(f.erase("b"));
  BOOST_REQUIRE(f.set("c", value{3}));
  pb::GetManyRequest many;
  for (auto key : {"c", "missing", "a", "b", "a"})
    many.add_keys(key);
  auto got = f.ask<pb::GetManyReply>(f.node.facade, many);
  BOOST_REQUIRE(got);
  BOOST_REQUIRE_EQUAL(got->replies_size(), 5);
  BOOST_CHECK_EQUAL(got->replies(0).value().int64(), 3);
  BOOST_CHECK(!got->replies(1).found());
  BOOST_CHECK_EQUAL(got->replies(2).value().int64(), 1);
  BOOST_CHECK_EQUAL(got->replies(2).meta().owner(), self_id);
  BOOST_CHECK(!got->replies(3).found()); // deleted
  BOOST_CHECK_EQUAL(got->replies(4).value().int64(), 1);
  pb::GetManyRequest bad;
  bad.add_keys("ok");
  bad.add_keys("");
  auto err = f.ask<pb::GetManyReply>(f.node.facade, bad);
  BOOST_REQUIRE(!err);
  BOOST_CHECK(f.code(err.error()) == errc::invalid_key);
}

BOOST_AUTO_TEST_CASE(popitem_takes_only_keys_this_node_may_delete) {
  node_fixture f;
  auto now = f.clock.now();
  auto v = remote_version(other_id, 0, now, now, now + hour_us);
  BOOST_REQUIRE(
    f.inject(write_envelope(other_id, {set_record("theirs", value{1}, v)})));
  BOOST_REQUIRE(f.set("mine", value{2}));
  auto popped = f.ask<pb::DeleteReply>(f.node.facade, pb::PopItemRequest{});
  BOOST_REQUIRE(popped);
  BOOST_CHECK_EQUAL(popped->key(), "mine");
  BOOST_CHECK_EQUAL(popped->old_value().int64(), 2);
  auto none = f.ask<pb::DeleteReply>(f.node.facade, pb::PopItemRequest{});
  BOOST_REQUIRE(!none);
  BOOST_CHECK(f.code(none.error()) == errc::key_not_found);
  BOOST_CHECK(f.read("theirs").has_value());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(remote_writes)

BOOST_AUTO_TEST_CASE(remote_owner_blocks_local_write_until_lease_ends) {
  node_fixture f;
  auto now = f.clock.now();
  auto end = now + hour_us;
  auto v = remote_version(other_id, 0, now, now, end);
  BOOST_REQUIRE(
    f.inject(write_envelope(other_id, {set_record("k", value{"b"}, v)})));
  auto got = f.get("k");
  BOOST_REQUIRE(got && got->found());
  BOOST_CHECK_EQUAL(got->meta().owner(), other_id);
  BOOST_CHECK_EQUAL(got->meta().lease_end_us(), end);
  auto refused = f.set("k", value{"a"});
  BOOST_REQUIRE(!refused);
  BOOST_CHECK(f.code(refused.error()) == errc::lease_held);
  const auto& ctx = refused.error().context();
  BOOST_REQUIRE((ctx.match_elements<std::string, std::string, uint64_t>()));
  BOOST_CHECK_EQUAL(ctx.get_as<std::string>(1), to_hex(other_id));
  BOOST_CHECK_EQUAL(ctx.get_as<uint64_t>(2), end);
  BOOST_CHECK_EQUAL(f.read("k")->as_text(), "b");
  // After the end plus the margin, this node claims the next epoch.
  f.advance(std::chrono::microseconds(hour_us) + 1s);
  auto ack = f.set("k", value{"a"});
  BOOST_REQUIRE(ack);
  BOOST_CHECK_EQUAL(ack->meta().owner(), self_id);
  // A new claim's epoch is its claim time, above the old owner's epoch.
  BOOST_CHECK_EQUAL(ack->meta().version().epoch(),
                    ack->meta().version().claim_us());
  BOOST_CHECK_GT(ack->meta().version().epoch(), 0u);
  // The old owner's late renewal in epoch 0 no longer wins.
  auto late
    = remote_version(other_id, 0, now, f.clock.now(), f.clock.now() + hour_us);
  BOOST_REQUIRE(
    f.inject(write_envelope(other_id, {set_record("k", value{"late"}, late)})));
  BOOST_CHECK_EQUAL(f.read("k")->as_text(), "a");
}

BOOST_AUTO_TEST_CASE(malformed_remote_writes_are_refused_and_change_nothing) {
  node_fixture f;
  BOOST_REQUIRE(f.set("keep", value{1}));
  auto before = f.dump();
  auto now = f.clock.now();
  auto good = remote_version(other_id, 0, now, now, now + hour_us);
  // Envelopes that do not decode to a write batch are refused whole.
  std::vector<pb::Envelope> bad;
  // Bytes that do not parse as a write batch.
  pb::Envelope garbage;
  garbage.set_origin(other_id);
  garbage.set_write(std::string("\xff\xff\xff\xff garbage", 13));
  bad.push_back(garbage);
  // Field writes in a whole-value body.
  pb::WriteRecord fields_rec;
  fields_rec.set_key("m");
  to_proto(good, fields_rec.mutable_version());
  fields_rec.mutable_fields();
  bad.push_back(write_envelope(other_id, {fields_rec}));
  // No writes at all.
  pb::Envelope ping;
  ping.mutable_ping()->set_nonce(1);
  bad.push_back(ping);
  for (const auto& env : bad) {
    auto res = f.inject(env);
    BOOST_REQUIRE(!res);
    BOOST_CHECK(f.code(res.error()) == errc::malformed);
  }
  BOOST_CHECK_EQUAL(f.router_stats().rejected_in(), bad.size());
  // Records that break a rule are skipped one by one and counted; their
  // batch is not refused (see handshake_tests for mixed batches).
  std::vector<pb::Envelope> skipped;
  // A record without a version.
  pb::WriteRecord no_version;
  no_version.set_key("k");
  to_proto(value{1}, no_version.mutable_value());
  skipped.push_back(write_envelope(other_id, {no_version}));
  // An empty key.
  skipped.push_back(write_envelope(other_id, {set_record("", value{1}, good)}));
  // A value without a kind.
  auto no_kind = set_record("k", value{1}, good);
  no_kind.mutable_value()->Clear();
  skipped.push_back(write_envelope(other_id, {no_kind}));
  // An oversize key.
  skipped.push_back(write_envelope(
    other_id, {set_record(std::string(f.node_cfg.max_key_size + 1, 'k'),
                          value{1}, good)}));
  for (const auto& env : skipped)
    BOOST_REQUIRE(f.inject(env));
  BOOST_CHECK_EQUAL(f.router_stats().skipped_records(), skipped.size());
  BOOST_CHECK_EQUAL(f.router_stats().rejected_in(), bad.size());
  BOOST_CHECK_EQUAL(f.dump(), before);
  // The node keeps serving.
  BOOST_REQUIRE(f.set("after", value{2}));
}

BOOST_AUTO_TEST_CASE(changed_remote_writes_flood_to_other_peers_once) {
  node_fixture f;
  auto from_peer = std::make_shared<std::vector<caf::message>>();
  auto to_peer = std::make_shared<std::vector<caf::message>>();
  f.attach("peer-1", f.collector(from_peer));
  f.attach("peer-2", f.collector(to_peer));
  f.sched.run();
  auto now = f.clock.now();
  auto v = remote_version(other_id, 0, now, now, now + hour_us);
  auto env = write_envelope(other_id, {set_record("k", value{"b"}, v)});
  BOOST_REQUIRE(f.inject(env, "peer-1"));
  BOOST_REQUIRE(f.inject(env, "peer-2")); // a duplicate stops here
  BOOST_CHECK(records_in(*from_peer).empty());
  auto records = records_in(*to_peer);
  BOOST_REQUIRE_EQUAL(records.size(), 1u);
  BOOST_CHECK_EQUAL(records[0].key(), "k");
  BOOST_CHECK_EQUAL(f.router_stats().records_in(), 2u);
  BOOST_CHECK_EQUAL(f.router_stats().records_out(), 1u);
}

BOOST_AUTO_TEST_CASE(
  writes_from_the_future_are_held_until_the_clock_catches_up) {
  node_fixture f;
  auto skew = std::chrono::duration_cast<std::chrono::microseconds>(
                f.node_cfg.effective_max_clock_skew())
                .count();
  auto future = f.clock.now() + static_cast<uint64_t>(skew) + 60'000'000;
  auto v = remote_version(other_id, 0, future, future, future + hour_us);
  BOOST_REQUIRE(
    f.inject(write_envelope(other_id, {set_record("k", value{1}, v)})));
  BOOST_CHECK(!f.read("k"));
  auto stats = f.ask<pb::LeaseStats>(f.node.lease_manager, stats_atom::value,
                                     lease_atom::value);
  BOOST_REQUIRE(stats);
  BOOST_CHECK_EQUAL(stats->held_records(), 1u);
  f.advance(59s);
  BOOST_CHECK(!f.read("k"));
  f.advance(2s);
  BOOST_CHECK(f.read("k").has_value());
}

BOOST_AUTO_TEST_CASE(tombstones_are_purged_after_the_horizon) {
  config cfg;
  cfg.tombstone_horizon = 10s;
  node_fixture f{cfg};
  BOOST_REQUIRE(f.set("k", value{1}));
  BOOST_REQUIRE(f.erase("k"));
  BOOST_CHECK(!f.dump().empty()); // the tombstone
  f.advance(5s);
  BOOST_CHECK(!f.dump().empty());
  f.advance(10s);
  BOOST_CHECK(f.dump().empty());
  auto stats = f.ask<pb::LeaseStats>(f.node.lease_manager, stats_atom::value,
                                     lease_atom::value);
  BOOST_REQUIRE(stats);
  BOOST_CHECK_EQUAL(stats->purged(), 1u);
  BOOST_CHECK_EQUAL(stats->tombstones(), 0u);
  // A late write older than the purged delete would now resurrect the key:
  // that is why a node away longer than the horizon must rejoin empty.
  BOOST_REQUIRE(f.set("k", value{2}));
  BOOST_CHECK_EQUAL(f.read("k")->as_int64(), 2);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(events)

BOOST_AUTO_TEST_CASE(subscribers_see_updates_deletes_and_lost_leases) {
  node_fixture f;
  auto inbox = std::make_shared<std::vector<caf::message>>();
  auto sub = f.collector(inbox);
  auto ok = f.ask<bool>(f.node.facade, subscribe_atom::value, sub);
  BOOST_REQUIRE(ok && *ok);
  BOOST_REQUIRE(f.set("k", value{"a"}));
  BOOST_REQUIRE(f.erase("k"));
  // This node claims "l"; another node that had not seen our claim claims
  // it a little later (its epoch is its claim time) while our lease runs:
  // it wins, and this node lost its lease.
  auto mine = f.set("l", value{"mine"});
  BOOST_REQUIRE(mine);
  auto later = f.clock.now() + 1000;
  auto v = remote_version(other_id, later, later, later, later + hour_us);
  BOOST_REQUIRE(
    f.inject(write_envelope(other_id, {set_record("l", value{"theirs"}, v)})));
  auto evs = events_in(*inbox);
  BOOST_REQUIRE_EQUAL(evs.size(), 5u);
  BOOST_CHECK(evs[0].has_update());
  BOOST_CHECK_EQUAL(evs[0].update().key(), "k");
  BOOST_CHECK_EQUAL(evs[0].update().value().text(), "a");
  BOOST_CHECK_EQUAL(evs[0].update().meta().owner(), self_id);
  BOOST_CHECK(evs[1].has_deleted());
  BOOST_CHECK_EQUAL(evs[1].deleted().key(), "k");
  BOOST_CHECK(evs[2].has_update());
  // lease_lost comes right before the update of the write that took over.
  BOOST_CHECK(evs[3].has_lease_lost());
  BOOST_CHECK_EQUAL(evs[3].lease_lost().key(), "l");
  BOOST_CHECK_EQUAL(evs[3].lease_lost().new_owner(), other_id);
  BOOST_CHECK_EQUAL(evs[3].lease_lost().old_lease_end_us(),
                    mine->meta().lease_end_us());
  BOOST_CHECK(evs[4].has_update());
  BOOST_CHECK_EQUAL(evs[4].update().value().text(), "theirs");
}

BOOST_AUTO_TEST_CASE(same_instant_claims_are_settled_by_smaller_node_id) {
  node_fixture f; // this node is "node-a", smaller than "node-b"
  auto inbox = std::make_shared<std::vector<caf::message>>();
  auto sub = f.collector(inbox);
  BOOST_REQUIRE(f.ask<bool>(f.node.facade, subscribe_atom::value, sub));
  auto now = f.clock.now();
  BOOST_REQUIRE(f.set("k", value{"a"}));
  auto v = remote_version(other_id, 0, now, now, now + hour_us);
  BOOST_REQUIRE(
    f.inject(write_envelope(other_id, {set_record("k", value{"b"}, v)})));
  BOOST_CHECK_EQUAL(f.read("k")->as_text(), "a");
  for (const auto& ev : events_in(*inbox))
    BOOST_CHECK(!ev.has_lease_lost());
  auto got = f.get("k");
  BOOST_CHECK_EQUAL(got->meta().owner(), self_id);
}

BOOST_AUTO_TEST_CASE(dead_subscribers_are_dropped) {
  node_fixture f;
  auto inbox = std::make_shared<std::vector<caf::message>>();
  auto sub = f.collector(inbox);
  BOOST_REQUIRE(f.ask<bool>(f.node.facade, subscribe_atom::value, sub));
  caf::anon_send_exit(sub, caf::exit_reason::user_shutdown);
  f.sched.run();
  auto* ptr = caf::actor_cast<caf::abstract_actor*>(f.node.facade);
  auto& state
    = dynamic_cast<facade_actor::stateful_base<facade_state>&>(*ptr).state;
  BOOST_CHECK(state.subscribers.empty());
  BOOST_REQUIRE(f.set("k", value{1})); // nobody to tell; nothing breaks
}

BOOST_AUTO_TEST_CASE(node_info_reports_identity_and_key_count) {
  node_fixture f;
  BOOST_REQUIRE(f.set("a", value{1}));
  BOOST_REQUIRE(f.set("b", value{2}));
  auto info = f.ask<pb::NodeInfo>(f.node.facade, pb::InfoRequest{});
  BOOST_REQUIRE(info);
  BOOST_CHECK_EQUAL(info->node_id(), self_id);
  BOOST_CHECK(info->leasing());
  BOOST_CHECK_EQUAL(info->key_count(), 2u);
  BOOST_CHECK_EQUAL(info->lease_duration_ms(), 3'600'000u);
}

BOOST_AUTO_TEST_SUITE_END()

namespace {

/// A write record for key `key` by `node`, claimed and stamped at `at_us`.
pb::WriteRecord record_at(const std::string& key, const std::string& node,
                          uint64_t at_us) {
  return set_record(key, value{key},
                    remote_version(node, at_us, at_us, at_us, at_us + hour_us));
}

/// The keys of the remote writes a collector in place of the store got.
std::vector<std::string> released_keys(const std::vector<caf::message>& inbox) {
  std::vector<std::string> result;
  for (const auto& msg : inbox)
    if (msg.match_elements<remote_atom, std::string, pb::WriteBatch>())
      for (const auto& rec : msg.get_as<pb::WriteBatch>(2).records())
        result.push_back(rec.key());
  return result;
}

/// An update event for `key`.
store_note update_note(const std::string& key) {
  store_note note;
  note.event.mutable_update()->set_key(key);
  return note;
}

/// The lease manager alone: collectors stand in for the store and the
/// facade.
struct lease_manager_fixture : node_fixture {
  std::shared_ptr<std::vector<caf::message>> to_store
    = std::make_shared<std::vector<caf::message>>();
  std::shared_ptr<std::vector<caf::message>> to_facade
    = std::make_shared<std::vector<caf::message>>();
  lease_manager_actor lm;

  lease_manager_fixture() {
    lm = sys.spawn(lease_manager_behavior, node_cfg, self_id);
    caf::anon_send(lm, wire_atom::value,
                   caf::actor_cast<dict_store_actor>(collector(to_store)),
                   caf::actor_cast<facade_actor>(collector(to_facade)));
    sched.run();
  }

  ~lease_manager_fixture() {
    caf::anon_send_exit(lm, caf::exit_reason::user_shutdown);
    sched.run();
  }

  uint64_t skew_us() const {
    return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(
        node_cfg.effective_max_clock_skew())
        .count());
  }
};

} // namespace

BOOST_AUTO_TEST_SUITE(lease_manager_alone)

BOOST_AUTO_TEST_CASE(a_takeover_sends_lease_lost_in_order_with_the_updates) {
  lease_manager_fixture f;
  auto now = f.clock.now();
  store_notes notes;
  notes.push_back(update_note("a"));
  // Another node claimed "b" while our lease ran: a takeover.
  auto taken = update_note("b");
  taken.lease_changed = true;
  taken.lease = lease_change{"b", now + hour_us, other_id, now + 10};
  notes.push_back(taken);
  // "c" was claimed after our lease ended: an expiry, not news.
  auto expired = update_note("c");
  expired.lease_changed = true;
  expired.lease = lease_change{"c", now, other_id, now + 10};
  notes.push_back(expired);
  notes.push_back(update_note("d"));
  caf::anon_send(f.lm, notes_atom::value, notes);
  f.sched.run();
  auto evs = events_in(*f.to_facade);
  BOOST_REQUIRE_EQUAL(evs.size(), 5u);
  BOOST_CHECK_EQUAL(evs[0].update().key(), "a");
  BOOST_REQUIRE(evs[1].has_lease_lost());
  BOOST_CHECK_EQUAL(evs[1].lease_lost().key(), "b");
  BOOST_CHECK_EQUAL(evs[1].lease_lost().new_owner(), other_id);
  BOOST_CHECK_EQUAL(evs[1].lease_lost().old_lease_end_us(), now + hour_us);
  BOOST_CHECK_EQUAL(evs[2].update().key(), "b");
  BOOST_CHECK_EQUAL(evs[3].update().key(), "c");
  BOOST_CHECK_EQUAL(evs[4].update().key(), "d");
}

BOOST_AUTO_TEST_CASE(its_timer_fires_for_the_earliest_due_time) {
  lease_manager_fixture f;
  auto now = f.clock.now();
  auto skew = f.skew_us();
  // Held until their stamps are within the skew bound: "late" in 30 s,
  // "early" in 10 s, though "late" arrived first.
  pb::WriteBatch late;
  *late.add_records() = record_at("late", other_id, now + skew + 30'000'000);
  caf::anon_send(f.lm, hold_atom::value, other_id, late);
  pb::WriteBatch early;
  *early.add_records() = record_at("early", other_id, now + skew + 10'000'000);
  caf::anon_send(f.lm, hold_atom::value, other_id, early);
  f.sched.run();
  BOOST_CHECK(released_keys(*f.to_store).empty());
  f.advance(9s);
  BOOST_CHECK(released_keys(*f.to_store).empty());
  f.advance(2s);
  BOOST_CHECK(released_keys(*f.to_store) == std::vector<std::string>{"early"});
  f.advance(18s);
  BOOST_CHECK_EQUAL(released_keys(*f.to_store).size(), 1u);
  f.advance(2s);
  BOOST_CHECK(
    (released_keys(*f.to_store) == std::vector<std::string>{"early", "late"}));
}

BOOST_AUTO_TEST_CASE(held_writes_are_bounded) {
  lease_manager_fixture f;
  f.node_cfg.max_held_writes = 2;
  auto lm = f.sys.spawn(lease_manager_behavior, f.node_cfg, self_id);
  auto to_store = std::make_shared<std::vector<caf::message>>();
  caf::anon_send(lm, wire_atom::value,
                 caf::actor_cast<dict_store_actor>(f.collector(to_store)),
                 caf::actor_cast<facade_actor>(f.collector(to_store)));
  auto far = f.clock.now() + f.skew_us() + 5'000'000;
  pb::WriteBatch batch;
  for (auto key : {"x", "y", "z"})
    *batch.add_records() = record_at(key, other_id, far);
  caf::anon_send(lm, hold_atom::value, other_id, batch);
  f.sched.run();
  f.advance(6s);
  BOOST_CHECK((released_keys(*to_store) == std::vector<std::string>{"x", "y"}));
  caf::anon_send_exit(lm, caf::exit_reason::user_shutdown);
  f.sched.run();
}

BOOST_AUTO_TEST_SUITE_END()

namespace {

/// The dict store alone: collectors stand in for the router and the lease
/// manager.
struct dict_store_fixture : node_fixture {
  std::shared_ptr<std::vector<caf::message>> to_router
    = std::make_shared<std::vector<caf::message>>();
  std::shared_ptr<std::vector<caf::message>> to_lm
    = std::make_shared<std::vector<caf::message>>();
  /// Reads the store's table from outside the actor, as the HTTP front does.
  std::shared_ptr<store_reader> reader = std::make_shared<store_reader>();
  dict_store_actor store;

  dict_store_fixture() {
    store = sys.spawn(dict_store_behavior, node_cfg, self_id,
                      caf::actor_cast<router_actor>(collector(to_router)),
                      caf::actor_cast<lease_manager_actor>(collector(to_lm)),
                      size_t{65536}, std::shared_ptr<clock_fence>{}, reader,
                      std::shared_ptr<durable_start>{});
    caf::anon_send(store, events_atom::value, true);
    sched.run();
  }

  ~dict_store_fixture() {
    caf::anon_send_exit(store, caf::exit_reason::user_shutdown);
    sched.run();
  }

  /// Every note the lease manager got, in order.
  store_notes notes() const {
    store_notes result;
    for (const auto& msg : *to_lm)
      if (msg.match_elements<notes_atom, store_notes>())
        for (const auto& note : msg.get_as<store_notes>(1))
          result.push_back(note);
    return result;
  }

  size_t count(const std::vector<caf::message>& inbox,
               bool (*match)(const caf::message&)) const {
    return static_cast<size_t>(
      std::count_if(inbox.begin(), inbox.end(), match));
  }
};

} // namespace

BOOST_AUTO_TEST_SUITE(dict_store_alone)

BOOST_AUTO_TEST_CASE(a_local_write_is_readable_when_acknowledged) {
  dict_store_fixture f;
  pb::SetRequest req;
  req.set_key("k");
  to_proto(value{"v"}, req.mutable_value());
  auto ack = f.ask<pb::WriteAck>(f.store, req);
  BOOST_REQUIRE(ack);
  BOOST_CHECK_EQUAL(ack->applied(), 1u);
  pb::GetRequest get;
  get.set_key("k");
  auto got = f.ask<pb::GetReply>(f.store, get);
  BOOST_REQUIRE(got);
  BOOST_CHECK(got->found());
  BOOST_CHECK_EQUAL(got->value().text(), "v");
  // The reader outside the actor sees it too, with the same metadata.
  pb::GetReply direct;
  BOOST_REQUIRE(f.reader->get("k", direct));
  BOOST_CHECK(direct.found());
  BOOST_CHECK_EQUAL(direct.value().text(), "v");
  BOOST_CHECK_EQUAL(direct.meta().DebugString(), got->meta().DebugString());
  pb::GetReply absent;
  BOOST_REQUIRE(f.reader->get("nope", absent));
  BOOST_CHECK(!absent.found());
  // Flooded once, and its event went to the lease manager.
  BOOST_CHECK_EQUAL(
    f.count(
      *f.to_router,
      [](const caf::message& m) {
        return m.match_elements<changed_atom, std::string, pb::WriteBatch>();
      }),
    1u);
  auto notes = f.notes();
  BOOST_REQUIRE_EQUAL(notes.size(), 1u);
  BOOST_CHECK_EQUAL(notes[0].event.update().key(), "k");
  BOOST_CHECK(!notes[0].lease_changed);
}

BOOST_AUTO_TEST_CASE(a_live_lease_refuses_and_a_takeover_is_noted) {
  dict_store_fixture f;
  auto now = f.clock.now();
  // Another node holds "theirs": a local write is refused.
  pb::WriteBatch theirs;
  *theirs.add_records() = record_at("theirs", other_id, now);
  caf::anon_send(f.store, remote_atom::value, other_id, theirs);
  f.sched.run();
  pb::SetRequest req;
  req.set_key("theirs");
  to_proto(value{1}, req.mutable_value());
  auto refused = f.ask<pb::WriteAck>(f.store, req);
  BOOST_REQUIRE(!refused);
  BOOST_CHECK(code_of(refused.error()) == errc::lease_held);
  // We hold "mine"; a later claim by another node takes it over.
  req.set_key("mine");
  auto ack = f.ask<pb::WriteAck>(f.store, req);
  BOOST_REQUIRE(ack);
  auto later = f.clock.now() + 1000;
  pb::WriteBatch takeover;
  *takeover.add_records() = record_at("mine", other_id, later);
  caf::anon_send(f.store, remote_atom::value, other_id, takeover);
  f.sched.run();
  auto notes = f.notes();
  BOOST_REQUIRE_EQUAL(notes.size(), 3u);
  BOOST_CHECK(notes[2].lease_changed);
  BOOST_CHECK_EQUAL(notes[2].lease.key, "mine");
  BOOST_CHECK_EQUAL(notes[2].lease.new_claimer, other_id);
  BOOST_CHECK_EQUAL(notes[2].lease.old_lease_end_us,
                    ack->meta().lease_end_us());
  BOOST_CHECK(detect_takeover(notes[2].lease, self_id).has_value());
  BOOST_CHECK_EQUAL(notes[2].event.update().key(), "mine");
}

BOOST_AUTO_TEST_CASE(
  future_writes_go_to_the_lease_manager_and_deletes_ask_for_a_purge) {
  dict_store_fixture f;
  auto skew = static_cast<uint64_t>(
    std::chrono::duration_cast<std::chrono::microseconds>(
      f.node_cfg.effective_max_clock_skew())
      .count());
  pb::WriteBatch future;
  *future.add_records()
    = record_at("f", other_id, f.clock.now() + skew + 1'000'000);
  caf::anon_send(f.store, remote_atom::value, other_id, future);
  f.sched.run();
  BOOST_CHECK_EQUAL(
    f.count(*f.to_lm,
            [](const caf::message& m) {
              return m.match_elements<hold_atom, std::string, pb::WriteBatch>();
            }),
    1u);
  for (auto key : {"a", "b"}) {
    pb::SetRequest set;
    set.set_key(key);
    to_proto(value{1}, set.mutable_value());
    BOOST_REQUIRE(f.ask<pb::WriteAck>(f.store, set));
    pb::DeleteRequest del;
    del.set_key(key);
    BOOST_REQUIRE(f.ask<pb::DeleteReply>(f.store, del));
  }
  // One purge cycle at a time: the lease manager is told once.
  auto tombstone_notices = [&] {
    return f.count(*f.to_lm, [](const caf::message& m) {
      return m.match_elements<tombstones_atom>();
    });
  };
  BOOST_CHECK_EQUAL(tombstone_notices(), 1u);
  f.advance(std::chrono::duration_cast<std::chrono::microseconds>(
    f.node_cfg.tombstone_horizon + 1s));
  auto horizon = static_cast<uint64_t>(
    std::chrono::duration_cast<std::chrono::microseconds>(
      f.node_cfg.tombstone_horizon)
      .count());
  auto handle
    = f.self->request(f.store, caf::infinite, purge_atom::value, horizon);
  f.sched.run();
  BOOST_REQUIRE(f.self->mailbox().size() > 0);
  uint64_t purged = 0;
  uint64_t remaining = 99;
  handle.receive(
    [&](uint64_t p, uint64_t r) {
      purged = p;
      remaining = r;
    },
    [&](caf::error& err) { BOOST_FAIL(f.sys.render(err)); });
  BOOST_CHECK_EQUAL(purged, 2u);
  BOOST_CHECK_EQUAL(remaining, 0u);
  auto bytes = f.ask<std::string>(f.store, dump_atom::value);
  BOOST_REQUIRE(bytes);
  BOOST_CHECK(bytes->empty());
}

BOOST_AUTO_TEST_CASE(a_reader_answers_nothing_once_the_store_is_gone) {
  dict_store_fixture f;
  pb::GetReply before;
  BOOST_CHECK(f.reader->get("k", before));
  caf::anon_send_exit(f.store, caf::exit_reason::user_shutdown);
  f.sched.run();
  // The actor's state (and its table) is gone: the reader says so instead of
  // reading freed memory.
  pb::GetReply after;
  BOOST_CHECK(!f.reader->get("k", after));
  BOOST_CHECK(!after.found());
}

BOOST_AUTO_TEST_SUITE_END()
