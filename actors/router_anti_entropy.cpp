// The router's anti-entropy schedule: the dialling side of a new link starts
// at once; every interval the next peer in turn gets a round. The rounds
// themselves run in the dict store (anti_entropy.hpp).

#include <caf/all.hpp>

#include "actors/atoms.hpp"
#include "actors/router_internal.hpp"
#include "syncmesh/caf_types.hpp"

namespace syncmesh {

void start_anti_entropy_with(router_self self, const std::string& peer) {
  auto& st = self->state;
  auto& entry = st.peers[peer];
  // The dialling side starts anti-entropy at once; the other follows in
  // its periodic rounds.
  if (entry.info.outbound())
    self->send(st.store, ae_start_atom::value, entry.link);
}

void on_ae_round(router_self self) {
  auto& st = self->state;
  if (!st.peers.empty() && st.cfg.wire != wire_kind::py2p) {
    auto i = st.peers.begin();
    std::advance(i, static_cast<long>(st.ae_turn++ % st.peers.size()));
    self->send(st.store, ae_start_atom::value, i->second.link);
  }
  self->delayed_send(caf::actor_cast<router_actor>(self),
                     st.cfg.anti_entropy_interval, ae_round_atom::value);
}

} // namespace syncmesh
