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

/// Sends the GETs collected so far as one GetManyRequest (a single GET as
/// a plain GetRequest: no list to build for the common idle case).
void flush_gets(caf::event_based_actor* self, const facade_actor& facade,
                caf::duration timeout, std::vector<node_bridge::entry>& gets,
                node_bridge::shared_queue& q) {
  if (gets.empty())
    return;
  if (gets.size() == 1) {
    pb::GetRequest req;
    req.set_key(std::move(gets.front().key));
    auto done
      = std::make_shared<node_bridge::get_done>(std::move(gets.front().on_get));
    self->request(facade, timeout, std::move(req))
      .then([done](pb::GetReply& x) { (*done)(std::move(x)); },
            [done](caf::error& err) { (*done)(std::move(err)); });
    gets.clear();
    return;
  }
  pb::GetManyRequest req;
  auto dones = std::make_shared<std::vector<node_bridge::get_done>>();
  dones->reserve(gets.size());
  for (auto& g : gets) {
    req.add_keys(std::move(g.key));
    dones->push_back(std::move(g.on_get));
  }
  {
    std::lock_guard<std::mutex> guard{q.mtx};
    q.get_batches += 1;
    q.batched_gets += gets.size();
  }
  gets.clear();
  self->request(facade, timeout, std::move(req))
    .then(
      [dones](pb::GetManyReply& many) {
        auto n = static_cast<size_t>(many.replies_size());
        for (size_t i = 0; i < dones->size(); ++i) {
          if (i < n)
            (*dones)[i](std::move(*many.mutable_replies(static_cast<int>(i))));
          else
            (*dones)[i](pb::GetReply{});
        }
      },
      [dones](caf::error& err) {
        for (auto& done : *dones)
          done(err);
      });
}

} // namespace

node_bridge::node_bridge(facade_actor facade, caf::duration timeout)
    : queue_(std::make_shared<shared_queue>()), timeout_(timeout) {
  auto& sys = facade->home_system();
  auto q = queue_;
  actor_ = sys.spawn([q, facade, timeout](caf::event_based_actor* self) {
    return caf::behavior{[=](bridge_wake_atom) {
      std::vector<entry> batch;
      {
        std::lock_guard<std::mutex> guard{q->mtx};
        batch.swap(q->batch);
        q->wake_sent = false;
      }
      // Keep the queue's order: a run of GETs goes out before the next
      // other call.
      std::vector<entry> gets;
      for (auto& e : batch) {
        if (e.on_get) {
          gets.push_back(std::move(e));
          continue;
        }
        flush_gets(self, facade, timeout, gets, *q);
        e.other(self, facade);
      }
      flush_gets(self, facade, timeout, gets, *q);
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

void node_bridge::get(std::string key, get_done done) {
  submit(entry{std::move(key), std::move(done), nullptr});
}

void node_bridge::submit(entry e) {
  bool wake = false;
  {
    std::lock_guard<std::mutex> guard{queue_->mtx};
    queue_->batch.push_back(std::move(e));
    wake = !queue_->wake_sent;
    queue_->wake_sent = true;
  }
  if (wake)
    caf::anon_send(actor_, bridge_wake_atom::value);
}

uint64_t node_bridge::get_batches() const {
  std::lock_guard<std::mutex> guard{queue_->mtx};
  return queue_->get_batches;
}

uint64_t node_bridge::batched_gets() const {
  std::lock_guard<std::mutex> guard{queue_->mtx};
  return queue_->batched_gets;
}

} // namespace syncmesh
