#include "node/daemon/node_bridge.hpp"

#include <caf/actor_system.hpp>
#include <caf/atom.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/exit_reason.hpp>
#include <caf/send.hpp>

namespace syncmesh {

namespace {

/// "Take the queued batch": one per batch, never one per call.
using bridge_wake_atom = caf::atom_constant<caf::atom("brwake")>;

} // namespace

node_bridge::node_bridge(facade_actor facade, caf::duration timeout)
    : queue_(std::make_shared<shared_queue>()), timeout_(timeout) {
  auto& sys = facade->home_system();
  auto q = queue_;
  actor_ = sys.spawn([q, facade](caf::event_based_actor* self) {
    return caf::behavior{[=](bridge_wake_atom) {
      std::vector<call_fn> batch;
      {
        std::lock_guard<std::mutex> guard{q->mtx};
        batch.swap(q->batch);
        q->wake_sent = false;
      }
      for (auto& call : batch)
        call(self, facade);
    }};
  });
}

node_bridge::~node_bridge() {
  stop();
}

void node_bridge::stop() {
  if (actor_)
    caf::anon_send_exit(actor_, caf::exit_reason::user_shutdown);
}

void node_bridge::submit(call_fn fn) {
  bool wake = false;
  {
    std::lock_guard<std::mutex> guard{queue_->mtx};
    queue_->batch.push_back(std::move(fn));
    wake = !queue_->wake_sent;
    queue_->wake_sent = true;
  }
  if (wake)
    caf::anon_send(actor_, bridge_wake_atom::value);
}

} // namespace syncmesh
