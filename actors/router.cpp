#include "actors/router.hpp"

#include <optional>

#include <caf/all.hpp>
#include <caf/io/all.hpp>

#include "actors/atoms.hpp"
#include "actors/listener.hpp"
#include "actors/log.hpp"
#include "actors/py2p_link.hpp"
#include "messages/value_proto.hpp"
#include "syncmesh/caf_types.hpp"

namespace syncmesh {

namespace {

using self_ptr = caf::stateful_actor<router_state>*;

/// (rtick_atom): the router's maintenance timer (dialling, anti-entropy).
using rtick_atom = caf::atom_constant<caf::atom("rtick")>;
/// (ae_round_atom): time for an anti-entropy round with the next peer.
using ae_round_atom = caf::atom_constant<caf::atom("aeround")>;

void bump(pb::RouterStats& stats, uint64_t (pb::RouterStats::*get)() const,
          void (pb::RouterStats::*set)(uint64_t), uint64_t n = 1) {
  (stats.*set)((stats.*get)() + n);
}

uint64_t now_us(self_ptr self) {
  return self->state.clock();
}

link_params make_link_params(self_ptr self, bool outbound) {
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
  p.router = caf::actor_cast<caf::actor>(self);
  p.store = st.store;
  p.lease_manager = st.lease_manager;
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
  return p;
}

size_t outbound_count(self_ptr self) {
  size_t n = self->state.dialing.size();
  for (const auto& kv : self->state.peers)
    if (kv.second.info.outbound())
      ++n;
  return n;
}

/// Starts dialling `addr`; `rp` (if pending) is answered when it finishes.
void start_dial(self_ptr self, const address& addr,
                std::optional<caf::typed_response_promise<pb::PeerInfo>> rp
                = std::nullopt) {
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
  auto link = params.py2p ? self->system().middleman().spawn_broker(
                py2p_dialing_link_actor, std::move(params), slot)
                          : self->system().middleman().spawn_broker(
                            dialing_link_actor, std::move(params), slot);
  self->monitor(link);
  auto& pending = st.dialing[link.address()];
  pending.addr = addr;
  if (rp)
    pending.waiting.push_back(std::move(*rp));
  log_line(log_level::debug, st.self_id, "dialling " + addr.str());
  if (st.cfg.dial_via_backend)
    caf::anon_send(link, backend_dial_atom::value, addr.host, addr.port);
  else
    dial(self->system(), link, std::move(slot), addr.host, addr.port,
         st.cfg.dial_timeout);
}

void dial_due(self_ptr self) {
  auto& st = self->state;
  auto out = outbound_count(self);
  if (out >= st.cfg.max_peers)
    return;
  for (auto& addr : st.book.due(self->clock().now(), st.cfg.max_peers - out))
    start_dial(self, addr);
}

/// Frames a control message for one peer or for flooding.
std::string control_frame(self_ptr self, pb::Envelope& env) {
  std::string frame;
  append_frame(frame, env, self->state.cfg.max_frame_size);
  return frame;
}

pb::Envelope peers_envelope(self_ptr self, const std::string& except,
                            uint32_t hops) {
  auto& st = self->state;
  pb::Envelope env;
  auto id = st.self_id;
  id += "/p" + std::to_string(st.next_message++);
  env.set_message_id(std::move(id));
  env.set_origin(st.self_id);
  env.set_origin_time_us(now_us(self));
  env.set_hops_left(hops);
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

void send_to_all(self_ptr self, const caf::message& msg,
                 const std::string& except) {
  for (const auto& [peer, entry] : self->state.peers) {
    if (peer == except)
      continue;
    self->send(entry.link, msg);
    bump(self->state.stats, &pb::RouterStats::deliveries,
         &pb::RouterStats::set_deliveries);
  }
}

void on_attached(self_ptr self, const std::string& peer) {
  auto& st = self->state;
  auto& entry = st.peers[peer];
  address addr{entry.info.host(), static_cast<uint16_t>(entry.info.port())};
  st.book.connected(addr);
  // A py2p link sends its own peers list and keys (py2p's _send_peers);
  // py2p peers know neither our announcements nor anti-entropy.
  if (st.cfg.wire == wire_kind::py2p)
    return;
  // Tell the newcomer whom we know, so it can reach its target degree.
  auto list = peers_envelope(self, peer, 1);
  if (list.peers().peers_size() > 0)
    self->send(entry.link, frame_atom::value, control_frame(self, list));
  // Tell everyone else about the newcomer (flooded, de-duplicated).
  if (entry.info.port() != 0 && st.peers.size() > 1) {
    pb::Envelope announce;
    announce.set_message_id(st.self_id + "/a"
                            + std::to_string(st.next_message++));
    announce.set_origin(st.self_id);
    announce.set_origin_time_us(now_us(self));
    announce.set_hops_left(st.cfg.max_hops);
    auto* p = announce.mutable_peers()->add_peers();
    p->set_node_id(peer);
    p->set_host(entry.info.host());
    p->set_port(entry.info.port());
    st.seen.insert(announce.message_id(), self->clock().now());
    send_to_all(
      self, caf::make_message(frame_atom::value, control_frame(self, announce)),
      peer);
  }
  // The dialling side starts anti-entropy at once; the other follows in
  // its periodic rounds.
  if (entry.info.outbound())
    self->send(st.store, ae_start_atom::value, entry.link);
}

/// Enters `link` into the peer table (the checks are done).
void admit(self_ptr self, const caf::actor& link, pb::PeerInfo info,
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
void finish_probe(self_ptr self, const std::string& peer, bool alive) {
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
    self->demonitor(existing->second.link);
    st.peers.erase(existing);
  }
  admit(self, probe.newcomer, std::move(probe.info), probe.waiting);
  probe.rp.deliver(true);
}

caf::result<bool> attach(self_ptr self, pb::PeerInfo& info) {
  auto& st = self->state;
  auto link = caf::actor_cast<caf::actor>(self->current_sender());
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

void publish_peer_down(self_ptr self, const std::string& peer,
                       std::string reason) {
  if (!self->state.events)
    return;
  pb::Event ev;
  ev.mutable_peer_down()->set_node_id(peer);
  ev.mutable_peer_down()->set_reason(std::move(reason));
  self->send(self->state.events, std::move(ev));
}

/// Hands a message for this node to the facade.
void deliver(self_ptr self, const pb::Message& msg, const std::string& via) {
  if (!self->state.events)
    return;
  pb::Event ev;
  *ev.mutable_message()->mutable_message() = msg;
  ev.mutable_message()->set_via(via);
  self->send(self->state.events, std::move(ev));
}

/// Sends `env` to the peers it is for: one neighbour, every neighbour but
/// `except`; returns how many.
uint32_t route_message(self_ptr self, pb::Envelope& env,
                       const std::string& except) {
  auto& st = self->state;
  const auto& msg = env.message();
  auto frame = control_frame(self, env);
  if (!msg.to().empty()) {
    auto i = st.peers.find(msg.to());
    if (i != st.peers.end()) {
      self->send(i->second.link, frame_atom::value, std::move(frame));
      return 1;
    }
  }
  uint32_t n = 0;
  auto m = caf::make_message(frame_atom::value, std::move(frame));
  for (const auto& [peer, entry] : st.peers) {
    if (peer == except)
      continue;
    self->send(entry.link, m);
    ++n;
  }
  return n;
}

/// Checks a message from an untrusted peer.
std::string validate_message(const pb::Envelope& env, size_t max_hops,
                             int max_value_depth) {
  const auto& msg = env.message();
  if (msg.message_id().empty() || msg.message_id().size() > 256)
    return "message without a valid ID";
  if (msg.sender().empty() || msg.sender().size() > max_node_id_size)
    return "message without a valid sender";
  if (msg.to().size() > max_node_id_size)
    return "message with an invalid destination";
  if (msg.packets_size() > 4096)
    return "message with too many packets";
  if (env.hops_left() > max_hops)
    return "message with more hops than allowed";
  for (const auto& packet : msg.packets())
    if (auto err = validate(packet, max_value_depth); !err.empty())
      return "message packet: " + err;
  return {};
}

void on_link_down(self_ptr self, const caf::down_msg& msg) {
  auto& st = self->state;
  if (msg.source == st.listener.address()) {
    st.listener = nullptr;
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

void flush(self_ptr self) {
  auto& st = self->state;
  st.flush_scheduled = false;
  if (st.outbox.empty())
    return;
  // Group records by origin so no peer gets its own writes back.
  std::map<std::string, pb::WriteBatch> by_origin;
  for (auto& [origin, rec] : st.outbox)
    by_origin[origin].mutable_records()->Add(std::move(rec));
  st.outbox.clear();
  for (auto& [origin, batch] : by_origin) {
    std::vector<std::string> frames;
    st.builder.build(std::move(batch), now_us(self), frames);
    bump(st.stats, &pb::RouterStats::frames_out,
         &pb::RouterStats::set_frames_out, frames.size());
    for (const auto& frame : frames)
      bump(st.stats, &pb::RouterStats::bytes_out,
           &pb::RouterStats::set_bytes_out, frame.size());
    for (auto& frame : frames)
      send_to_all(self, caf::make_message(frame_atom::value, std::move(frame)),
                  origin);
  }
}

// -- py2p mode ----------------------------------------------------------------

uint64_t wall_seconds(self_ptr self) {
  return now_us(self) / 1'000'000;
}

/// Announces local writes to py2p peers: one 3-packet store (or delta, or
/// nil store) broadcast per record. Remote writes are not re-flooded: their
/// original bytes were relayed when they arrived (on_py2p_inbound).
void py2p_flood_local(self_ptr self, const std::string& origin,
                      const pb::WriteBatch& batch) {
  auto& st = self->state;
  if (!origin.empty() || st.peers.empty())
    return;
  for (const auto& rec : batch.records()) {
    auto raw = py2p::make_raw(local_write_message(rec, st.self_id));
    auto time_s = rec.version().stamp().wall_us() / 1'000'000;
    // Our own broadcast coming back over another path is dropped.
    st.py2p_seen.remember(raw.id, time_s, wall_seconds(self));
    send_to_all(self,
                caf::make_message(frame_atom::value, raw.id + raw.msgpack),
                std::string{});
  }
}

/// Removes the records of `batch` that break a value limit (or are
/// malformed), counting and logging them: one bad record from a peer is
/// skipped alone, never a reason to refuse its batch or drop its link.
void skip_invalid_records(self_ptr self, const std::string& peer,
                          pb::WriteBatch& batch) {
  auto& st = self->state;
  auto skipped = remove_invalid_records(batch, st.limits);
  if (skipped.count == 0)
    return;
  bump(st.stats, &pb::RouterStats::skipped_records,
       &pb::RouterStats::set_skipped_records, skipped.count);
  if (worth_logging(st.stats.skipped_records(), skipped.count))
    log_line(log_level::warning, st.self_id,
             "skipped " + std::to_string(skipped.count) + " record(s) from "
               + peer.substr(0, 12) + " (" + skipped.first_error + "); "
               + std::to_string(st.stats.skipped_records())
               + " skipped in all");
}

/// A message from a py2p link: broadcasts are aged, de-duplicated and
/// relayed as received to every peer but their original sender (py2p's
/// waterfall); writes then go to the lease manager, which decides them with
/// py2p's rule.
void on_py2p_inbound(self_ptr self, const std::string& peer,
                     const std::string& id, const std::string& msgpack,
                     const std::string& sender, uint64_t time, bool broadcast,
                     pb::WriteBatch& batch, bool initial_sync) {
  auto& st = self->state;
  if (broadcast) {
    auto verdict = st.py2p_seen.admit(id, time, wall_seconds(self));
    if (verdict != py2p_waterfall::verdict::fresh)
      return;
    auto msg = caf::make_message(frame_atom::value, id + msgpack);
    send_to_all(self, msg, sender);
  }
  if (batch.records_size() == 0)
    return;
  skip_invalid_records(self, peer, batch);
  if (batch.records_size() == 0)
    return;
  bump(st.stats, &pb::RouterStats::records_in, &pb::RouterStats::set_records_in,
       static_cast<uint64_t>(batch.records_size()));
  if (st.lease_manager)
    self->send(st.lease_manager, py2p_write_atom::value, peer, std::move(batch),
               initial_sync);
}

pb::NodeInfo listen_info(self_ptr self) {
  const auto& st = self->state;
  pb::NodeInfo info;
  info.set_listen_host(st.cfg.host);
  info.set_listen_port(st.port);
  info.set_peer_count(static_cast<uint32_t>(st.peers.size()));
  return info;
}

/// Starts the periodic work once the node can talk to peers.
void start_timers(self_ptr self) {
  dial_due(self);
  self->send(self, rtick_atom::value);
  self->delayed_send(self, self->state.cfg.anti_entropy_interval,
                     ae_round_atom::value);
}

void say_goodbye_to_all(self_ptr self) {
  auto& st = self->state;
  for (const auto& [peer, entry] : st.peers)
    self->send(entry.link, goodbye_atom::value, int32_t{pb::Goodbye::SHUTDOWN},
               std::string{"node stopping"});
  for (const auto& [link, pending] : st.dialing)
    caf::anon_send_exit(link, caf::exit_reason::user_shutdown);
  if (st.listener)
    caf::anon_send_exit(st.listener, caf::exit_reason::user_shutdown);
}

} // namespace

void router_state::init(const config& c, const node_id& self) {
  cfg = c;
  self_id = self;
  builder = envelope_builder(self, cfg.max_hops, cfg.max_frame_size);
  limits = write_limits{cfg.max_key_size, cfg.max_value_size,
                        static_cast<int>(cfg.max_value_depth)};
  clock = cfg.clock ? cfg.clock : system_wall_clock();
  uint64_t seed = 0;
  for (unsigned char c : self)
    seed = seed * 131 + c;
  book = address_book{256, cfg.redial_min, cfg.redial_max, seed};
  seen = seen_set{cfg.seen_set_size, cfg.seen_ttl};
  links = std::make_shared<link_shared>(cfg.max_pending_handshake_bytes);
}

caf::behavior router_actor(self_ptr self, const config& cfg,
                           const node_id& id) {
  self->state.init(cfg, id);
  self->set_down_handler([=](caf::down_msg& msg) { on_link_down(self, msg); });
  self->set_exit_handler([=](caf::exit_msg& msg) {
    say_goodbye_to_all(self);
    self->quit(msg.reason);
  });
  return {
    [=](wire_atom, caf::actor lease_manager, caf::actor store,
        caf::actor events) {
      auto& st = self->state;
      st.lease_manager = std::move(lease_manager);
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
      st.listener = self->system().middleman().spawn_broker(
        listener_actor, make_link_params(self, false));
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
    },
    [=](pb::InfoRequest&) -> caf::result<pb::NodeInfo> {
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
    },
    [=](pb::ConnectRequest& req) -> caf::result<pb::PeerInfo> {
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
    },
    [=](pb::PeersRequest&) {
      pb::PeerList list;
      for (const auto& kv : self->state.peers)
        *list.add_peers() = kv.second.info;
      return list;
    },
    [=](attach_atom, pb::PeerInfo& info) { return attach(self, info); },
    [=](pb::SendRequest& req) -> caf::result<pb::SendReply> {
      auto& st = self->state;
      if (st.cfg.wire == wire_kind::py2p)
        return make_error(errc::invalid_config,
                          std::string{"send/recv messages are not supported "
                                      "in py2p mode (only the dictionary)"});
      pb::Envelope env;
      auto* msg = env.mutable_message();
      auto id = st.self_id + "/m" + std::to_string(st.next_message++);
      msg->set_message_id(id);
      msg->set_sender(st.self_id);
      msg->set_time_us(now_us(self));
      msg->mutable_packets()->Swap(req.mutable_packets());
      msg->set_to(req.to());
      msg->set_whisper(req.whisper());
      env.set_message_id(id);
      env.set_origin(st.self_id);
      env.set_hops_left(req.whisper() ? 1 : st.cfg.max_hops);
      st.seen.insert(id, self->clock().now());
      if (env.ByteSizeLong() + 64 > st.cfg.max_frame_size)
        return make_error(errc::value_too_large,
                          std::string{"message does not fit one frame"});
      pb::SendReply reply;
      reply.set_message_id(id);
      reply.set_peers(route_message(self, env, std::string{}));
      return reply;
    },
    [=](message_atom, const std::string& peer, pb::Envelope& env) {
      auto& st = self->state;
      if (auto err
          = validate_message(env, st.cfg.max_hops, st.limits.max_value_depth);
          !err.empty()) {
        auto i = st.peers.find(peer);
        if (i != st.peers.end())
          self->send(i->second.link, goodbye_atom::value,
                     int32_t{pb::Goodbye::MALFORMED}, err);
        return;
      }
      // One peer's message flood must not crowd out dictionary traffic.
      auto now = self->clock().now();
      auto& [window, used] = st.message_budget[peer];
      if (now - window >= std::chrono::seconds(1)) {
        window = now;
        used = 0;
      }
      if (++used > st.cfg.max_messages_per_peer) {
        bump(st.stats, &pb::RouterStats::messages_shed,
             &pb::RouterStats::set_messages_shed);
        return;
      }
      const auto& msg = env.message();
      if (!st.seen.insert(msg.message_id(), now))
        return; // a duplicate: every node delivers and relays a message once
      bool for_us = msg.to().empty() || msg.to() == st.self_id;
      if (for_us && msg.sender() != st.self_id)
        deliver(self, msg, peer);
      bool relay
        = !msg.whisper() && env.hops_left() > 1 && msg.to() != st.self_id;
      if (relay) {
        env.set_hops_left(env.hops_left() - 1);
        route_message(self, env, peer);
      }
    },
    [=](const pb::DisconnectRequest& req) {
      auto& st = self->state;
      auto i = st.peers.find(req.node_id());
      if (i == st.peers.end())
        return false;
      self->send(i->second.link, goodbye_atom::value,
                 int32_t{pb::Goodbye::SHUTDOWN},
                 std::string{"disconnected by request"});
      self->demonitor(i->second.link);
      st.book.forget(address{i->second.info.host(),
                             static_cast<uint16_t>(i->second.info.port())});
      st.peers.erase(i);
      return true;
    },
    [=](traffic_atom, const pb::TrafficStats& delta) {
      auto* total = self->state.stats.mutable_traffic();
      for (const auto& [k, n] : delta.messages_in())
        (*total->mutable_messages_in())[k] += n;
      for (const auto& [k, n] : delta.bytes_in())
        (*total->mutable_bytes_in())[k] += n;
      for (const auto& [k, n] : delta.messages_out())
        (*total->mutable_messages_out())[k] += n;
      for (const auto& [k, n] : delta.bytes_out())
        (*total->mutable_bytes_out())[k] += n;
    },
    [=](link_closed_atom, const std::string& reason) {
      auto& errors = *self->state.stats.mutable_frame_errors();
      ++errors[reason];
    },
    [=](rtt_atom, const std::string& peer, uint64_t rtt_us) {
      auto i = self->state.peers.find(peer);
      if (i != self->state.peers.end())
        i->second.info.set_rtt_us(rtt_us);
    },
    [=](peers_atom, const std::string& from, const pb::Peers& list,
        const std::string& message_id, uint32_t hops) {
      auto& st = self->state;
      auto now = self->clock().now();
      if (!message_id.empty() && !st.seen.insert(message_id, now))
        return;
      for (const auto& p : list.peers()) {
        if (p.node_id() == st.self_id || p.port() == 0 || p.port() > 65535
            || p.host().empty() || p.host().size() > 255
            || st.peers.count(p.node_id()) > 0)
          continue;
        st.book.add(address{p.host(), static_cast<uint16_t>(p.port())}, false,
                    now);
      }
      if (!message_id.empty() && hops > 1) {
        pb::Envelope relay;
        relay.set_message_id(message_id);
        relay.set_hops_left(hops - 1);
        *relay.mutable_peers() = list;
        send_to_all(
          self,
          caf::make_message(frame_atom::value, control_frame(self, relay)),
          from);
      }
      dial_due(self);
    },
    [=](changed_atom, std::string& origin, pb::WriteBatch& batch) {
      auto& st = self->state;
      bump(st.stats, &pb::RouterStats::records_out,
           &pb::RouterStats::set_records_out,
           static_cast<uint64_t>(batch.records_size()));
      if (st.cfg.wire == wire_kind::py2p) {
        py2p_flood_local(self, origin, batch);
        return;
      }
      if (st.peers.empty() || (st.peers.size() == 1 && st.peers.count(origin)))
        return;
      for (auto& rec : *batch.mutable_records())
        st.outbox.emplace_back(origin, std::move(rec));
      // The flush message queues behind every write already in the mailbox,
      // so a burst of writes leaves in a few large frames.
      if (!st.flush_scheduled) {
        st.flush_scheduled = true;
        self->send(self, flush_atom::value);
      }
    },
    [=](flush_atom) { flush(self); },
    [=](inbound_atom, std::string& peer,
        const pb::Envelope& env) -> caf::result<bool> {
      auto& st = self->state;
      auto reject = [&](std::string why) -> caf::result<bool> {
        bump(st.stats, &pb::RouterStats::rejected_in,
             &pb::RouterStats::set_rejected_in);
        auto i = st.peers.find(peer);
        if (i != st.peers.end())
          self->send(i->second.link, goodbye_atom::value,
                     int32_t{pb::Goodbye::MALFORMED}, why);
        return make_error(errc::malformed, std::move(why));
      };
      pb::WriteBatch batch;
      if (auto err = envelope_builder::decode_writes(env, batch); !err.empty())
        return reject(std::move(err));
      // A record breaking a limit is skipped alone; the link stays up.
      skip_invalid_records(self, peer, batch);
      if (batch.records_size() == 0)
        return true;
      bump(st.stats, &pb::RouterStats::records_in,
           &pb::RouterStats::set_records_in,
           static_cast<uint64_t>(batch.records_size()));
      if (!st.lease_manager)
        return true;
      // The lease manager's reply, once applied, returns the link's credit.
      auto rp = self->make_response_promise<bool>();
      return rp.delegate(st.lease_manager, remote_atom::value, std::move(peer),
                         std::move(batch));
    },
    [=](py2p_in_atom, std::string& peer, std::string& id, std::string& msgpack,
        const std::string& sender, uint64_t time, bool broadcast,
        pb::WriteBatch& batch, bool initial_sync) {
      on_py2p_inbound(self, peer, id, msgpack, sender, time, broadcast, batch,
                      initial_sync);
    },
    [=](rtick_atom) {
      dial_due(self);
      self->delayed_send(self, self->state.cfg.redial_min, rtick_atom::value);
    },
    [=](ae_round_atom) {
      auto& st = self->state;
      if (!st.peers.empty() && st.cfg.wire != wire_kind::py2p) {
        auto i = st.peers.begin();
        std::advance(i, static_cast<long>(st.ae_turn++ % st.peers.size()));
        self->send(st.store, ae_start_atom::value, i->second.link);
      }
      self->delayed_send(self, st.cfg.anti_entropy_interval,
                         ae_round_atom::value);
    },
    [=](close_atom) {
      say_goodbye_to_all(self);
      self->state.peers.clear();
      return true;
    },
    [=](stats_atom) {
      auto stats = self->state.stats;
      stats.set_peers(static_cast<uint32_t>(self->state.peers.size()));
      stats.set_seen_ids(self->state.seen.size());
      if (const auto& links = self->state.links) {
        stats.set_handshake_evictions(links->handshakes.evictions());
        stats.set_pending_handshake_bytes(links->handshakes.total());
        stats.set_ingress_pauses(links->ingress_pauses.load());
        stats.set_ingress_outstanding_bytes(links->ingress_outstanding.load());
        stats.set_flood_frames_shed(links->flood_frames_shed.load());
      }
      return stats;
    },
  };
}

} // namespace syncmesh
