// The router's peer exchange: a newcomer learns whom we know, everyone
// learns of the newcomer, and addresses learned from peers feed the book.

#include <caf/all.hpp>

#include "actors/atoms.hpp"
#include "actors/log.hpp"
#include "actors/router_internal.hpp"
#include "syncmesh/caf_types.hpp"

namespace syncmesh {

namespace {

pb::Envelope peers_envelope(router_self self, const std::string& except,
                            uint32_t hops) {
  auto& st = self->state;
  auto env = own_envelope(self, 'p', hops);
  auto* list = env.mutable_peers();
  for (const auto& [peer, entry] : st.peers) {
    if (peer == except || entry.info.port() == 0)
      continue;
    auto* p = list->add_peers();
    p->set_node_id(peer);
    p->set_host(entry.info.host());
    p->set_port(entry.info.port());
    if (list->peers_size() >= 32)
      break;
  }
  return env;
}

} // namespace

void exchange_peers_with(router_self self, const std::string& peer) {
  auto& st = self->state;
  auto& entry = st.peers[peer];
  // Tell the newcomer whom we know, so it can reach its target degree.
  auto list = peers_envelope(self, peer, 1);
  if (list.peers().peers_size() > 0)
    self->send(entry.link, frame_atom::value, control_frame(self, list));
  // Tell everyone else about the newcomer (flooded, de-duplicated).
  if (entry.info.port() != 0 && st.peers.size() > 1) {
    auto announce = own_envelope(self, 'a', st.cfg.max_hops);
    auto* p = announce.mutable_peers()->add_peers();
    p->set_node_id(peer);
    p->set_host(entry.info.host());
    p->set_port(entry.info.port());
    st.seen.insert(announce.message_id(), self->clock().now());
    send_to_all(
      self, caf::make_message(frame_atom::value, control_frame(self, announce)),
      peer);
  }
}

void on_peers(router_self self, const std::string& from, const pb::Peers& list,
              const std::string& message_id, uint32_t hops) {
  auto& st = self->state;
  auto now = self->clock().now();
  if (!message_id.empty() && !st.seen.insert(message_id, now))
    return;
  // Peer lists carry "<origin>/p<n>" (the origin's own peers, told to a
  // newcomer) or "<origin>/a<n>" (a newcomer the origin just linked to):
  // either way, links from the origin, kept for views of the mesh.
  if (auto slash = message_id.rfind('/');
      slash != std::string::npos && slash + 1 < message_id.size()
      && (message_id[slash + 1] == 'p' || message_id[slash + 1] == 'a')) {
    auto origin = message_id.substr(0, slash);
    auto evicted = st.mesh_links.evicted();
    for (const auto& p : list.peers())
      st.mesh_links.add(origin, p.node_id(), now_us(self));
    if (st.mesh_links.evicted() > evicted) {
      st.stats.set_announced_links_evicted(st.mesh_links.evicted());
      log_line(log_level::info, st.self_id,
               "announced links: forgot "
                 + std::to_string(st.mesh_links.evicted() - evicted)
                 + " heard longest ago (at most "
                 + std::to_string(st.mesh_links.max_links()) + " kept)");
    }
  }
  for (const auto& p : list.peers()) {
    if (p.node_id() == st.self_id || p.port() == 0 || p.port() > 65535
        || p.host().empty() || p.host().size() > 255
        || st.peers.count(p.node_id()) > 0)
      continue;
    st.book.add(address{p.host(), static_cast<uint16_t>(p.port())}, false, now);
  }
  if (!message_id.empty() && hops > 1) {
    pb::Envelope relay;
    relay.set_message_id(message_id);
    relay.set_hops_left(hops - 1);
    *relay.mutable_peers() = list;
    send_to_all(
      self, caf::make_message(frame_atom::value, control_frame(self, relay)),
      from);
  }
  dial_due(self);
}

} // namespace syncmesh
