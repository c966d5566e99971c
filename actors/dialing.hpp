#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <caf/behavior.hpp>
#include <caf/io/connection_handle.hpp>
#include <caf/io/network/native_socket.hpp>

#include "actors/atoms.hpp"
#include "actors/peer_link.hpp"
#include "syncmesh/caf_types.hpp"

namespace syncmesh {

/// The behaviour of a link broker (either wire dialect) whose connection is
/// being dialled: it adopts the socket the dialler left in `slot`, or
/// connects through the middleman backend (config::dial_via_backend), and
/// then calls `start(hdl)`, which turns the broker into the running link; a
/// failed dial ends the broker with the dialler's error.
template <class Broker, class Start>
caf::behavior dialing_behavior(Broker* self, std::shared_ptr<dial_slot> slot,
                               Start start) {
  self->state.slot = slot;
  return {
    [=](adopt_atom) {
      auto fd = slot->take();
      if (fd < 0) {
        self->quit(make_error(errc::unreachable, std::string{"no socket"}));
        return;
      }
      start(self->add_scribe(static_cast<caf::io::network::native_socket>(fd)));
    },
    [=](backend_dial_atom, const std::string& host, uint16_t port) {
      auto hdl = self->add_tcp_scribe(host, port);
      if (!hdl) {
        self->quit(make_error(errc::unreachable, "connect to " + host + ":"
                                                   + std::to_string(port)
                                                   + " failed"));
        return;
      }
      start(*hdl);
    },
    [=](dial_fail_atom, uint8_t code, const std::string& reason) {
      self->quit(make_error(static_cast<errc>(code), reason));
    },
  };
}

} // namespace syncmesh
