#include "syncmesh/sync_socket.hpp"
#include "node/node_errors.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <future>
#include <iostream>
#include <map>
#include <mutex>
#include <thread>

#include <caf/all.hpp>
#include <caf/io/middleman.hpp>

#include "actors/facade.hpp"
#include "actors/lease_conflicts.hpp"
#include "messages/value_proto.hpp"
#include "node/facade_requester.hpp"
#include "node/simulated_socket.hpp"
#include "node/write_combiner.hpp"

namespace syncmesh {

// -- CAF configuration --------------------------------------------------------

namespace {

template <class... Ts>
void add_types(caf::actor_system_config& cfg) {
  (cfg.add_message_type<Ts>(Ts::descriptor()->full_name()), ...);
}

} // namespace

void configure(caf::actor_system_config& cfg) {
  cfg.load<caf::io::middleman>();
  add_types<
    pb::ReceivedMessage, pb::SendRequest, pb::SendReply, pb::RecvRequest,
    pb::MessageList, pb::TrafficStats, pb::StatsRequest, pb::NodeStats,
    pb::StoreStats, pb::DisconnectRequest, pb::ConnectRequest, pb::PeerInfo,
    pb::PeersRequest, pb::PeerList, pb::Digest, pb::Peers, pb::GetRequest,
    pb::GetReply, pb::SetRequest, pb::UpdateRequest, pb::DeleteRequest,
    pb::DeleteReply, pb::DeltaRequest, pb::PopItemRequest, pb::WriteAck,
    pb::SnapshotRequest, pb::Snapshot, pb::InfoRequest, pb::NodeInfo, pb::Event,
    pb::WriteBatch, pb::Envelope, pb::RouterStats, pb::LeaseStats,
    pb::GetManyRequest, pb::GetManyReply, pb::BackupRequest, pb::BackupReply,
    pb::ConfirmedWriteRequest, pb::ConfirmedWriteReply, pb::ConfirmQuery,
    pb::ConfirmAnswer, pb::SetManyRequest, pb::SetManyReply>(cfg);
  cfg.add_error_category(
    error_category, [](uint8_t code, caf::atom_value, const caf::message& ctx) {
      std::string result = "syncmesh: ";
      result += to_string(static_cast<errc>(code));
      if (!ctx.empty()) {
        result += " ";
        result += caf::to_string(ctx);
      }
      return result;
    });
}

// -- helpers ------------------------------------------------------------------

namespace {

entry_meta meta_from(const pb::EntryMeta& x) {
  return entry_meta{node_id::from_raw(x.owner()), x.time_us(),
                    x.lease_end_us()};
}

value value_from(const pb::Value& x) {
  value result;
  // The node checked the depth against its own max_value_depth.
  if (auto err = from_proto(x, result, max_value_depth_ceiling); !err.empty())
    throw error(errc::malformed, "node replied with a bad value: " + err);
  return result;
}

} // namespace

/// The string in position `i` of an error's context, or "".
std::string context_string(const caf::error& err, size_t i) {
  const auto& ctx = err.context();
  if (ctx.size() > i && ctx.match_element<std::string>(i))
    return ctx.get_as<std::string>(i);
  return {};
}

namespace {

/// Printable form of a key: text as is, other bytes hex-escaped.
std::string printable(const std::string& key) {
  auto text = to_string(value::from_bytes(key));
  return text.substr(2, text.size() - 3); // strip b"..."
}

} // namespace

[[noreturn]] void throw_node_error(caf::actor_system& sys,
                                   const caf::error& err) {
  auto code = code_of(err);
  auto detail = context_string(err, 0);
  switch (code) {
    case errc::key_not_found:
      throw key_error("key not found: " + printable(detail));
    case errc::lease_held:
      // Every leased key of a refused batch, raw; key() is the first one,
      // printable.
      throw lease_error(lease_conflicts_of(err));
    case errc::wrong_type:
      throw type_error("value at key " + printable(detail) + " is not a map");
    case errc::invalid_key:
    case errc::key_too_large:
    case errc::value_too_large:
    case errc::malformed:
    case errc::invalid_config:
    case errc::frame_too_large:
      throw value_error(code, detail.empty() ? to_string(code) : detail);
    case errc::unconfirmed: {
      // Context: (message, confirmed, required, cluster size).
      const auto& ctx = err.context();
      auto number = [&](size_t i) -> uint32_t {
        return ctx.size() > i && ctx.match_element<uint32_t>(i)
                 ? ctx.get_as<uint32_t>(i)
                 : 0;
      };
      throw unconfirmed_error(detail.empty() ? to_string(code) : detail,
                              number(1), number(2), number(3));
    }
    case errc::unreachable:
    case errc::protocol_mismatch:
    case errc::disconnected:
    case errc::clock_offset:
    case errc::storage:
      throw error(code, detail.empty() ? to_string(code) : detail);
    case errc::none:
      break;
    default:
      throw error(code, sys.render(err));
  }
  if (err == caf::sec::request_timeout)
    throw error(errc::timeout, "the node did not reply in time");
  if (err == caf::sec::request_receiver_down)
    throw error(errc::closed, "the node is closed");
  throw error(errc::closed, sys.render(err));
}

namespace {} // namespace

namespace {

message message_from(const pb::ReceivedMessage& x) {
  message result;
  const auto& m = x.message();
  result.id = m.message_id();
  result.sender = node_id::from_raw(m.sender());
  result.time_us = m.time_us();
  for (const auto& p : m.packets())
    result.packets.push_back(value_from(p));
  result.via = node_id::from_raw(x.via());
  result.direct = !m.to().empty();
  result.whisper = m.whisper();
  return result;
}

peer_info peer_from(const pb::PeerInfo& x) {
  return peer_info{
    node_id::from_raw(x.node_id()),        x.host(),
    static_cast<uint16_t>(x.port()),       x.outbound(),
    std::chrono::microseconds{x.rtt_us()}, x.connected_since_us()};
}

} // namespace

// -- calls in flight ----------------------------------------------------------

namespace {

/// A blocking caller's slot: the caller sleeps on it until the reply,
/// close() or its deadline completes it.
template <class Reply>
class blocking_call final : public pending_call {
public:
  void complete(caf::type_erased_tuple& content) override {
    {
      std::lock_guard<std::mutex> guard{mtx_};
      if (content.match_elements<Reply>())
        reply_ = content.move_if_unshared<Reply>(0);
      else if (content.match_elements<caf::error>())
        err_ = content.get_as<caf::error>(0);
      else
        err_ = caf::make_error(caf::sec::unexpected_response);
      done_ = true;
      finished_.store(true, std::memory_order_release);
    }
    cv_.notify_one();
  }

  void fail(std::exception_ptr why) override {
    {
      std::lock_guard<std::mutex> guard{mtx_};
      failure_ = std::move(why);
      done_ = true;
      finished_.store(true, std::memory_order_release);
    }
    cv_.notify_one();
  }

  /// Waits for completion until `deadline`; false when it passed first.
  bool wait_until(std::chrono::steady_clock::time_point deadline) {
    std::unique_lock<std::mutex> guard{mtx_};
    return cv_.wait_until(guard, deadline, [this] { return done_; });
  }

  /// True once completed, without taking the lock (a caller that runs
  /// the node's actors checks it between them).
  bool finished() const { return finished_.load(std::memory_order_acquire); }

  /// True once completed (a simulated caller's test of progress).
  bool done() {
    std::lock_guard<std::mutex> guard{mtx_};
    return done_;
  }

  /// Waits for completion.
  void wait() {
    std::unique_lock<std::mutex> guard{mtx_};
    cv_.wait(guard, [this] { return done_; });
  }

  /// The reply; throws the failure or the node's error. After wait().
  Reply take(caf::actor_system& sys) {
    if (failure_)
      std::rethrow_exception(failure_);
    if (err_)
      throw_node_error(sys, err_);
    return std::move(*reply_);
  }

private:
  std::mutex mtx_;
  std::condition_variable cv_;
  bool done_ = false;
  std::atomic<bool> finished_{false};
  std::optional<Reply> reply_;
  caf::error err_;
  std::exception_ptr failure_;
};

/// An asynchronous confirmed write: completes a std::promise with the
/// confirmation, on the thread that delivers the reply.
class async_confirmed final : public pending_call {
public:
  explicit async_confirmed(caf::actor_system& sys) : sys_(sys) {}

  std::future<confirmation> future() { return done_.get_future(); }

  void complete(caf::type_erased_tuple& content) override {
    if (content.match_elements<pb::ConfirmedWriteReply>()) {
      const auto& r = content.get_as<pb::ConfirmedWriteReply>(0);
      done_.set_value(
        confirmation{r.confirmed(), r.required(), r.cluster_size()});
    } else if (content.match_elements<caf::error>()) {
      done_.set_exception(node_exception(sys_, content.get_as<caf::error>(0)));
    } else {
      done_.set_exception(
        node_exception(sys_, caf::make_error(caf::sec::unexpected_response)));
    }
  }

  void fail(std::exception_ptr why) override {
    done_.set_exception(std::move(why));
  }

private:
  caf::actor_system& sys_;
  std::promise<confirmation> done_;
};

/// The protobuf form of a write concern.
pb::WriteConcern to_proto(const write_concern& c) {
  pb::WriteConcern out;
  out.set_kind(static_cast<pb::WriteConcern::Kind>(c.what));
  out.set_nodes(c.nodes);
  out.set_timeout_ms(
    static_cast<uint64_t>(std::max<int64_t>(c.timeout.count(), 0)));
  return out;
}

confirmation confirmation_from(const pb::ConfirmedWriteReply& r) {
  return confirmation{r.confirmed(), r.required(), r.cluster_size()};
}

} // namespace

// -- impl ---------------------------------------------------------------------

struct sync_socket::impl : std::enable_shared_from_this<sync_socket::impl> {
  impl(caf::actor_system& sys, config cfg) : sys(sys), cfg(std::move(cfg)) {}

  caf::actor_system& sys;
  config cfg;
  node_actors node;
  node_id id;
  uint16_t port = 0;
  facade_actor facade;
  caf::actor events;
  std::atomic<bool> closed{false};
  /// On a test kit node: the simulation that blocking calls run (nothing
  /// waits on a thread, and the node is the kit's, not this socket's).
  bool simulated = false;
  std::weak_ptr<simulation> sim;
  /// A simulated socket is running its callbacks (not re-entered).
  bool running_callbacks = false;

  std::mutex callbacks_mtx;
  std::vector<message_handler> handlers;
  std::vector<std::function<void(const peer_info&)>> connect_cbs;
  std::vector<std::function<void(const node_id&, const std::string&)>>
    disconnect_cbs;
  std::vector<std::function<void(const message&)>> message_cbs;
  /// Answers the facade's handler requests, through the event thread.
  caf::actor handler_actor;
  std::atomic<uint64_t> dropped{0};
  /// Guarded by callbacks_mtx: the store builds events only once someone
  /// listens, so a socket without callbacks pays nothing for them.
  bool subscribed = false;
  std::vector<update_callback> update_cbs;
  std::vector<delete_callback> delete_cbs;
  std::vector<lease_lost_callback> lease_lost_cbs;

  /// Sends every request and routes the replies (no actor per call).
  std::unique_ptr<facade_requester> requester;
  /// Batches the set_async writes queued behind the batch in flight.
  std::shared_ptr<write_combiner> combiner;

  /// Sends a request to the facade and waits for the reply (at most
  /// cfg.request_timeout); throws what the node's error maps to, or
  /// errc::closed when close() runs first.
  template <class Reply, class... Ts>
  Reply call(Ts&&... xs) {
    return call_for<Reply>(std::chrono::milliseconds{0},
                           std::forward<Ts>(xs)...);
  }

  /// `call` that may take `extra` longer (a confirmed write's timeout).
  template <class Reply, class... Ts>
  Reply call_for(std::chrono::milliseconds extra, Ts&&... xs) {
    if (closed)
      throw error(errc::closed, "the sync_socket is closed");
    // Queued set_async writes go first: writes from one thread apply in
    // the order they were issued.
    combiner->flush();
    auto slot = std::make_shared<blocking_call<Reply>>();
    // This thread waits anyway: it runs the node's actors for the request.
    auto msg = caf::make_message(std::forward<Ts>(xs)...);
    auto id
      = simulated
          ? requester->start(slot, std::move(msg), extra)
          : requester->start_and_run(slot, std::move(msg), extra,
                                     [&slot] { return slot->finished(); });
    if (id == 0)
      throw error(errc::closed, "the sync_socket is closed");
    if (simulated) {
      auto limit = requester->timeout() + extra;
      if (!run_simulation([&] { return slot->done(); }, limit)
          && requester->withdraw(id))
        throw error(errc::timeout, "the node did not reply in time");
      return slot->take(sys);
    }
    auto deadline
      = std::chrono::steady_clock::now() + requester->timeout() + extra;
    if (!slot->wait_until(deadline) && requester->withdraw(id))
      throw error(errc::timeout, "the node did not reply in time");
    // Completed, or being completed right now by the thread that took it.
    slot->wait();
    return slot->take(sys);
  }

  /// Runs the simulation of a simulated socket until `done()`; false when
  /// `limit` of virtual time passed first (or the simulation is gone).
  bool run_simulation(const std::function<bool()>& done,
                      std::chrono::milliseconds limit) {
    auto s = sim.lock();
    if (!s)
      return done();
    if (s->inside_actor())
      throw std::logic_error(
        "syncmesh: a blocking sync_socket call on a test kit node from inside "
        "an actor (a tied actor, an on_event or submit callback) would wait "
        "for itself; call it from the test or from a socket callback");
    return s->run_until(done, limit);
  }

  /// A future for the caller: `inner` itself, or on a simulated socket a
  /// deferred future whose get() and wait() run the simulation until
  /// `inner` is ready (wait_for reports it deferred).
  template <class T>
  std::future<T> for_caller(std::future<T> inner,
                            std::chrono::milliseconds extra) {
    if (!simulated)
      return inner;
    // A second more than the requester's own deadline, which fails the
    // call in virtual time; a paused node's timers wait, hence the bound.
    auto limit = requester->timeout() + extra + std::chrono::seconds(1);
    std::weak_ptr<impl> weak = shared_from_this();
    return std::async(std::launch::deferred,
                      [inner = std::move(inner), weak, limit]() mutable -> T {
                        auto ready = [&] {
                          return inner.wait_for(std::chrono::seconds(0))
                                 == std::future_status::ready;
                        };
                        if (auto self = weak.lock(); self && !ready())
                          self->run_simulation(ready, limit);
                        if (!ready())
                          throw error(errc::timeout,
                                      "the node did not reply in time");
                        return inner.get();
                      });
  }

  /// How much longer than an ordinary call a confirmed write may take.
  std::chrono::milliseconds confirm_extra(const write_concern& c) const {
    return c.timeout.count() > 0 ? c.timeout : cfg.confirm_timeout;
  }

  /// Sends a confirmed write and waits for its confirmation.
  confirmation confirmed(pb::ConfirmedWriteRequest req,
                         const write_concern& c) {
    *req.mutable_concern() = to_proto(c);
    return confirmation_from(
      call_for<pb::ConfirmedWriteReply>(confirm_extra(c), std::move(req)));
  }

  /// Reads `key` from the store's table on this thread (no actor hop; see
  /// actors/store_reader.hpp): a write acknowledged to any thread before is
  /// seen. Falls back to the facade while the store has not attached yet.
  pb::GetReply read(const std::string& key) {
    if (closed)
      throw error(errc::closed, "the sync_socket is closed");
    if (auto err = check_key(cfg, key))
      throw_node_error(sys, err);
    pb::GetReply reply;
    if (node.reader && node.reader->get(key, reply))
      return reply;
    pb::GetRequest req;
    req.set_key(key);
    return call<pb::GetReply>(std::move(req));
  }

  void dispatch(const pb::Event& ev) {
    std::unique_lock<std::mutex> guard{callbacks_mtx};
    switch (ev.kind_case()) {
      case pb::Event::kUpdate: {
        auto cbs = update_cbs;
        guard.unlock();
        if (cbs.empty())
          return;
        auto val = value_from(ev.update().value());
        auto meta = meta_from(ev.update().meta());
        for (auto& cb : cbs)
          guarded(ev, [&] { cb(ev.update().key(), val, meta); });
        break;
      }
      case pb::Event::kDeleted: {
        auto cbs = delete_cbs;
        guard.unlock();
        for (auto& cb : cbs)
          guarded(ev, [&] { cb(ev.deleted().key()); });
        break;
      }
      case pb::Event::kMessage: {
        auto cbs = message_cbs;
        guard.unlock();
        if (cbs.empty())
          return;
        auto msg = message_from(ev.message());
        for (auto& cb : cbs)
          guarded(ev, [&] { cb(msg); });
        break;
      }
      case pb::Event::kPeerUp: {
        auto cbs = connect_cbs;
        guard.unlock();
        auto peer = peer_from(ev.peer_up().peer());
        for (auto& cb : cbs)
          guarded(ev, [&] { cb(peer); });
        break;
      }
      case pb::Event::kPeerDown: {
        auto cbs = disconnect_cbs;
        guard.unlock();
        for (auto& cb : cbs)
          guarded(ev, [&] {
            cb(node_id::from_raw(ev.peer_down().node_id()),
               ev.peer_down().reason());
          });
        break;
      }
      case pb::Event::kLeaseLost: {
        auto cbs = lease_lost_cbs;
        guard.unlock();
        for (auto& cb : cbs)
          guarded(ev, [&] {
            cb(ev.lease_lost().key(),
               node_id::from_raw(ev.lease_lost().new_owner()));
          });
        break;
      }
      default:
        break;
    }
  }

  template <class F>
  void guarded(const pb::Event& ev, F&& f) {
    // No callback starts once close() began (one already running finishes).
    if (closed)
      return;
    // A throwing callback must not kill the event thread for the others.
    try {
      f();
    } catch (const std::exception& e) {
      std::cerr << "syncmesh: event callback threw: " << e.what() << " ("
                << ev.ShortDebugString().substr(0, 200) << ")\n";
    }
  }

  /// Subscribes the event thread to the facade before the first callback is
  /// added; callers hold callbacks_mtx.
  void subscribe_locked() {
    if (subscribed)
      return;
    call<bool>(subscribe_atom::value, events);
    subscribed = true;
  }

  // -- the event thread: runs callbacks, one at a time ------------------------

  /// Most events waiting for callbacks; beyond it the oldest are dropped.
  static constexpr size_t max_queued_events = 65536;

  std::mutex queue_mtx;
  std::condition_variable queue_cv;
  /// An event for the callbacks, or (job > 0) a message for the handlers.
  struct queued {
    pb::Event ev;
    uint64_t job = 0;
  };
  std::deque<queued> queue;
  size_t dropped_events = 0;
  bool stopping = false;
  /// Set by the event thread as it returns (guarded by queue_mtx).
  bool worker_done = false;
  /// Set by close() when it leaves the event thread running (guarded by
  /// queue_mtx): the thread then counts as a running actor of `sys`, so
  /// ~actor_system (await_all_actors_done) waits for it, and it stops
  /// counting only after it dropped its share of this impl. That share
  /// holds actor handles (the requester's companion above all), and the
  /// last one released runs CAF cleanup against `sys`: done after the
  /// system died, it used freed memory (api_tests crashed at random).
  bool worker_holds_system = false;
  std::thread worker;

  /// How long close() lets a running callback finish before it returns
  /// anyway (the event thread then finishes it on its own: it holds this
  /// impl). Well inside close()'s 100 ms promise; a callback that calls
  /// the socket meanwhile gets errc::closed at once, so it ends quickly.
  static constexpr auto callback_grace = std::chrono::milliseconds(50);

  /// Called by the subscriber actor (a CAF worker): never blocks on callbacks.
  void enqueue(pb::Event ev, uint64_t job = 0) {
    {
      std::lock_guard<std::mutex> guard{queue_mtx};
      if (stopping)
        return;
      // Handler jobs are never dropped: the facade waits for their answer
      // (and bounds them itself); events beyond the bound are.
      if (job == 0 && queue.size() >= max_queued_events) {
        queue.pop_front();
        ++dropped_events;
      }
      queue.push_back(queued{std::move(ev), job});
    }
    queue_cv.notify_one();
  }

  /// Runs the handlers on a message and tells the facade (through the
  /// handler actor) whether one consumed it.
  void handle(const pb::Event& ev, uint64_t job) {
    std::vector<message_handler> hs;
    {
      std::lock_guard<std::mutex> guard{callbacks_mtx};
      hs = handlers;
    }
    bool consumed = false;
    auto msg = message_from(ev.message());
    for (auto& h : hs) {
      guarded(ev, [&] { consumed = h(msg, msg.via); });
      if (consumed)
        break;
    }
    // After close() the handler actor is gone and so may be its system.
    if (!closed)
      caf::anon_send(handler_actor, job, consumed);
  }

  /// Talks to `n` from now on: its facade gets every request, port() is
  /// asked for (which waits for the listener, so a bind error surfaces
  /// here rather than later; a failure closes the socket and throws), and
  /// the event subscriber is spawned.
  void attach(const node_actors& n) {
    node = n;
    id = node_id::from_raw(node.id);
    facade = node.facade;
    requester = std::make_unique<facade_requester>(
      sys, caf::actor_cast<caf::actor>(facade),
      std::chrono::duration_cast<std::chrono::milliseconds>(
        cfg.request_timeout));
    // A waiting caller may run the node's actors on its thread (a
    // simulated socket's node runs on the test coordinator): facade,
    // router and lease manager always (short handlers that never block),
    // the store until the call is answered. With a data dir the store
    // writes to disk in its handlers, which can stall for as long as the
    // disk does: it stays on CAF's workers, so that a caller's timeout and
    // close() still end its wait.
    if (!simulated) {
      facade_requester::caller_runnable runnable;
      runnable.always = {caf::actor_cast<caf::actor>(node.facade),
                         caf::actor_cast<caf::actor>(node.router),
                         caf::actor_cast<caf::actor>(node.lease_manager)};
      if (cfg.data_dir.empty())
        runnable.until_finished.push_back(
          caf::actor_cast<caf::actor>(node.store));
      requester->run_on_callers(std::move(runnable));
    }
    combiner = write_combiner::make(
      sys,
      [rq = requester.get()](pb::SetManyRequest req,
                             std::shared_ptr<pending_call> call) {
        return rq->start(std::move(call), caf::make_message(std::move(req)))
               != 0;
      },
      write_combiner::limits{});
    try {
      port = static_cast<uint16_t>(
        call<pb::NodeInfo>(pb::InfoRequest{}).listen_port());
    } catch (...) {
      close();
      throw;
    }
    spawn_events();
  }

  /// Spawns the actor that queues the facade's events for the callbacks.
  void spawn_events() {
    std::weak_ptr<impl> weak = shared_from_this();
    // The subscriber only queues; callbacks run on a thread of our own (or
    // when the simulation reaches them), so a callback that blocks on this
    // socket never starves CAF's scheduler.
    events = sys.spawn([weak](caf::event_based_actor*) -> caf::behavior {
      return {
        [weak](pb::Event& ev) {
          if (auto ptr = weak.lock())
            ptr->enqueue(std::move(ev));
        },
      };
    });
  }

  /// Runs the queued callbacks of a simulated socket (see
  /// run_simulated_callbacks).
  bool run_queued() {
    if (running_callbacks)
      return false;
    running_callbacks = true;
    bool any = false;
    try {
      for (;;) {
        queued item;
        {
          std::lock_guard<std::mutex> guard{queue_mtx};
          if (stopping || queue.empty())
            break;
          item = std::move(queue.front());
          queue.pop_front();
        }
        any = true;
        if (item.job > 0)
          handle(item.ev, item.job);
        else
          dispatch(item.ev);
      }
    } catch (...) {
      running_callbacks = false;
      throw;
    }
    running_callbacks = false;
    return any;
  }

  /// The event thread's body; returns whether close() left it holding the
  /// actor system (see worker_holds_system).
  bool run_events() {
    run_queue();
    bool holds_system = false;
    {
      std::lock_guard<std::mutex> guard{queue_mtx};
      worker_done = true;
      holds_system = worker_holds_system;
    }
    queue_cv.notify_all();
    return holds_system;
  }

  /// Lets the event thread run on after close() returns, keeping `sys` up
  /// until it is done with this impl; callers hold queue_mtx and know the
  /// thread has not finished.
  void leave_worker_running_locked() {
    worker_holds_system = true;
    sys.registry().inc_running();
    worker.detach();
  }

  void run_queue() {
    for (;;) {
      queued item;
      {
        std::unique_lock<std::mutex> guard{queue_mtx};
        queue_cv.wait(guard, [&] { return stopping || !queue.empty(); });
        if (stopping)
          return;
        item = std::move(queue.front());
        queue.pop_front();
      }
      if (item.job > 0)
        handle(item.ev, item.job);
      else
        dispatch(item.ev);
    }
  }

  /// Never waits for the node: answers every call in flight with
  /// errc::closed, tells the actors to stop, and gives a running callback
  /// at most callback_grace to finish.
  void close() {
    if (closed.exchange(true))
      return;
    // Queued writes fail now; those in flight go with the requester's calls.
    if (combiner)
      combiner->close();
    // Blocked callers (on any thread, callbacks included) wake up now.
    if (requester && simulated)
      requester->retire();
    else if (requester)
      requester->close();
    // A simulated socket's node is the kit's: it runs on.
    if (!simulated)
      caf::anon_send_exit(facade, caf::exit_reason::user_shutdown);
    if (events)
      caf::anon_send_exit(events, caf::exit_reason::user_shutdown);
    if (handler_actor)
      caf::anon_send_exit(handler_actor, caf::exit_reason::user_shutdown);
    {
      std::lock_guard<std::mutex> guard{queue_mtx};
      stopping = true;
    }
    queue_cv.notify_all();
    if (simulated) {
      // The socket may outlive the node's actor system (a stopped kit
      // node, a destroyed cluster): let go of its actors while it exists.
      events = nullptr;
      handler_actor = nullptr;
      facade = nullptr;
      node = node_actors{};
      return;
    }
    std::unique_lock<std::mutex> guard{queue_mtx};
    if (!worker.joinable())
      return;
    // From a callback the event thread cannot wait for itself.
    if (worker.get_id() == std::this_thread::get_id()) {
      leave_worker_running_locked();
      return;
    }
    if (queue_cv.wait_for(guard, callback_grace, [&] { return worker_done; })) {
      guard.unlock();
      worker.join();
    } else {
      leave_worker_running_locked(); // it shares ownership of this impl
    }
  }
};

// -- construction -------------------------------------------------------------

sync_socket::sync_socket(caf::actor_system& sys, config cfg)
    : impl_(std::make_shared<impl>(sys, std::move(cfg))) {
  impl_->attach(spawn_node(sys, impl_->cfg));
  // The thread shares ownership: after close() from a callback it may still
  // finish that callback while the socket goes away. When close() left it
  // running, it releases the system only after its share of the impl (and
  // with it every actor handle) is gone.
  impl_->worker = std::thread{[ptr = impl_]() mutable {
    auto& sys = ptr->sys;
    bool holds_system = ptr->run_events();
    ptr.reset();
    if (holds_system)
      sys.registry().dec_running();
  }};
}

sync_socket::~sync_socket() {
  close();
}

// -- reads --------------------------------------------------------------------

std::optional<item> sync_socket::get_item(key_arg key) const {
  auto name = std::move(key).str();
  auto reply = impl_->read(name);
  if (!reply.found())
    return std::nullopt;
  return item{std::move(name), value_from(reply.value()),
              meta_from(reply.meta())};
}

std::optional<value> sync_socket::get(key_arg key) const {
  auto x = get_item(std::move(key));
  if (!x)
    return std::nullopt;
  return std::move(x->val);
}

value sync_socket::get(key_arg key, value fallback) const {
  auto x = get(std::move(key));
  return x ? std::move(*x) : std::move(fallback);
}

value sync_socket::at(key_arg key) const {
  auto name = key.str();
  auto x = get(std::move(key));
  if (!x)
    throw key_error("key not found: " + printable(name));
  return std::move(*x);
}

bool sync_socket::contains(key_arg key) const {
  return get(std::move(key)).has_value();
}

size_t sync_socket::size() const {
  pb::SnapshotRequest req;
  req.set_count_only(true);
  return impl_->call<pb::Snapshot>(std::move(req)).total();
}

std::vector<std::string> sync_socket::keys() const {
  pb::SnapshotRequest req;
  req.set_keys_only(true);
  auto snap = impl_->call<pb::Snapshot>(std::move(req));
  std::vector<std::string> result;
  result.reserve(static_cast<size_t>(snap.items_size()));
  for (auto& x : *snap.mutable_items())
    result.push_back(std::move(*x.mutable_key()));
  return result;
}

std::vector<item> sync_socket::items() const {
  return items({}, 0);
}

std::vector<item> sync_socket::items(const std::string& prefix, size_t limit,
                                     const std::string& start_after) const {
  pb::SnapshotRequest req;
  req.set_prefix(prefix);
  req.set_limit(static_cast<uint32_t>(std::min<size_t>(limit, UINT32_MAX)));
  req.set_start_after(start_after);
  auto snap = impl_->call<pb::Snapshot>(std::move(req));
  std::vector<item> result;
  result.reserve(static_cast<size_t>(snap.items_size()));
  for (auto& x : *snap.mutable_items())
    result.push_back(item{std::move(*x.mutable_key()), value_from(x.value()),
                          meta_from(x.meta())});
  return result;
}

std::vector<value> sync_socket::values() const {
  std::vector<value> result;
  for (auto& x : items())
    result.push_back(std::move(x.val));
  return result;
}

std::map<std::string, value> sync_socket::copy() const {
  std::map<std::string, value> result;
  for (auto& x : items())
    result.emplace(std::move(x.key), std::move(x.val));
  return result;
}

// -- writes -------------------------------------------------------------------

void sync_socket::set(key_arg key, value val) {
  pb::SetRequest req;
  req.set_key(std::move(key).str());
  to_proto(val, req.mutable_value());
  impl_->call<pb::WriteAck>(std::move(req));
}

std::future<void> sync_socket::set_async(key_arg key, value val) {
  pb::KeyValue item;
  item.set_key(std::move(key).str());
  to_proto(val, item.mutable_value());
  std::future<void> result;
  // Checked here, as the facade would: a write that breaks a limit fails
  // alone instead of taking its batch with it.
  if (auto err = check_write(impl_->cfg, item.key(), item.value())) {
    std::promise<void> refused;
    refused.set_exception(node_exception(impl_->sys, err));
    result = refused.get_future();
  } else {
    result = impl_->combiner->submit(std::move(item));
  }
  return impl_->for_caller(std::move(result), std::chrono::milliseconds{0});
}

void sync_socket::update(
  const std::vector<std::pair<std::string, value>>& kvs) {
  pb::UpdateRequest req;
  for (const auto& [key, val] : kvs) {
    auto* item = req.add_items();
    item->set_key(key);
    to_proto(val, item->mutable_value());
  }
  impl_->call<pb::WriteAck>(std::move(req));
}

void sync_socket::erase(key_arg key) {
  pb::DeleteRequest req;
  req.set_key(std::move(key).str());
  impl_->call<pb::DeleteReply>(std::move(req));
}

value sync_socket::pop(key_arg key) {
  pb::DeleteRequest req;
  req.set_key(std::move(key).str());
  return value_from(impl_->call<pb::DeleteReply>(std::move(req)).old_value());
}

value sync_socket::pop(key_arg key, value fallback) {
  try {
    return pop(std::move(key));
  } catch (const lease_error&) {
    throw;
  } catch (const key_error&) {
    return fallback;
  }
}

std::pair<std::string, value> sync_socket::popitem() {
  auto reply = impl_->call<pb::DeleteReply>(pb::PopItemRequest{});
  return {reply.key(), value_from(reply.old_value())};
}

void sync_socket::apply_delta(key_arg key, const value_map& fields) {
  pb::DeltaRequest req;
  req.set_key(std::move(key).str());
  to_proto(fields, req.mutable_fields());
  impl_->call<pb::WriteAck>(std::move(req));
}

// -- confirmed writes ---------------------------------------------------------

confirmation sync_socket::set(key_arg key, value val,
                              const write_concern& concern) {
  pb::ConfirmedWriteRequest req;
  req.mutable_set()->set_key(std::move(key).str());
  to_proto(val, req.mutable_set()->mutable_value());
  return impl_->confirmed(std::move(req), concern);
}

std::future<confirmation> sync_socket::set_async(key_arg key, value val,
                                                 const write_concern& concern) {
  pb::ConfirmedWriteRequest req;
  req.mutable_set()->set_key(std::move(key).str());
  to_proto(val, req.mutable_set()->mutable_value());
  *req.mutable_concern() = to_proto(concern);
  auto call = std::make_shared<async_confirmed>(impl_->sys);
  auto result = call->future();
  impl_->combiner->flush();
  if (impl_->closed
      || impl_->requester->start(call, caf::make_message(std::move(req)),
                                 impl_->confirm_extra(concern))
           == 0)
    call->fail(std::make_exception_ptr(
      error(errc::closed, "the sync_socket is closed")));
  return impl_->for_caller(std::move(result), impl_->confirm_extra(concern));
}

confirmation
sync_socket::update(const std::vector<std::pair<std::string, value>>& kvs,
                    const write_concern& concern) {
  pb::ConfirmedWriteRequest req;
  auto* update = req.mutable_update();
  for (const auto& [key, val] : kvs) {
    auto* item = update->add_items();
    item->set_key(key);
    to_proto(val, item->mutable_value());
  }
  return impl_->confirmed(std::move(req), concern);
}

confirmation sync_socket::erase(key_arg key, const write_concern& concern) {
  pb::ConfirmedWriteRequest req;
  req.mutable_erase()->set_key(std::move(key).str());
  return impl_->confirmed(std::move(req), concern);
}

confirmation sync_socket::apply_delta(key_arg key, const value_map& fields,
                                      const write_concern& concern) {
  pb::ConfirmedWriteRequest req;
  req.mutable_delta()->set_key(std::move(key).str());
  to_proto(fields, req.mutable_delta()->mutable_fields());
  return impl_->confirmed(std::move(req), concern);
}

// -- events -------------------------------------------------------------------

void sync_socket::on_update(update_callback cb) {
  std::lock_guard<std::mutex> guard{impl_->callbacks_mtx};
  impl_->subscribe_locked();
  impl_->update_cbs.push_back(std::move(cb));
}

void sync_socket::on_delete(delete_callback cb) {
  std::lock_guard<std::mutex> guard{impl_->callbacks_mtx};
  impl_->subscribe_locked();
  impl_->delete_cbs.push_back(std::move(cb));
}

void sync_socket::on_lease_lost(lease_lost_callback cb) {
  std::lock_guard<std::mutex> guard{impl_->callbacks_mtx};
  impl_->subscribe_locked();
  impl_->lease_lost_cbs.push_back(std::move(cb));
}

// -- node ---------------------------------------------------------------------

peer_info sync_socket::connect(const std::string& host, uint16_t port) {
  pb::ConnectRequest req;
  req.set_host(host);
  req.set_port(port);
  return peer_from(impl_->call<pb::PeerInfo>(std::move(req)));
}

std::vector<peer_info> sync_socket::peers() const {
  auto list = impl_->call<pb::PeerList>(pb::PeersRequest{});
  std::vector<peer_info> result;
  for (const auto& x : list.peers())
    result.push_back(peer_from(x));
  return result;
}

bool sync_socket::disconnect(const node_id& id) {
  pb::DisconnectRequest req;
  req.set_node_id(id.raw());
  return impl_->call<bool>(std::move(req));
}

uint16_t sync_socket::port() const noexcept {
  return impl_->port;
}

// -- messages -----------------------------------------------------------------

std::string sync_socket::send(std::vector<value> packets,
                              const send_options& opts) {
  pb::SendRequest req;
  for (const auto& p : packets)
    to_proto(p, req.add_packets());
  req.set_to(opts.to.raw());
  req.set_whisper(opts.whisper);
  return impl_->call<pb::SendReply>(std::move(req)).message_id();
}

std::vector<message> sync_socket::recv(size_t n) {
  pb::RecvRequest req;
  req.set_max(static_cast<uint32_t>(std::min<size_t>(n, UINT32_MAX)));
  auto list = impl_->call<pb::MessageList>(std::move(req));
  impl_->dropped += list.dropped();
  std::vector<message> result;
  for (const auto& m : list.messages())
    result.push_back(message_from(m));
  return result;
}

std::optional<message> sync_socket::recv() {
  auto xs = recv(1);
  if (xs.empty())
    return std::nullopt;
  return std::move(xs.front());
}

std::string sync_socket::reply(const message& msg, std::vector<value> packets) {
  send_options opts;
  opts.to = msg.sender;
  return send(std::move(packets), opts);
}

void sync_socket::register_handler(message_handler fn) {
  std::lock_guard<std::mutex> guard{impl_->callbacks_mtx};
  impl_->handlers.push_back(std::move(fn));
  if (impl_->handler_actor)
    return;
  std::weak_ptr<impl> weak = impl_;
  // The facade asks this actor about every message; the handlers themselves
  // run on the event thread, which answers through this actor.
  impl_->handler_actor
    = impl_->sys.spawn([weak](caf::event_based_actor* self) -> caf::behavior {
        auto promises = std::make_shared<
          std::map<uint64_t, caf::typed_response_promise<bool>>>();
        auto next = std::make_shared<uint64_t>(1);
        return {
          [=](pb::ReceivedMessage& m) -> caf::result<bool> {
            auto ptr = weak.lock();
            if (!ptr)
              return false;
            auto rp = self->make_response_promise<bool>();
            auto job = (*next)++;
            promises->emplace(job, rp);
            pb::Event ev;
            *ev.mutable_message() = std::move(m);
            ptr->enqueue(std::move(ev), job);
            return rp;
          },
          [=](uint64_t job, bool consumed) {
            auto i = promises->find(job);
            if (i != promises->end()) {
              i->second.deliver(consumed);
              promises->erase(i);
            }
          },
        };
      });
  impl_->call<bool>(handler_atom::value, impl_->handler_actor);
}

void sync_socket::on_connect(std::function<void(const peer_info&)> cb) {
  std::lock_guard<std::mutex> guard{impl_->callbacks_mtx};
  impl_->subscribe_locked();
  impl_->connect_cbs.push_back(std::move(cb));
}

void sync_socket::on_disconnect(
  std::function<void(const node_id&, const std::string&)> cb) {
  std::lock_guard<std::mutex> guard{impl_->callbacks_mtx};
  impl_->subscribe_locked();
  impl_->disconnect_cbs.push_back(std::move(cb));
}

void sync_socket::on_message(std::function<void(const message&)> cb) {
  std::lock_guard<std::mutex> guard{impl_->callbacks_mtx};
  impl_->subscribe_locked();
  impl_->message_cbs.push_back(std::move(cb));
}

uint64_t sync_socket::dropped_messages() const noexcept {
  return impl_->dropped;
}

const node_actors& internals(const sync_socket& sock) {
  return sock.impl_->node;
}

pb::NodeInfo sync_socket::info() const {
  return impl_->call<pb::NodeInfo>(pb::InfoRequest{});
}

pb::NodeStats sync_socket::stats() const {
  return impl_->call<pb::NodeStats>(pb::StatsRequest{});
}

const node_id& sync_socket::id() const noexcept {
  return impl_->id;
}

facade_actor sync_socket::handle() const {
  return impl_->facade;
}

const config& sync_socket::settings() const noexcept {
  return impl_->cfg;
}

void sync_socket::close() {
  impl_->close();
}

bool sync_socket::closed() const noexcept {
  return impl_->closed;
}

size_t sync_socket::calls_in_flight() const {
  // A batch of combined writes counts as the writes it carries.
  auto& c = *impl_->combiner;
  return impl_->requester->in_flight() - c.batches_in_flight()
         + c.writes_pending();
}

// -- on a test kit node
// ---------------------------------------------------------

std::shared_ptr<sync_socket::impl>
make_simulated_socket(caf::actor_system& sys, const node_actors& node,
                      config cfg, std::weak_ptr<simulation> sim) {
  auto result = std::make_shared<sync_socket::impl>(sys, std::move(cfg));
  result->simulated = true;
  result->sim = std::move(sim);
  result->attach(node);
  return result;
}

bool run_simulated_callbacks(sync_socket::impl& sock) {
  return sock.run_queued();
}

void detach_simulated_socket(sync_socket::impl& sock) {
  sock.close();
}

} // namespace syncmesh
