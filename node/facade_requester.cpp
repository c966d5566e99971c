#include "node/facade_requester.hpp"

#include <algorithm>
#include <unordered_map>
#include <vector>

#include <caf/actor_cast.hpp>
#include <caf/actor_system.hpp>
#include <caf/atom.hpp>
#include <caf/execution_unit.hpp>
#include <caf/exit_reason.hpp>
#include <caf/mailbox_element.hpp>
#include <caf/make_actor.hpp>
#include <caf/resumable.hpp>
#include <caf/scheduler/abstract_coordinator.hpp>
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

/// Messages an actor handles per turn on a caller's thread, and turns per
/// call: a caller lends its thread for its own request, not for the
/// node's whole backlog (what is left goes to the scheduler).
constexpr size_t caller_throughput = 64;
constexpr size_t caller_turns = 16;

/// The jobs that actors running on a caller's thread scheduled, in order.
struct caller_jobs {
  const caf::execution_unit* unit;
  std::vector<caf::resumable*> jobs;
};

/// The caller_jobs of this thread while it runs actors (else null).
thread_local caller_jobs* current_jobs = nullptr;

/// The execution unit of callers that run actors. An actor keeps a pointer
/// to the unit it last ran on until its next turn (a send outside a turn
/// would reach this unit from a thread that runs nothing here, which hands
/// the job to the scheduler), so units are never freed: one per actor
/// system, found again by its address.
class caller_unit final : public caf::execution_unit {
public:
  explicit caller_unit(caf::actor_system* sys) : caf::execution_unit(sys) {}

  void exec_later(caf::resumable* job) override {
    if (current_jobs != nullptr && current_jobs->unit == this)
      current_jobs->jobs.push_back(job);
    else
      system().scheduler().enqueue(job);
  }
};

caller_unit& unit_of(caf::actor_system& sys) {
  static std::mutex mtx;
  // Reachable for the program's lifetime (see caller_unit).
  static auto* units = new std::unordered_map<caf::actor_system*, caller_unit*>;
  std::lock_guard<std::mutex> guard{mtx};
  auto& unit = (*units)[&sys];
  if (unit == nullptr)
    unit = new caller_unit(&sys);
  return *unit;
}

/// The resumable behind an actor handle (its scheduling identity).
const caf::resumable* job_of(const caf::actor& x) {
  return dynamic_cast<const caf::resumable*>(
    caf::actor_cast<caf::abstract_actor*>(x));
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
  return start_on(std::move(call), std::move(request), extra, nullptr);
}

void facade_requester::run_on_callers(caller_runnable actors) {
  auto list = std::make_shared<const caller_runnable>(std::move(actors));
  auto* unit = &unit_of(sys_);
  std::lock_guard<std::mutex> guard{mtx_};
  if (closed_)
    return;
  runnable_ = std::move(list);
  caller_unit_ = unit;
}

uint64_t facade_requester::start_and_run(
  std::shared_ptr<pending_call> call, caf::message request,
  std::chrono::milliseconds extra, const std::function<bool()>& finished) {
  std::shared_ptr<const caller_runnable> runnable;
  caf::execution_unit* unit = nullptr;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    runnable = runnable_;
    unit = caller_unit_;
  }
  // Not nested: a caller already running actors (a blocking call from a
  // handler that runs here) leaves the new ones to the scheduler.
  if (!runnable || current_jobs != nullptr)
    return start(std::move(call), std::move(request), extra);
  caller_jobs jobs{unit, {}};
  current_jobs = &jobs;
  auto id = start_on(std::move(call), std::move(request), extra, unit);
  auto in = [](const std::vector<caf::actor>& xs, const caf::resumable* job) {
    return std::any_of(xs.begin(), xs.end(),
                       [job](const caf::actor& x) { return job_of(x) == job; });
  };
  auto may_run = [&](const caf::resumable* job) {
    return in(runnable->always, job)
           || (in(runnable->until_finished, job) && !finished());
  };
  auto& scheduler = sys_.scheduler();
  size_t turns = 0;
  for (size_t i = 0; i < jobs.jobs.size(); ++i) {
    auto* job = jobs.jobs[i];
    // The reference the job came with goes along to the scheduler.
    if (turns == caller_turns || !may_run(job)) {
      scheduler.enqueue(job);
      continue;
    }
    ++turns;
    switch (job->resume(unit, caller_throughput)) {
      case caf::resumable::resume_later:
        scheduler.enqueue(job);
        break;
      case caf::resumable::done:
      case caf::resumable::awaiting_message:
      case caf::resumable::shutdown_execution_unit:
        caf::intrusive_ptr_release(job);
        break;
    }
  }
  current_jobs = nullptr;
  return id;
}

uint64_t facade_requester::start_on(std::shared_ptr<pending_call> call,
                                    caf::message request,
                                    std::chrono::milliseconds extra,
                                    caf::execution_unit* unit) {
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
  caf::actor_cast<caf::abstract_actor*>(dest_)->enqueue(std::move(msg), unit);
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
    runnable_ = nullptr;
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
