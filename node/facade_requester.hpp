#pragma once

// Requests to a node's facade from threads that are not actors, without an
// actor per request (the sync_socket's blocking and asynchronous calls).
//
// Why: a `caf::scoped_actor` per blocking call cost ~120 µs to create and
// destroy, which held the blocking set() to ~7,000 calls/s. Here one
// `caf::actor_companion` per socket is the sender of every request: its
// enqueue runs on whichever thread delivers the reply (a CAF worker, or the
// caller itself when the facade is gone and CAF bounces the request), looks
// the request ID up in a table and completes that call. No actor is
// scheduled for the reply, and the caller waits on its own slot, so close()
// can answer every call in flight at once.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <map>
#include <memory>
#include <mutex>

#include <caf/actor.hpp>
#include <caf/actor_clock.hpp>
#include <caf/actor_companion.hpp>
#include <caf/message.hpp>

namespace syncmesh {

/// A request in flight: completed exactly once, by the reply, by close()
/// or by its deadline (whichever takes it out of the requester's table).
class pending_call {
public:
  virtual ~pending_call() = default;

  /// The facade answered: `content` holds the reply or a `caf::error`.
  virtual void complete(caf::type_erased_tuple& content) = 0;

  /// The call ended without a reply (`why`: errc::closed or errc::timeout).
  virtual void fail(std::exception_ptr why) = 0;
};

/// Sends requests to one actor on behalf of non-actor threads and routes
/// the replies to their pending_call. Thread-safe.
class facade_requester {
public:
  /// Requests go to `dest`; a call without a reply after `timeout` fails
  /// with errc::timeout.
  facade_requester(caf::actor_system& sys, caf::actor dest,
                   std::chrono::milliseconds timeout);

  /// Closes (see close()).
  ~facade_requester();

  facade_requester(const facade_requester&) = delete;
  facade_requester& operator=(const facade_requester&) = delete;

  /// Sends `request` and registers `call` for its reply, which may take
  /// `extra` longer than the timeout (a confirmed write's own timeout).
  /// Returns the call's number, or 0 (and sends nothing) after close().
  uint64_t start(std::shared_ptr<pending_call> call, caf::message request,
                 std::chrono::milliseconds extra
                 = std::chrono::milliseconds{0});

  /// Takes call `id` out of the table when it is still waiting: true when
  /// the caller now owns its completion (a blocking caller whose wait ended
  /// first); false when a reply, close() or the sweep is completing it.
  bool withdraw(uint64_t id);

  /// Fails every call in flight with errc::closed, refuses new ones, and
  /// stops routing replies. Returns without waiting for the facade.
  void close();

  /// Closes, and ends the companion actor now, while its actor system is
  /// alive: for requesters that may outlive their system (a socket on a
  /// test kit node that stopped). Later calls fail as after close().
  void retire();

  /// Calls in flight (for tests and metrics).
  size_t in_flight() const;

  /// How long a call may wait for its reply.
  std::chrono::milliseconds timeout() const noexcept { return timeout_; }

private:
  /// The actor system's clock: steady time, or the virtual time of CAF's
  /// test coordinator, so that deadlines pass in the simulation's time on a
  /// test kit node.
  using time_point = caf::actor_clock::time_point;

  /// Now, on the actor system's clock.
  time_point now() const;

  struct entry {
    std::shared_ptr<pending_call> call;
    time_point deadline;
    bool extended = false;
  };

  /// Runs on the thread that delivers a message to the companion.
  void on_message(caf::mailbox_element& msg);

  /// Fails the calls whose deadline passed (asynchronous calls have no
  /// waiting thread to notice); re-arms itself while calls remain.
  void sweep();

  /// Arms one sweep message at `when`; callers hold mtx_.
  void arm_sweep_locked(time_point when);

  caf::actor_system& sys_;
  caf::actor dest_;
  std::chrono::milliseconds timeout_;
  /// The sender of every request; its enqueue handler is on_message.
  caf::actor companion_;

  mutable std::mutex mtx_;
  /// Calls by request number. Numbers grow with time and most calls get
  /// the same timeout, so the first entry usually has the earliest
  /// deadline; calls with `extra` time are counted in `extended_`, and
  /// while there are any the sweep looks at every entry.
  std::map<uint64_t, entry> calls_;
  uint64_t next_id_ = 1;
  bool closed_ = false;
  bool sweep_armed_ = false;
  /// Calls in `calls_` started with extra time.
  size_t extended_ = 0;
};

/// The exception a blocking call throws for `err` (key_error, lease_error,
/// syncmesh::error with errc::timeout or errc::closed, ...).
std::exception_ptr node_exception(caf::actor_system& sys,
                                  const caf::error& err);

} // namespace syncmesh
