#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/fwd.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include "actors/peer_link.hpp"
#include "actors/py2p_link_state.hpp"
#include "actors/router_state.hpp"
#include "syncmesh/config.hpp"
#include "syncmesh/pb/requests.pb.h"

namespace syncmesh {

/// One connected peer.
struct peer_entry {
  /// Its link.
  caf::actor link;
  /// What it told us and what we measured.
  pb::PeerInfo info;
};

/// State of the router actor.
struct router_state {
  /// Sets the router of node `self` up.
  void init(const config& cfg, const node_id& self);

  /// The node's configuration.
  config cfg;
  /// This node's ID.
  node_id self_id;
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
  /// Control messages already relayed.
  seen_set seen;
  /// py2p mode: broadcasts already relayed (py2p's 60 s waterfall).
  py2p_waterfall py2p_seen;
  /// The listening broker, if any.
  caf::actor listener;
  /// The bound port (0 until bound or when not listening).
  uint16_t port = 0;
  /// Bind finished (successfully or not).
  bool bound = false;
  /// Why binding failed.
  caf::error bind_error;
  /// Callers waiting for the bind.
  std::vector<caf::typed_response_promise<pb::NodeInfo>> waiting_for_bind;
  /// Where inbound writes go.
  caf::actor lease_manager;
  /// The dictionary (anti-entropy).
  caf::actor store;
  /// Receives messages and peer events (the facade).
  caf::actor events;
  /// Writes waiting for the next flush, with the peer they came from.
  std::vector<std::pair<std::string, pb::WriteRecord>> outbox;
  /// A flush message is on its way.
  bool flush_scheduled = false;
  /// Counter for control message IDs.
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
  /// A newcomer claiming the ID of a connected node, waiting while the
  /// existing link is probed.
  struct duplicate_probe {
    /// The newcomer's link.
    caf::actor newcomer;
    /// What the newcomer told us.
    pb::PeerInfo info;
    /// The link being probed.
    caf::actor existing;
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

/// The router: the node's routing and flood table. It owns the peer table,
/// the listener, dialling (seeds, learned addresses, backoff), peer
/// exchange, flooding and the anti-entropy schedule. Messages:
/// - `(changed_atom, origin, WriteBatch)` from the store: every write that
///   changed the store, batched and flooded to every peer but its origin;
/// - `(inbound_atom, peer, Envelope) -> bool` from peer links: writes from
///   the mesh, validated and delegated to the lease manager, whose reply
///   once applied returns the link's ingress credit; malformed input is
///   refused with errc::malformed, the link told to close, nothing changes;
/// - `(attach_atom, PeerInfo) -> bool` from a link whose handshake is done
///   (false: a duplicate; error overloaded: too many inbound peers). A
///   newcomer claiming the ID of a connected node waits while the existing
///   link is probed: if it answers within duplicate_probe_timeout the
///   newcomer is refused (goodbye DUPLICATE_ID), otherwise it replaces the
///   silent link. Two nodes dialling each other keep the connection dialled
///   by the smaller ID, decided the same way on both ends;
/// - `ConnectRequest -> PeerInfo`, `PeersRequest -> PeerList`,
///   `(info_atom) -> (host, port, peers)` once the listener is bound;
/// - `(peers_atom, peer, Peers, message ID, hops)`: addresses to learn;
/// - `SendRequest -> SendReply` and `(message_atom, peer, Envelope)`:
///   mesh_socket messages, flooded with the seen set and hop limit,
///   whispered to direct peers, or routed to one node; those for this node go
///   to the facade as `Event{message}`, as do peer up/down events;
/// - `(wire_atom, lease_manager, store, facade)`, `(stats_atom) ->
/// RouterStats`,
///   `(close_atom)`: goodbye to every peer.
caf::behavior router_actor(caf::stateful_actor<router_state>* self,
                           const config& cfg, const node_id& id);

} // namespace syncmesh
