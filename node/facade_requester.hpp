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
//
// A blocking caller also lends its thread to the node (start_and_run):
// the node's actors its request wakes run on the caller's thread, through
// an execution unit of its own, instead of waiting for a CAF worker to
// wake up. On this 2-core VM each hand-off between threads costs a halt
// and a wake of a virtual CPU; a blocking set() made two (caller → worker
// → caller). CAF's scheduling rule still holds: an actor runs on whichever
// unit its enqueue woke it on, one unit at a time.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

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

  /// The actors a waiting caller may run on its thread (a node's own
  /// actors, which never wait for a caller).
  struct caller_runnable {
    /// Run while the call waits and right after its reply (what the
    /// request set off, such as the flood of a write): handlers that are
    /// short and never block.
    std::vector<caf::actor> always;
    /// Run only until the call is finished: handlers that may hold the
    /// caller longer (the store's, behind its table lock).
    std::vector<caf::actor> until_finished;
  };

  /// Lets callers of start_and_run run `actors` on their threads.
  void run_on_callers(caller_runnable actors);

  /// start(), from a thread that will wait for the reply: the actors of
  /// run_on_callers() that the request wakes run on this thread (each for
  /// a bounded number of messages, a bounded number of times; those of
  /// `until_finished` only until `finished()`), often up to the reply
  /// itself; everything else goes to CAF's scheduler as usual.
  uint64_t start_and_run(std::shared_ptr<pending_call> call,
                         caf::message request, std::chrono::milliseconds extra,
                         const std::function<bool()>& finished);

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

  /// start() through `unit` (nullptr: CAF's scheduler).
  uint64_t start_on(std::shared_ptr<pending_call> call, caf::message request,
                    std::chrono::milliseconds extra, caf::execution_unit* unit);

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
  /// The actors callers may run (their handles keep them alive while a
  /// caller holds the list); null: none. Replaced, never changed.
  std::shared_ptr<const caller_runnable> runnable_;
  /// The execution unit callers run them on (set with runnable_).
  caf::execution_unit* caller_unit_ = nullptr;
};

/// The exception a blocking call throws for `err` (key_error, lease_error,
/// syncmesh::error with errc::timeout or errc::closed, ...).
std::exception_ptr node_exception(caf::actor_system& sys,
                                  const caf::error& err);

} // namespace syncmesh
