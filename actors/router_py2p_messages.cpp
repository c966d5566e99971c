// The router's mesh_socket half in py2p mode: user messages and id lookups
// as py2p/js2p 0.7.870 send and answer them (the rules are in
// py2p_mesh_messages.*): broadcasts go to every neighbour (and are relayed
// by the waterfall like any broadcast), whispers to neighbours only, and a
// message to a node that is not a neighbour follows py2p's `reply()`: an id
// lookup is broadcast, and once a node answers with the address, the node
// is dialled and the message whispered to it.

#include <caf/all.hpp>

#include "actors/atoms.hpp"
#include "actors/log.hpp"
#include "actors/router_internal.hpp"
#include "syncmesh/caf_types.hpp"

namespace syncmesh {

namespace {

uint64_t wall_seconds(router_self self) {
  return now_us(self) / 1'000'000;
}

/// Counts one drop under `reason` and logs it (the first ten of each reason,
/// then one line per thousand).
void count_drop(router_self self, const std::string& peer,
                const std::string& reason, const std::string& detail) {
  auto& st = self->state;
  auto& n = (*st.stats.mutable_py2p_messages_dropped())[reason];
  ++n;
  if (worth_logging(n, 1))
    log_line(log_level::warning, st.self_id,
             "py2p message dropped (" + reason + ", " + std::to_string(n)
               + " so far)" + (peer.empty() ? "" : " from " + peer) + ": "
               + detail);
}

/// Builds one of our messages, remembers it in the waterfall (py2p adds
/// every message it sends, so its echo is dropped) and returns it ready for
/// the links.
caf::message own_message(router_self self, uint8_t type,
                         const std::vector<pb::Value>& payload,
                         std::string* id = nullptr) {
  auto& st = self->state;
  auto now = wall_seconds(self);
  auto raw = py2p::make_raw(py2p::build(type, st.self_id, now, payload));
  st.py2p_seen.remember(raw.id, now, now);
  if (id)
    *id = raw.id;
  return caf::make_message(frame_atom::value, raw.id + raw.msgpack);
}

/// Drops the replies not delivered within their 60 s (counted).
void expire_replies(router_self self) {
  auto& st = self->state;
  if (auto n = st.py2p_replies.expire(wall_seconds(self)); n > 0)
    for (size_t i = 0; i < n; ++i)
      count_drop(
        self, std::string{}, "reply_undelivered",
        "a reply to a non-neighbour was not delivered within 60 s (no answer "
        "to its id lookup, or the node answered could not be reached)");
}

/// Whispers every reply waiting for `peer` to it (it is a neighbour now).
void send_waiting_replies(router_self self, const std::string& peer) {
  auto& st = self->state;
  auto i = st.peers.find(peer);
  if (i == st.peers.end())
    return;
  for (auto& packets : st.py2p_replies.take(peer))
    send_shared(i->second.link,
                own_message(self, py2p::flag::whisper,
                            py2p::user_payload(py2p::flag::whisper, packets)));
}

/// py2p's `__handle_request` for an id: when the node asked for is a
/// neighbour with a known address, answer on the link the lookup came from
/// with a broadcast `[0x0A, request_id, [[host, port], id]]`.
void answer_lookup(router_self self, const std::string& peer,
                   const py2p_mesh_inbound& in) {
  auto& st = self->state;
  auto from = st.peers.find(peer);
  auto target = st.peers.find(in.target_id);
  if (from == st.peers.end() || target == st.peers.end()
      || target->second.info.port() == 0)
    return;
  const auto& info = target->second.info;
  send_shared(from->second.link,
              own_message(self, py2p::flag::broadcast,
                          py2p::lookup_answer_payload(
                            in.request_id, info.host(),
                            static_cast<uint16_t>(info.port()), in.target)));
  bump(st.stats, &pb::RouterStats::py2p_lookups_answered,
       &pb::RouterStats::set_py2p_lookups_answered);
}

/// py2p's `__handle_response`: an answer to one of our lookups dials the
/// node (the replies go out when it attaches).
void on_lookup_answer(router_self self, const py2p::lookup_answer& answer) {
  auto& st = self->state;
  auto target = st.py2p_replies.answered(answer.request_id, wall_seconds(self));
  if (!target)
    return; // someone else's lookup (relayed by the waterfall) or answered
  if (st.peers.count(*target) > 0) {
    send_waiting_replies(self, *target);
    return;
  }
  log_line(log_level::info, st.self_id,
           "dialling " + answer.peer.host + ":"
             + std::to_string(answer.peer.port)
             + " to deliver a reply (py2p id lookup answered)");
  start_dial(self, address{answer.peer.host, answer.peer.port});
}

} // namespace

caf::result<pb::SendReply> py2p_send_message(router_self self,
                                             pb::SendRequest& req) {
  auto& st = self->state;
  std::vector<pb::Value> packets(req.packets().begin(), req.packets().end());
  const auto& to = req.to();
  pb::SendReply reply;
  bool neighbour = !to.empty() && st.peers.count(to) > 0;
  if (!to.empty() && !neighbour) {
    if (req.whisper())
      return reply; // a whisper reaches neighbours only: none is `to`
    // py2p's reply() to a node that is not a neighbour: an id lookup,
    // broadcast, and the reply waits for its answer.
    expire_replies(self);
    auto now = wall_seconds(self);
    auto request_id = py2p_request_id(to, std::to_string(st.py2p_next_request++)
                                            + "/" + std::to_string(now));
    size_t size = 0;
    for (const auto& p : packets)
      size += p.ByteSizeLong();
    if (size + 256 > st.cfg.max_frame_size)
      return make_error(errc::value_too_large,
                        std::string{"message does not fit one frame"});
    if (!st.py2p_replies.add(request_id, to, std::move(packets), now)) {
      count_drop(self, std::string{}, "reply_queue_full",
                 "too many replies wait for id lookups");
      return make_error(errc::overloaded,
                        std::string{"too many replies to non-neighbours "
                                    "wait for an id lookup"});
    }
    // Neighbours look the id up in the type it arrived in (py2p's routing
    // table is type-sensitive); unknown: ask in both.
    std::vector<bool> types;
    if (auto bin = st.py2p_ids.known_type(to))
      types.push_back(*bin);
    else
      types = {false, true};
    uint32_t n = 0;
    for (bool bin : types) {
      auto msg = own_message(self, py2p::flag::broadcast,
                             py2p::lookup_payload(request_id, to, bin));
      for (const auto& [peer, entry] : st.peers) {
        send_shared(entry.link, msg);
        ++n;
      }
    }
    reply.set_message_id(request_id);
    reply.set_peers(n);
    return reply;
  }
  // A whisper or a message to a neighbour is what py2p's reply() sends;
  // a broadcast what its send() sends.
  uint8_t type
    = req.whisper() || neighbour ? py2p::flag::whisper : py2p::flag::broadcast;
  auto payload = py2p::user_payload(type, packets);
  std::string id;
  auto msg = own_message(self, type, payload, &id);
  if (msg.get_as<std::string>(1).size() + 64 > st.cfg.max_frame_size)
    return make_error(errc::value_too_large,
                      std::string{"message does not fit one frame"});
  reply.set_message_id(id);
  if (neighbour) {
    send_shared(st.peers.at(to).link, msg);
    reply.set_peers(1);
    return reply;
  }
  uint32_t n = 0;
  for (const auto& [peer, entry] : st.peers) {
    send_shared(entry.link, msg);
    ++n;
  }
  reply.set_peers(n);
  return reply;
}

void py2p_on_mesh_message(router_self self, const std::string& peer,
                          const std::string& id, const std::string& msgpack) {
  auto& st = self->state;
  py2p::message msg;
  if (!py2p::parse(msgpack, msg).empty())
    return; // the link parsed it before sending it here
  py2p_message_limits limits;
  limits.max_value_depth = st.limits.max_value_depth;
  auto in = read_mesh_message(msg, id, st.self_id, limits);
  switch (in.what) {
    case py2p_mesh_inbound::kind::none:
      return;
    case py2p_mesh_inbound::kind::dropped:
      count_drop(self, peer, in.drop_reason, in.drop_detail);
      return;
    case py2p_mesh_inbound::kind::user_message:
      // One peer's message flood must not crowd out dictionary traffic.
      if (!spend_message_budget(self, peer))
        return;
      st.py2p_ids.observe(msg.sender, msg.sender_bin, true);
      deliver_message(self, in.message, peer);
      return;
    case py2p_mesh_inbound::kind::lookup:
      if (!spend_message_budget(self, peer))
        return;
      answer_lookup(self, peer, in);
      return;
    case py2p_mesh_inbound::kind::lookup_answer:
      on_lookup_answer(self, in.answer);
      return;
  }
}

void py2p_peer_attached(router_self self, const std::string& peer) {
  send_waiting_replies(self, peer);
}

void py2p_messages_tick(router_self self) {
  expire_replies(self);
}

} // namespace syncmesh
