#pragma once

// Combines a sync_socket's asynchronous writes (set_async) into batches.
//
// Why: each write sent as its own request costs a mailbox element, a
// facade step, a store step, a flood message and a reply — about as much
// as applying it. While one batch is in flight, the writes issued behind
// it wait here and go out together as one SetManyRequest when it comes
// back (or at once when they reach the size bound): a pipeline of
// set_async pays the per-request cost once per batch, and a lone write
// still goes out at once. The store answers every write of a batch on its
// own (its lease decision, its error), so set_async keeps set()'s
// semantics write by write.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <vector>

#include <caf/fwd.hpp>

#include "syncmesh/pb/requests.pb.h"

namespace syncmesh {

class pending_call;

/// Queues asynchronous writes behind the batch in flight and sends them as
/// one SetManyRequest. Thread-safe. Writes from one thread go out in the
/// order they were queued; flush() before any other write of the socket
/// keeps that order across kinds of writes.
class write_combiner : public std::enable_shared_from_this<write_combiner> {
public:
  /// Sends `req` with `call` for its reply; false (nothing sent) when the
  /// socket is closed.
  using send_function = std::function<bool(pb::SetManyRequest req,
                                           std::shared_ptr<pending_call> call)>;

  /// How much waits in one batch: the queue goes out as soon as it holds
  /// this many writes or bytes (a write larger than the bound goes alone).
  struct limits {
    /// Writes per batch.
    size_t max_items = 1024;
    /// Bytes of keys and encoded values per batch.
    size_t max_bytes = 1024 * 1024;
  };

  /// Batches go out through `send`; their errors become exceptions of the
  /// node (node_exception) for `sys`.
  static std::shared_ptr<write_combiner>
  make(caf::actor_system& sys, send_function send, limits bounds);

  /// Queues one write; the future is ready once the node applied it, or
  /// holds what a blocking set() would have thrown.
  std::future<void> submit(pb::KeyValue item);

  /// Sends what is queued now, without waiting for the batch in flight.
  void flush();

  /// Fails every queued write with errc::closed and refuses new ones
  /// (writes in flight are the requester's to answer).
  void close();

  /// Writes queued or in flight (for sync_socket::calls_in_flight).
  size_t writes_pending() const;

  /// Batches in flight.
  size_t batches_in_flight() const;

private:
  class batch_call;

  write_combiner(caf::actor_system& sys, send_function send, limits bounds);

  /// One queued write and its promise.
  struct queued_write {
    pb::KeyValue item;
    std::promise<void> done;
  };

  /// A batch came back (answered or failed): sends what queued behind it.
  void batch_done(size_t writes);

  /// Sends the queue as one batch; callers hold mtx_ (a recursive mutex:
  /// a request to a facade that is gone bounces back on this thread).
  void send_queue_locked();

  caf::actor_system& sys_;
  send_function send_;
  limits bounds_;

  /// Held while the queue is taken and sent, so that batches leave in the
  /// order their writes were queued, whichever thread sends them.
  mutable std::recursive_mutex mtx_;
  std::vector<queued_write> queue_;
  size_t queued_bytes_ = 0;
  size_t batches_in_flight_ = 0;
  size_t writes_in_flight_ = 0;
  bool closed_ = false;
};

} // namespace syncmesh
