#pragma once

// The interface of the router (router.hpp).

#include <cstdint>
#include <string>

#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "actors/atoms.hpp"
#include "actors/dict_store_actor.hpp"
#include "syncmesh/facade.hpp"

namespace syncmesh {

/// The router: the node's routing and flood table. Messages:
/// - `(wire_atom, store, facade)`: where writes and events go;
/// - from the store: `(changed_atom, origin, WriteBatch)`, every write that
///   changed the store, batched and flooded to every peer but its origin;
/// - from peer links: `(attach_atom, PeerInfo) -> bool` once a handshake is
///   done (false: a duplicate; error overloaded: too many inbound peers);
///   `(inbound_atom, peer, Envelope) -> bool`, writes from the mesh,
///   validated and delegated to the store, whose reply once applied (or
///   held) returns the link's ingress credit (malformed input is refused
///   with errc::malformed and the link told to close). A newcomer claiming
///   the ID of a connected node waits in `attach` while the existing link is
///   probed: if it answers within duplicate_probe_timeout the newcomer is
///   refused (goodbye DUPLICATE_ID), otherwise it replaces the silent link;
///   two nodes dialling each other keep the connection dialled by the
///   smaller ID, decided the same way on both ends; `(peers_atom, peer, Peers,
///   message ID, hops)`, addresses to learn; `(message_atom, peer,
///   Envelope)`, a mesh message; `(rtt_atom, peer, µs)`, `(traffic_atom,
///   TrafficStats)`, `(link_closed_atom, reason)`; py2p links send
///   `(py2p_in_atom, peer, id, msgpack, sender, time, broadcast, WriteBatch,
///   initial_sync) -> bool` (answered once its writes are applied: the
///   reply returns the link's ingress credit) and ask `PeersRequest`;
///   `(py2p_ids_atom, id, bin, first_hand)` reports the msgpack type an ID
///   arrived in, `(py2p_ids_atom, ids) -> ids` asks which go out as bin;
/// - from the facade: `InfoRequest -> NodeInfo` (once the listener is
///   bound), `ConnectRequest -> PeerInfo`, `PeersRequest -> PeerList`,
///   `SendRequest -> SendReply`, `DisconnectRequest -> bool`,
///   `(stats_atom) -> RouterStats`, `(close_atom) -> bool` (goodbye to every
///   peer);
/// - its own timers: `(flush_atom)`, `(rtick_atom)`, `(ae_round_atom)`;
///   and `(ae_start_atom, link)`, the first anti-entropy round of a link it
///   dialled, sent to itself so that it follows the link's attach answer;
/// - confirmed writes (router_confirm.cpp): `(confirm_atom, ConfirmQuery)`
///   from the facade, flooded to peers speaking protocol version 4+;
///   `(confirm_atom, peer, Envelope)` from a link, a query (to the store,
///   relayed) or an answer (to the facade when for us, else routed on);
///   `(confirm_answer_atom, ConfirmAnswer)` from the store, routed to the
///   query's origin.
using router_actor = caf::typed_actor<
  caf::reacts_to<wire_atom, dict_store_actor, facade_actor>,
  caf::replies_to<pb::InfoRequest>::with<pb::NodeInfo>,
  caf::replies_to<pb::ConnectRequest>::with<pb::PeerInfo>,
  caf::replies_to<pb::PeersRequest>::with<pb::PeerList>,
  caf::replies_to<attach_atom, pb::PeerInfo>::with<bool>,
  caf::replies_to<pb::SendRequest>::with<pb::SendReply>,
  caf::reacts_to<message_atom, std::string, pb::Envelope>,
  caf::replies_to<pb::DisconnectRequest>::with<bool>,
  caf::reacts_to<traffic_atom, pb::TrafficStats>,
  caf::reacts_to<link_closed_atom, std::string>,
  caf::reacts_to<rtt_atom, std::string, uint64_t>,
  caf::reacts_to<peers_atom, std::string, pb::Peers, std::string, uint32_t>,
  caf::reacts_to<changed_atom, std::string, pb::WriteBatch>,
  caf::reacts_to<flush_atom>,
  caf::replies_to<inbound_atom, std::string, pb::Envelope>::with<bool>,
  caf::replies_to<py2p_in_atom, std::string, std::string, std::string,
                  std::string, uint64_t, bool, pb::WriteBatch,
                  bool>::with<bool>,
  caf::reacts_to<py2p_ids_atom, std::string, bool, bool>,
  caf::replies_to<py2p_ids_atom,
                  std::vector<std::string>>::with<std::vector<std::string>>,
  caf::reacts_to<rtick_atom>, caf::reacts_to<ae_round_atom>,
  caf::reacts_to<ae_start_atom, link_actor>,
  caf::replies_to<close_atom>::with<bool>,
  caf::replies_to<stats_atom>::with<pb::RouterStats>,
  caf::reacts_to<confirm_atom, pb::ConfirmQuery>,
  caf::reacts_to<confirm_atom, std::string, pb::Envelope>,
  caf::reacts_to<confirm_answer_atom, pb::ConfirmAnswer>>;

} // namespace syncmesh
