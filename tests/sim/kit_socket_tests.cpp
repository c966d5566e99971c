// sync_socket on a test kit node: code written against the blocking API
// runs unchanged on simulated time, its callbacks inside the simulation.

#define BOOST_TEST_MODULE kit_socket_tests
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <syncmesh/sync_socket.hpp>
#include <syncmesh/testing.hpp>

using namespace std::chrono_literals;
using syncmesh::sync_socket;
using syncmesh::testing::cluster;
using syncmesh::testing::cluster_options;

namespace {

cluster_options three_nodes(uint64_t seed = 7) {
  cluster_options opts;
  opts.nodes = 3;
  opts.seed = seed;
  opts.node_config.cluster_size = 3;
  // Short enough that a test of the timeout stays quick in real time too.
  opts.node_config.request_timeout = 5s;
  return opts;
}

/// Connects 0–1 and 1–2 and runs until both links are up.
void line(cluster& mesh) {
  mesh.connect(0, 1);
  mesh.connect(1, 2);
  BOOST_REQUIRE(
    mesh.run_until([&] { return mesh.stats(1).router().peers() == 2; }, 10s));
}

/// The errc of a syncmesh::error thrown by `f`, or nothing.
template <class F>
std::optional<syncmesh::errc> error_of(F&& f) {
  try {
    f();
  } catch (const syncmesh::error& e) {
    return e.code();
  }
  return std::nullopt;
}

} // namespace

BOOST_AUTO_TEST_CASE(blocking_calls_run_the_simulation_until_answered) {
  cluster mesh{three_nodes()};
  sync_socket a{mesh, 0};
  sync_socket c{mesh, 2};
  BOOST_CHECK_EQUAL(a.id(), mesh.id(0));
  BOOST_CHECK_EQUAL(a.port(), 7000);
  // The socket's own connect dials through the simulated network.
  auto peer = a.connect("node1", 7000);
  BOOST_CHECK_EQUAL(peer.id, mesh.id(1));
  c.connect("node1", 7000);
  a.set("greeting", "hello");
  a.update({{"x", 1}, {"y", syncmesh::value_list{1, 2}}});
  a.apply_delta("m", {{"z", 1}, {"a", 2}});
  BOOST_CHECK_EQUAL(a.at("greeting"), "hello");
  BOOST_CHECK_EQUAL(a.size(), 4u);
  // Node 2 hears of them over two simulated hops.
  BOOST_REQUIRE(mesh.run_until([&] { return c.size() == 4; }, 10s));
  BOOST_CHECK_EQUAL(c.get("x")->as_int64(), 1);
  BOOST_CHECK_EQUAL(c.get_item("greeting")->meta.owner, mesh.id(0));
  // Leases hold across the simulated mesh: node 2 may not take node 0's key.
  BOOST_CHECK_THROW(c.set("greeting", "mine"), syncmesh::lease_error);
  BOOST_CHECK_EQUAL(a.pop("x"), syncmesh::value{1});
  BOOST_CHECK_THROW(a.erase("x"), syncmesh::key_error);
  // A confirmed write waits for every node's acknowledgement, in virtual
  // time.
  auto conf = a.set("confirmed", 42, syncmesh::confirm::all(2s));
  BOOST_CHECK_EQUAL(conf.confirmed, 3u);
  BOOST_CHECK(c.contains("confirmed"));
  // Node 0 dialled node 1 and learned of node 2 from it.
  BOOST_CHECK_EQUAL(a.peers().size(), 2u);
  BOOST_CHECK(mesh.converged());
}

BOOST_AUTO_TEST_CASE(callbacks_run_inside_the_simulation_and_may_call_it) {
  cluster mesh{three_nodes()};
  line(mesh);
  sync_socket a{mesh, 0};
  sync_socket c{mesh, 2};
  struct seen {
    std::string key;
    std::chrono::microseconds at;
    size_t size_then;
  };
  std::vector<seen> updates;
  c.on_update([&](const std::string& key, const syncmesh::value&,
                  const syncmesh::entry_meta&) {
    // A blocking call from a callback runs the simulation further.
    updates.push_back({key, mesh.now(), c.size()});
    if (key == "ping")
      c.set("pong", "from c");
  });
  std::vector<std::string> lost;
  a.on_lease_lost([&](const std::string& key, const syncmesh::node_id&) {
    lost.push_back(key);
  });
  auto start = mesh.now();
  a.set("ping", 1);
  // Nothing runs callbacks until the simulation does.
  BOOST_CHECK(updates.empty());
  BOOST_REQUIRE(mesh.run_until([&] { return a.contains("pong"); }, 10s));
  BOOST_REQUIRE_GE(updates.size(), 1u);
  BOOST_CHECK_EQUAL(updates[0].key, "ping");
  BOOST_CHECK(updates[0].at > start); // after two hops of latency
  BOOST_CHECK_EQUAL(a.at("pong"), "from c");
  // Its own write came back to c as an update too.
  mesh.advance(1s);
  BOOST_REQUIRE_EQUAL(updates.size(), 2u);
  BOOST_CHECK_EQUAL(updates[1].key, "pong");
  BOOST_CHECK(lost.empty());
}

BOOST_AUTO_TEST_CASE(timeouts_count_virtual_time) {
  cluster mesh{three_nodes()};
  sync_socket a{mesh, 0};
  mesh.pause(0);
  auto before = mesh.now();
  BOOST_CHECK(error_of([&] { a.set("k", 1); }) == syncmesh::errc::timeout);
  BOOST_CHECK(mesh.now() - before >= 5s);
  BOOST_CHECK(mesh.now() - before < 7s);
  mesh.resume(0);
  // The write went through once the node ran again; the socket still works.
  mesh.run();
  BOOST_CHECK(a.contains("k"));
  a.set("k", 2);
  BOOST_CHECK_EQUAL(a.at("k"), syncmesh::value{2});
}

BOOST_AUTO_TEST_CASE(set_async_futures_run_the_simulation_when_waited_on) {
  cluster mesh{three_nodes()};
  line(mesh);
  sync_socket a{mesh, 0};
  std::vector<std::future<void>> writes;
  for (int k = 0; k < 500; ++k)
    writes.push_back(a.set_async("counter", k));
  // Deferred: nothing waited yet.
  BOOST_CHECK(writes.back().wait_for(0s) == std::future_status::deferred);
  writes.back().get();
  // Applied in the order issued, so the last one stands.
  BOOST_CHECK_EQUAL(a.at("counter"), syncmesh::value{499});
  for (auto& w : writes)
    if (w.valid())
      w.get();
  auto confirmed = a.set_async("c", 1, syncmesh::confirm::all(2s));
  BOOST_CHECK_EQUAL(confirmed.get().confirmed, 3u);
  // A refused write fails its future as set() would throw.
  sync_socket b{mesh, 1};
  BOOST_REQUIRE(mesh.run_until([&] { return b.contains("counter"); }, 10s));
  BOOST_CHECK_THROW(b.set_async("counter", 1).get(), syncmesh::lease_error);
}

BOOST_AUTO_TEST_CASE(messages_reach_recv_and_handlers_in_the_simulation) {
  cluster mesh{three_nodes()};
  line(mesh);
  sync_socket a{mesh, 0};
  sync_socket b{mesh, 1};
  sync_socket c{mesh, 2};
  std::vector<std::string> handled;
  b.register_handler([&](const syncmesh::message& m, const syncmesh::node_id&) {
    handled.push_back(m.packets.at(0).as_text());
    // Consumes "secret", lets the rest reach recv().
    return m.packets.at(0) == "secret";
  });
  a.send({"secret"});
  a.send({"public"});
  BOOST_REQUIRE(mesh.run_until([&] { return handled.size() == 2; }, 10s));
  auto got = b.recv(10);
  BOOST_REQUIRE_EQUAL(got.size(), 1u);
  BOOST_CHECK_EQUAL(got[0].packets.at(0), "public");
  BOOST_CHECK_EQUAL(got[0].sender, mesh.id(0));
  // Node 2 has no handler: both arrive.
  BOOST_REQUIRE(mesh.run_until([&] { return c.recv(10).size() == 2; }, 10s));
}

BOOST_AUTO_TEST_CASE(stopping_the_node_closes_its_sockets) {
  auto mesh = std::make_unique<cluster>(three_nodes());
  line(*mesh);
  auto a = std::make_unique<sync_socket>(*mesh, 0);
  a->set("k", 1);
  mesh->stop(0, false);
  BOOST_CHECK(a->closed());
  BOOST_CHECK(error_of([&] { a->set("k", 2); }) == syncmesh::errc::closed);
  BOOST_CHECK(error_of([&] { (void)a->get("k"); }) == syncmesh::errc::closed);
  BOOST_CHECK_THROW(sync_socket(*mesh, 0), std::logic_error);
  // After a restart with its identity, a new socket writes its own keys.
  mesh->restart(0, syncmesh::testing::restart_mode::same_identity);
  mesh->connect(0, 1);
  sync_socket again{*mesh, 0};
  BOOST_REQUIRE(mesh->run_until([&] { return again.contains("k"); }, 30s));
  again.set("k", 3);
  BOOST_CHECK_EQUAL(again.at("k"), syncmesh::value{3});
  // A socket may outlive its cluster: it stays closed, and goes quietly.
  auto survivor = std::make_unique<sync_socket>(*mesh, 2);
  mesh.reset();
  BOOST_CHECK(survivor->closed());
  BOOST_CHECK(error_of([&] { survivor->set("k", 4); })
              == syncmesh::errc::closed);
  survivor.reset();
  a.reset();
}

BOOST_AUTO_TEST_CASE(a_blocking_call_from_inside_an_actor_is_refused) {
  cluster mesh{three_nodes()};
  sync_socket a{mesh, 0};
  std::vector<std::string> outcomes;
  mesh.on_event([&](size_t, const syncmesh::pb::Event& ev) {
    if (!ev.has_update())
      return;
    try {
      outcomes.push_back(std::to_string(a.size()));
    } catch (const std::logic_error& e) {
      outcomes.push_back("refused");
    }
  });
  a.set("k", 1);
  mesh.advance(1s);
  BOOST_REQUIRE_EQUAL(outcomes.size(), 1u);
  BOOST_CHECK_EQUAL(outcomes[0], "refused");
  // The socket is unharmed.
  BOOST_CHECK_EQUAL(a.size(), 1u);
}

BOOST_AUTO_TEST_CASE(closing_a_socket_leaves_the_node_running) {
  cluster mesh{three_nodes()};
  line(mesh);
  {
    sync_socket a{mesh, 0};
    int calls = 0;
    a.on_update([&](const std::string&, const syncmesh::value&,
                    const syncmesh::entry_meta&) {
      ++calls;
      a.close(); // from its own callback
    });
    a.set("k", 1);
    mesh.advance(1s);
    BOOST_CHECK_EQUAL(calls, 1);
    BOOST_CHECK(a.closed());
  }
  BOOST_CHECK(mesh.alive(0));
  sync_socket b{mesh, 0};
  b.set("k2", 2);
  BOOST_REQUIRE(mesh.await_convergence(10s));
  BOOST_CHECK_EQUAL(mesh.stats(2).store().live_keys(), 2u);
}

BOOST_AUTO_TEST_CASE(the_same_seed_replays_the_same_callbacks) {
  auto run = [](uint64_t seed) {
    auto opts = three_nodes(seed);
    opts.faults.max_latency = 20ms;
    cluster mesh{opts};
    line(mesh);
    sync_socket a{mesh, 0};
    sync_socket c{mesh, 2};
    std::vector<std::pair<int64_t, std::string>> log;
    c.on_update([&](const std::string& key, const syncmesh::value&,
                    const syncmesh::entry_meta&) {
      log.emplace_back(mesh.now().count(), key);
    });
    for (int k = 0; k < 20; ++k)
      a.set("k" + std::to_string(k), k);
    mesh.advance(2s);
    return log;
  };
  auto first = run(11);
  BOOST_CHECK_EQUAL(first.size(), 20u);
  BOOST_CHECK(run(11) == first);
  BOOST_CHECK(run(12) != first);
}

BOOST_AUTO_TEST_CASE(node_log_lines_name_peers_by_their_kit_names) {
  auto opts = three_nodes();
  opts.trace_log_level = 2; // warnings: a peer closed for its silence
  cluster mesh{opts};
  line(mesh);
  mesh.cut(0, 1);
  mesh.cut(1, 0);
  mesh.advance(15s);
  auto hex = mesh.id(1).to_hex().substr(0, 12);
  auto name = mesh.id(1).raw();
  bool named = false;
  for (const auto& e : mesh.trace()) {
    if (e.kind != "log")
      continue;
    BOOST_CHECK_MESSAGE(e.text.find(hex) == std::string::npos, e.text);
    named
      |= e.node == mesh.id(0).raw() && e.text.find(name) != std::string::npos;
  }
  BOOST_CHECK(named);
}

// A node restarted with its identity (its data dir) must not reuse the
// message IDs of its previous run: peers remember IDs for seen_ttl (two
// minutes) and drop repeats as duplicates, so its messages and its
// confirmed writes' queries vanished after every restart.
BOOST_AUTO_TEST_CASE(a_restarted_node_is_heard_at_once) {
  cluster mesh{three_nodes()};
  line(mesh);
  {
    sync_socket a{mesh, 0};
    for (int k = 0; k < 5; ++k)
      a.send({"before " + std::to_string(k)});
    a.set("k", 1, syncmesh::confirm::all(2s));
  }
  mesh.advance(1s);
  mesh.stop(0, false);
  mesh.advance(1s);
  mesh.restart(0, syncmesh::testing::restart_mode::same_identity);
  mesh.connect(0, 1);
  BOOST_REQUIRE(
    mesh.run_until([&] { return mesh.stats(0).router().peers() == 2; }, 30s));
  sync_socket a{mesh, 0};
  sync_socket c{mesh, 2};
  (void)c.recv(100); // what arrived before the restart
  for (int k = 0; k < 5; ++k)
    a.send({"after " + std::to_string(k)});
  size_t got = 0;
  mesh.run_until(
    [&] {
      got += c.recv(10).size();
      return got == 5;
    },
    10s);
  BOOST_CHECK_EQUAL(got, 5u);
  auto conf = a.set("k2", 2, syncmesh::confirm::all(2s));
  BOOST_CHECK_EQUAL(conf.confirmed, 3u);
}
