// The HTTP front's bridge into the node (node/daemon/node_bridge.*): the
// deadline list alone, then the bridge against a node on CAF's test
// coordinator, where nothing runs until the test says so, so a batch is
// exactly what was queued before the run.
#define BOOST_TEST_MODULE syncmesh_node_bridge
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "node/daemon/node_bridge.hpp"
#include "syncmesh/errors.hpp"
#include "tests/support/node_fixture.hpp"

using namespace syncmesh;
using namespace syncmesh::test;
using namespace std::chrono_literals;

namespace {

using steady = std::chrono::steady_clock;

pb::Value text_value(const std::string& text) {
  pb::Value v;
  to_proto(value{text}, &v);
  return v;
}

/// What a bridge callback got: nothing yet, success, or an error.
struct outcome {
  bool done = false;
  caf::error err;
};

node_bridge::set_done record_into(std::shared_ptr<outcome> out) {
  return [out](caf::error err) {
    BOOST_CHECK(!out->done); // answered once
    out->done = true;
    out->err = std::move(err);
  };
}

std::optional<std::string> read_text(node_fixture& f, const std::string& key) {
  pb::GetReply got;
  BOOST_REQUIRE(f.node.reader->get(key, got));
  if (!got.found())
    return std::nullopt;
  return got.value().text();
}

} // namespace

BOOST_AUTO_TEST_SUITE(deadlines)

BOOST_AUTO_TEST_CASE(calls_expire_in_order_once_and_never_after_their_answer) {
  pending_calls pending{100ms};
  auto t0 = steady::time_point{} + 1h;
  std::vector<int> expired;
  auto a = pending.add([&] { expired.push_back(1); }, t0);
  auto b = pending.add([&] { expired.push_back(2); }, t0 + 10ms);
  auto c = pending.add([&] { expired.push_back(3); }, t0 + 20ms);
  BOOST_CHECK(pending.answer(b));
  BOOST_CHECK(!pending.answer(b)); // a second answer is ignored
  pending.sweep(t0 + 99ms);
  BOOST_CHECK(expired.empty());
  pending.sweep(t0 + 100ms);
  BOOST_CHECK(expired == std::vector<int>{1});
  // b was answered: skipped; c's deadline has not come.
  pending.sweep(t0 + 115ms);
  BOOST_CHECK(expired == std::vector<int>{1});
  BOOST_CHECK_EQUAL(pending.size(), 1u);
  pending.sweep(t0 + 120ms);
  BOOST_CHECK((expired == std::vector<int>{1, 3}));
  BOOST_CHECK(!pending.answer(a)); // a late reply after the timeout
  BOOST_CHECK(!pending.answer(c));
  BOOST_CHECK_EQUAL(pending.size(), 0u);
}

BOOST_AUTO_TEST_CASE(answers_in_call_order_keep_the_list_short) {
  pending_calls pending{1s};
  auto t0 = steady::time_point{} + 1h;
  for (int i = 0; i < 1000; ++i) {
    auto c = pending.add([] { BOOST_FAIL("no call may expire"); }, t0);
    BOOST_CHECK(pending.answer(c));
  }
  BOOST_CHECK_EQUAL(pending.size(), 0u);
  // One open call holds the answered ones behind it until it ends.
  auto open = pending.add([] {}, t0);
  for (int i = 0; i < 10; ++i)
    pending.answer(pending.add([] {}, t0));
  BOOST_CHECK_EQUAL(pending.size(), 11u);
  pending.answer(open);
  BOOST_CHECK_EQUAL(pending.size(), 0u);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(bridge)

BOOST_AUTO_TEST_CASE(
  puts_queued_together_go_as_one_update_and_each_is_answered) {
  node_fixture f{[](config&) {
  }};
  node_bridge bridge{f.node.facade, 5s};
  std::vector<std::shared_ptr<outcome>> outs;
  for (int i = 0; i < 10; ++i) {
    outs.push_back(std::make_shared<outcome>());
    bridge.set("k" + std::to_string(i), text_value("v" + std::to_string(i)),
               record_into(outs.back()));
  }
  f.run();
  for (const auto& out : outs) {
    BOOST_CHECK(out->done);
    BOOST_CHECK(!out->err);
  }
  BOOST_CHECK_EQUAL(bridge.batched_sets(), 10u);
  BOOST_CHECK_EQUAL(bridge.batch_retries(), 0u);
  for (int i = 0; i < 10; ++i)
    BOOST_CHECK_EQUAL(read_text(f, "k" + std::to_string(i)).value_or("-"),
                      "v" + std::to_string(i));
}

BOOST_AUTO_TEST_CASE(a_refused_update_is_retried_so_only_the_bad_put_fails) {
  node_fixture f{[](config& cfg) {
    cfg.max_key_size = 8;
  }};
  node_bridge bridge{f.node.facade, 5s};
  auto good1 = std::make_shared<outcome>();
  auto bad = std::make_shared<outcome>();
  auto good2 = std::make_shared<outcome>();
  bridge.set("a", text_value("1"), record_into(good1));
  bridge.set("far-too-long-key", text_value("2"), record_into(bad));
  bridge.set("b", text_value("3"), record_into(good2));
  f.run();
  BOOST_REQUIRE(good1->done && bad->done && good2->done);
  BOOST_CHECK(!good1->err);
  BOOST_CHECK(!good2->err);
  BOOST_CHECK(code_of(bad->err) == errc::key_too_large);
  BOOST_CHECK_EQUAL(bridge.batch_retries(), 1u);
  BOOST_CHECK_EQUAL(read_text(f, "a").value_or("-"), "1");
  BOOST_CHECK_EQUAL(read_text(f, "b").value_or("-"), "3");
}

BOOST_AUTO_TEST_CASE(calls_keep_their_queue_order_around_a_batch) {
  node_fixture f{[](config&) {
  }};
  node_bridge bridge{f.node.facade, 5s};
  auto first = std::make_shared<outcome>();
  bridge.set("k", text_value("before"), record_into(first));
  std::optional<std::string> seen;
  pb::GetRequest get;
  get.set_key("k");
  bridge.call<pb::GetReply>(get, [&](caf::expected<pb::GetReply> x) {
    BOOST_REQUIRE(x);
    seen = x->found() ? x->value().text() : "absent";
  });
  auto second = std::make_shared<outcome>();
  bridge.set("k", text_value("after"), record_into(second));
  f.run();
  // The GET went after the first PUT and before the second.
  BOOST_CHECK_EQUAL(seen.value_or("-"), "before");
  BOOST_CHECK(first->done && second->done);
  BOOST_CHECK_EQUAL(read_text(f, "k").value_or("-"), "after");
}

BOOST_AUTO_TEST_CASE(a_node_that_never_answers_times_out_every_kind_of_call) {
  node_fixture f{[](config&) {
  }};
  // Stands in for a facade that takes requests and never answers them.
  auto silent = f.sys.spawn([](caf::event_based_actor* self) {
    auto kept = std::make_shared<std::vector<caf::response_promise>>();
    self->set_default_handler(
      [kept](caf::scheduled_actor* me,
             caf::message_view&) -> caf::result<caf::message> {
        kept->push_back(
          static_cast<caf::event_based_actor*>(me)->make_response_promise());
        return caf::delegated<caf::message>{};
      });
    return caf::behavior{[](int) {
    }};
  });
  node_bridge bridge{caf::actor_cast<facade_actor>(silent), 1ns};
  auto one = std::make_shared<outcome>();
  auto two = std::make_shared<outcome>();
  auto three = std::make_shared<outcome>();
  bridge.set("a", text_value("1"), record_into(one));
  bridge.set("b", text_value("2"), record_into(two));
  std::optional<caf::error> info_err;
  bridge.call<pb::NodeInfo>(pb::InfoRequest{},
                            [&](caf::expected<pb::NodeInfo> x) {
                              BOOST_REQUIRE(!x);
                              info_err = x.error();
                            });
  bridge.set("c", text_value("3"), record_into(three));
  f.run();
  BOOST_CHECK(!one->done && !two->done && !three->done && !info_err);
  // The bridge's one timer fires (virtual time); every deadline has passed.
  f.sched.trigger_timeouts();
  f.run();
  for (const auto& out : {one, two, three}) {
    BOOST_CHECK(out->done);
    BOOST_CHECK(out->err == caf::sec::request_timeout);
  }
  BOOST_REQUIRE(info_err);
  BOOST_CHECK(*info_err == caf::sec::request_timeout);
  caf::anon_send_exit(silent, caf::exit_reason::user_shutdown);
}

BOOST_AUTO_TEST_SUITE_END()
