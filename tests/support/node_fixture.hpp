#pragma once

// One syncmesh node on CAF's test coordinator and test multiplexer, with
// helpers to play peers that connect to it: no sockets, no threads, virtual
// time. Shared by the native and the py2p link tests.

#include <boost/test/unit_test.hpp>

#include <chrono>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <caf/all.hpp>
#include <caf/io/all.hpp>
#include <caf/io/network/test_multiplexer.hpp>

#include "actors/atoms.hpp"
#include "actors/facade.hpp"
#include "actors/handshake_budget.hpp"
#include "actors/router.hpp"
#include "messages/frame_codec.hpp"
#include "messages/value_proto.hpp"
#include "support/caf_setup.hpp"
#include "syncmesh/clock.hpp"

namespace syncmesh::test {

/// The envelopes of every whole frame in `bytes` (frames of the native
/// wire), each required to parse.
inline std::vector<pb::Envelope> envelopes_in(const std::string& bytes) {
  frame_decoder decoder;
  decoder.feed(bytes);
  std::vector<pb::Envelope> result;
  std::string payload;
  while (decoder.next(payload) == frame_status::ok) {
    pb::Envelope env;
    BOOST_REQUIRE(parse_envelope(payload, env).empty());
    result.push_back(std::move(env));
  }
  return result;
}

/// The port the fixture's node listens on.
inline constexpr uint16_t node_port = 4242;

/// A frame header announcing `n` body bytes (both dialects frame alike),
/// for peers that lie about what follows.
inline std::string frame_header(uint32_t n) {
  std::string out(4, '\0');
  out[0] = static_cast<char>((n >> 24) & 0xff);
  out[1] = static_cast<char>((n >> 16) & 0xff);
  out[2] = static_cast<char>((n >> 8) & 0xff);
  out[3] = static_cast<char>(n & 0xff);
  return out;
}

/// One node listening on the test multiplexer, and helpers to play a peer.
struct node_fixture {
  deterministic_config cfg_;
  caf::actor_system sys;
  caf::scheduler::test_coordinator& sched;
  caf::io::network::test_multiplexer& mpx;
  caf::scoped_actor self;
  manual_clock clock;
  config node_cfg;
  node_actors node;
  int64_t next_connection = 100;
  const caf::io::accept_handle acceptor = caf::io::accept_handle::from_int(1);

  /// A node with the test settings; `tweak` adjusts them before it starts.
  template <class Tweak>
  explicit node_fixture(Tweak tweak)
      : sys(cfg_),
        sched(dynamic_cast<caf::scheduler::test_coordinator&>(sys.scheduler())),
        mpx(dynamic_cast<caf::io::network::test_multiplexer&>(
          sys.middleman().backend())),
        self(sys, true) {
    node_cfg.node_id = syncmesh::node_id::from_raw("node-a");
    node_cfg.port = node_port;
    node_cfg.clock = clock.as_wall_clock();
    node_cfg.handshake_timeout = std::chrono::seconds(2);
    node_cfg.heartbeat_interval = std::chrono::seconds(1);
    node_cfg.peer_timeout = std::chrono::seconds(5);
    node_cfg.max_frame_size = 64 * 1024;
    node_cfg.max_value_size = 16 * 1024;
    node_cfg.max_send_queue = 256 * 1024;
    node_cfg.max_inbound = 32;
    tweak(node_cfg);
    mpx.provide_acceptor(node_port, acceptor);
    node = spawn_node(sys, node_cfg);
    run();
  }

  ~node_fixture() {
    caf::anon_send_exit(node.facade, caf::exit_reason::user_shutdown);
    for (int i = 0; i < 100; ++i) {
      run();
      if (!sched.has_pending_timeout())
        break;
      sched.trigger_timeouts();
    }
  }

  node_fixture(const node_fixture&) = delete;
  node_fixture& operator=(const node_fixture&) = delete;

  /// Runs actors and brokers until nothing is left to do.
  void run() {
    while (sched.try_run_once() || mpx.try_exec_runnable()) {
    }
  }

  /// Moves virtual time forward and fires due timers.
  void advance(std::chrono::milliseconds d) {
    clock.advance(d);
    sched.clock().advance_time(d);
    run();
  }

  /// A peer connects; returns its connection.
  caf::io::connection_handle connect_peer() {
    auto hdl = caf::io::connection_handle::from_int(next_connection++);
    mpx.add_pending_connect(acceptor, hdl);
    mpx.accept_connection(acceptor);
    run();
    return hdl;
  }

  /// The peer sends `bytes`, cut into pieces of random sizes.
  void send_split(caf::io::connection_handle hdl, const std::string& bytes,
                  std::mt19937& rng) {
    std::uniform_int_distribution<size_t> piece{1, 7};
    for (size_t off = 0; off < bytes.size();) {
      auto n = std::min(piece(rng), bytes.size() - off);
      mpx.virtual_send(hdl, caf::io::network::test_multiplexer::buffer_type(
                              bytes.begin() + static_cast<long>(off),
                              bytes.begin() + static_cast<long>(off + n)));
      off += n;
      run();
    }
  }

  /// The peer sends `bytes`; nothing else runs (the store applies nothing
  /// yet, so a link's ingress credit is not returned).
  void send_only(caf::io::connection_handle hdl, const std::string& bytes) {
    mpx.virtual_send(hdl, caf::io::network::test_multiplexer::buffer_type(
                            bytes.begin(), bytes.end()));
  }

  /// What the node's links share (the handshake budget, link counters).
  link_shared& links() {
    auto* ptr = caf::actor_cast<caf::abstract_actor*>(node.router);
    return *dynamic_cast<router_actor::stateful_base<router_state>&>(*ptr)
              .state.links;
  }

  /// `n` connections each send most of the largest frame allowed before a
  /// handshake (either dialect: they frame alike); after each, the node's
  /// unfinished handshakes must hold at most their budget. Returns the
  /// connections.
  std::vector<caf::io::connection_handle> flood_handshakes(int n) {
    const auto frame = node_cfg.max_handshake_frame;
    std::vector<caf::io::connection_handle> attackers;
    for (int i = 0; i < n; ++i) {
      auto hdl = connect_peer();
      attackers.push_back(hdl);
      send(hdl, frame_header(static_cast<uint32_t>(frame))
                  + std::string(frame - 1, 'x'));
      BOOST_REQUIRE_LE(links().handshakes.total(),
                       node_cfg.max_pending_handshake_bytes);
    }
    return attackers;
  }

  /// The peer sends `bytes` in one piece.
  void send(caf::io::connection_handle hdl, const std::string& bytes) {
    mpx.virtual_send(hdl, caf::io::network::test_multiplexer::buffer_type(
                            bytes.begin(), bytes.end()));
    run();
  }

  /// Everything the node wrote to the peer so far, as raw bytes.
  std::string written(caf::io::connection_handle hdl) {
    auto& out = mpx.output_buffer(hdl);
    return std::string{out.data(), out.size()};
  }

  /// The envelopes the node wrote to the peer so far, decoded.
  std::vector<pb::Envelope> received(caf::io::connection_handle hdl) {
    return envelopes_in(written(hdl));
  }

  /// The goodbye the node sent to the peer, if any.
  std::optional<pb::Goodbye> goodbye(caf::io::connection_handle hdl) {
    for (auto& env : received(hdl))
      if (env.has_goodbye())
        return env.goodbye();
    return std::nullopt;
  }

  /// True once the node closed the connection.
  bool closed(caf::io::connection_handle hdl) {
    return mpx.stopped_reading(hdl);
  }

  /// Sends a request to `dest` and returns its reply (fails the test on an
  /// error).
  template <class Reply, class Dest, class... Ts>
  Reply ask(const Dest& dest, Ts&&... xs) {
    auto handle = self->request(dest, caf::infinite, std::forward<Ts>(xs)...);
    run();
    BOOST_REQUIRE(self->mailbox().size() > 0);
    std::optional<Reply> result;
    handle.receive([&](Reply& x) { result = std::move(x); },
                   [&](caf::error& err) { BOOST_FAIL(sys.render(err)); });
    return std::move(*result);
  }

  /// Peers attached to the router.
  size_t peer_count() {
    return ask<pb::RouterStats>(node.router, stats_atom::value).peers();
  }

  /// Reads `key` through the facade (nullopt: not found).
  std::optional<value> read_key(const std::string& key) {
    pb::GetRequest req;
    req.set_key(key);
    auto handle = self->request(node.facade, caf::infinite, req);
    run();
    std::optional<value> result;
    handle.receive(
      [&](pb::GetReply& x) {
        if (x.found()) {
          value v;
          BOOST_REQUIRE(from_proto(x.value(), v).empty());
          result = std::move(v);
        }
      },
      [&](caf::error& err) { BOOST_FAIL(sys.render(err)); });
    return result;
  }

  /// Writes `key` through the facade (a local set) and runs until the
  /// write has spread.
  void write_key(const std::string& key, const value& val) {
    pb::SetRequest req;
    req.set_key(key);
    to_proto(val, req.mutable_value());
    self->send(node.facade, std::move(req));
    run();
  }
};

} // namespace syncmesh::test
