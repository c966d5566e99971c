// The router's peer table: links attach once their handshake is done, leave
// when they end, and the facade hears of both.

#include <caf/all.hpp>

#include "actors/atoms.hpp"
#include "actors/log.hpp"
#include "actors/router_internal.hpp"
#include "syncmesh/caf_types.hpp"

namespace syncmesh {

namespace {

void on_attached(router_self self, const std::string& peer) {
  auto& st = self->state;
  auto& entry = st.peers[peer];
  address addr{entry.info.host(), static_cast<uint16_t>(entry.info.port())};
  st.book.connected(addr);
  // A py2p link sends its own peers list and keys (py2p's _send_peers);
  // py2p peers know neither our announcements nor anti-entropy.
  if (st.cfg.wire == wire_kind::py2p) {
    py2p_peer_attached(self, peer);
    py2p_on_attached(self, peer);
    return;
  }
  exchange_peers_with(self, peer);
  start_anti_entropy_with(self, peer);
}

} // namespace

namespace {

/// Enters `link` into the peer table (the checks are done).
void admit(router_self self, const link_actor& link, pb::PeerInfo info,
           std::vector<caf::typed_response_promise<pb::PeerInfo>>& waiting) {
  auto& st = self->state;
  const auto peer = info.node_id();
  info.set_connected_since_us(now_us(self));
  self->monitor(link);
  st.peers[peer] = peer_entry{link, info};
  for (auto& rp : waiting)
    rp.deliver(info);
  if (st.events) {
    pb::Event ev;
    *ev.mutable_peer_up()->mutable_peer() = info;
    self->send(st.events, std::move(ev));
  }
  on_attached(self, peer);
}

/// The probe of the link that holds `peer` ended: `alive` when it answered.
void finish_probe(router_self self, const std::string& peer, bool alive) {
  auto& st = self->state;
  auto i = st.probing.find(peer);
  if (i == st.probing.end())
    return;
  auto probe = std::move(i->second);
  st.probing.erase(i);
  auto existing = st.peers.find(peer);
  bool still_there
    = existing != st.peers.end() && existing->second.link == probe.existing;
  if (existing != st.peers.end() && (alive || !still_there)) {
    // The existing link answered (or another took the ID meanwhile).
    bump(st.stats, &pb::RouterStats::duplicates_refused,
         &pb::RouterStats::set_duplicates_refused);
    log_line(log_level::warning, st.self_id,
             "refused a second connection claiming node "
               + to_hex(peer).substr(0, 12)
               + ": the connected one answered a probe");
    if (!probe.crossed)
      self->send(probe.newcomer, goodbye_atom::value,
                 int32_t{pb::Goodbye::DUPLICATE_ID},
                 "node " + to_hex(peer).substr(0, 12)
                   + " is connected and answered a probe");
    for (auto& rp : probe.waiting)
      rp.deliver(existing->second.info);
    probe.rp.deliver(false);
    return;
  }
  if (still_there) {
    bump(st.stats, &pb::RouterStats::duplicates_replaced,
         &pb::RouterStats::set_duplicates_replaced);
    log_line(log_level::info, st.self_id,
             "replacing the link to " + to_hex(peer).substr(0, 12)
               + ": it did not answer a probe within "
               + std::to_string(st.cfg.duplicate_probe_timeout.count())
               + " ms");
    self->send(existing->second.link, goodbye_atom::value,
               int32_t{probe.crossed ? pb::Goodbye::DUPLICATE_CONNECTION
                                     : pb::Goodbye::HEARTBEAT_TIMEOUT},
               std::string{"a new connection replaces this silent one"});
    self->demonitor(existing->second.link.address());
    st.peers.erase(existing);
  }
  admit(self, probe.newcomer, std::move(probe.info), probe.waiting);
  probe.rp.deliver(true);
}

} // namespace

caf::result<bool> attach(router_self self, pb::PeerInfo& info) {
  auto& st = self->state;
  auto link = caf::actor_cast<link_actor>(self->current_sender());
  if (!link)
    return make_error(errc::malformed, std::string{"anonymous attach"});
  const auto peer = info.node_id();
  auto pending = st.dialing.find(link.address());
  std::vector<caf::typed_response_promise<pb::PeerInfo>> waiting;
  if (pending != st.dialing.end()) {
    waiting = std::move(pending->second.waiting);
    // The address we dialled is where the peer listens, whatever it says.
    info.set_host(pending->second.addr.host);
    info.set_port(pending->second.addr.port);
    st.dialing.erase(pending);
  }
  auto answer = [&](const pb::PeerInfo& x) {
    for (auto& rp : waiting)
      rp.deliver(x);
  };
  auto existing = st.peers.find(peer);
  if (existing != st.peers.end()) {
    bool crossed = existing->second.info.outbound() != info.outbound();
    if ((crossed
         && !prefer_new_connection(existing->second.info.outbound(),
                                   info.outbound(), st.self_id, peer))
        || st.probing.count(peer) > 0) {
      if (!crossed)
        self->send(link, goodbye_atom::value,
                   int32_t{pb::Goodbye::DUPLICATE_ID},
                   "node " + to_hex(peer).substr(0, 12)
                     + " is connected and being probed");
      answer(existing->second.info);
      return false;
    }
    // A newcomer never displaces a link that still answers: probe it. Two
    // nodes dialling each other probe the same (preferred) connection, or
    // one of them refuses it and the other's probe fails: they agree.
    bump(st.stats, &pb::RouterStats::duplicate_probes,
         &pb::RouterStats::set_duplicate_probes);
    auto rp = self->make_response_promise<bool>();
    auto& probe = st.probing[peer];
    probe.newcomer = link;
    probe.info = info;
    probe.existing = existing->second.link;
    probe.rp = rp;
    probe.waiting = std::move(waiting);
    probe.crossed = crossed;
    self
      ->request(existing->second.link, st.cfg.duplicate_probe_timeout,
                probe_atom::value)
      .then([=](bool) { finish_probe(self, peer, true); },
            [=](caf::error&) { finish_probe(self, peer, false); });
    return rp;
  } else if (!info.outbound()) {
    size_t inbound = 0;
    for (const auto& kv : st.peers)
      if (!kv.second.info.outbound())
        ++inbound;
    if (inbound >= st.cfg.max_inbound)
      return make_error(errc::overloaded, "already " + std::to_string(inbound)
                                            + " inbound peers");
  }
  admit(self, link, info, waiting);
  return true;
}

void publish_peer_down(router_self self, const std::string& peer,
                       std::string reason) {
  if (!self->state.events)
    return;
  pb::Event ev;
  ev.mutable_peer_down()->set_node_id(peer);
  ev.mutable_peer_down()->set_reason(std::move(reason));
  self->send(self->state.events, std::move(ev));
}

void on_link_down(router_self self, const caf::down_msg& msg) {
  auto& st = self->state;
  if (msg.source == st.listener.address()) {
    st.listener = listener_actor{};
    return;
  }
  auto pending = st.dialing.find(msg.source);
  if (pending != st.dialing.end()) {
    auto addr = pending->second.addr;
    auto err = msg.reason
                 ? msg.reason
                 : make_error(errc::disconnected, std::string{"link ended"});
    for (auto& rp : pending->second.waiting)
      rp.deliver(err);
    st.dialing.erase(pending);
    st.book.failed(addr, self->clock().now());
    log_line(log_level::info, st.self_id,
             "dial to " + addr.str()
               + " failed: " + self->system().render(err));
    return;
  }
  for (auto i = st.peers.begin(); i != st.peers.end(); ++i) {
    if (i->second.link.address() == msg.source) {
      address addr{i->second.info.host(),
                   static_cast<uint16_t>(i->second.info.port())};
      st.book.disconnected(addr, self->clock().now());
      st.message_budget.erase(i->first);
      publish_peer_down(self, i->first,
                        msg.reason ? self->system().render(msg.reason)
                                   : std::string{"connection closed"});
      auto peer = i->first;
      st.peers.erase(i);
      // A newcomer waiting on this link's probe gets in at once.
      finish_probe(self, peer, false);
      return;
    }
  }
}

bool disconnect_peer(router_self self, const pb::DisconnectRequest& req) {
  auto& st = self->state;
  auto i = st.peers.find(req.node_id());
  if (i == st.peers.end())
    return false;
  self->send(i->second.link, goodbye_atom::value,
             int32_t{pb::Goodbye::SHUTDOWN},
             std::string{"disconnected by request"});
  self->demonitor(i->second.link.address());
  st.book.forget(address{i->second.info.host(),
                         static_cast<uint16_t>(i->second.info.port())});
  st.peers.erase(i);
  return true;
}

pb::PeerList peer_list(router_self self) {
  pb::PeerList list;
  for (const auto& kv : self->state.peers)
    *list.add_peers() = kv.second.info;
  for (const auto& [link, heard_us] : self->state.mesh_links.links()) {
    auto* l = list.add_announced_links();
    l->set_a(link.first);
    l->set_b(link.second);
    l->set_heard_us(heard_us);
  }
  return list;
}

void add_traffic(router_self self, const pb::TrafficStats& delta) {
  auto* total = self->state.stats.mutable_traffic();
  for (const auto& [k, n] : delta.messages_in())
    (*total->mutable_messages_in())[k] += n;
  for (const auto& [k, n] : delta.bytes_in())
    (*total->mutable_bytes_in())[k] += n;
  for (const auto& [k, n] : delta.messages_out())
    (*total->mutable_messages_out())[k] += n;
  for (const auto& [k, n] : delta.bytes_out())
    (*total->mutable_bytes_out())[k] += n;
}

void say_goodbye_to_all(router_self self) {
  auto& st = self->state;
  for (const auto& [peer, entry] : st.peers)
    self->send(entry.link, goodbye_atom::value, int32_t{pb::Goodbye::SHUTDOWN},
               std::string{"node stopping"});
  for (const auto& [link, pending] : st.dialing)
    caf::anon_send_exit(link, caf::exit_reason::user_shutdown);
  if (st.listener)
    caf::anon_send_exit(st.listener, caf::exit_reason::user_shutdown);
}

} // namespace syncmesh
