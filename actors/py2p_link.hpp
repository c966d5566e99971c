#pragma once

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <caf/io/broker.hpp>
#include <caf/io/connection_handle.hpp>

#include "actors/link_base.hpp"
#include "actors/peer_link.hpp"
#include "actors/py2p_link_state.hpp"
#include "syncmesh/pb/requests.pb.h"

namespace syncmesh {

/// State of one py2p-dialect link broker: the link base (settings, send
/// queue, handshake budget, ingress window, traffic) and py2p's session.
struct py2p_link_state : link_base {
  /// Framing, handshake and classification rules.
  std::unique_ptr<py2p_session> session;
  /// The router was asked to attach us.
  bool attach_requested = false;
  /// The router attached us (we receive flood traffic).
  bool attached = false;
  /// The router kept another connection to the same id: this one stays
  /// open (py2p may route through it) but gets no flood traffic.
  bool passive = false;
  /// Peers and keys were sent to this peer.
  bool initial_sync_started = false;
  /// An initial sync is running.
  bool syncing = false;
  /// Flood frames were shed while a sync ran: sync again once it ends.
  bool resync = false;
  /// Where the initial sync resumes once the send queue drained (empty:
  /// not paused).
  std::string sync_cursor;
  /// The tick that re-triggers a socket halted once runs.
  bool ticking = false;
  /// Messages that arrived before the router answered the attach (at most
  /// params.max_send_queue bytes, and within the node's handshake budget).
  early_frames<py2p_inbound> early;
  /// py2p's 60 s limit for a frame left unfinished.
  stalled_frame_rule stall;
  /// A stall check (py2p_stall_atom) is scheduled.
  bool stall_armed = false;
  /// Messages counted since the last report.
  size_t unreported = 0;
  /// Node IDs whose msgpack type this link told the router: bit 0 bin,
  /// bit 1 first-hand (see py2p_id_types::observe).
  std::unordered_map<std::string, uint8_t> reported_id_types;

  /// The actor's name in CAF's registry and logs.
  static inline const char* name = "syncmesh.py2p_link";
};

/// Pointer type of py2p link brokers.
using py2p_link_ptr = caf::io::stateful_broker<py2p_link_state>*;

/// A peer link that speaks py2p/js2p 0.7.870 on an established connection.
/// It sends its handshake at once, attaches the peer to the router on the
/// peer's first valid handshake, then sends the peers list and every key as
/// a 5-packet initial-sync store (like py2p's `_send_peers`), paced by the
/// send queue. Every message goes to the router as a request `(py2p_in_atom,
/// ...)` with its received bytes, so the router de-duplicates and relays
/// broadcasts unchanged; stores and deltas travel with it as write records.
/// It has the bounds of a native link (link_base.hpp): frames of at most
/// max_handshake_frame bytes until the peer's handshake, and what it holds
/// until the router attached it counts against the node's handshake budget;
/// the router's reply returns the bytes' ingress credit, and beyond
/// ingress_window unapplied bytes the link stops reading its socket.
/// Messages from the node:
/// - `(frame_atom, id || msgpack)`: a message to send, framed and compressed
///   for this peer; shed (counted) while the send queue is full, after which
///   the link repeats its initial sync, which repairs what was shed;
/// - `(goodbye_atom, reason, detail)`: close (py2p has no goodbye message).
caf::behavior py2p_link_actor(py2p_link_ptr self,
                              caf::io::connection_handle hdl,
                              link_params params);

/// A py2p link whose connection is being dialled (see dialing_link_actor).
caf::behavior py2p_dialing_link_actor(py2p_link_ptr self, link_params params,
                                      std::shared_ptr<dial_slot> slot);

} // namespace syncmesh
