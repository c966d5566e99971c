// The router's dialling: the listener, the address book (seeds, learned
// addresses, backoff) and links dialled up to the target degree.

#include <caf/all.hpp>
#include <caf/io/all.hpp>

#include "actors/atoms.hpp"
#include "actors/listener.hpp"
#include "actors/log.hpp"
#include "actors/py2p_link.hpp"
#include "actors/router_internal.hpp"
#include "syncmesh/caf_types.hpp"

namespace syncmesh {

namespace {

size_t outbound_count(router_self self) {
  size_t n = self->state.dialing.size();
  for (const auto& kv : self->state.peers)
    if (kv.second.info.outbound())
      ++n;
  return n;
}

pb::NodeInfo listen_info(router_self self) {
  const auto& st = self->state;
  pb::NodeInfo info;
  info.set_listen_host(st.cfg.host);
  info.set_listen_port(st.port);
  info.set_peer_count(static_cast<uint32_t>(st.peers.size()));
  return info;
}

/// Starts the periodic work once the node can talk to peers.
void start_timers(router_self self) {
  dial_due(self);
  auto me = caf::actor_cast<router_actor>(self);
  self->send(me, rtick_atom::value);
  self->delayed_send(me, self->state.cfg.anti_entropy_interval,
                     ae_round_atom::value);
}

} // namespace

link_params make_link_params(router_self self, bool outbound) {
  const auto& st = self->state;
  link_params p;
  p.self = st.self_id;
  p.protocol_id = protocol_id(st.cfg);
  p.terms = hello_terms_of(st.cfg);
  p.listen_host = st.cfg.host;
  p.listen_port = st.port;
  // Behind NAT or a port mapping, peers must dial what we advertise.
  address out;
  if (!st.cfg.out_addr.empty()
      && parse_host_port(st.cfg.out_addr, out.host, out.port)) {
    p.listen_host = out.host;
    p.listen_port = out.port;
  }
  p.router = caf::actor_cast<router_actor>(self);
  p.store = st.store;
  p.max_frame_size = st.cfg.max_frame_size;
  p.max_send_queue = st.cfg.max_send_queue;
  p.max_handshake_frame = st.cfg.max_handshake_frame;
  p.ingress_window = st.cfg.ingress_window;
  p.shared = st.links;
  p.handshake_timeout = st.cfg.handshake_timeout;
  p.heartbeat_interval = st.cfg.heartbeat_interval;
  p.peer_timeout = st.cfg.peer_timeout;
  p.outbound = outbound;
  p.py2p = st.cfg.wire == wire_kind::py2p;
  p.clock = st.clock;
  p.tls = st.tls;
  p.fence = st.fence;
  if (st.fence)
    p.max_clock_offset_us = st.fence->bound_us();
  return p;
}

void start_dial(router_self self, const address& addr,
                std::optional<caf::typed_response_promise<pb::PeerInfo>> rp) {
  auto& st = self->state;
  for (auto& [link, pending] : st.dialing) {
    if (pending.addr == addr) {
      if (rp)
        pending.waiting.push_back(std::move(*rp));
      return;
    }
  }
  auto slot = std::make_shared<dial_slot>();
  auto params = make_link_params(self, true);
  auto broker = params.py2p ? self->system().middleman().spawn_broker(
                  py2p_dialing_link_actor, std::move(params), slot)
                            : self->system().middleman().spawn_broker(
                              dialing_link_actor, std::move(params), slot);
  auto link = caf::actor_cast<link_actor>(broker);
  self->monitor(link);
  auto& pending = st.dialing[link.address()];
  pending.addr = addr;
  if (rp)
    pending.waiting.push_back(std::move(*rp));
  log_line(log_level::debug, st.self_id, "dialling " + addr.str());
  if (st.cfg.dial_via_backend)
    caf::anon_send(link, backend_dial_atom::value, addr.host, addr.port);
  else
    dial(self->system(), std::move(broker), std::move(slot), addr.host,
         addr.port, st.cfg.dial_timeout);
}

void dial_due(router_self self) {
  auto& st = self->state;
  auto out = outbound_count(self);
  if (out >= st.cfg.max_peers)
    return;
  for (auto& addr : st.book.due(self->clock().now(), st.cfg.max_peers - out))
    start_dial(self, addr);
}

void on_wired(router_self self, dict_store_actor store, facade_actor events) {
  auto& st = self->state;
  st.store = std::move(store);
  st.events = std::move(events);
  auto now = self->clock().now();
  for (const auto& text : st.cfg.peers) {
    address addr;
    if (parse_host_port(text, addr.host, addr.port))
      st.book.add(addr, true, now);
  }
  if (!st.cfg.listen) {
    st.bound = true;
    start_timers(self);
    return;
  }
  st.listener
    = caf::actor_cast<listener_actor>(self->system().middleman().spawn_broker(
      listener_behavior, make_link_params(self, false)));
  self->monitor(st.listener);
  self
    ->request(st.listener, caf::infinite, open_atom::value, st.cfg.host,
              st.cfg.port)
    .then(
      [=](uint16_t port) {
        auto& st = self->state;
        st.port = port;
        st.bound = true;
        st.book.set_self(address{st.cfg.host, port});
        for (auto& rp : st.waiting_for_bind)
          rp.deliver(listen_info(self));
        st.waiting_for_bind.clear();
        start_timers(self);
      },
      [=](caf::error& err) {
        auto& st = self->state;
        st.bound = true;
        st.bind_error = err;
        log_line(log_level::error, st.self_id, self->system().render(err));
        for (auto& rp : st.waiting_for_bind)
          rp.deliver(err);
        st.waiting_for_bind.clear();
      });
}

caf::result<pb::NodeInfo> node_info(router_self self) {
  auto& st = self->state;
  if (st.bound) {
    if (st.bind_error)
      return st.bind_error;
    return listen_info(self);
  }
  // Answer once the listener is bound (or failed to bind).
  auto rp = self->make_response_promise<pb::NodeInfo>();
  st.waiting_for_bind.push_back(rp);
  return rp;
}

caf::result<pb::PeerInfo> connect_peer(router_self self,
                                       pb::ConnectRequest& req) {
  auto& st = self->state;
  if (req.host().empty() || req.port() == 0 || req.port() > 65535)
    return make_error(errc::invalid_config,
                      std::string{"connect needs a host and a port"});
  address addr{req.host(), static_cast<uint16_t>(req.port())};
  for (const auto& [peer, entry] : st.peers)
    if (entry.info.host() == addr.host && entry.info.port() == addr.port)
      return entry.info;
  st.book.add(addr, true, self->clock().now());
  auto rp = self->make_response_promise<pb::PeerInfo>();
  start_dial(self, addr, rp);
  return rp;
}

void on_rtick(router_self self) {
  dial_due(self);
  if (self->state.cfg.wire == wire_kind::py2p)
    py2p_messages_tick(self);
  self->delayed_send(caf::actor_cast<router_actor>(self),
                     self->state.cfg.redial_min, rtick_atom::value);
}

} // namespace syncmesh
