#include "actors/listener.hpp"

#include <caf/all.hpp>
#include <caf/io/all.hpp>

#include "actors/atoms.hpp"
#include "actors/log.hpp"
#include "actors/py2p_link.hpp"
#include "syncmesh/caf_types.hpp"

namespace syncmesh {

caf::behavior listener_behavior(caf::io::stateful_broker<listener_state>* self,
                                link_params params) {
  self->state.params = std::move(params);
  return {
    [=](open_atom, const std::string& host,
        uint16_t port) -> caf::result<uint16_t> {
      auto res = self->add_tcp_doorman(port, host.c_str(), true);
      if (!res)
        return make_error(errc::unreachable,
                          "cannot listen on " + host + ":"
                            + std::to_string(port) + ": "
                            + self->system().render(res.error()));
      self->state.params.listen_host = host;
      self->state.params.listen_port = res->second;
      log_line(log_level::info, self->state.params.self,
               "listening on " + host + ":" + std::to_string(res->second));
      return res->second;
    },
    [=](const caf::io::new_connection_msg& msg) {
      ++self->state.accepted;
      auto link_cfg = self->state.params;
      link_cfg.outbound = false;
      if (link_cfg.py2p)
        self->fork(py2p_link_actor, msg.handle, std::move(link_cfg));
      else
        self->fork(peer_link_actor, msg.handle, std::move(link_cfg));
    },
    [=](const caf::io::acceptor_closed_msg&) {
      log_line(log_level::warning, self->state.params.self,
               "listening socket closed");
      self->quit();
    },
  };
}

} // namespace syncmesh
