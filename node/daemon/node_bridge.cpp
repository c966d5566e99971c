#include "node/daemon/node_bridge.hpp"

#include <algorithm>

#include <caf/actor_system.hpp>
#include <caf/atom.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/exit_reason.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>

namespace syncmesh {

// -- pending_calls ------------------------------------------------------------

std::shared_ptr<pending_calls::call>
pending_calls::add(std::function<void()> expire,
                   std::chrono::steady_clock::time_point now) {
  auto c = std::make_shared<call>();
  c->expire = std::move(expire);
  items_.push_back(item{now + timeout_, c});
  return c;
}

bool pending_calls::answer(const std::shared_ptr<call>& c) {
  if (c->answered)
    return false;
  c->answered = true;
  c->expire = nullptr;
  // Replies come mostly in call order: forgetting from the front keeps the
  // list as short as the calls really open.
  drop_answered_front();
  return true;
}

void pending_calls::sweep(std::chrono::steady_clock::time_point now) {
  while (!items_.empty()) {
    auto& front = items_.front();
    if (!front.c->answered) {
      if (front.deadline > now)
        break;
      front.c->answered = true;
      auto expire = std::move(front.c->expire);
      items_.pop_front();
      expire();
      continue;
    }
    items_.pop_front();
  }
}

void pending_calls::drop_answered_front() {
  while (!items_.empty() && items_.front().c->answered)
    items_.pop_front();
}

// -- node_bridge
// ---------------------------------------------------------------

namespace {

/// "Take the queued batch": one per batch, never one per call.
using bridge_wake_atom = caf::atom_constant<caf::atom("brwake")>;

/// "Expire what is overdue": one timer for every call in flight.
using bridge_tick_atom = caf::atom_constant<caf::atom("brtick")>;

struct bridge_state {
  /// Calls in flight (the real timeout is set when the actor starts).
  pending_calls pending{std::chrono::seconds(30)};
  bool tick_scheduled = false;
};

using bridge_actor = caf::stateful_actor<bridge_state>;

/// Sends one PUT alone; `done` gets its own outcome.
void send_set(bridge_actor* self, const facade_actor& facade,
              pb::KeyValue&& pair, node_bridge::set_done done) {
  pb::SetRequest req;
  req.set_key(std::move(*pair.mutable_key()));
  req.mutable_value()->Swap(pair.mutable_value());
  auto fn = std::make_shared<node_bridge::set_done>(std::move(done));
  auto& pending = self->state.pending;
  auto c
    = pending.add([fn] { (*fn)(caf::make_error(caf::sec::request_timeout)); },
                  std::chrono::steady_clock::now());
  self->request(facade, caf::infinite, std::move(req))
    .then(
      [fn, c, self](pb::WriteAck&) {
        if (self->state.pending.answer(c))
          (*fn)(caf::none);
      },
      [fn, c, self](caf::error& err) {
        if (self->state.pending.answer(c))
          (*fn)(std::move(err));
      });
}

/// Sends the PUTs collected so far as one UpdateRequest (a single PUT as a
/// plain SetRequest). A refused update changed nothing: each PUT goes again
/// alone for its own answer. A timeout (which may have applied the update)
/// and a node that is gone are reported by every PUT of it.
void flush_sets(bridge_actor* self, const facade_actor& facade,
                std::vector<node_bridge::entry>& sets,
                node_bridge::shared_queue& q) {
  if (sets.empty())
    return;
  if (sets.size() == 1) {
    send_set(self, facade, std::move(sets.front().pair),
             std::move(sets.front().on_set));
    sets.clear();
    return;
  }
  pb::UpdateRequest req;
  req.mutable_items()->Reserve(static_cast<int>(sets.size()));
  // The pairs stay here for a retry; the request gets copies.
  auto batch = std::make_shared<std::vector<node_bridge::entry>>();
  batch->swap(sets);
  for (const auto& e : *batch)
    *req.add_items() = e.pair;
  {
    std::lock_guard<std::mutex> guard{q.mtx};
    q.batched_sets += batch->size();
  }
  auto shared_q = &q;
  auto& pending = self->state.pending;
  auto c = pending.add(
    [batch] {
      for (auto& e : *batch)
        e.on_set(caf::make_error(caf::sec::request_timeout));
    },
    std::chrono::steady_clock::now());
  self->request(facade, caf::infinite, std::move(req))
    .then(
      [batch, c, self](pb::WriteAck&) {
        if (!self->state.pending.answer(c))
          return;
        for (auto& e : *batch)
          e.on_set(caf::none);
      },
      [batch, c, self, facade, shared_q](caf::error& err) {
        if (!self->state.pending.answer(c))
          return;
        // The node is gone: a retry would only fail the same way.
        if (err == caf::sec::request_receiver_down) {
          for (auto& e : *batch)
            e.on_set(err);
          return;
        }
        {
          std::lock_guard<std::mutex> guard{shared_q->mtx};
          shared_q->batch_retries += 1;
        }
        for (auto& e : *batch)
          send_set(self, facade, std::move(e.pair), std::move(e.on_set));
      });
}

} // namespace

node_bridge::node_bridge(facade_actor facade,
                         std::chrono::steady_clock::duration limit)
    : queue_(std::make_shared<shared_queue>()) {
  auto& sys = facade->home_system();
  auto q = queue_;
  // Deadlines are checked a few times per timeout: a call expires at most a
  // quarter of the timeout late.
  auto tick = std::clamp<std::chrono::steady_clock::duration>(
    limit / 4, std::chrono::milliseconds(10), std::chrono::seconds(1));
  actor_ = sys.spawn([q, facade, limit, tick](bridge_actor* self) {
    self->state.pending = pending_calls{limit};
    auto schedule_tick = [self, tick] {
      if (self->state.tick_scheduled || self->state.pending.size() == 0)
        return;
      self->state.tick_scheduled = true;
      self->delayed_send(self, tick, bridge_tick_atom::value);
    };
    return caf::behavior{
      [=](bridge_wake_atom) {
        std::vector<entry> batch;
        {
          std::lock_guard<std::mutex> guard{q->mtx};
          batch.swap(q->batch);
          q->wake_sent = false;
        }
        // Keep the queue's order: a run of PUTs goes out before the next
        // other call.
        std::vector<entry> sets;
        for (auto& e : batch) {
          if (e.on_set) {
            sets.push_back(std::move(e));
            continue;
          }
          flush_sets(self, facade, sets, *q);
          e.other(self, facade, self->state.pending);
        }
        flush_sets(self, facade, sets, *q);
        schedule_tick();
      },
      [=](bridge_tick_atom) {
        self->state.tick_scheduled = false;
        self->state.pending.sweep(std::chrono::steady_clock::now());
        schedule_tick();
      },
    };
  });
}

node_bridge::~node_bridge() {
  stop();
}

void node_bridge::stop() {
  if (actor_)
    caf::anon_send_exit(actor_, caf::exit_reason::user_shutdown);
}

void node_bridge::set(std::string key, pb::Value value, set_done done) {
  entry e;
  e.pair.set_key(std::move(key));
  e.pair.mutable_value()->Swap(&value);
  e.on_set = std::move(done);
  submit(std::move(e));
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

void node_bridge::subscribe(caf::actor subscriber, bool on,
                            std::function<void(caf::expected<bool>)> done) {
  if (on)
    call_with<bool>(std::move(done), subscribe_atom::value,
                    std::move(subscriber));
  else
    call_with<bool>(std::move(done), unsubscribe_atom::value,
                    std::move(subscriber));
}

uint64_t node_bridge::batched_sets() const {
  std::lock_guard<std::mutex> guard{queue_->mtx};
  return queue_->batched_sets;
}

uint64_t node_bridge::batch_retries() const {
  std::lock_guard<std::mutex> guard{queue_->mtx};
  return queue_->batch_retries;
}

} // namespace syncmesh
