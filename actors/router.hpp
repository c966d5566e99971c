#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/fwd.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include "actors/announced_links.hpp"
#include "actors/dict_store_actor.hpp"
#include "actors/link_actor.hpp"
#include "actors/listener_actor.hpp"
#include "actors/peer_link.hpp"
#include "actors/py2p_link_state.hpp"
#include "actors/py2p_mesh_messages.hpp"
#include "actors/router_actor.hpp"
#include "actors/router_state.hpp"
#include "syncmesh/config.hpp"
#include "syncmesh/pb/requests.pb.h"

namespace syncmesh {

/// One connected peer.
struct peer_entry {
  /// Its link.
  link_actor link;
  /// What it told us and what we measured.
  pb::PeerInfo info;
};

/// State of the router actor.
struct router_state {
  /// Sets the router of node `self` up.
  void init(const config& cfg, const raw_node_id& self);

  /// The node's configuration.
  config cfg;
  /// This node's ID.
  raw_node_id self_id;
  /// Encodes outgoing writes into frames.
  envelope_builder builder;
  /// Limits checked on inbound writes.
  write_limits limits;
  /// Wall clock for envelope times.
  wall_clock clock;
  /// Established peers by node ID.
  std::map<std::string, peer_entry> peers;
  /// Links being dialled, with the address and the caller to answer.
  struct pending_dial {
    address addr;
    std::vector<caf::typed_response_promise<pb::PeerInfo>> waiting;
  };
  /// Dials in flight by link address.
  std::map<caf::actor_addr, pending_dial> dialing;
  /// Addresses to dial.
  address_book book{256, std::chrono::milliseconds(200),
                    std::chrono::seconds(30), 0};
  /// Links between other nodes that peers announced (mesh views only).
  announced_links mesh_links{1024, 0};
  /// Control messages already relayed.
  seen_set seen;
  /// py2p mode: broadcasts already relayed (py2p's 60 s waterfall).
  py2p_waterfall py2p_seen;
  /// py2p mode: the msgpack type (str or bin) each node ID arrived in.
  py2p_id_types py2p_ids;
  /// py2p mode: replies to non-neighbours waiting for an id lookup.
  py2p_deferred_replies py2p_replies;
  /// py2p mode: counter salting our lookup request ids.
  uint64_t py2p_next_request = 0;
  /// py2p mode: catch-up broadcasts young enough for peers that attach now.
  py2p_recent_catch_up py2p_recent;
  /// The listening broker, if any.
  listener_actor listener;
  /// The bound port (0 until bound or when not listening).
  uint16_t port = 0;
  /// Bind finished (successfully or not).
  bool bound = false;
  /// Why binding failed.
  caf::error bind_error;
  /// Callers waiting for the bind.
  std::vector<caf::typed_response_promise<pb::NodeInfo>> waiting_for_bind;
  /// The dictionary: inbound writes and anti-entropy rounds go there.
  dict_store_actor store;
  /// Receives messages and peer events (the facade).
  facade_actor events;
  /// Writes waiting for the next flush, with the peer they came from.
  std::vector<std::pair<std::string, pb::WriteRecord>> outbox;
  /// A flush message is on its way.
  bool flush_scheduled = false;
  /// Counter for control message IDs; starts at the start's wall time
  /// (router_state::init says why).
  uint64_t next_message = 0;
  /// Round-robin position for anti-entropy rounds.
  size_t ae_turn = 0;
  /// Messages accepted from each peer in the current one-second window.
  std::map<std::string, std::pair<caf::actor_clock::time_point, size_t>>
    message_budget;
  /// Counters.
  pb::RouterStats stats;
  /// Shared with every link: the handshake budget and link counters.
  std::shared_ptr<link_shared> links;
  /// Peer TLS of every native link (config::tls), made once by spawn_node;
  /// empty: plain TCP.
  std::shared_ptr<const tls_context> tls;
  /// The node's clock fence, fed by every native link's measurements.
  std::shared_ptr<clock_fence> fence;
  /// A newcomer claiming the ID of a connected node, waiting while the
  /// existing link is probed.
  struct duplicate_probe {
    /// The newcomer's link.
    link_actor newcomer;
    /// What the newcomer told us.
    pb::PeerInfo info;
    /// The link being probed.
    link_actor existing;
    /// Answers the newcomer's attach.
    caf::typed_response_promise<bool> rp;
    /// Callers waiting for the newcomer's dial.
    std::vector<caf::typed_response_promise<pb::PeerInfo>> waiting;
    /// Both connections run in opposite directions (two nodes dialled each
    /// other): the existing one stays only if it still answers.
    bool crossed = false;
  };
  /// Probes in progress by node ID (at most one per ID).
  std::map<std::string, duplicate_probe> probing;

  /// The actor's name in CAF's registry and logs.
  static inline const char* name = "syncmesh.router";
};

/// The router's behavior (see router_actor.hpp for its messages). It owns
/// the peer table, the listener, dialling (seeds, learned addresses,
/// backoff), peer exchange, flooding, mesh messages and the anti-entropy
/// schedule, each in a file of its own (see router_internal.hpp).
router_actor::behavior_type
router_behavior(router_actor::stateful_pointer<router_state> self,
                const config& cfg, const raw_node_id& id,
                std::shared_ptr<clock_fence> fence,
                std::shared_ptr<const tls_context> tls = nullptr);

} // namespace syncmesh
