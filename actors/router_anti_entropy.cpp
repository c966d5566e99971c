// The router's anti-entropy schedule: the dialling side of a new link starts
// once the link is attached; every interval the next peer in turn gets a
// round. The rounds themselves run in the dict store (anti_entropy.hpp).

#include <caf/all.hpp>

#include "actors/atoms.hpp"
#include "actors/router_internal.hpp"
#include "syncmesh/caf_types.hpp"

namespace syncmesh {

void start_anti_entropy_with(router_self self, const std::string& peer) {
  auto& st = self->state;
  auto& entry = st.peers[peer];
  // The dialling side starts anti-entropy at once; the other follows in
  // its periodic rounds. Not from here, though: this runs inside the
  // handler that attaches the link, whose answer (which makes the link
  // write anything) is sent only when the handler returns. A SUMMARY asked
  // of the store now can reach the link before that answer, and a link not
  // yet attached drops it: the join then waits a whole interval (the bench
  // waits an hour). A message to ourselves is handled after the answer is
  // out, and the store's frame, caused by it, arrives behind the answer.
  if (entry.info.outbound())
    self->send(caf::actor_cast<router_actor>(self), ae_start_atom::value,
               entry.link);
}

void on_ae_start(router_self self, const link_actor& link) {
  auto& st = self->state;
  // The link may have gone (or been replaced) since it attached.
  for (const auto& kv : st.peers)
    if (kv.second.link == link) {
      self->send(st.store, ae_start_atom::value, link);
      return;
    }
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
