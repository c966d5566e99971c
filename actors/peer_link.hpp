#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/io/broker.hpp>
#include <caf/io/connection_handle.hpp>
#include <caf/response_promise.hpp>

#include "actors/dict_store_actor.hpp"
#include "actors/handshake_budget.hpp"
#include "actors/peer_link_state.hpp"
#include "actors/router_actor.hpp"
#include "messages/frame_codec.hpp"
#include "syncmesh/clock.hpp"
#include "syncmesh/pb/requests.pb.h"

namespace syncmesh {

/// What a peer link needs to know about its node.
struct link_params {
  /// This node's ID.
  node_id self;
  /// This node's protocol ID.
  std::string protocol_id;
  /// This node's protocol versions and value limits (in the hello).
  hello_terms terms;
  /// Where this node listens (announced in the hello).
  std::string listen_host;
  /// See listen_host; 0 when it does not listen.
  uint16_t listen_port = 0;
  /// The flood table: writes, peer lists and attach requests go there.
  router_actor router;
  /// The dictionary: anti-entropy digests and entries go there.
  dict_store_actor store;
  /// Largest frame accepted or sent.
  size_t max_frame_size = default_max_frame_size;
  /// Most bytes queued for the peer before flood frames are shed (anti-
  /// entropy repairs them once the queue drains); twice this is the hard
  /// cap beyond which the peer is disconnected as a slow consumer.
  size_t max_send_queue = 16 * 1024 * 1024;
  /// Largest frame accepted before the peer's hello was received and found
  /// valid (a hello fits in a few hundred bytes).
  size_t max_handshake_frame = 64 * 1024;
  /// Most bytes of the peer's writes handed on but not yet applied by the
  /// store; beyond it the link stops reading its socket.
  size_t ingress_window = 4 * 1024 * 1024;
  /// Shared by every link of the node: the handshake budget and counters
  /// (none: no shared budget, e.g. in tests of a lone link).
  std::shared_ptr<link_shared> shared;
  /// Deadline of the handshake.
  std::chrono::milliseconds handshake_timeout{5000};
  /// Interval of pings.
  std::chrono::milliseconds heartbeat_interval{1000};
  /// Silence after which the peer is dropped.
  std::chrono::milliseconds peer_timeout{10000};
  /// True when this node dialled the connection.
  bool outbound = false;
  /// Speak py2p/js2p 0.7.870 (config::wire): the listener and the router
  /// spawn py2p links instead.
  bool py2p = false;
  /// The node's wall clock (config::clock) for times a link puts on the
  /// wire itself (py2p's handshakes, peer lists, initial sync); empty: the
  /// system clock.
  wall_clock clock;
};

/// Hands a dialled socket from the dialler to its link without a round trip:
/// whoever comes second (the socket or the link's end) closes the socket,
/// so nothing leaks and nobody waits on anybody.
struct dial_slot {
  /// Guards the fields.
  std::mutex mtx;
  /// The connected socket, until the link adopts it; -1 otherwise.
  int fd = -1;
  /// The link ended: a socket arriving now must be closed by the dialler.
  bool abandoned = false;

  /// Called by the dialler; false when the link is gone (then the caller
  /// closes `fd`).
  bool deposit(int socket);
  /// Called by the link: takes the socket (or -1).
  int take();
  /// Called when the link ends: closes a socket nobody took.
  void abandon();
};

/// State of one peer link broker.
struct peer_link_state {
  /// Closes a dialled socket that never got adopted.
  ~peer_link_state() {
    if (slot)
      slot->abandon();
    if (handshake_ticket != 0 && params.shared)
      params.shared->handshakes.leave(handshake_ticket);
    // Replies that will never come: their credit leaves with the link.
    if (params.shared)
      params.shared->ingress_outstanding -= ingress.outstanding();
  }

  /// Where the dialler leaves the socket (dialled links only).
  std::shared_ptr<dial_slot> slot;
  /// Settings.
  link_params params;
  /// The connection.
  caf::io::connection_handle hdl;
  /// Splits the byte stream into frames.
  frame_decoder decoder;
  /// Bytes handed to the OS but not yet written.
  send_budget budget;
  /// Handshake done and accepted by the router.
  bool established = false;
  /// Hello sent and the peer's hello received and valid.
  bool hello_received = false;
  /// Closing: no more input is processed.
  bool closing = false;
  /// The peer's hello.
  pb::Hello peer;
  /// Frames that arrived after the peer's hello but before the router
  /// attached us (at most params.max_send_queue bytes, and within the
  /// node's handshake budget).
  early_frames<pb::Envelope> early;
  /// Our ticket in the node's handshake budget (0: none or left it).
  uint64_t handshake_ticket = 0;
  /// The peer's writes handed on and not yet applied by the store.
  ingress_window ingress;
  /// The link stopped reading at least once (then each heartbeat makes sure
  /// reading resumed: a halt and a trigger in one multiplexer round can
  /// leave a socket unregistered).
  bool ever_paused = false;
  /// Flood frames are being shed since the send queue filled up; once it
  /// drains the link asks for an anti-entropy round with the peer.
  bool shedding = false;
  /// The router's probes waiting for the peer's next pong.
  std::vector<caf::response_promise> probes;
  /// Pongs to pings with at least this nonce answer the probes.
  uint64_t probe_nonce = 0;
  /// When the last frame arrived (actor clock).
  caf::actor_clock::time_point last_received;
  /// Pings sent, for matching pongs.
  uint64_t next_ping = 0;
  /// Traffic since the last report to the router.
  pb::TrafficStats traffic;

  /// The actor's name in CAF's registry and logs.
  static inline const char* name = "syncmesh.peer_link";
};

/// Pointer type of peer link brokers.
using peer_link_ptr = caf::io::stateful_broker<peer_link_state>*;

/// A peer link on an established TCP connection (accepted by the listener
/// and forked from it, or added by tests on CAF's test multiplexer). It owns
/// framing, the handshake, heartbeats, the bounded send queue and the codec,
/// and knows nothing of keys or leases. Until its hello is received and
/// valid, the peer may send frames of at most max_handshake_frame bytes, and
/// until the router attached the link, what it holds counts against the
/// node's handshake budget. Writes go to the
/// router as requests; the store's reply returns their credit, and beyond
/// ingress_window unapplied bytes the link stops reading its socket (and
/// does not count the silence it caused against the peer). Messages from the
/// node:
/// - `(frame_atom, bytes)`: flood traffic, shed (counted) while the send
///   queue is full; once it drains the link asks the store for an
///   anti-entropy round with the peer, which repairs what was shed;
/// - `(ae_frame_atom, bytes)`: anti-entropy windows, written up to the hard
///   cap (twice max_send_queue), beyond which the peer is disconnected;
/// - `(probe_atom) -> bool`: answered with the peer's next pong;
/// - `(goodbye_atom, reason, detail)`: say goodbye and close.
/// The link quits with an error of category "syncmesh" when the connection
/// fails before the handshake completes (unreachable, protocol_mismatch,
/// disconnected), so whoever waits for it learns why.
caf::behavior peer_link_actor(peer_link_ptr self,
                              caf::io::connection_handle hdl,
                              link_params params);

/// A peer link whose connection is being dialled: `slot` receives the
/// socket; `(adopt_atom)` tells the link to take it (then it runs as
/// peer_link_actor), `(backend_dial_atom, host, port)` to connect through the
/// middleman backend instead (config::dial_via_backend), and `(dial_fail_atom,
/// errc, reason)` that the dial failed (then it quits with that error).
caf::behavior dialing_link_actor(peer_link_ptr self, link_params params,
                                 std::shared_ptr<dial_slot> slot);

/// Dials `host:port` without blocking any CAF worker: a detached helper
/// connects non-blockingly with a deadline, leaves the socket in `slot` and
/// tells `link` (a dialing_link_actor). It never waits for the link.
void dial(caf::actor_system& sys, caf::actor link,
          std::shared_ptr<dial_slot> slot, std::string host, uint16_t port,
          std::chrono::milliseconds timeout);

} // namespace syncmesh
