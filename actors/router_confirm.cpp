// The router's part of confirmed writes (issue 17): the facade's queries
// are flooded (to peers speaking protocol version 4 or later only: older
// ones would close the link on an envelope body they do not know), queries
// from the mesh go to the store and on to the other peers, and answers are
// routed to the query's origin like a directed message: to the neighbour
// when it is one, else flooded.

#include <caf/all.hpp>

#include "actors/atoms.hpp"
#include "actors/confirm_rules.hpp"
#include "actors/router_internal.hpp"
#include "syncmesh/caf_types.hpp"

namespace syncmesh {

namespace {

/// Sends `env` to `to` when it is a neighbour speaking confirmations, else
/// to every such peer but `except`; returns how many.
uint32_t route_confirm(router_self self, pb::Envelope& env,
                       const std::string& to, const std::string& except) {
  auto& st = self->state;
  auto frame = control_frame(self, env);
  if (frame.empty())
    return 0;
  if (!to.empty()) {
    auto i = st.peers.find(to);
    if (i != st.peers.end()
        && i->second.info.protocol_version() >= confirm_protocol_version) {
      self->send(i->second.link, frame_atom::value, std::move(frame));
      return 1;
    }
  }
  uint32_t n = 0;
  auto m = caf::make_message(frame_atom::value, std::move(frame));
  for (const auto& [peer, entry] : st.peers) {
    if (peer == except
        || entry.info.protocol_version() < confirm_protocol_version)
      continue;
    send_shared(entry.link, m);
    ++n;
  }
  return n;
}

/// Checks a confirmation envelope from an untrusted peer.
std::string validate_confirm(const pb::Envelope& env, const router_state& st) {
  if (env.message_id().empty() || env.message_id().size() > 256)
    return "confirmation without a valid message ID";
  if (env.hops_left() > st.cfg.max_hops)
    return "confirmation with more hops than allowed";
  if (env.has_confirm_query()) {
    const auto& q = env.confirm_query();
    if (q.origin().empty() || q.origin().size() > max_node_id_size)
      return "confirmation query without a valid origin";
    if (q.records_size() == 0 || q.records_size() > max_confirm_records)
      return "confirmation query with no or too many records";
    for (const auto& rec : q.records()) {
      if (rec.key().size() > st.cfg.max_key_size)
        return "confirmation query with a key over the limit";
      confirm_item item;
      if (auto err = from_proto(rec, item); !err.empty())
        return err;
      for (const auto& f : item.fields)
        if (f.data.size() > st.cfg.max_key_size)
          return "confirmation query with a field name over the limit";
    }
    return {};
  }
  const auto& a = env.confirm_answer();
  if (a.responder().empty() || a.responder().size() > max_node_id_size)
    return "confirmation answer without a valid responder";
  if (a.to().empty() || a.to().size() > max_node_id_size)
    return "confirmation answer without a valid destination";
  if (a.key().size() > st.cfg.max_key_size
      || a.owner().size() > max_node_id_size)
    return "confirmation answer with a key or owner over the limit";
  return {};
}

} // namespace

void flood_confirm_query(router_self self, pb::ConfirmQuery& q) {
  auto& st = self->state;
  auto env = own_envelope(self, 'c', st.cfg.max_hops);
  q.set_origin(st.self_id);
  *env.mutable_confirm_query() = std::move(q);
  st.seen.insert(env.message_id(), self->clock().now());
  route_confirm(self, env, std::string{}, std::string{});
}

void route_confirm_answer(router_self self, pb::ConfirmAnswer& a) {
  auto& st = self->state;
  auto env = own_envelope(self, 'a', st.cfg.max_hops);
  auto to = a.to();
  *env.mutable_confirm_answer() = std::move(a);
  st.seen.insert(env.message_id(), self->clock().now());
  route_confirm(self, env, to, std::string{});
}

void on_confirm_envelope(router_self self, const std::string& peer,
                         pb::Envelope& env) {
  auto& st = self->state;
  if (!env.has_confirm_query() && !env.has_confirm_answer())
    return;
  if (auto err = validate_confirm(env, st); !err.empty()) {
    goodbye_malformed(self, peer, err);
    return;
  }
  // Confirmations share the per-peer message budget: a peer flooding them
  // cannot starve dictionary traffic.
  if (!spend_message_budget(self, peer))
    return;
  auto now = self->clock().now();
  if (!st.seen.insert(env.message_id(), now))
    return; // a duplicate: handled once
  if (env.has_confirm_query()) {
    bool relay = env.hops_left() > 1;
    if (env.confirm_query().origin() != st.self_id && st.store) {
      if (relay) {
        // The store gets a copy; the original goes on unchanged.
        self->send(st.store, confirm_atom::value, env.confirm_query());
      } else {
        self->send(st.store, confirm_atom::value,
                   std::move(*env.mutable_confirm_query()));
        return;
      }
    }
    if (relay) {
      env.set_hops_left(env.hops_left() - 1);
      route_confirm(self, env, std::string{}, peer);
    }
    return;
  }
  const auto& a = env.confirm_answer();
  if (a.to() == st.self_id) {
    if (st.events)
      self->send(st.events, std::move(*env.mutable_confirm_answer()));
    return;
  }
  if (env.hops_left() > 1) {
    env.set_hops_left(env.hops_left() - 1);
    auto to = a.to();
    route_confirm(self, env, to, peer);
  }
}

} // namespace syncmesh
