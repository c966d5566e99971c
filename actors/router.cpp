#include "actors/router.hpp"

#include <caf/all.hpp>

#include "actors/atoms.hpp"
#include "syncmesh/caf_types.hpp"

namespace syncmesh {

namespace {

using self_ptr = caf::stateful_actor<router_state>*;

void bump(pb::RouterStats& stats, uint64_t (pb::RouterStats::*get)() const,
          void (pb::RouterStats::*set)(uint64_t), uint64_t n = 1) {
  (stats.*set)((stats.*get)() + n);
}

} // namespace

void router_state::init(const config& cfg, const node_id& self) {
  builder = envelope_builder(self, cfg.max_hops, cfg.max_frame_size);
  limits = write_limits{cfg.max_key_size, cfg.max_value_size};
  clock = cfg.clock ? cfg.clock : system_wall_clock();
}

caf::behavior router_actor(self_ptr self, const config& cfg,
                           const node_id& id) {
  self->state.init(cfg, id);
  self->set_down_handler([=](caf::down_msg& msg) {
    auto& peers = self->state.peers;
    for (auto i = peers.begin(); i != peers.end();) {
      if (i->second.address() == msg.source)
        i = peers.erase(i);
      else
        ++i;
    }
  });
  return {
      [=](wire_atom, caf::actor lease_manager) {
        self->state.lease_manager = std::move(lease_manager);
      },
      [=](attach_atom, const std::string& peer, caf::actor link) {
        self->monitor(link);
        self->state.peers[peer] = std::move(link);
      },
      [=](detach_atom, const std::string& peer) {
        self->state.peers.erase(peer);
      },
      [=](changed_atom, const std::string& origin,
          const pb::WriteBatch& batch) {
        auto& st = self->state;
        bump(st.stats, &pb::RouterStats::records_out,
             &pb::RouterStats::set_records_out,
             static_cast<uint64_t>(batch.records_size()));
        if (st.peers.empty()
            || (st.peers.size() == 1 && st.peers.count(origin)))
          return;
        std::vector<std::string> frames;
        st.builder.build(batch, st.clock(), frames);
        bump(st.stats, &pb::RouterStats::frames_out,
             &pb::RouterStats::set_frames_out, frames.size());
        for (auto& frame : frames) {
          // One message shared by every peer: CAF copies it only on write.
          auto msg = caf::make_message(frame_atom::value, std::move(frame));
          for (const auto& [peer, link] : st.peers) {
            if (peer == origin)
              continue;
            self->send(link, msg);
            bump(st.stats, &pb::RouterStats::deliveries,
                 &pb::RouterStats::set_deliveries);
          }
        }
      },
      [=](inbound_atom, std::string& peer,
          const pb::Envelope& env) -> caf::result<bool> {
        auto& st = self->state;
        auto reject = [&](std::string why) -> caf::result<bool> {
          bump(st.stats, &pb::RouterStats::rejected_in,
               &pb::RouterStats::set_rejected_in);
          return make_error(errc::malformed, std::move(why));
        };
        pb::WriteBatch batch;
        if (auto err = envelope_builder::decode_writes(env, batch);
            !err.empty())
          return reject(std::move(err));
        if (auto err = validate_remote_batch(batch, st.limits); !err.empty())
          return reject(std::move(err));
        bump(st.stats, &pb::RouterStats::records_in,
             &pb::RouterStats::set_records_in,
             static_cast<uint64_t>(batch.records_size()));
        if (st.lease_manager)
          self->send(st.lease_manager, remote_atom::value, std::move(peer),
                     std::move(batch));
        return true;
      },
      [=](stats_atom) {
        auto stats = self->state.stats;
        stats.set_peers(static_cast<uint32_t>(self->state.peers.size()));
        return stats;
      },
  };
}

} // namespace syncmesh
