// How an application that embeds syncmesh tests its own actors with
// <syncmesh/testing.hpp>: a presence service built on the replicated
// dictionary, checked across a partition on virtual time.

#define BOOST_TEST_MODULE app_kit_tests
#include <boost/test/unit_test.hpp>

#include <memory>
#include <set>
#include <string>

#include <caf/all.hpp>

#include <syncmesh/testing.hpp>
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
