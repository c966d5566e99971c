#include "actors/router.hpp"

#include <algorithm>

#include <caf/all.hpp>

#include "actors/atoms.hpp"
#include "actors/log.hpp"
#include "actors/router_internal.hpp"
#include "syncmesh/caf_types.hpp"

// The router's setup and its behavior, which only dispatches: each concern
// lives in its own file (see router_internal.hpp).

namespace syncmesh {

void bump(pb::RouterStats& stats, uint64_t (pb::RouterStats::*get)() const,
          void (pb::RouterStats::*set)(uint64_t), uint64_t n) {
  (stats.*set)((stats.*get)() + n);
}

uint64_t now_us(router_self self) {
  return self->state.clock();
}

pb::Envelope own_envelope(router_self self, char kind, uint32_t hops) {
  auto& st = self->state;
  pb::Envelope env;
  env.set_message_id(st.self_id + '/' + kind
                     + std::to_string(st.next_message++));
  env.set_origin(st.self_id);
  env.set_origin_time_us(now_us(self));
  env.set_hops_left(hops);
  return env;
}

void goodbye_malformed(router_self self, const std::string& peer,
                       const std::string& why) {
  auto& st = self->state;
  auto i = st.peers.find(peer);
  if (i != st.peers.end())
    self->send(i->second.link, goodbye_atom::value,
               int32_t{pb::Goodbye::MALFORMED}, why);
}

bool spend_message_budget(router_self self, const std::string& peer) {
  auto& st = self->state;
  auto now = self->clock().now();
  auto& [window, used] = st.message_budget[peer];
  if (now - window >= std::chrono::seconds(1)) {
    window = now;
    used = 0;
  }
  if (++used <= st.cfg.max_messages_per_peer)
    return true;
  bump(st.stats, &pb::RouterStats::messages_shed,
       &pb::RouterStats::set_messages_shed);
  return false;
}

void send_shared(const link_actor& link, const caf::message& msg) {
  // A typed handle would insist on one of its signatures, not a prebuilt
  // message; the frame inside is shared by every peer it goes to.
  caf::anon_send(caf::actor_cast<caf::actor>(link), msg);
}

void skip_invalid_records(router_self self, const std::string& peer,
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

std::string control_frame(router_self self, pb::Envelope& env) {
  std::string frame;
  append_frame(frame, env, self->state.cfg.max_frame_size);
  return frame;
}

void router_state::init(const config& c, const raw_node_id& self) {
  cfg = c;
  self_id = self;
  mesh_links = announced_links{1024, self.size()};
  builder = envelope_builder(self, cfg.max_hops, cfg.max_frame_size);
  limits = write_limits{cfg.max_key_size, cfg.max_value_size,
                        static_cast<int>(cfg.max_value_depth)};
  clock = cfg.clock ? cfg.clock : system_wall_clock();
  // Message IDs are "<id>/<kind><n>", and peers drop an ID they saw in the
  // last seen_ttl as a duplicate. A node restarted with its identity that
  // counted from 0 again repeated its previous run's IDs, so peers dropped
  // its messages, confirmation queries and answers for two minutes. The
  // count starts at the start's wall time in µs (never below the persisted
  // high-water mark): a later run starts past every ID an earlier one used
  // unless that one sent more than a message per µs it ran.
  next_message = std::max<uint64_t>(clock(), cfg.hlc_floor_us);
  uint64_t seed = 0;
  for (unsigned char c : self)
    seed = seed * 131 + c;
  book = address_book{256, cfg.redial_min, cfg.redial_max, seed};
  seen = seen_set{cfg.seen_set_size, cfg.seen_ttl};
  links = std::make_shared<link_shared>(cfg.max_pending_handshake_bytes);
}

router_actor::behavior_type
router_behavior(router_self self, const config& cfg, const raw_node_id& id,
                std::shared_ptr<clock_fence> fence,
                std::shared_ptr<const tls_context> tls) {
  self->state.init(cfg, id);
  self->state.fence = std::move(fence);
  self->state.tls = std::move(tls);
  self->set_down_handler([=](caf::down_msg& msg) { on_link_down(self, msg); });
  self->set_exit_handler([=](caf::exit_msg& msg) {
    say_goodbye_to_all(self);
    self->quit(msg.reason);
  });
  return {
    [=](wire_atom, dict_store_actor store, facade_actor events) {
      on_wired(self, std::move(store), std::move(events));
    },
    [=](pb::InfoRequest&) -> caf::result<pb::NodeInfo> {
      return node_info(self);
    },
    [=](pb::ConnectRequest& req) -> caf::result<pb::PeerInfo> {
      return connect_peer(self, req);
    },
    [=](pb::PeersRequest&) { return peer_list(self); },
    [=](attach_atom, pb::PeerInfo& info) { return attach(self, info); },
    [=](pb::SendRequest& req) -> caf::result<pb::SendReply> {
      return send_message(self, req);
    },
    [=](message_atom, const std::string& peer, pb::Envelope& env) {
      on_message(self, peer, env);
    },
    [=](confirm_atom, pb::ConfirmQuery& q) { flood_confirm_query(self, q); },
    [=](confirm_atom, const std::string& peer, pb::Envelope& env) {
      on_confirm_envelope(self, peer, env);
    },
    [=](confirm_answer_atom, pb::ConfirmAnswer& a) {
      route_confirm_answer(self, a);
    },
    [=](const pb::DisconnectRequest& req) {
      return disconnect_peer(self, req);
    },
    [=](traffic_atom, const pb::TrafficStats& delta) {
      add_traffic(self, delta);
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
        const std::string& message_id,
        uint32_t hops) { on_peers(self, from, list, message_id, hops); },
    [=](changed_atom, std::string& origin, pb::WriteBatch& batch) {
      on_changed(self, origin, batch);
    },
    [=](flush_atom) { flush(self); },
    [=](inbound_atom, std::string& peer, const pb::Envelope& env)
      -> caf::result<bool> { return on_inbound_writes(self, peer, env); },
    [=](py2p_in_atom, std::string& peer, std::string& id, std::string& msgpack,
        const std::string& sender, uint64_t time, bool broadcast,
        pb::WriteBatch& batch, bool initial_sync) -> caf::result<bool> {
      return on_py2p_inbound(self, peer, id, msgpack, sender, time, broadcast,
                             batch, initial_sync);
    },
    [=](py2p_ids_atom, const std::string& id, bool bin, bool first_hand) {
      on_py2p_id_type(self, id, bin, first_hand);
    },
    [=](py2p_ids_atom, const std::vector<std::string>& ids) {
      return py2p_bin_ids(self, ids);
    },
    [=](rtick_atom) { on_rtick(self); },
    [=](ae_round_atom) { on_ae_round(self); },
    [=](ae_start_atom, const link_actor& link) { on_ae_start(self, link); },
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
