#pragma once

// The HTTP API's way into the node without blocking the server's I/O
// thread. The I/O thread never waits for the node: it queues a call (with
// the callback that answers the client) and returns. One event-based CAF
// actor, spawned in the node's actor system, takes the queued calls a batch
// at a time (one wake-up message per batch, not per call), issues each as
// `request(facade, ...).then(...)` and hands the reply or the error to the
// callback, on a CAF worker thread.
//
// Reads are batched: the GETs queued back to back in one wake-up become ONE
// `GetManyRequest`. Calls leave the bridge in the order they were queued
// (a run of GETs is flushed before the next other call), and the facade
// delegates to the store, which answers in mailbox order: a GET queued
// after a PUT's acknowledgement sees that PUT (read-your-writes).
//
// Bound: the bridge holds only calls the server dispatched and has not yet
// answered, which the server caps at `server_options::max_in_flight` (503
// beyond it); the bridge itself never refuses and never grows past that.

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include <caf/actor.hpp>
#include <caf/duration.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/expected.hpp>

#include "syncmesh/facade.hpp"

namespace syncmesh {

/// Queues calls into a node's facade from any thread and answers them
/// through callbacks (see the file comment).
class node_bridge {
public:
  /// Issues one queued call; runs inside the bridge actor.
  using call_fn
    = std::function<void(caf::event_based_actor* self, const facade_actor&)>;

  /// Receives the reply of a GET, or the error.
  using get_done = std::function<void(caf::expected<pb::GetReply>)>;

  /// A bridge into `facade`; each request gives up after `timeout`.
  node_bridge(facade_actor facade, caf::duration timeout);

  /// Stops the bridge actor (calls not yet answered are dropped).
  ~node_bridge();

  node_bridge(const node_bridge&) = delete;
  node_bridge& operator=(const node_bridge&) = delete;

  /// Ends the bridge actor: calls queued or in flight are dropped without
  /// their callbacks (the server stopped first). Idempotent.
  void stop();

  /// Reads one key; batched with the GETs queued next to it.
  void get(std::string key, get_done done);

  /// Sends `req` to the facade and hands the typed reply (or the error) to
  /// `done`, from a CAF worker thread.
  template <class Reply, class Request>
  void call(Request req, std::function<void(caf::expected<Reply>)> done) {
    auto timeout = timeout_;
    submit(entry{
      {},
      nullptr,
      [req = std::move(req), done = std::move(done),
       timeout](caf::event_based_actor* self, const facade_actor& f) mutable {
        auto fn = std::make_shared<std::function<void(caf::expected<Reply>)>>(
          std::move(done));
        self->request(f, timeout, std::move(req))
          .then([fn](Reply& x) { (*fn)(std::move(x)); },
                [fn](caf::error& err) { (*fn)(std::move(err)); });
      }});
  }

  /// GETs sent as one GetManyRequest so far (for tests and metrics).
  uint64_t get_batches() const;

  /// GETs answered through those batches.
  uint64_t batched_gets() const;

  /// One queued call: a GET (key + get_done) or any other call.
  struct entry {
    /// The key, for a GET.
    std::string key;
    /// Set for a GET.
    get_done on_get;
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
    uint64_t get_batches = 0;
    uint64_t batched_gets = 0;
  };

private:
  void submit(entry e);

  std::shared_ptr<shared_queue> queue_;
  caf::actor actor_;
  caf::duration timeout_;
};

} // namespace syncmesh
