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

/// Checks a SetRequest (key and value limits).
caf::error check_set(const config& cfg, const pb::SetRequest& req) {
  return check_write(cfg, req.key(), req.value());
}

/// Checks that a batch (`what`) fits one frame: the store floods what a
/// batch changed as one.
caf::error check_fits_frame(const config& cfg,
                            const google::protobuf::MessageLite& req,
                            const char* what) {
  auto size = req.ByteSizeLong();
  if (size + 1024 > cfg.max_frame_size)
    return make_error(errc::value_too_large,
                      std::string{what} + " of " + std::to_string(size)
                        + " bytes does not fit one frame of "
                        + std::to_string(cfg.max_frame_size));
  return caf::none;
}

/// Checks an UpdateRequest: every key and value, and that it fits a frame.
caf::error check_update(const config& cfg, const pb::UpdateRequest& req) {
  for (const auto& item : req.items())
    if (auto err = check_write(cfg, item.key(), item.value()))
      return err;
  for (const auto& key : req.deletes())
    if (auto err = check_key(cfg, key))
      return err;
  return check_fits_frame(cfg, req, "update batch");
}

/// Checks a SetManyRequest: every item as check_set, and that the batch
/// fits a frame.
caf::error check_set_many(const config& cfg, const pb::SetManyRequest& req) {
  for (const auto& item : req.items())
    if (auto err = check_write(cfg, item.key(), item.value()))
      return err;
  return check_fits_frame(cfg, req, "set batch");
}

/// Checks a DeltaRequest (key, size and depth of the fields).
caf::error check_delta(const config& cfg, const pb::DeltaRequest& req) {
  if (auto err = check_key(cfg, req.key()))
    return err;
  if (req.fields().ByteSizeLong() > cfg.max_value_size)
    return make_error(errc::value_too_large,
                      std::string{"delta exceeds the value size limit"});
  if (auto err = validate(req.fields(), static_cast<int>(cfg.max_value_depth));
      !err.empty())
    return make_error(errc::malformed, std::move(err));
  return caf::none;
}

template <class Reply, class Dest, class Request>
caf::result<Reply> forward(self_ptr self, const Dest& dest, Request&& req) {
  auto rp = self->make_response_promise<Reply>();
  return rp.delegate(dest, std::forward<Request>(req));
}

// -- confirmed writes (issue 17) ----------------------------------------------

/// The facade's wall clock (µs).
uint64_t now_us(self_ptr self) {
  return self->state.clock();
}

/// The membership majority and all count.
size_t cluster_size(self_ptr self) {
  return self->state.cfg.effective_cluster_size();
}

/// Arms the confirmation timer while confirmations wait: it expires them
/// and floods their queries again.
void arm_confirm_timer(self_ptr self) {
  auto& st = self->state;
  if (st.confirm_timer_armed || st.confirms.size() == 0)
    return;
  st.confirm_timer_armed = true;
  auto period = std::min<std::chrono::milliseconds>(
    std::chrono::milliseconds(50), st.cfg.confirm_resend_interval);
  self->delayed_send(self, period, confirm_timer_atom::value);
}

/// Answers confirmation `id` with its reply (confirmed).
void confirm_done(self_ptr self, uint64_t id) {
  auto& st = self->state;
  auto i = st.confirm_waiting.find(id);
  const auto* p = st.confirms.find(id);
  if (i == st.confirm_waiting.end() || p == nullptr)
    return;
  auto reply = std::move(i->second.reply);
  reply.set_confirmed(static_cast<uint32_t>(p->holders.size()));
  i->second.rp.deliver(std::move(reply));
  st.confirm_stats.set_confirmed(st.confirm_stats.confirmed() + 1);
  st.confirm_waiting.erase(i);
  st.confirms.erase(id);
}

/// Fails confirmation `id` with `err` (counted as `superseded` or
/// `unconfirmed`).
void confirm_fail(self_ptr self, uint64_t id, caf::error err) {
  auto& st = self->state;
  auto i = st.confirm_waiting.find(id);
  if (i == st.confirm_waiting.end())
    return;
  if (code_of(err) == errc::lease_held)
    st.confirm_stats.set_superseded(st.confirm_stats.superseded() + 1);
  else
    st.confirm_stats.set_unconfirmed(st.confirm_stats.unconfirmed() + 1);
  i->second.rp.deliver(std::move(err));
  st.confirm_waiting.erase(i);
  st.confirms.erase(id);
}

/// The error of a confirmation whose timeout passed: the write stands.
caf::error unconfirmed(uint32_t confirmed, uint32_t required,
                       uint32_t membership) {
  return make_error(errc::unconfirmed,
                    "confirmed by " + std::to_string(confirmed) + " of "
                      + std::to_string(required)
                      + " required nodes before the timeout (the write "
                        "stands and keeps spreading)",
                    confirmed, required, membership);
}

/// The store applied a confirmed write: waits for the other nodes (or
/// answers at once when this node is enough).
void start_confirm(self_ptr self, pb::ConfirmedWriteReply reply,
                   std::vector<confirm_item> items, uint32_t required,
                   uint64_t timeout_ms,
                   caf::typed_response_promise<pb::ConfirmedWriteReply> rp) {
  auto& st = self->state;
  reply.set_required(required);
  reply.set_cluster_size(static_cast<uint32_t>(cluster_size(self)));
  // Nothing written (a batch of deletes of absent keys): nothing to wait for.
  if (required <= 1 || items.empty()) {
    reply.set_confirmed(items.empty() ? required : 1);
    st.confirm_stats.set_confirmed(st.confirm_stats.confirmed() + 1);
    rp.deliver(std::move(reply));
    return;
  }
  std::vector<std::string> keys;
  keys.reserve(items.size());
  for (const auto& item : items)
    keys.push_back(item.key);
  auto now = now_us(self);
  auto id = st.confirms.add(required, st.id, now + timeout_ms * 1000,
                            std::move(keys));
  if (id == 0) {
    // Filled up while the store applied it: the write stands, unconfirmed.
    st.confirm_stats.set_unconfirmed(st.confirm_stats.unconfirmed() + 1);
    rp.deliver(unconfirmed(1, required, reply.cluster_size()));
    return;
  }
  pb::ConfirmQuery q;
  q.set_query_id(id);
  q.set_origin(st.id);
  q.set_ttl_ms(timeout_ms);
  for (const auto& item : items)
    to_proto(item, q.add_records());
  auto& w = st.confirm_waiting[id];
  w.rp = std::move(rp);
  w.reply = std::move(reply);
  w.query = q;
  w.next_resend_us
    = now
      + static_cast<uint64_t>(st.cfg.confirm_resend_interval.count()) * 1000;
  st.confirm_stats.set_queries(st.confirm_stats.queries() + 1);
  self->send(st.router, confirm_atom::value, std::move(q));
  arm_confirm_timer(self);
}

/// The confirmation timer: timeouts, then resends.
void on_confirm_timer(self_ptr self) {
  auto& st = self->state;
  st.confirm_timer_armed = false;
  auto now = now_us(self);
  for (auto id : st.confirms.expired(now)) {
    const auto* p = st.confirms.find(id);
    auto membership = static_cast<uint32_t>(cluster_size(self));
    confirm_fail(self, id,
                 unconfirmed(static_cast<uint32_t>(p->holders.size()),
                             p->required, membership));
  }
  auto interval
    = static_cast<uint64_t>(st.cfg.confirm_resend_interval.count()) * 1000;
  for (auto& [id, w] : st.confirm_waiting) {
    if (w.next_resend_us > now)
      continue;
    w.next_resend_us = now + interval;
    st.confirm_stats.set_queries(st.confirm_stats.queries() + 1);
    self->send(st.router, confirm_atom::value, w.query);
  }
  arm_confirm_timer(self);
}

/// The items a confirmed write's store answer stands for.
std::vector<confirm_item> written_items(const pb::ConfirmedWriteRequest& req,
                                        const pb::ConfirmedWriteReply& reply) {
  std::vector<confirm_item> items;
  auto one = [&](const std::string& key, const pb::EntryMeta& meta) {
    confirm_item item;
    item.key = key;
    from_proto(meta.version(), item.ver);
    items.push_back(std::move(item));
  };
  switch (req.op_case()) {
    case pb::ConfirmedWriteRequest::kSet:
      if (reply.ack().applied() > 0)
        one(req.set().key(), reply.ack().meta());
      break;
    case pb::ConfirmedWriteRequest::kErase:
      if (!reply.deleted().key().empty())
        one(reply.deleted().key(), reply.deleted().meta());
      break;
    case pb::ConfirmedWriteRequest::kDelta:
      if (reply.ack().applied() > 0) {
        one(req.delta().key(), reply.ack().meta());
        for (const auto& e : req.delta().fields().entries()) {
          map_key k;
          from_proto(e.key(), k);
          items.back().fields.push_back(std::move(k));
        }
      }
      break;
    case pb::ConfirmedWriteRequest::kUpdate:
      for (const auto& rec : reply.ack().written()) {
        confirm_item item;
        if (from_proto(rec, item).empty())
          items.push_back(std::move(item));
      }
      break;
    default:
      break;
  }
  return items;
}

/// A confirmed write: checked like its plain form, applied by the store,
/// then confirmed by the other nodes.
caf::result<pb::ConfirmedWriteReply>
confirmed_write(self_ptr self, pb::ConfirmedWriteRequest& req) {
  auto& st = self->state;
  const auto& cfg = st.cfg;
  const auto& c = req.concern();
  uint64_t timeout_ms = c.timeout_ms() > 0
                          ? c.timeout_ms()
                          : static_cast<uint64_t>(cfg.confirm_timeout.count());
  if (timeout_ms > static_cast<uint64_t>(cfg.max_confirm_timeout.count()))
    return make_error(errc::invalid_config,
                      "confirm timeout of " + std::to_string(timeout_ms)
                        + " ms exceeds max_confirm_timeout ("
                        + std::to_string(cfg.max_confirm_timeout.count())
                        + " ms)");
  if (c.kind() < pb::WriteConcern::LOCAL || c.kind() > pb::WriteConcern::ALL)
    return make_error(errc::invalid_config,
                      std::string{"unknown write concern"});
  std::string why;
  auto required = required_nodes(static_cast<concern_kind>(c.kind()), c.nodes(),
                                 cluster_size(self), why);
  if (required == 0)
    return make_error(errc::invalid_config, std::move(why));
  caf::error invalid;
  switch (req.op_case()) {
    case pb::ConfirmedWriteRequest::kSet:
      invalid = check_set(cfg, req.set());
      break;
    case pb::ConfirmedWriteRequest::kUpdate:
      invalid = check_update(cfg, req.update());
      break;
    case pb::ConfirmedWriteRequest::kErase:
      invalid = check_key(cfg, req.erase().key());
      break;
    case pb::ConfirmedWriteRequest::kDelta:
      invalid = check_delta(cfg, req.delta());
      break;
    default:
      invalid = make_error(errc::malformed,
                           std::string{"confirmed write without a write"});
  }
  if (invalid)
    return invalid;
  if (required > 1
      && st.confirms.size() + st.confirm_reserved
           >= st.cfg.max_pending_confirms) {
    st.confirm_stats.set_refused(st.confirm_stats.refused() + 1);
    return make_error(errc::overloaded,
                      "too many confirmed writes waiting (max_pending_confirms "
                        + std::to_string(cfg.max_pending_confirms) + ")");
  }
  auto rp = self->make_response_promise<pb::ConfirmedWriteReply>();
  // Counted against the bound while the store applies it.
  bool reserved = required > 1;
  if (reserved)
    ++st.confirm_reserved;
  auto release = [self, reserved] {
    if (reserved)
      --self->state.confirm_reserved;
  };
  auto fail = [rp, release](caf::error& err) mutable {
    release();
    rp.deliver(std::move(err));
  };
  auto shared = std::make_shared<pb::ConfirmedWriteRequest>(std::move(req));
  auto on_ack = [=](pb::WriteAck& ack) mutable {
    release();
    pb::ConfirmedWriteReply reply;
    *reply.mutable_ack() = std::move(ack);
    auto items = written_items(*shared, reply);
    reply.mutable_ack()->clear_written();
    start_confirm(self, std::move(reply), std::move(items), required,
                  timeout_ms, rp);
  };
  const auto& store = st.store;
  switch (shared->op_case()) {
    case pb::ConfirmedWriteRequest::kSet:
      self->request(store, caf::infinite, shared->set()).then(on_ack, fail);
      break;
    case pb::ConfirmedWriteRequest::kUpdate: {
      auto update = shared->update();
      update.set_report_versions(required > 1);
      self->request(store, caf::infinite, std::move(update)).then(on_ack, fail);
      break;
    }
    case pb::ConfirmedWriteRequest::kDelta:
      if (shared->delta().fields().entries_size() == 0) {
        // Merging nothing writes nothing: confirmed by definition.
        pb::WriteAck none;
        on_ack(none);
        break;
      }
      self->request(store, caf::infinite, shared->delta()).then(on_ack, fail);
      break;
    case pb::ConfirmedWriteRequest::kErase:
      self->request(store, caf::infinite, shared->erase())
        .then(
          [=](pb::DeleteReply& deleted) mutable {
            release();
            pb::ConfirmedWriteReply reply;
            *reply.mutable_deleted() = std::move(deleted);
            auto items = written_items(*shared, reply);
            start_confirm(self, std::move(reply), std::move(items), required,
                          timeout_ms, rp);
          },
          fail);
      break;
    default:
      break;
  }
  return rp;
}

/// An answer to one of our queries.
void on_confirm_answer(self_ptr self, const pb::ConfirmAnswer& a) {
  auto& st = self->state;
  st.confirm_stats.set_answers(st.confirm_stats.answers() + 1);
  switch (st.confirms.on_answer(a.query_id(), a.responder(), a.held(),
                                a.superseded())) {
    case confirm_tracker::outcome::confirmed:
      confirm_done(self, a.query_id());
      break;
    case confirm_tracker::outcome::superseded:
      confirm_fail(self, a.query_id(),
                   make_error(errc::lease_held, a.key(), to_hex(a.owner()),
                              a.lease_end_us()));
      break;
    default:
      break;
  }
}

/// This node lost the lease of a key: confirmations that wrote it lost.
void on_lease_lost(self_ptr self, const pb::LeaseLostEvent& lost) {
  auto& st = self->state;
  for (auto id : st.confirms.waiting_on(lost.key()))
    confirm_fail(self, id,
                 make_error(errc::lease_held, lost.key(),
                            to_hex(lost.new_owner()), uint64_t{0}));
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

caf::error check_write(const config& cfg, const std::string& key,
                       const pb::Value& val) {
  if (auto err = check_key(cfg, key))
    return err;
  return check_value(cfg, val);
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
  st.clock = st.cfg.clock ? st.cfg.clock : system_wall_clock();
  st.confirms = confirm_tracker{st.cfg.max_pending_confirms};
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
      if (auto err = check_set(self->state.cfg, req))
        return err;
      return forward<pb::WriteAck>(self, self->state.store, std::move(req));
    },
    [=](pb::SetManyRequest& req) -> caf::result<pb::SetManyReply> {
      if (auto err = check_set_many(self->state.cfg, req))
        return err;
      return forward<pb::SetManyReply>(self, self->state.store, std::move(req));
    },
    [=](pb::UpdateRequest& req) -> caf::result<pb::WriteAck> {
      if (auto err = check_update(self->state.cfg, req))
        return err;
      return forward<pb::WriteAck>(self, self->state.store, std::move(req));
    },
    [=](pb::DeleteRequest& req) -> caf::result<pb::DeleteReply> {
      if (auto err = check_key(self->state.cfg, req.key()))
        return err;
      return forward<pb::DeleteReply>(self, self->state.store, std::move(req));
    },
    [=](pb::DeltaRequest& req) -> caf::result<pb::WriteAck> {
      if (auto err = check_delta(self->state.cfg, req))
        return err;
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
                        *all.mutable_confirm() = self->state.confirm_stats;
                        all.mutable_confirm()->set_pending(
                          self->state.confirms.size());
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
    [=](subscribe_atom, caf::actor subscriber) -> caf::result<bool> {
      auto& subs = self->state.subscribers;
      if (!subscriber
          || std::find(subs.begin(), subs.end(), subscriber) != subs.end())
        return false;
      self->monitor(subscriber);
      subs.push_back(std::move(subscriber));
      // Answered once the store builds events: every write it handles
      // after this reply reaches the new subscriber, a remote one too
      // (remote writes reach the store from the router, not through us).
      auto rp = self->make_response_promise<bool>();
      self->request(self->state.store, caf::infinite, events_atom::value, true)
        .then([rp](bool) mutable { rp.deliver(true); },
              [rp](caf::error& err) mutable { rp.deliver(std::move(err)); });
      return rp;
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
    [=](
      pb::ConfirmedWriteRequest& req) -> caf::result<pb::ConfirmedWriteReply> {
      return confirmed_write(self, req);
    },
    [=](const pb::ConfirmAnswer& a) { on_confirm_answer(self, a); },
    [=](confirm_timer_atom) { on_confirm_timer(self); },
    [=](pb::Event& ev) {
      auto& st = self->state;
      if (ev.has_lease_lost() && st.confirms.size() > 0)
        on_lease_lost(self, ev.lease_lost());
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
