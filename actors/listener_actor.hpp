#pragma once

// The interface of the listener (listener.hpp).

#include <cstdint>
#include <string>

#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "actors/atoms.hpp"

namespace syncmesh {

/// The listener: accepts TCP connections and forks a peer link for each.
/// - `(open_atom, host, port) -> port`: binds (port 0: the OS picks; the
///   reply is the bound port), or fails with errc::unreachable.
/// A dynamically typed broker behind a handle of this type (see link_actor).
using listener_actor = caf::typed_actor<
  caf::replies_to<open_atom, std::string, uint16_t>::with<uint16_t>>;

} // namespace syncmesh
