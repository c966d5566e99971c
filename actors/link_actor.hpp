#pragma once

// The interface of a peer link, native (peer_link.hpp) or py2p
// (py2p_link.hpp): both speak it, so the router, the dict store and the
// dialler need not know which dialect a link speaks.

#include <cstdint>
#include <string>

#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "actors/atoms.hpp"

namespace syncmesh {

/// A peer link: one CAF broker per TCP connection. Messages:
/// - `(frame_atom, bytes)`: one encoded frame of flood traffic (writes,
///   peer lists, mesh messages; py2p: id + msgpack), shed (counted) while
///   the send queue is full and repaired once it drains (anti-entropy;
///   py2p: the initial sync again); see link_base.hpp;
/// - `(ae_frame_atom, bytes)`: an anti-entropy frame, written up to the
///   send queue's hard cap, beyond which the peer is disconnected;
/// - `(goodbye_atom, reason, detail)`: say goodbye with a reason and close;
/// - `(probe_atom) -> bool`: the router asks whether the peer still answers
///   (a newcomer claims the same node ID); answered with the peer's next
///   pong (native links; a py2p link does not answer and is replaced);
/// - from the dialler, while the connection is being dialled:
///   `(adopt_atom)` takes the socket the dialler left in the link's slot,
///   `(backend_dial_atom, host, port)` connects through the middleman
///   backend instead, `(dial_fail_atom, errc, reason)` ends the link.
/// The brokers themselves are dynamically typed (a CAF 0.17 typed broker
/// would have to list every I/O event in its interface); their handles are
/// cast to this type where they are spawned, so every sender is checked.
using link_actor
  = caf::typed_actor<caf::reacts_to<frame_atom, std::string>,
                     caf::reacts_to<ae_frame_atom, std::string>,
                     caf::reacts_to<goodbye_atom, int32_t, std::string>,
                     caf::replies_to<probe_atom>::with<bool>,
                     caf::reacts_to<adopt_atom>,
                     caf::reacts_to<backend_dial_atom, std::string, uint16_t>,
                     caf::reacts_to<dial_fail_atom, uint8_t, std::string>>;

} // namespace syncmesh
