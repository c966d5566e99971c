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
  if (st.cfg.wire == wire_kind::py2p)
    return;
  exchange_peers_with(self, peer);
  start_anti_entropy_with(self, peer);
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
    if (!prefer_new_connection(existing->second.info.outbound(),
                               info.outbound(), st.self_id, peer)) {
      answer(existing->second.info);
      return false;
    }
    self->send(existing->second.link, goodbye_atom::value,
               int32_t{pb::Goodbye::DUPLICATE_CONNECTION},
               std::string{"a preferred connection replaces this one"});
    self->demonitor(existing->second.link.address());
    st.peers.erase(existing);
  } else if (!info.outbound()) {
    size_t inbound = 0;
    for (const auto& kv : st.peers)
      if (!kv.second.info.outbound())
        ++inbound;
    if (inbound >= st.cfg.max_inbound)
      return make_error(errc::overloaded, "already " + std::to_string(inbound)
                                            + " inbound peers");
  }
  info.set_connected_since_us(now_us(self));
  self->monitor(link);
  st.peers[peer] = peer_entry{link, info};
  answer(info);
  if (st.events) {
    pb::Event ev;
    *ev.mutable_peer_up()->mutable_peer() = info;
    self->send(st.events, std::move(ev));
  }
  on_attached(self, peer);
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
      st.peers.erase(i);
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
