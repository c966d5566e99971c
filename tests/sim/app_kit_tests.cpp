// How an application that embeds syncmesh tests its own actors with
// <syncmesh/testing.hpp>: a presence service built on the replicated
// dictionary, checked across a partition on virtual time.

#define BOOST_TEST_MODULE app_kit_tests
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <iostream>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <caf/all.hpp>

#include <syncmesh/testing.hpp>
#include <syncmesh/testing_boost.hpp>
#include <syncmesh/value.hpp>

using namespace std::chrono_literals;

namespace {

// -- the application ----------------------------------------------------------

using login_atom = caf::atom_constant<caf::atom("login")>;
using logout_atom = caf::atom_constant<caf::atom("logout")>;

/// Records who is logged in where: `online/<user>` = this node's name.
caf::behavior presence_writer(caf::event_based_actor* self,
                              syncmesh::facade_actor node,
                              std::string node_name) {
  return {
    [=](login_atom, const std::string& user) {
      syncmesh::pb::SetRequest req;
      req.set_key("online/" + user);
      req.mutable_value()->set_text(node_name);
      self->request(node, caf::infinite, std::move(req))
        .then([](const syncmesh::pb::WriteAck&) {});
    },
    [=](logout_atom, const std::string& user) {
      syncmesh::pb::DeleteRequest req;
      req.set_key("online/" + user);
      self->request(node, caf::infinite, std::move(req))
        .then([](const syncmesh::pb::DeleteReply&) {});
    },
  };
}

/// Keeps the set of online users from the node's events.
caf::behavior presence_view(caf::event_based_actor* self,
                            syncmesh::facade_actor node,
                            std::shared_ptr<std::set<std::string>> online) {
  self
    ->request(node, caf::infinite, syncmesh::subscribe_atom::value,
              caf::actor_cast<caf::actor>(self))
    .then([](bool) {});
  auto user_of = [](const std::string& key) {
    return key.substr(7);
  };
  return {
    [=](const syncmesh::pb::Event& ev) {
      if (ev.has_update() && ev.update().key().rfind("online/", 0) == 0)
        online->insert(user_of(ev.update().key()));
      else if (ev.has_deleted() && ev.deleted().key().rfind("online/", 0) == 0)
        online->erase(user_of(ev.deleted().key()));
    },
  };
}

// -- the test -----------------------------------------------------------------

struct presence_fixture {
  syncmesh::testing::cluster mesh{[] {
    syncmesh::testing::cluster_options opts;
    opts.nodes = 3;
    opts.seed = 2024;
    return opts;
  }()};
  std::shared_ptr<std::set<std::string>> seen_on_2
    = std::make_shared<std::set<std::string>>();
  caf::actor writer;

  presence_fixture() {
    mesh.connect(0, 1);
    mesh.connect(1, 2);
    mesh.advance(1s);
    writer = mesh.system(0).spawn(presence_writer, mesh.facade(0), "web-0");
    mesh.system(2).spawn(presence_view, mesh.facade(2), seen_on_2);
    mesh.run();
  }
};

} // namespace

BOOST_FIXTURE_TEST_CASE(logins_reach_other_nodes_after_a_partition_heals,
                        presence_fixture) {
  caf::anon_send(writer, login_atom::value, std::string{"ada"});
  BOOST_REQUIRE(
    mesh.run_until([&] { return seen_on_2->count("ada") > 0; }, 1s));
  // Node 2 is cut off; a login and a logout on node 0 must wait.
  mesh.partition({{0, 1}, {2}});
  caf::anon_send(writer, login_atom::value, std::string{"grace"});
  caf::anon_send(writer, logout_atom::value, std::string{"ada"});
  mesh.advance(10s);
  BOOST_CHECK_EQUAL(seen_on_2->count("grace"), 0u);
  BOOST_CHECK_EQUAL(seen_on_2->count("ada"), 1u);
  BOOST_CHECK(!mesh.converged());
  // Healed: anti-entropy or redialling brings node 2 up to date.
  mesh.heal_all();
  BOOST_REQUIRE(mesh.await_convergence(60s));
  BOOST_CHECK(*seen_on_2 == (std::set<std::string>{"grace"}));
}

BOOST_FIXTURE_TEST_CASE(a_node_that_restarts_empty_catches_up,
                        presence_fixture) {
  caf::anon_send(writer, login_atom::value, std::string{"alan"});
  mesh.advance(100ms);
  mesh.stop(2, false);
  mesh.restart(2, syncmesh::testing::restart_mode::fresh);
  mesh.connect(2, 1);
  BOOST_REQUIRE(mesh.await_convergence(30s));
  syncmesh::pb::GetRequest get;
  get.set_key("online/alan");
  auto reply = mesh.ask<syncmesh::pb::GetReply>(2, get);
  BOOST_REQUIRE(reply.found());
  BOOST_CHECK_EQUAL(reply.value().text(), "web-0");
}

// -- asking anything, and several event subscribers (issue 19) ---------------

namespace {

using ping_atom = caf::atom_constant<caf::atom("ping")>;

using tick_atom = caf::atom_constant<caf::atom("tick")>;

/// Writes the text `val` at `key` through node `i`'s facade.
void write_text(syncmesh::testing::cluster& mesh, size_t i,
                const std::string& key, const std::string& val) {
  syncmesh::pb::SetRequest set;
  set.set_key(key);
  set.mutable_value()->set_text(val);
  mesh.ask<syncmesh::pb::WriteAck>(i, set);
}

/// An application actor that answers a ping after `delay` of (virtual) time.
caf::behavior slow_echo(caf::event_based_actor* self,
                        std::chrono::milliseconds delay) {
  using waiting = std::deque<std::pair<int, caf::typed_response_promise<int>>>;
  auto queue = std::make_shared<waiting>();
  return {
    [=](ping_atom, int x) -> caf::result<int> {
      auto rp = self->make_response_promise<int>();
      queue->emplace_back(x, rp);
      self->delayed_send(self, delay, tick_atom::value);
      return rp;
    },
    [=](tick_atom) {
      auto [x, rp] = queue->front();
      queue->pop_front();
      rp.deliver(x + 1);
    },
  };
}

} // namespace

BOOST_AUTO_TEST_CASE(every_facade_request_and_application_actors_can_be_asked) {
  namespace pb = syncmesh::pb;
  syncmesh::testing::cluster_options opts;
  opts.nodes = 2;
  opts.seed = 19;
  syncmesh::testing::cluster mesh{opts};
  mesh.connect(0, 1);
  mesh.advance(1s);
  // Requests that were missing from the kit's fixed list (a link error).
  write_text(mesh, 0, "k", "v");
  auto popped = mesh.ask<pb::DeleteReply>(0, pb::PopItemRequest{});
  BOOST_CHECK_EQUAL(popped.key(), "k");
  BOOST_CHECK(
    mesh.ask<pb::MessageList>(1, pb::RecvRequest{}).messages().empty());
  pb::DisconnectRequest bye;
  bye.set_node_id(mesh.id(1).raw());
  BOOST_CHECK(mesh.ask<bool>(0, bye));
  BOOST_CHECK(mesh.run_until(
    [&] {
      return mesh.ask<pb::PeerList>(0, pb::PeersRequest{}).peers().empty();
    },
    5s));
  // Several elements: a subscription for an application actor.
  auto sink = mesh.system(1).spawn([](caf::event_based_actor*) {
    return caf::behavior{[](const pb::Event&) {
    }};
  });
  BOOST_CHECK(mesh.ask<bool>(1, syncmesh::subscribe_atom::value, sink));
  // An application actor, answering after 2 s of virtual time.
  auto echo = mesh.system(0).spawn(slow_echo, std::chrono::milliseconds{2000});
  auto before = mesh.now();
  BOOST_CHECK_EQUAL(mesh.ask<int>(0, echo, ping_atom::value, 41), 42);
  BOOST_CHECK(mesh.now() - before >= 2s);
  // A wrong request fails the ask instead of hanging.
  BOOST_CHECK_THROW(mesh.ask<int>(0, echo, std::string{"what?"}),
                    syncmesh::testing::request_failed);
  caf::anon_send_exit(echo, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(sink, caf::exit_reason::user_shutdown);
}

BOOST_AUTO_TEST_CASE(every_event_subscriber_sees_every_event) {
  namespace pb = syncmesh::pb;
  syncmesh::testing::cluster_options opts;
  opts.nodes = 2;
  opts.seed = 20;
  syncmesh::testing::cluster mesh{opts};
  std::vector<std::string> first, second;
  mesh.on_event([&](size_t node, const pb::Event& ev) {
    if (ev.has_update())
      first.push_back(std::to_string(node) + ":" + ev.update().key());
  });
  mesh.on_event([&](size_t node, const pb::Event& ev) {
    if (ev.has_update())
      second.push_back(std::to_string(node) + ":" + ev.update().key());
  });
  mesh.connect(0, 1);
  mesh.advance(1s);
  write_text(mesh, 0, "a", "1");
  BOOST_REQUIRE(mesh.await_convergence(10s));
  // Both subscribers, on both nodes, and still after a restart.
  mesh.stop(1);
  mesh.restart(1, syncmesh::testing::restart_mode::fresh);
  mesh.connect(1, 0);
  BOOST_REQUIRE(mesh.await_convergence(30s));
  BOOST_CHECK(first == second);
  BOOST_CHECK_EQUAL(std::count(first.begin(), first.end(), "0:a"), 1);
  BOOST_CHECK_GE(std::count(first.begin(), first.end(), "1:a"), 2);
}

// -- application actors tied to their node (issue 19) -------------------------

namespace {

/// An actor that traps exit messages and re-arms a timer every 100 ms: the
/// kind that once kept ~cluster spinning in CAF's test scheduler for ever.
caf::behavior stubborn_ticker(caf::event_based_actor* self,
                              std::shared_ptr<int> ticks) {
  self->set_exit_handler([](caf::exit_msg&) {});
  self->delayed_send(self, std::chrono::milliseconds{100}, tick_atom::value);
  return {
    [=](tick_atom) {
      ++*ticks;
      self->delayed_send(self, std::chrono::milliseconds{100},
                         tick_atom::value);
    },
  };
}

/// Ends the test process when the test body does not finish in time (a
/// hang would otherwise only show as ctest's timeout, without a word).
struct watchdog {
  std::mutex mtx;
  std::condition_variable cv;
  bool done = false;
  std::thread thread;

  explicit watchdog(std::chrono::seconds limit) {
    thread = std::thread([this, limit] {
      std::unique_lock<std::mutex> guard{mtx};
      if (!cv.wait_for(guard, limit, [this] { return done; })) {
        std::fprintf(stderr, "watchdog: the test hung (stop or ~cluster did "
                             "not return)\n");
        std::_Exit(1);
      }
    });
  }

  ~watchdog() {
    {
      std::lock_guard<std::mutex> guard{mtx};
      done = true;
    }
    cv.notify_one();
    thread.join();
  }
};

} // namespace

BOOST_AUTO_TEST_CASE(tied_actors_die_with_their_node_and_start_again_with_it) {
  watchdog guard{std::chrono::seconds{60}};
  auto tied_ticks = std::make_shared<int>(0);
  auto loose_ticks = std::make_shared<int>(0);
  auto facades = std::make_shared<std::vector<syncmesh::facade_actor>>();
  {
    syncmesh::testing::cluster_options opts;
    opts.nodes = 2;
    opts.seed = 21;
    syncmesh::testing::cluster mesh{opts};
    auto k = mesh.spawn(
      0, [=](caf::event_based_actor* self, syncmesh::facade_actor facade) {
        facades->push_back(facade);
        return stubborn_ticker(self, tied_ticks);
      });
    // Not tied: spawned on the node's system directly.
    mesh.system(1).spawn(stubborn_ticker, loose_ticks);
    mesh.advance(1s);
    BOOST_CHECK_GE(*tied_ticks, 9);
    BOOST_REQUIRE_EQUAL(facades->size(), 1u);
    BOOST_CHECK(facades->back() == mesh.facade(0));
    auto first = mesh.tied(0, k);
    // A graceful stop kills it although it traps exit messages.
    mesh.stop(0);
    BOOST_CHECK(!mesh.tied(0, k));
    auto frozen = *tied_ticks;
    mesh.advance(1s);
    BOOST_CHECK_EQUAL(*tied_ticks, frozen);
    // A restart spawns it again, with the new incarnation's facade.
    mesh.restart(0, syncmesh::testing::restart_mode::fresh);
    BOOST_REQUIRE_EQUAL(facades->size(), 2u);
    BOOST_CHECK(facades->back() == mesh.facade(0));
    BOOST_CHECK(mesh.tied(0, k) && mesh.tied(0, k) != first);
    mesh.advance(1s);
    BOOST_CHECK_GE(*tied_ticks, frozen + 9);
    // A crash kills it too.
    mesh.stop(0, false);
    frozen = *tied_ticks;
    mesh.advance(1s);
    BOOST_CHECK_EQUAL(*tied_ticks, frozen);
    // Stopping node 1 stops its untied ticker's timers; ~cluster returns
    // with it still alive on paper.
    mesh.stop(1, false);
    auto loose = *loose_ticks;
    mesh.advance(1s);
    BOOST_CHECK_EQUAL(*loose_ticks, loose);
    mesh.restart(1, syncmesh::testing::restart_mode::fresh);
    mesh.system(1).spawn(stubborn_ticker, loose_ticks);
    mesh.restart(0, syncmesh::testing::restart_mode::fresh);
    mesh.advance(1s);
  }
  BOOST_CHECK_GE(*loose_ticks, 9);
}

// -- seeds and the recorder (issue 19)
// -----------------------------------------

BOOST_AUTO_TEST_CASE(the_seed_comes_from_the_environment_when_set) {
  ::unsetenv("SYNCMESH_TEST_SEED");
  BOOST_CHECK_EQUAL(syncmesh::testing::seed_from_env(5), 5u);
  ::setenv("SYNCMESH_TEST_SEED", "77", 1);
  BOOST_CHECK_EQUAL(syncmesh::testing::seed_from_env(5), 77u);
  syncmesh::testing::cluster_options opts;
  opts.nodes = 1;
  opts.seed = 5;
  BOOST_CHECK_EQUAL(
    syncmesh::testing::cluster{syncmesh::testing::with_env_seed(opts)}.seed(),
    77u);
  ::setenv("SYNCMESH_TEST_SEED", "7x", 1);
  BOOST_CHECK_THROW(syncmesh::testing::seed_from_env(5), std::invalid_argument);
  ::unsetenv("SYNCMESH_TEST_SEED");
}

BOOST_AUTO_TEST_CASE(the_trace_holds_faults_events_and_log_lines_in_order) {
  namespace pb = syncmesh::pb;
  syncmesh::testing::cluster_options opts;
  opts.nodes = 2;
  opts.seed = 23;
  syncmesh::testing::cluster mesh{opts};
  auto n0 = mesh.id(0).raw();
  auto n1 = mesh.id(1).raw();
  BOOST_CHECK(n0.rfind("n0-", 0) == 0);
  mesh.connect(0, 1);
  mesh.advance(1s);
  write_text(mesh, 0, "k", "v");
  mesh.advance(1s);
  mesh.log(1, "the application saw k");
  mesh.partition({{0}, {1}});
  mesh.advance(30s); // long enough for the peer timeout: a log line
  auto trace = mesh.trace();
  auto find = [&](const std::string& node, const std::string& kind,
                  const std::string& text) -> long {
    for (size_t k = 0; k < trace.size(); ++k)
      if (trace[k].node == node && trace[k].kind == kind
          && trace[k].text.find(text) != std::string::npos)
        return static_cast<long>(k);
    return -1;
  };
  auto dial = find(n0, "fault", "dial " + n1);
  auto update0 = find(n0, "event", "update k");
  auto update1 = find(n1, "event", "update k");
  auto app = find(n1, "app", "the application saw k");
  auto cut = find("", "fault", "partition { " + n0 + " } { " + n1 + " }");
  BOOST_CHECK_GE(dial, 0);
  BOOST_CHECK_GT(update0, dial);
  BOOST_CHECK_GT(update1, update0);
  BOOST_CHECK_GT(app, update1);
  BOOST_CHECK_GT(cut, app);
  // The nodes' own log lines, with virtual time and kit names.
  bool logged_after_cut = false;
  for (size_t k = static_cast<size_t>(std::max(cut, 0L)); k < trace.size(); ++k)
    logged_after_cut
      |= trace[k].kind == "log" && (trace[k].node == n0 || trace[k].node == n1);
  BOOST_CHECK(logged_after_cut);
  BOOST_CHECK(
    std::is_sorted(trace.begin(), trace.end(),
                   [](const auto& a, const auto& b) { return a.at < b.at; }));
  std::ostringstream out;
  mesh.dump(out);
  BOOST_CHECK(out.str().rfind("SYNCMESH_TEST_SEED=23 ", 0) == 0);
  BOOST_CHECK(out.str().find(" " + n1 + " app the application saw k\n")
              != std::string::npos);
}

BOOST_AUTO_TEST_CASE(the_trace_stays_within_its_bytes) {
  syncmesh::testing::cluster_options opts;
  opts.nodes = 1;
  opts.trace_bytes = 4096;
  syncmesh::testing::cluster mesh{opts};
  for (int k = 0; k < 1000; ++k)
    mesh.log(0, "line " + std::to_string(k) + std::string(40, '.'));
  auto trace = mesh.trace();
  size_t bytes = 0;
  for (const auto& e : trace)
    bytes += e.node.size() + e.kind.size() + e.text.size();
  BOOST_CHECK_LE(bytes, 4096u);
  BOOST_CHECK_GT(mesh.trace_dropped(), 900u);
  BOOST_REQUIRE(!trace.empty());
  BOOST_CHECK(trace.back().text.rfind("line 999", 0) == 0);
}

namespace {

/// Captures std::cerr while the cluster fixture (a later base) is torn
/// down, then checks that it printed the seed and the trace.
struct cerr_capture {
  std::ostringstream text;
  std::streambuf* saved;
  cerr_capture() : saved(std::cerr.rdbuf(text.rdbuf())) {}
  ~cerr_capture() {
    std::cerr.rdbuf(saved);
    BOOST_CHECK(text.str().find("SYNCMESH_TEST_SEED=31 ") != std::string::npos);
    BOOST_CHECK(text.str().find(" app before the failure")
                != std::string::npos);
  }
};

struct failing_fixture : cerr_capture, syncmesh::testing::cluster_fixture {
  failing_fixture() : cluster_fixture(options()) {}
  static syncmesh::testing::cluster_options options() {
    syncmesh::testing::cluster_options opts;
    opts.nodes = 1;
    opts.seed = 31;
    return opts;
  }
};

} // namespace

// One deliberate failure: the fixture must print the seed and the trace.
BOOST_FIXTURE_TEST_CASE(a_failing_test_prints_its_seed_and_trace,
                        failing_fixture,
                        *boost::unit_test::expected_failures(1)) {
  ::unsetenv("SYNCMESH_TEST_SEED");
  mesh.log(0, "before the failure");
  BOOST_CHECK_MESSAGE(false, "deliberate failure");
}

BOOST_AUTO_TEST_CASE(
  node_log_lines_reach_the_newest_cluster_whatever_the_order) {
  // A test that replaces one cluster with the next builds the new one
  // before the old one goes: the new one's trace still gets its nodes'
  // log lines after the old one is destroyed.
  syncmesh::testing::cluster_options opts;
  opts.nodes = 2;
  auto old_one = std::make_unique<syncmesh::testing::cluster>(opts);
  old_one->connect(0, 1);
  old_one->advance(1s);
  opts.seed = 2;
  auto new_one = std::make_unique<syncmesh::testing::cluster>(opts);
  new_one->connect(0, 1);
  new_one->advance(1s);
  old_one.reset();
  new_one->partition({{0}, {1}});
  new_one->advance(30s);
  size_t lines = 0;
  for (const auto& e : new_one->trace())
    lines += e.kind == "log" ? 1 : 0;
  BOOST_CHECK_GT(lines, 0u);
  new_one.reset();
}
