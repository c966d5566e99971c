#include "actors/facade.hpp"

#include <algorithm>
#include <chrono>
#include <random>
#include <system_error>
#include <tuple>

#include <caf/all.hpp>

#include "actors/atoms.hpp"
#include "actors/data_dir.hpp"
#include "actors/dict_store.hpp"
#include "actors/lease_manager.hpp"
#include "actors/router.hpp"
#include "messages/hex_text.hpp"
#include "messages/py2p_codec.hpp"
#include "messages/value_proto.hpp"

namespace syncmesh {

namespace {

using self_ptr = facade_actor::stateful_pointer<facade_state>;

/// Checks a value from a CAF application: well-formed and within limits.
caf::error check_value(const config& cfg, const pb::Value& val) {
  auto size = val.ByteSizeLong();
  if (size > cfg.max_value_size)
    return make_error(errc::value_too_large,
                      "value of " + std::to_string(size)
                        + " bytes exceeds the limit of "
                        + std::to_string(cfg.max_value_size));
  if (auto err = validate(val, static_cast<int>(cfg.max_value_depth));
      !err.empty())
    return make_error(errc::malformed, std::move(err));
  return caf::none;
}

/// Hands an event to every subscriber.
void publish(self_ptr self, pb::Event ev) {
  const auto& subs = self->state.subscribers;
  if (subs.empty())
    return;
  auto msg = caf::make_message(std::move(ev));
  for (const auto& sub : subs)
    // Typed actors may not send() to dynamic ones; subscribers need no sender.
    caf::anon_send(sub, msg);
}

/// Queues a message nobody consumed for RecvRequest, and tells subscribers.
void queue_message(self_ptr self, pb::ReceivedMessage msg) {
  auto& st = self->state;
  if (st.inbox.size() >= st.cfg.max_received) {
    st.inbox.pop_front();
    ++st.dropped_messages;
  }
  pb::Event ev;
  *ev.mutable_message() = msg;
  st.inbox.push_back(std::move(msg));
  publish(self, std::move(ev));
}

/// Offers the oldest unhandled message to handler `i` and the ones after it,
/// one message at a time so messages keep their order.
void ask_handlers(self_ptr self, size_t i) {
  auto& st = self->state;
  if (st.unhandled.empty()) {
    st.handling = false;
    return;
  }
  st.handling = true;
  if (i >= st.handlers.size()) {
    auto msg = std::move(st.unhandled.front());
    st.unhandled.pop_front();
    queue_message(self, std::move(msg));
    ask_handlers(self, 0);
    return;
  }
  // A handler that does not answer in time is skipped, not waited for.
  self->request(st.handlers[i], std::chrono::seconds(5), st.unhandled.front())
    .then(
      [=](bool consumed) {
        if (!consumed) {
          ask_handlers(self, i + 1);
          return;
        }
        self->state.unhandled.pop_front();
        ask_handlers(self, 0);
      },
      [=](caf::error&) { ask_handlers(self, i + 1); });
}

template <class Reply, class Dest, class Request>
caf::result<Reply> forward(self_ptr self, const Dest& dest, Request&& req) {
  auto rp = self->make_response_promise<Reply>();
  return rp.delegate(dest, std::forward<Request>(req));
}

} // namespace

caf::error check_key(const config& cfg, const std::string& key) {
  if (key.empty())
    return make_error(errc::invalid_key, std::string{"key is empty"});
  if (key.size() > cfg.max_key_size)
    return make_error(errc::key_too_large,
                      "key of " + std::to_string(key.size())
                        + " bytes exceeds the limit of "
                        + std::to_string(cfg.max_key_size));
  return caf::none;
}

facade_actor::behavior_type
facade_behavior(self_ptr self, config cfg, raw_node_id id,
                lease_manager_actor lease_manager, dict_store_actor store,
                router_actor router, std::shared_ptr<clock_fence> fence) {
  auto& st = self->state;
  st.fence = std::move(fence);
  st.cfg = std::move(cfg);
  st.id = std::move(id);
  st.lease_manager = std::move(lease_manager);
  st.store = std::move(store);
  st.router = std::move(router);
  self->link_to(st.lease_manager);
  self->link_to(st.store);
  self->link_to(st.router);
  self->set_down_handler([=](caf::down_msg& msg) {
    auto& handlers = self->state.handlers;
    handlers.erase(std::remove_if(handlers.begin(), handlers.end(),
                                  [&](const caf::actor& x) {
                                    return x.address() == msg.source;
                                  }),
                   handlers.end());
    auto& subs = self->state.subscribers;
    subs.erase(std::remove_if(subs.begin(), subs.end(),
                              [&](const caf::actor& x) {
                                return x.address() == msg.source;
                              }),
               subs.end());
    if (subs.empty())
      caf::anon_send(self->state.store, events_atom::value, false);
  });
  return {
    [=](pb::GetRequest& req) -> caf::result<pb::GetReply> {
      if (auto err = check_key(self->state.cfg, req.key()))
        return err;
      return forward<pb::GetReply>(self, self->state.store, std::move(req));
    },
    [=](pb::GetManyRequest& req) -> caf::result<pb::GetManyReply> {
      for (const auto& key : req.keys())
        if (auto err = check_key(self->state.cfg, key))
          return err;
      return forward<pb::GetManyReply>(self, self->state.store, std::move(req));
    },
    [=](pb::SetRequest& req) -> caf::result<pb::WriteAck> {
      const auto& cfg = self->state.cfg;
      if (auto err = check_key(cfg, req.key()))
        return err;
      if (auto err = check_value(cfg, req.value()))
        return err;
      return forward<pb::WriteAck>(self, self->state.store, std::move(req));
    },
    [=](pb::UpdateRequest& req) -> caf::result<pb::WriteAck> {
      const auto& cfg = self->state.cfg;
      for (const auto& item : req.items()) {
        if (auto err = check_key(cfg, item.key()))
          return err;
        if (auto err = check_value(cfg, item.value()))
          return err;
      }
      for (const auto& key : req.deletes())
        if (auto err = check_key(cfg, key))
          return err;
      auto size = req.ByteSizeLong();
      if (size + 1024 > cfg.max_frame_size)
        return make_error(errc::value_too_large,
                          "update batch of " + std::to_string(size)
                            + " bytes does not fit one frame of "
                            + std::to_string(cfg.max_frame_size));
      return forward<pb::WriteAck>(self, self->state.store, std::move(req));
    },
    [=](pb::DeleteRequest& req) -> caf::result<pb::DeleteReply> {
      if (auto err = check_key(self->state.cfg, req.key()))
        return err;
      return forward<pb::DeleteReply>(self, self->state.store, std::move(req));
    },
    [=](pb::DeltaRequest& req) -> caf::result<pb::WriteAck> {
      const auto& cfg = self->state.cfg;
      if (auto err = check_key(cfg, req.key()))
        return err;
      if (req.fields().ByteSizeLong() > cfg.max_value_size)
        return make_error(errc::value_too_large,
                          std::string{"delta exceeds the value size limit"});
      if (auto err
          = validate(req.fields(), static_cast<int>(cfg.max_value_depth));
          !err.empty())
        return make_error(errc::malformed, std::move(err));
      // Merging nothing changes nothing: no write, no lease, no record.
      if (req.fields().entries_size() == 0)
        return pb::WriteAck{};
      return forward<pb::WriteAck>(self, self->state.store, std::move(req));
    },
    [=](pb::PopItemRequest& req) -> caf::result<pb::DeleteReply> {
      return forward<pb::DeleteReply>(self, self->state.store, std::move(req));
    },
    [=](pb::SnapshotRequest& req) -> caf::result<pb::Snapshot> {
      return forward<pb::Snapshot>(self, self->state.store, std::move(req));
    },
    [=](pb::InfoRequest& req) -> caf::result<pb::NodeInfo> {
      auto rp = self->make_response_promise<pb::NodeInfo>();
      // The router knows the address (once bound), the store the keys.
      self->request(self->state.router, caf::infinite, std::move(req))
        .then(
          [=](pb::NodeInfo& info) mutable {
            pb::SnapshotRequest count_only;
            count_only.set_count_only(true);
            self->request(self->state.store, caf::infinite, count_only)
              .then(
                [=](const pb::Snapshot& snap) mutable {
                  const auto& st = self->state;
                  info.set_node_id(st.id);
                  info.set_leasing(st.cfg.leasing);
                  info.set_lease_duration_ms(
                    static_cast<uint64_t>(st.cfg.lease_duration.count()));
                  info.set_protocol_id(protocol_id(st.cfg));
                  info.set_key_count(snap.total());
                  if (st.fence) {
                    info.set_clock_fenced(st.fence->fenced());
                    info.set_max_clock_offset_us(st.fence->bound_us());
                    for (const auto& pc : st.fence->snapshot()) {
                      auto* c = info.add_clocks();
                      c->set_node_id(pc.peer);
                      c->set_offset_us(pc.estimate.offset_us);
                      c->set_uncertainty_us(pc.estimate.uncertainty_us);
                      c->set_beyond(pc.beyond);
                      c->set_refused_us(pc.refused_us);
                      c->set_measured_us(pc.estimate.at_us);
                    }
                  }
                  if (st.cfg.data_dir.empty()) {
                    rp.deliver(std::move(info));
                    return;
                  }
                  // With a data dir, the status shows the storage's
                  // counters too (size, flush latencies, write
                  // amplification, the engine's memory): the store has
                  // them.
                  self->request(st.store, caf::infinite, stats_atom::value)
                    .then(
                      [=](pb::StoreStats& stats) mutable {
                        *info.mutable_storage()
                          = std::move(*stats.mutable_storage());
                        info.mutable_storage()->set_data_dir(
                          self->state.cfg.data_dir);
                        info.mutable_storage()->set_durability(
                          to_string(self->state.cfg.durability));
                        rp.deliver(std::move(info));
                      },
                      [=](caf::error& err) mutable {
                        rp.deliver(std::move(err));
                      });
                },
                [=](caf::error& err) mutable { rp.deliver(std::move(err)); });
          },
          [=](caf::error& err) mutable { rp.deliver(std::move(err)); });
      return rp;
    },
    [=](pb::ConnectRequest& req) -> caf::result<pb::PeerInfo> {
      return forward<pb::PeerInfo>(self, self->state.router, std::move(req));
    },
    [=](pb::PeersRequest& req) -> caf::result<pb::PeerList> {
      return forward<pb::PeerList>(self, self->state.router, std::move(req));
    },
    [=](pb::StatsRequest&) -> caf::result<pb::NodeStats> {
      auto rp = self->make_response_promise<pb::NodeStats>();
      auto fail = [=](caf::error& err) mutable {
        rp.deliver(std::move(err));
      };
      self->request(self->state.router, caf::infinite, stats_atom::value)
        .then(
          [=](pb::RouterStats& router) mutable {
            self
              ->request(self->state.lease_manager, caf::infinite,
                        stats_atom::value, lease_atom::value)
              .then(
                [=](pb::LeaseStats& lease) mutable {
                  self
                    ->request(self->state.store, caf::infinite,
                              stats_atom::value)
                    .then(
                      [=](pb::StoreStats& store) mutable {
                        pb::NodeStats all;
                        *all.mutable_router() = std::move(router);
                        *all.mutable_lease() = std::move(lease);
                        *all.mutable_store() = std::move(store);
                        rp.deliver(std::move(all));
                      },
                      fail);
                },
                fail);
          },
          fail);
      return rp;
    },
    [=](pb::BackupRequest& req) -> caf::result<pb::BackupReply> {
      return forward<pb::BackupReply>(self, self->state.store, std::move(req));
    },
    [=](pb::DisconnectRequest& req) -> caf::result<bool> {
      return forward<bool>(self, self->state.router, std::move(req));
    },
    [=](subscribe_atom, caf::actor subscriber) {
      auto& subs = self->state.subscribers;
      if (!subscriber
          || std::find(subs.begin(), subs.end(), subscriber) != subs.end())
        return false;
      self->monitor(subscriber);
      subs.push_back(std::move(subscriber));
      if (subs.size() == 1)
        caf::anon_send(self->state.store, events_atom::value, true);
      return true;
    },
    [=](unsubscribe_atom, caf::actor subscriber) {
      auto& subs = self->state.subscribers;
      auto i = std::find(subs.begin(), subs.end(), subscriber);
      if (i == subs.end())
        return false;
      self->demonitor(subscriber);
      subs.erase(i);
      if (subs.empty())
        caf::anon_send(self->state.store, events_atom::value, false);
      return true;
    },
    [=](pb::SendRequest& req) -> caf::result<pb::SendReply> {
      for (const auto& packet : req.packets())
        if (auto err = validate(
              packet, static_cast<int>(self->state.cfg.max_value_depth));
            !err.empty())
          return make_error(errc::malformed, std::move(err));
      if (req.whisper() && !req.to().empty())
        return make_error(errc::malformed,
                          std::string{"a message is whispered or addressed, "
                                      "not both"});
      return forward<pb::SendReply>(self, self->state.router, std::move(req));
    },
    [=](const pb::RecvRequest& req) {
      auto& st = self->state;
      pb::MessageList list;
      size_t n = std::max<uint32_t>(req.max(), 1);
      while (n-- > 0 && !st.inbox.empty()) {
        *list.add_messages() = std::move(st.inbox.front());
        st.inbox.pop_front();
      }
      list.set_dropped(st.dropped_messages);
      st.dropped_messages = 0;
      return list;
    },
    [=](handler_atom, caf::actor handler) {
      if (!handler)
        return false;
      self->monitor(handler);
      self->state.handlers.push_back(std::move(handler));
      return true;
    },
    [=](pb::Event& ev) {
      auto& st = self->state;
      if (ev.has_message()) {
        if (st.handlers.empty()) {
          queue_message(self, std::move(*ev.mutable_message()));
          return;
        }
        if (st.unhandled.size() >= st.cfg.max_received) {
          st.unhandled.pop_front();
          ++st.dropped_messages;
        }
        st.unhandled.push_back(std::move(*ev.mutable_message()));
        if (!st.handling)
          ask_handlers(self, 0);
        return;
      }
      publish(self, std::move(ev));
    },
  };
}

raw_node_id random_node_id() {
  std::random_device rd;
  // 15 bytes (120 random bits) fit std::string's inline buffer, so a
  // `version` in flight holds its IDs without a heap block. (Stored
  // versions hold interned refs: the ID's length costs nothing per key.)
  std::string id(random_node_id_size, '\0');
  for (auto& c : id)
    c = static_cast<char>(rd() & 0xff);
  return id;
}

std::shared_ptr<const tls_context> make_peer_tls(const config& cfg) {
  if (!cfg.tls.enabled())
    return nullptr;
  tls_identity_options opts;
  opts.cert_file = cfg.tls.cert_file;
  opts.key_file = cfg.tls.key_file;
  opts.ca_file = cfg.tls.ca_file;
  opts.cert_pem = cfg.tls.cert_pem;
  opts.key_pem = cfg.tls.key_pem;
  opts.ca_pem = cfg.tls.ca_pem;
  opts.tls13_only = true;
  tls_identity identity;
  std::string error;
  std::shared_ptr<const tls_context> ctx;
  if (identity.load(opts, error))
    ctx = tls_context::make(identity, error);
  if (!ctx)
    throw value_error(errc::invalid_config,
                      "invalid syncmesh config: " + error);
  // The certificate proves the ID: a node configured with another one
  // would be refused by every peer (IDENTITY_MISMATCH), so say it here.
  if (!cfg.node_id.empty() && cfg.node_id.raw() != ctx->node_id())
    throw value_error(errc::invalid_config,
                      "invalid syncmesh config: node ID " + cfg.node_id.to_hex()
                        + " is not the one the TLS certificate names ("
                        + to_hex(ctx->node_id()) + ")");
  return ctx;
}

node_actors spawn_node(caf::actor_system& sys, const config& cfg) {
  if (auto err = cfg.validate(); !err.empty())
    throw value_error(errc::invalid_config, "invalid syncmesh config: " + err);
  node_actors result;
  auto tls = make_peer_tls(cfg);
  auto fresh_id = [&] {
    return tls ? tls->node_id()
           : cfg.wire == wire_kind::py2p
             ? py2p::random_node_id(protocol_id(cfg))
             : random_node_id();
  };
  std::shared_ptr<durable_start> durable;
  if (!cfg.data_dir.empty())
    std::tie(result.id, durable)
      = open_data_dir(cfg, tls ? tls->node_id() : raw_node_id{},
                      cfg.node_id.empty() ? fresh_id() : cfg.node_id.raw());
  else
    result.id = !cfg.node_id.empty() ? cfg.node_id.raw() : fresh_id();
  result.fence = std::make_shared<clock_fence>(static_cast<uint64_t>(
    std::chrono::duration_cast<std::chrono::microseconds>(cfg.max_clock_offset)
      .count()));
  result.router = sys.spawn(router_behavior, cfg, result.id, result.fence, tls);
  result.lease_manager = sys.spawn(lease_manager_behavior, cfg, result.id);
  // Anti-entropy windows: a quarter of the send bound, so a transfer never
  // crowds out flood traffic, and never more than half a frame.
  auto window = std::min(cfg.max_send_queue / 4, cfg.max_frame_size / 2);
  result.reader = std::make_shared<store_reader>();
  result.store = sys.spawn(dict_store_behavior, cfg, result.id, result.router,
                           result.lease_manager, window, result.fence,
                           result.reader, durable);
  result.facade
    = sys.spawn(facade_behavior, cfg, result.id, result.lease_manager,
                result.store, result.router, result.fence);
  caf::anon_send(result.router, wire_atom::value, result.store, result.facade);
  caf::anon_send(result.lease_manager, wire_atom::value, result.store,
                 result.facade);
  return result;
}

facade_actor spawn_sync_socket(caf::actor_system& sys, const config& cfg) {
  return spawn_node(sys, cfg).facade;
}

} // namespace syncmesh
