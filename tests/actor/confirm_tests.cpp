// Confirmation queries from the mesh at one node (issue 17): a hostile
// peer asking about writes that never come costs a bounded table, counted
// and expired; a query about a write the node holds is answered at once.

#include <boost/test/unit_test.hpp>

#include <chrono>
#include <string>

#include "actors/atoms.hpp"
#include "actors/dict_store.hpp"
#include "support/node_fixture.hpp"

using namespace std::chrono_literals;
using namespace syncmesh;

namespace {

struct confirm_fixture : test::node_fixture {
  confirm_fixture()
      : node_fixture([](config& c) {
          c.max_confirm_waits = 16;
          c.max_confirm_wait_bytes = 16 * 1024;
          c.max_confirm_timeout = std::chrono::seconds(10);
        }) {}

  /// A confirmation query envelope about `key` at version `v`.
  pb::Envelope query(uint64_t id, const std::string& key, uint64_t wall_us,
                     uint64_t ttl_ms = 60'000) {
    pb::Envelope env;
    env.set_message_id("attacker/c" + std::to_string(id));
    env.set_origin("attacker");
    env.set_hops_left(1);
    auto* q = env.mutable_confirm_query();
    q->set_query_id(id);
    q->set_origin("attacker");
    q->set_ttl_ms(ttl_ms);
    auto* rec = q->add_records();
    rec->set_key(key);
    auto* v = rec->mutable_version();
    v->set_epoch(wall_us);
    v->set_claim_us(wall_us);
    v->set_claimer("attacker");
    v->mutable_stamp()->set_wall_us(wall_us);
    v->mutable_stamp()->set_node("attacker");
    return env;
  }

  pb::StoreStats store_stats() {
    return ask<pb::StoreStats>(node.store, stats_atom::value);
  }
};

} // namespace

BOOST_FIXTURE_TEST_SUITE(confirm_queries, confirm_fixture)

BOOST_AUTO_TEST_CASE(queries_for_writes_that_never_come_stay_bounded) {
  const int n = 200;
  for (int i = 0; i < n; ++i) {
    // As a link hands them over (the router checks, de-duplicates and
    // passes them to the store).
    self->send(node.router, confirm_atom::value, std::string{"attacker"},
               query(static_cast<uint64_t>(i), "never-" + std::to_string(i),
                     clock.now()));
    run();
    auto stats = store_stats();
    BOOST_REQUIRE_LE(stats.confirm_waits(), node_cfg.max_confirm_waits);
    BOOST_REQUIRE_LE(stats.confirm_wait_bytes(),
                     node_cfg.max_confirm_wait_bytes);
  }
  auto stats = store_stats();
  BOOST_TEST(stats.confirm_waits() == node_cfg.max_confirm_waits);
  BOOST_TEST(stats.confirm_waits_dropped() == n - node_cfg.max_confirm_waits);
  BOOST_TEST(stats.confirm_answers() == 0u);
  // A duplicate (same message ID) is not held twice.
  self->send(node.router, confirm_atom::value, std::string{"attacker"},
             query(n - 1, "never-again", clock.now()));
  run();
  BOOST_TEST(store_stats().confirm_waits_dropped()
             == n - node_cfg.max_confirm_waits);
  // Held at most max_confirm_timeout (10 s), whatever the query's ttl.
  advance(11s);
  stats = store_stats();
  BOOST_TEST(stats.confirm_waits() == 0u);
  BOOST_TEST(stats.confirm_wait_bytes() == 0u);
  BOOST_TEST(stats.confirm_waits_expired() == node_cfg.max_confirm_waits);
}

BOOST_AUTO_TEST_CASE(a_query_about_a_held_write_is_answered_at_once) {
  pb::SetRequest set;
  set.set_key("k");
  set.mutable_value()->set_text("v");
  auto ack = ask<pb::WriteAck>(node.facade, set);
  auto env = query(1, "k", 0);
  *env.mutable_confirm_query()->mutable_records(0)->mutable_version()
    = ack.meta().version();
  self->send(node.router, confirm_atom::value, std::string{"attacker"}, env);
  run();
  auto stats = store_stats();
  BOOST_TEST(stats.confirm_answers() == 1u);
  BOOST_TEST(stats.confirm_waits() == 0u);
  // A query that is not well-formed is dropped whole (no key).
  auto bad = query(2, "", 0);
  bad.set_message_id("attacker/bad");
  self->send(node.router, confirm_atom::value, std::string{"attacker"}, bad);
  run();
  stats = store_stats();
  BOOST_TEST(stats.confirm_answers() == 1u);
  BOOST_TEST(stats.confirm_waits() == 0u);
}

BOOST_AUTO_TEST_SUITE_END()
