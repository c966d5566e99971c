#pragma once

// The router's internals, shared by the files that implement it, one per
// concern (see router.hpp for the actor's interface):
// - router.cpp: the state's setup and the behavior, which only dispatches;
// - router_peer_table.cpp: attaching links, peer up/down, the peer list;
// - router_flooding.cpp: writes in from links and out to every peer;
// - router_dialing.cpp: the listener, the address book and dialling;
// - router_peer_exchange.cpp: learning and announcing peer addresses;
// - router_messages.cpp: mesh_socket messages (send, relay, deliver);
// - router_anti_entropy.cpp: which peer gets an anti-entropy round when;
// - router_py2p.cpp: py2p mode's relay (waterfall) and local announcements;
// - router_py2p_messages.cpp: py2p mode's mesh_socket messages and lookups.
// Not for use outside the router.

#include <cstdint>
#include <optional>
#include <string>

#include <caf/atom.hpp>
#include <caf/fwd.hpp>
#include <caf/typed_response_promise.hpp>

#include "actors/router.hpp"

namespace syncmesh {

/// The router as its handlers see it.
using router_self = router_actor::stateful_pointer<router_state>;

// -- shared helpers (router.cpp) ----------------------------------------------

/// Adds `n` to one counter of `stats`.
void bump(pb::RouterStats& stats, uint64_t (pb::RouterStats::*get)() const,
          void (pb::RouterStats::*set)(uint64_t), uint64_t n = 1);

/// The router's wall clock (µs).
uint64_t now_us(router_self self);

/// An envelope this node originates: a fresh message ID ("<self>/<kind><n>"),
/// this node as origin, the time now and `hops` hops left.
pb::Envelope own_envelope(router_self self, char kind, uint32_t hops);

/// Tells `peer` (when still linked) that it sent something malformed, and
/// why; the link closes after the goodbye.
void goodbye_malformed(router_self self, const std::string& peer,
                       const std::string& why);

/// Counts one message-like envelope (messages, confirmations) against
/// `peer`'s budget of `max_messages_per_peer` a second; false (counted as
/// shed) when it is over, so one peer's flood cannot crowd out dictionary
/// traffic.
bool spend_message_budget(router_self self, const std::string& peer);

/// Sends an encoded message (shared, not copied, between the peers it goes
/// to) to one link.
void send_shared(const link_actor& link, const caf::message& msg);

/// Removes the records of `batch` that break a value limit (or are
/// malformed), counting and logging them: one bad record from a peer is
/// skipped alone, never a reason to refuse its batch or drop its link.
void skip_invalid_records(router_self self, const std::string& peer,
                          pb::WriteBatch& batch);

/// Frames a control message for one peer or for flooding.
std::string control_frame(router_self self, pb::Envelope& env);

// -- peer table (router_peer_table.cpp) ---------------------------------------

/// A link finished its handshake: adds it to the peer table (or refuses a
/// duplicate or one inbound peer too many).
caf::result<bool> attach(router_self self, pb::PeerInfo& info);

/// A monitored link, dial or the listener ended.
void on_link_down(router_self self, const caf::down_msg& msg);

/// Tells the facade that `peer` went away.
void publish_peer_down(router_self self, const std::string& peer,
                       std::string reason);

/// Says goodbye to `req.node_id()` and forgets its address; false when it
/// was not connected.
bool disconnect_peer(router_self self, const pb::DisconnectRequest& req);

/// Every connected peer.
pb::PeerList peer_list(router_self self);

/// Adds a link's traffic report to the totals.
void add_traffic(router_self self, const pb::TrafficStats& delta);

/// Says goodbye to every peer and stops dials and the listener.
void say_goodbye_to_all(router_self self);

// -- flooding (router_flooding.cpp) -------------------------------------------

/// Sends `msg` to every peer but `except`.
void send_to_all(router_self self, const caf::message& msg,
                 const std::string& except);

/// Writes that changed the store: batched for the next flush (or announced
/// to py2p peers).
void on_changed(router_self self, std::string& origin, pb::WriteBatch& batch);

/// Sends what `on_changed` batched, grouped by origin.
void flush(router_self self);

/// Writes from a peer link: validated and passed to the lease manager.
caf::result<bool> on_inbound_writes(router_self self, std::string& peer,
                                    const pb::Envelope& env);

// -- dialling and the address book (router_dialing.cpp) -----------------------

/// What a new link (dialled when `outbound`, else accepted) needs to know.
link_params make_link_params(router_self self, bool outbound);

/// Starts dialling `addr`; `rp` (if pending) is answered when it finishes.
void start_dial(router_self self, const address& addr,
                std::optional<caf::typed_response_promise<pb::PeerInfo>> rp
                = std::nullopt);

/// Dials addresses from the book while below the target degree.
void dial_due(router_self self);

/// Learns where the other actors are, then binds the listener (if any) and
/// starts the timers.
void on_wired(router_self self, dict_store_actor store, facade_actor events);

/// Our listening address; answered once bound.
caf::result<pb::NodeInfo> node_info(router_self self);

/// Dials a peer on request.
caf::result<pb::PeerInfo> connect_peer(router_self self,
                                       pb::ConnectRequest& req);

/// The maintenance timer: dials what is due and re-arms itself.
void on_rtick(router_self self);

// -- peer exchange (router_peer_exchange.cpp) ---------------------------------

/// Tells a newcomer whom we know and everyone else about the newcomer.
void exchange_peers_with(router_self self, const std::string& peer);

/// Peer addresses from `from`: remembered for dialling and relayed.
void on_peers(router_self self, const std::string& from, const pb::Peers& list,
              const std::string& message_id, uint32_t hops);

// -- mesh messages (router_messages.cpp) --------------------------------------

/// A local SendRequest: flooded, whispered or routed to one node.
caf::result<pb::SendReply> send_message(router_self self, pb::SendRequest& req);

/// A mesh message from `peer`: checked, de-duplicated, delivered and relayed.
void on_message(router_self self, const std::string& peer, pb::Envelope& env);

/// Hands a message for this node's users to the facade (events, recv queue,
/// handlers), with the peer it arrived through.
void deliver_message(router_self self, const pb::Message& msg,
                     const std::string& via);

// -- confirmed writes (router_confirm.cpp) ------------------------------------

/// The lowest negotiated protocol version whose links carry confirmation
/// queries and answers (older peers would close the link on them).
inline constexpr uint32_t confirm_protocol_version = 4;

/// Most records one confirmation query may carry (an update batch of
/// 10,000 keys fits).
inline constexpr int max_confirm_records = 10000;

/// The facade's query: flooded to every peer speaking confirmations.
void flood_confirm_query(router_self self, pb::ConfirmQuery& q);

/// The store's answer to a query: routed to the query's origin.
void route_confirm_answer(router_self self, pb::ConfirmAnswer& a);

/// A confirmation query or answer from `peer`: checked, de-duplicated,
/// handed to the store (query) or the facade (answer for us) and relayed.
void on_confirm_envelope(router_self self, const std::string& peer,
                         pb::Envelope& env);

// -- anti-entropy schedule (router_anti_entropy.cpp) --------------------------

/// Starts anti-entropy with a peer that just attached (dialling side only),
/// through a message to ourselves: see `on_ae_start`.
void start_anti_entropy_with(router_self self, const std::string& peer);

/// Asks the store for our SUMMARY toward `link` if it is still attached;
/// handled after the attach answer has reached the link's mailbox.
void on_ae_start(router_self self, const link_actor& link);

/// Time for a round: the next peer in turn gets our SUMMARY.
void on_ae_round(router_self self);

// -- py2p mode (router_py2p.cpp) ----------------------------------------------

/// Announces local writes to py2p peers.
void py2p_flood_local(router_self self, const std::string& origin,
                      const pb::WriteBatch& batch);

/// A message from a py2p link: relayed (waterfall), its writes decided;
/// answered once they are applied (the reply returns the link's credit).
caf::result<bool> on_py2p_inbound(router_self self, const std::string& peer,
                                  const std::string& id,
                                  const std::string& msgpack,
                                  const std::string& sender, uint64_t time,
                                  bool broadcast, pb::WriteBatch& batch,
                                  bool initial_sync);

// -- py2p mode's messages (router_py2p_messages.cpp) -------------------------

/// A local SendRequest in py2p mode: broadcast as py2p's send(), whispered
/// as py2p's reply(), or (to a node that is not a neighbour) deferred behind
/// an id lookup as py2p's reply() does.
caf::result<pb::SendReply> py2p_send_message(router_self self,
                                             pb::SendRequest& req);

/// A py2p message from `peer` with no write in it (already relayed when a
/// broadcast): user messages are delivered, id lookups answered, answers to
/// our lookups dialled; what breaks a bound is counted and logged.
void py2p_on_mesh_message(router_self self, const std::string& peer,
                          const std::string& id, const std::string& msgpack);

/// A py2p peer attached: the replies waiting for it are whispered to it.
void py2p_peer_attached(router_self self, const std::string& peer);

/// The maintenance timer: replies whose lookup went unanswered are dropped
/// (counted).
void py2p_messages_tick(router_self self);

/// A py2p peer attached: it gets the catch-up broadcasts still young enough
/// for py2p to accept.
void py2p_on_attached(router_self self, const std::string& peer);

/// A py2p link saw node ID `id` arrive as msgpack bin (or str).
void on_py2p_id_type(router_self self, const std::string& id, bool bin,
                     bool first_hand);

/// Which of `ids` go out to py2p peers as msgpack bin.
std::vector<std::string> py2p_bin_ids(router_self self,
                                      const std::vector<std::string>& ids);

} // namespace syncmesh
