// Confirmed writes (issue 17) on simulated clusters (<syncmesh/testing.hpp>):
// virtual time, real nodes, partitions and stopped nodes.

#define BOOST_TEST_MODULE confirm_kit_tests
#include <boost/test/unit_test.hpp>

#include <memory>
#include <optional>
#include <string>

#include <caf/all.hpp>

#include <syncmesh/errors.hpp>
#include <syncmesh/testing.hpp>

#include "messages/version.hpp"

using namespace std::chrono_literals;
using namespace syncmesh;

namespace {

/// What a confirmed write came back with.
struct outcome {
  bool done = false;
  std::optional<pb::ConfirmedWriteReply> reply;
  caf::error err;
  std::string rendered;
};

pb::WriteConcern concern(pb::WriteConcern::Kind kind,
                         std::chrono::milliseconds timeout, uint32_t n = 0) {
  pb::WriteConcern c;
  c.set_kind(kind);
  c.set_nodes(n);
  c.set_timeout_ms(static_cast<uint64_t>(timeout.count()));
  return c;
}

pb::ConfirmedWriteRequest confirmed_set(const std::string& key,
                                        const std::string& text,
                                        const pb::WriteConcern& c) {
  pb::ConfirmedWriteRequest req;
  req.mutable_set()->set_key(key);
  req.mutable_set()->mutable_value()->set_text(text);
  *req.mutable_concern() = c;
  return req;
}

/// Sends a confirmed write to node `i`; the outcome fills in as the
/// cluster runs.
std::shared_ptr<outcome> submit(testing::cluster& mesh, size_t i,
                                pb::ConfirmedWriteRequest req) {
  auto out = std::make_shared<outcome>();
  mesh.submit<pb::ConfirmedWriteReply>(
    i, std::move(req),
    [out](pb::ConfirmedWriteReply& r) {
      out->reply = std::move(r);
      out->done = true;
    },
    [out, &mesh, i](const caf::error& err) {
      out->err = err;
      out->rendered = mesh.render(i, err);
      out->done = true;
    });
  return out;
}

/// Runs until `out` is answered (at most `limit` of virtual time).
void await(testing::cluster& mesh, const std::shared_ptr<outcome>& out,
           std::chrono::microseconds limit) {
  BOOST_REQUIRE(mesh.run_until([&] { return out->done; }, limit));
}

void set_plain(testing::cluster& mesh, size_t i, const std::string& key,
               const std::string& text) {
  pb::SetRequest req;
  req.set_key(key);
  req.mutable_value()->set_text(text);
  mesh.ask<pb::WriteAck>(i, req);
}

/// The text at `key` on node `i`, or "(absent)".
std::string text_at(testing::cluster& mesh, size_t i, const std::string& key) {
  pb::GetRequest get;
  get.set_key(key);
  auto reply = mesh.ask<pb::GetReply>(i, get);
  if (!reply.found())
    return "(absent)";
  return reply.value().text();
}

/// The uint32 in position `i` of an error's context, or 0.
uint32_t context_number(const caf::error& err, size_t i) {
  const auto& ctx = err.context();
  return ctx.size() > i && ctx.match_element<uint32_t>(i)
           ? ctx.get_as<uint32_t>(i)
           : 0;
}

uint64_t confirm_envelopes_in(testing::cluster& mesh, size_t i) {
  auto stats = mesh.stats(i);
  const auto& in = stats.router().traffic().messages_in();
  uint64_t n = 0;
  for (const char* kind : {"confirm_query", "confirm_answer"})
    if (auto it = in.find(kind); it != in.end())
      n += it->second;
  return n;
}

testing::cluster_options options(size_t nodes, uint64_t seed) {
  testing::cluster_options opts;
  opts.nodes = nodes;
  opts.seed = seed;
  opts.node_config.cluster_size = nodes;
  return opts;
}

/// Every pair connected.
void connect_all(testing::cluster& mesh) {
  for (size_t a = 0; a < mesh.size(); ++a)
    for (size_t b = a + 1; b < mesh.size(); ++b)
      mesh.connect(a, b);
  mesh.advance(2s);
}

} // namespace

BOOST_AUTO_TEST_CASE(majority_confirms_in_a_connected_three_node_mesh) {
  testing::cluster mesh{options(3, 17)};
  connect_all(mesh);
  // Plain writes send nothing about confirmation, anywhere.
  set_plain(mesh, 0, "plain", "x");
  // Links report their traffic with each heartbeat (1 s).
  mesh.advance(2s);
  for (size_t i = 0; i < 3; ++i)
    BOOST_TEST(confirm_envelopes_in(mesh, i) == 0u);
  auto out = submit(
    mesh, 0, confirmed_set("k", "v", concern(pb::WriteConcern::MAJORITY, 2s)));
  await(mesh, out, 2s);
  BOOST_REQUIRE_MESSAGE(out->reply, out->rendered);
  BOOST_TEST(out->reply->required() == 2u);
  BOOST_TEST(out->reply->cluster_size() == 3u);
  BOOST_TEST(out->reply->confirmed() >= 2u);
  BOOST_TEST(out->reply->ack().applied() == 1u);
  // Well before the timeout: answers came back over the mesh.
  BOOST_TEST((mesh.now() < 5s));
  // The counter that stayed at 0 for plain writes sees the confirmation.
  mesh.advance(2s);
  BOOST_TEST(confirm_envelopes_in(mesh, 1) > 0u);
  BOOST_TEST(confirm_envelopes_in(mesh, 0) > 0u);
  auto stats = mesh.stats(0).confirm();
  BOOST_TEST(stats.confirmed() == 1u);
  BOOST_TEST(stats.pending() == 0u);
  BOOST_TEST(stats.answers() >= 1u);
  // confirm::nodes(3) = every node here.
  auto three = submit(
    mesh, 1, confirmed_set("j", "w", concern(pb::WriteConcern::NODES, 2s, 3)));
  await(mesh, three, 2s);
  BOOST_REQUIRE_MESSAGE(three->reply, three->rendered);
  BOOST_TEST(three->reply->confirmed() == 3u);
  BOOST_TEST(text_at(mesh, 2, "j") == "w");
}

BOOST_AUTO_TEST_CASE(
  a_partitioned_minority_times_out_and_the_majority_confirms) {
  testing::cluster mesh{options(5, 23)};
  connect_all(mesh);
  mesh.partition({{0, 1}, {2, 3, 4}});
  auto minority = submit(
    mesh, 0,
    confirmed_set("small", "side", concern(pb::WriteConcern::MAJORITY, 2s)));
  auto majority = submit(
    mesh, 2,
    confirmed_set("large", "side", concern(pb::WriteConcern::MAJORITY, 2s)));
  await(mesh, majority, 2s);
  BOOST_REQUIRE_MESSAGE(majority->reply, majority->rendered);
  BOOST_TEST(majority->reply->confirmed() >= 3u);
  BOOST_TEST(majority->reply->required() == 3u);
  await(mesh, minority, 3s);
  BOOST_REQUIRE(!minority->reply);
  BOOST_TEST((code_of(minority->err) == errc::unconfirmed));
  // Nodes 0 and 1 hold it; 3 were required of 5.
  BOOST_TEST(context_number(minority->err, 1) == 2u);
  BOOST_TEST(context_number(minority->err, 2) == 3u);
  BOOST_TEST(context_number(minority->err, 3) == 5u);
  // The write stands on the minority side ...
  BOOST_TEST(text_at(mesh, 0, "small") == "side");
  BOOST_TEST(text_at(mesh, 1, "small") == "side");
  BOOST_TEST(text_at(mesh, 3, "small") == "(absent)");
  BOOST_TEST(mesh.stats(0).confirm().unconfirmed() == 1u);
  // ... and reaches the others once the partition heals.
  mesh.heal_all();
  BOOST_REQUIRE(mesh.await_convergence(90s));
  for (size_t i = 0; i < 5; ++i) {
    BOOST_TEST(text_at(mesh, i, "small") == "side");
    BOOST_TEST(text_at(mesh, i, "large") == "side");
  }
}

BOOST_AUTO_TEST_CASE(all_with_one_node_down_times_out) {
  testing::cluster mesh{options(3, 5)};
  connect_all(mesh);
  mesh.stop(2);
  mesh.advance(100ms);
  auto out = submit(
    mesh, 0, confirmed_set("k", "v", concern(pb::WriteConcern::ALL, 1s)));
  await(mesh, out, 2s);
  BOOST_REQUIRE(!out->reply);
  BOOST_TEST((code_of(out->err) == errc::unconfirmed));
  BOOST_TEST(context_number(out->err, 1) == 2u);
  BOOST_TEST(context_number(out->err, 2) == 3u);
  // Not before the timeout.
  BOOST_TEST((mesh.now() >= 2s + 100ms + 1s));
  BOOST_TEST(text_at(mesh, 1, "k") == "v");
  // Majority without a configured size is refused before anything is
  // written: here the size is known, so try a cluster without one.
  auto opts = options(2, 9);
  opts.node_config.cluster_size = 0;
  testing::cluster unsized{opts};
  auto refused
    = submit(unsized, 0,
             confirmed_set("k", "v", concern(pb::WriteConcern::MAJORITY, 1s)));
  await(unsized, refused, 1s);
  BOOST_TEST((code_of(refused->err) == errc::invalid_config));
  BOOST_TEST(refused->rendered.find("cluster_size") != std::string::npos);
  BOOST_TEST(text_at(unsized, 0, "k") == "(absent)");
}

BOOST_AUTO_TEST_CASE(a_write_superseded_while_it_waits_is_a_lease_error) {
  // A line 0 - 1 - 2. Node 0 claims the fresh key "k" and waits for all
  // three nodes; node 1 claims it at the same moment with its clock 1 ms
  // ahead, so its claim (epoch = claim time) wins everywhere. Node 0's
  // write never spreads past node 1, and node 0 hears that it lost.
  testing::cluster mesh{options(3, 31)};
  mesh.connect(0, 1);
  mesh.connect(1, 2);
  mesh.advance(2s);
  mesh.set_skew(1, 1ms);
  auto out = submit(
    mesh, 0, confirmed_set("k", "mine", concern(pb::WriteConcern::ALL, 2s)));
  pb::SetRequest theirs;
  theirs.set_key("k");
  theirs.mutable_value()->set_text("theirs");
  bool theirs_done = false;
  mesh.submit<pb::WriteAck>(
    1, theirs, [&](pb::WriteAck&) { theirs_done = true; },
    [&](const caf::error&) { theirs_done = true; });
  await(mesh, out, 2s);
  BOOST_TEST(theirs_done);
  BOOST_REQUIRE(!out->reply);
  BOOST_TEST_MESSAGE(out->rendered);
  BOOST_TEST((code_of(out->err) == errc::lease_held));
  // Context (key, owner hex, lease end): the owner is node 1.
  const auto& ctx = out->err.context();
  BOOST_REQUIRE(ctx.size() >= 2u);
  BOOST_TEST(ctx.get_as<std::string>(1) == mesh.id(1).to_hex());
  // Answered well before the timeout.
  BOOST_TEST((mesh.now() < 2s + 1s));
  BOOST_TEST(mesh.stats(0).confirm().superseded() == 1u);
  BOOST_REQUIRE(mesh.await_convergence(30s));
  BOOST_TEST(text_at(mesh, 0, "k") == "theirs");
}

BOOST_AUTO_TEST_CASE(a_node_that_never_answers_costs_bounded_memory) {
  // Node 2 is paused: it never answers. Node 0 may wait for at most 8
  // confirmations; the rest are refused before they are written, and the
  // waiting ones end at their timeout.
  auto opts = options(3, 41);
  opts.node_config.max_pending_confirms = 8;
  testing::cluster mesh{opts};
  connect_all(mesh);
  mesh.pause(2);
  std::vector<std::shared_ptr<outcome>> outs;
  for (int i = 0; i < 20; ++i)
    outs.push_back(submit(mesh, 0,
                          confirmed_set("k" + std::to_string(i), "v",
                                        concern(pb::WriteConcern::ALL, 3s))));
  mesh.advance(500ms);
  auto stats = mesh.stats(0).confirm();
  BOOST_TEST(stats.pending() == 8u);
  BOOST_TEST(stats.refused() == 12u);
  size_t overloaded = 0;
  for (auto& o : outs)
    if (o->done && code_of(o->err) == errc::overloaded)
      ++overloaded;
  BOOST_TEST(overloaded == 12u);
  // Refused writes were not applied.
  BOOST_TEST(mesh.stats(0).store().local_applied() == 8u);
  BOOST_REQUIRE(mesh.run_until(
    [&] {
      for (auto& o : outs)
        if (!o->done)
          return false;
      return true;
    },
    4s));
  stats = mesh.stats(0).confirm();
  BOOST_TEST(stats.pending() == 0u);
  BOOST_TEST(stats.unconfirmed() == 8u);
  mesh.resume(2);
}
