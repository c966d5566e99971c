#include "node/facade_requester.hpp"

#include <algorithm>
#include <vector>

#include <caf/actor_cast.hpp>
#include <caf/actor_system.hpp>
#include <caf/atom.hpp>
#include <caf/exit_reason.hpp>
#include <caf/mailbox_element.hpp>
#include <caf/make_actor.hpp>
#include <caf/send.hpp>

#include "node/node_errors.hpp"
#include "syncmesh/errors.hpp"

namespace syncmesh {

namespace {

/// Tells the requester to fail calls whose deadline passed.
using sweep_atom = caf::atom_constant<caf::atom("rqsweep")>;

std::exception_ptr closed_exception() {
  return std::make_exception_ptr(
    error(errc::closed, "the sync_socket is closed"));
}

std::exception_ptr timeout_exception() {
  return std::make_exception_ptr(
    error(errc::timeout, "the node did not reply in time"));
}

} // namespace

std::exception_ptr node_exception(caf::actor_system& sys,
                                  const caf::error& err) {
  try {
    throw_node_error(sys, err);
  } catch (...) {
    return std::current_exception();
  }
}

facade_requester::facade_requester(caf::actor_system& sys, caf::actor dest,
                                   std::chrono::milliseconds timeout)
    : sys_(sys), dest_(std::move(dest)),
      // Deadlines are now() + timeout: a timeout near milliseconds::max()
      // would overflow the clock's time points. A year is forever here.
      timeout_(std::min(
        timeout, std::chrono::milliseconds{std::chrono::hours{24 * 365}})) {
  // A companion that is never launched: it has no mailbox of its own to
  // schedule and does not count as a running actor, so it never holds up
  // ~actor_system.
  caf::actor_config cfg;
  companion_ = caf::make_actor<caf::actor_companion, caf::actor>(
    sys.next_actor_id(), sys.node(), &sys, cfg);
  auto* self = caf::actor_cast<caf::actor_companion*>(companion_);
  self->on_enqueue([this](caf::mailbox_element_ptr ptr) { on_message(*ptr); });
}

facade_requester::~facade_requester() {
  close();
}

uint64_t facade_requester::start(std::shared_ptr<pending_call> call,
                                 caf::message request,
                                 std::chrono::milliseconds extra) {
  uint64_t id = 0;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (closed_)
      return 0;
    id = next_id_++;
    bool extended = extra.count() > 0;
    auto deadline = now() + timeout_ + std::max(extra, decltype(extra){0});
    calls_.emplace(id, entry{std::move(call), deadline, extended});
    if (extended)
      ++extended_;
    if (!sweep_armed_)
      arm_sweep_locked(deadline);
  }
  // Outside the lock: when dest_ is gone, CAF bounces the request at once,
  // on this thread, into on_message.
  auto msg = caf::make_mailbox_element(
    caf::actor_cast<caf::strong_actor_ptr>(companion_),
    caf::make_message_id(id), {}, std::move(request));
  caf::actor_cast<caf::abstract_actor*>(dest_)->enqueue(std::move(msg),
                                                        nullptr);
  return id;
}

bool facade_requester::withdraw(uint64_t id) {
  std::lock_guard<std::mutex> guard{mtx_};
  auto i = calls_.find(id);
  if (i == calls_.end())
    return false;
  if (i->second.extended)
    --extended_;
  calls_.erase(i);
  return true;
}

void facade_requester::close() {
  std::map<uint64_t, entry> orphans;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (closed_)
      return;
    closed_ = true;
    orphans.swap(calls_);
    extended_ = 0;
  }
  auto why = closed_exception();
  for (auto& [id, x] : orphans)
    x.call->fail(why);
  // Replacing the handler takes the companion's lock exclusively: it waits
  // only for a reply being routed right now (a few µs), then every later
  // one is dropped (the calls they belonged to are answered). Not
  // disconnect(): Debian's libcaf_core 0.17.6 declares it but does not
  // define it.
  caf::actor_cast<caf::actor_companion*>(companion_)->on_enqueue(nullptr);
}

void facade_requester::retire() {
  close();
  // Cleaned up now, its destructor later has nothing left to tell the
  // system (which may be gone by then).
  caf::actor_cast<caf::actor_companion*>(companion_)
    ->cleanup(caf::exit_reason::user_shutdown, nullptr);
}

facade_requester::time_point facade_requester::now() const {
  return sys_.clock().now();
}

size_t facade_requester::in_flight() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return calls_.size();
}

void facade_requester::on_message(caf::mailbox_element& msg) {
  auto& content = msg.content();
  if (!msg.mid.is_response()) {
    if (content.match_elements<sweep_atom>())
      sweep();
    return;
  }
  std::shared_ptr<pending_call> call;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    auto i = calls_.find(msg.mid.request_id().integer_value());
    if (i == calls_.end())
      return; // timed out, withdrawn or closed: already answered
    call = std::move(i->second.call);
    if (i->second.extended)
      --extended_;
    calls_.erase(i);
  }
  call->complete(content);
}

void facade_requester::sweep() {
  std::vector<std::shared_ptr<pending_call>> expired;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    sweep_armed_ = false;
    auto current = now();
    if (extended_ == 0) {
      while (!calls_.empty() && calls_.begin()->second.deadline <= current) {
        expired.push_back(std::move(calls_.begin()->second.call));
        calls_.erase(calls_.begin());
      }
      if (!calls_.empty() && !closed_)
        arm_sweep_locked(calls_.begin()->second.deadline);
    } else {
      // Deadlines out of order: look at every call.
      auto next = time_point::max();
      for (auto i = calls_.begin(); i != calls_.end();) {
        if (i->second.deadline <= current) {
          if (i->second.extended)
            --extended_;
          expired.push_back(std::move(i->second.call));
          i = calls_.erase(i);
        } else {
          next = std::min(next, i->second.deadline);
          ++i;
        }
      }
      if (!calls_.empty() && !closed_)
        arm_sweep_locked(next);
    }
  }
  if (expired.empty())
    return;
  auto why = timeout_exception();
  for (auto& call : expired)
    call->fail(why);
}

void facade_requester::arm_sweep_locked(time_point when) {
  sweep_armed_ = true;
  // CAF's clock delivers it to the companion (on the clock's thread); one
  // message per timeout period at most, not one per call.
  auto delay
    = std::chrono::duration_cast<std::chrono::microseconds>(when - now());
  caf::delayed_anon_send(companion_,
                         std::max(delay, std::chrono::microseconds{1}),
                         sweep_atom::value);
}

} // namespace syncmesh
