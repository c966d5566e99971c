#pragma once

// The HTTP API's way into the node without blocking the server's I/O
// thread. The I/O thread never waits for the node: it queues a call (with
// the callback that answers the client) and returns. One event-based CAF
// actor, spawned in the node's actor system, takes the queued calls a batch
// at a time (one wake-up message per batch, not per call), issues each as
// `request(facade, ...).then(...)` and hands the reply or the error to the
// callback, on a CAF worker thread. Calls leave the bridge in the order they
// were queued.
//
// Single-key GETs do not come here: the server reads them on its own thread
// through the store's reader (actors/store_reader.hpp).
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

  /// A bridge into `facade`; each request gives up after `timeout`.
  node_bridge(facade_actor facade, caf::duration timeout);

  /// Stops the bridge actor (calls not yet answered are dropped).
  ~node_bridge();

  node_bridge(const node_bridge&) = delete;
  node_bridge& operator=(const node_bridge&) = delete;

  /// Ends the bridge actor: calls queued or in flight are dropped without
  /// their callbacks (the server stopped first). Idempotent.
  void stop();

  /// Sends `req` to the facade and hands the typed reply (or the error) to
  /// `done`, from a CAF worker thread.
  template <class Reply, class Request>
  void call(Request req, std::function<void(caf::expected<Reply>)> done) {
    auto timeout = timeout_;
    submit([req = std::move(req), done = std::move(done), timeout](
             caf::event_based_actor* self, const facade_actor& f) mutable {
      auto fn = std::make_shared<std::function<void(caf::expected<Reply>)>>(
        std::move(done));
      self->request(f, timeout, std::move(req))
        .then([fn](Reply& x) { (*fn)(std::move(x)); },
              [fn](caf::error& err) { (*fn)(std::move(err)); });
    });
  }

  /// What the bridge actor and the submitting threads share.
  struct shared_queue {
    /// Guards everything below.
    std::mutex mtx;
    /// Calls queued since the last wake-up was taken.
    std::vector<call_fn> batch;
    /// A wake-up message is on its way to the actor.
    bool wake_sent = false;
  };

private:
  void submit(call_fn fn);

  std::shared_ptr<shared_queue> queue_;
  caf::actor actor_;
  caf::duration timeout_;
};

} // namespace syncmesh
