#pragma once

// The HTTP API's way into the node without blocking the server's I/O
// thread. The I/O thread never waits for the node: it queues a call (with
// the callback that answers the client) and returns. One event-based CAF
// actor, spawned in the node's actor system, takes the queued calls a batch
// at a time (one wake-up message per batch, not per call), issues them to
// the facade and hands each reply or error to its callback, on a CAF worker
// thread. Calls leave the bridge in the order they were queued.
//
// Single-key PUTs are batched: the PUTs queued back to back in one wake-up
// become ONE `UpdateRequest`, so the facade, the store, the flood and the
// event chain take one step for them instead of one each. An update is all
// or nothing; when it is refused for any reason but a timeout, nothing was
// applied and each PUT is sent again alone, so it gets its own answer (a
// 409 for the leased key, 204 for the others).
//
// Single-key GETs do not come here: the server reads them on its own thread
// through the store's reader (actors/store_reader.hpp).
//
// Timeouts: one timer for every call in flight (pending_calls) instead of a
// CAF request timeout each, which costs a wake-up of CAF's clock thread per
// request and a timeout message per request long after its reply.
//
// Bound: the bridge holds only calls the server dispatched and has not yet
// answered, which the server caps at `server_options::max_in_flight` (503
// beyond it); the bridge itself never refuses and never grows past that.

#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include <caf/actor.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/expected.hpp>
#include <caf/sec.hpp>

#include "syncmesh/facade.hpp"

namespace syncmesh {

/// Calls in flight from one actor, answered with a timeout error when their
/// deadline passes. All share one timeout, so deadlines come in call order
/// and a sweep looks only at the front. Not thread-safe: the bridge actor
/// owns it.
class pending_calls {
public:
  /// Every call must be answered within `timeout`.
  explicit pending_calls(std::chrono::steady_clock::duration timeout)
      : timeout_(timeout) {}

  /// A call that is answered once: by its reply or by its deadline.
  struct call {
    /// Set once answered; later answers are ignored.
    bool answered = false;
    /// Answers the call with a timeout error.
    std::function<void()> expire;
  };

  /// Registers a call made at `now`; its `expire` runs if it is not answered
  /// by `now + timeout`.
  std::shared_ptr<call> add(std::function<void()> expire,
                            std::chrono::steady_clock::time_point now);

  /// Marks `c` answered; returns false when it was already (expired).
  bool answer(const std::shared_ptr<call>& c);

  /// Expires the calls whose deadline is at or before `now`; forgets the
  /// answered ones at the front.
  void sweep(std::chrono::steady_clock::time_point now);

  /// Calls not yet forgotten (answered ones wait behind an older open one).
  size_t size() const noexcept { return items_.size(); }

private:
  struct item {
    std::chrono::steady_clock::time_point deadline;
    std::shared_ptr<call> c;
  };

  void drop_answered_front();

  std::chrono::steady_clock::duration timeout_;
  std::deque<item> items_;
};

/// Queues calls into a node's facade from any thread and answers them
/// through callbacks (see the file comment).
class node_bridge {
public:
  /// Issues one queued call; runs inside the bridge actor.
  using call_fn = std::function<void(caf::event_based_actor* self,
                                     const facade_actor&, pending_calls&)>;

  /// Receives the outcome of a PUT: none, or why it was refused.
  using set_done = std::function<void(caf::error)>;

  /// A bridge into `facade`; each call gives up after `timeout`.
  node_bridge(facade_actor facade, std::chrono::steady_clock::duration timeout);

  /// Stops the bridge actor (calls not yet answered are dropped).
  ~node_bridge();

  node_bridge(const node_bridge&) = delete;
  node_bridge& operator=(const node_bridge&) = delete;

  /// Ends the bridge actor: calls queued or in flight are dropped without
  /// their callbacks (the server stopped first). Idempotent.
  void stop();

  /// Sets `key` to `value`; batched with the PUTs queued next to it.
  void set(std::string key, pb::Value value, set_done done);

  /// Sends `req` to the facade and hands the typed reply (or the error) to
  /// `done`, from a CAF worker thread.
  template <class Reply, class Request>
  void call(Request req, std::function<void(caf::expected<Reply>)> done) {
    call_with<Reply>(std::move(done), std::move(req));
  }

  /// call() for a request of several elements (an atom and its arguments).
  template <class Reply, class... Ts>
  void call_with(std::function<void(caf::expected<Reply>)> done, Ts... xs) {
    submit(entry{
      {},
      nullptr,
      [xs = std::make_tuple(std::move(xs)...), done = std::move(done)](
        caf::event_based_actor* self, const facade_actor& f,
        pending_calls& pending) mutable {
        auto fn = std::make_shared<std::function<void(caf::expected<Reply>)>>(
          std::move(done));
        auto c = pending.add(
          [fn] { (*fn)(caf::make_error(caf::sec::request_timeout)); },
          std::chrono::steady_clock::now());
        std::apply(
          [&](auto&... ys) {
            self->request(f, caf::infinite, std::move(ys)...)
              .then(
                [fn, c, &pending](Reply& x) {
                  if (pending.answer(c))
                    (*fn)(std::move(x));
                },
                [fn, c, &pending](caf::error& err) {
                  if (pending.answer(c))
                    (*fn)(std::move(err));
                });
          },
          xs);
      }});
  }

  /// Subscribes `subscriber` to the node's events (`on`) or unsubscribes
  /// it, in the order of the calls; `done` gets the facade's answer, from a CAF
  /// worker thread. A subscription is answered once the store publishes events.
  void subscribe(caf::actor subscriber, bool on,
                 std::function<void(caf::expected<bool>)> done);

  /// PUTs sent inside a batched UpdateRequest so far (for metrics).
  uint64_t batched_sets() const;

  /// Batched updates refused and sent again one PUT at a time.
  uint64_t batch_retries() const;

  /// One queued call: a PUT (its pair and set_done) or any other call.
  struct entry {
    /// The key and value, for a PUT.
    pb::KeyValue pair;
    /// Set for a PUT.
    set_done on_set;
    /// Set for every other call.
    call_fn other;
  };

  /// What the bridge actor and the submitting threads share.
  struct shared_queue {
    /// Guards everything below.
    std::mutex mtx;
    /// Calls queued since the last wake-up was taken.
    std::vector<entry> batch;
    /// A wake-up message is on its way to the actor.
    bool wake_sent = false;
    /// Counters (under mtx).
    uint64_t batched_sets = 0;
    uint64_t batch_retries = 0;
  };

private:
  void submit(entry e);

  std::shared_ptr<shared_queue> queue_;
  caf::actor actor_;
};

} // namespace syncmesh
