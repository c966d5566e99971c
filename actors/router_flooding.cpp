// The router's flooding of writes: writes from links are checked and go to
// the lease manager; writes that changed the store are batched and sent to
// every peer but the one they came from.

#include <map>

#include <caf/all.hpp>

#include "actors/atoms.hpp"
#include "actors/router_internal.hpp"
#include "syncmesh/caf_types.hpp"

namespace syncmesh {

void send_to_all(router_self self, const caf::message& msg,
                 const std::string& except) {
  for (const auto& [peer, entry] : self->state.peers) {
    if (peer == except)
      continue;
    send_shared(entry.link, msg);
    bump(self->state.stats, &pb::RouterStats::deliveries,
         &pb::RouterStats::set_deliveries);
  }
}

void on_changed(router_self self, std::string& origin, pb::WriteBatch& batch) {
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
    self->send(caf::actor_cast<router_actor>(self), flush_atom::value);
  }
}

void flush(router_self self) {
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

caf::result<bool> on_inbound_writes(router_self self, std::string& peer,
                                    const pb::Envelope& env) {
  auto& st = self->state;
  auto reject = [&](std::string why) -> caf::result<bool> {
    bump(st.stats, &pb::RouterStats::rejected_in,
         &pb::RouterStats::set_rejected_in);
    goodbye_malformed(self, peer, why);
    return make_error(errc::malformed, std::move(why));
  };
  // Envelopes of writes are rebuilt at every hop with the sender as their
  // origin (envelope_builder): with peer TLS the link's peer is proven, so
  // an envelope naming another origin is a forgery, refused whole.
  if (st.tls && env.origin() != peer) {
    bump(st.stats, &pb::RouterStats::forged_writes_refused,
         &pb::RouterStats::set_forged_writes_refused);
    log_line(log_level::warning, st.self_id,
             "refused writes from peer " + to_hex(peer).substr(0, 12)
               + ": the envelope claims origin " + to_hex(env.origin())
               + " (a peer may send writes only as itself)");
    return make_error(errc::malformed,
                      std::string{"envelope origin is not the sending peer"});
  }
  pb::WriteBatch batch;
  if (auto err = envelope_builder::decode_writes(env, batch); !err.empty())
    return reject(std::move(err));
  // A record breaking a limit is skipped alone; the link stays up.
  skip_invalid_records(self, peer, batch);
  if (batch.records_size() == 0)
    return true;
  bump(st.stats, &pb::RouterStats::records_in, &pb::RouterStats::set_records_in,
       static_cast<uint64_t>(batch.records_size()));
  if (!st.store)
    return true;
  // The store's reply, once applied, returns the link's credit.
  auto rp = self->make_response_promise<bool>();
  return rp.delegate(st.store, remote_atom::value, std::move(peer),
                     std::move(batch));
}

} // namespace syncmesh
