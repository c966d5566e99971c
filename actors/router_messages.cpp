// The router's mesh_socket messages: sent by the facade, flooded with the
// seen set and hop limit, whispered to direct peers or routed to one node;
// those for this node go to the facade. py2p mode's are in
// router_py2p_messages.cpp.

#include <caf/all.hpp>

#include "actors/atoms.hpp"
#include "actors/router_internal.hpp"
#include "messages/value_proto.hpp"
#include "syncmesh/caf_types.hpp"

namespace syncmesh {

void deliver_message(router_self self, const pb::Message& msg,
                     const std::string& via) {
  if (!self->state.events)
    return;
  pb::Event ev;
  *ev.mutable_message()->mutable_message() = msg;
  ev.mutable_message()->set_via(via);
  self->send(self->state.events, std::move(ev));
}

namespace {

/// Sends `env` to the peers it is for: one neighbour, every neighbour but
/// `except`; returns how many.
uint32_t route_message(router_self self, pb::Envelope& env,
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
    send_shared(entry.link, m);
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

} // namespace

caf::result<pb::SendReply> send_message(router_self self,
                                        pb::SendRequest& req) {
  auto& st = self->state;
  if (st.cfg.wire == wire_kind::py2p)
    return py2p_send_message(self, req);
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
}

void on_message(router_self self, const std::string& peer, pb::Envelope& env) {
  auto& st = self->state;
  if (auto err
      = validate_message(env, st.cfg.max_hops, st.limits.max_value_depth);
      !err.empty()) {
    goodbye_malformed(self, peer, err);
    return;
  }
  // One peer's message flood must not crowd out dictionary traffic.
  if (!spend_message_budget(self, peer))
    return;
  auto now = self->clock().now();
  const auto& msg = env.message();
  if (!st.seen.insert(msg.message_id(), now))
    return; // a duplicate: every node delivers and relays a message once
  bool for_us = msg.to().empty() || msg.to() == st.self_id;
  if (for_us && msg.sender() != st.self_id)
    deliver_message(self, msg, peer);
  bool relay = !msg.whisper() && env.hops_left() > 1 && msg.to() != st.self_id;
  if (relay) {
    env.set_hops_left(env.hops_left() - 1);
    route_message(self, env, peer);
  }
}

} // namespace syncmesh
