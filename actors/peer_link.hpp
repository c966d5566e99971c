#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/io/broker.hpp>
#include <caf/io/connection_handle.hpp>
#include <caf/response_promise.hpp>

#include "actors/dict_store_actor.hpp"
#include "actors/handshake_budget.hpp"
#include "actors/link_base.hpp"
#include "actors/peer_link_state.hpp"
#include "actors/router_actor.hpp"
#include "messages/frame_codec.hpp"
#include "syncmesh/clock.hpp"
#include "syncmesh/pb/requests.pb.h"

namespace syncmesh {

/// State of one peer link broker.
struct peer_link_state : link_base {
  /// Splits the byte stream into frames.
  frame_decoder decoder;
  /// Handshake done and accepted by the router.
  bool established = false;
  /// Hello sent and the peer's hello received and valid.
  bool hello_received = false;
  /// The peer's hello.
  pb::Hello peer;
  /// Frames that arrived after the peer's hello but before the router
  /// attached us (at most params.max_send_queue bytes, and within the
  /// node's handshake budget).
  early_frames<pb::Envelope> early;
  /// The router's probes waiting for the peer's next pong.
  std::vector<caf::response_promise> probes;
  /// Pongs to pings with at least this nonce answer the probes.
  uint64_t probe_nonce = 0;
  /// Pings sent, for matching pongs.
  uint64_t next_ping = 0;
  /// The peer's recent clock samples (one per pong carrying its clock).
  offset_estimator clock_samples;
  /// The peer's hello announced its clock: the link waits for the pong to
  /// its first ping (the clock check) before asking the router to attach.
  bool awaiting_clock = false;
  /// The verdict of the peer's hello, kept while the clock check runs.
  uint32_t negotiated_version = 0;

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
/// node's handshake budget. A peer whose hello carries its wall clock is
/// pinged before the router is asked to attach it, and refused (Goodbye
/// CLOCK_OFFSET) when its offset is beyond config::max_clock_offset; every
/// heartbeat pong measures it again (cut when beyond) and feeds the node's
/// clock fence (actors/clock_offset.hpp). Writes go to the
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
