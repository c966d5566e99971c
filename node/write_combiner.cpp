#include "node/write_combiner.hpp"

#include <exception>
#include <string>
#include <utility>

#include <caf/error.hpp>
#include <caf/sec.hpp>
#include <caf/type_erased_tuple.hpp>

#include "actors/node_error_proto.hpp"
#include "node/facade_requester.hpp"
#include "syncmesh/errors.hpp"

namespace syncmesh {

namespace {

std::exception_ptr closed_error() {
  return std::make_exception_ptr(
    error(errc::closed, "the sync_socket is closed"));
}

} // namespace

/// The reply to one batch: tells the combiner, so that the writes queued
/// behind it go out at once, then completes each write's promise, in order
/// (a caller that saw its last write done finds the batch gone).
class write_combiner::batch_call final : public pending_call {
public:
  batch_call(std::shared_ptr<write_combiner> owner,
             std::vector<std::promise<void>> writes)
      : owner_(std::move(owner)), writes_(std::move(writes)) {}

  void complete(caf::type_erased_tuple& content) override {
    owner_->batch_done(writes_.size());
    auto& sys = owner_->sys_;
    if (content.match_elements<pb::SetManyReply>()) {
      const auto& reply = content.get_as<pb::SetManyReply>(0);
      for (size_t i = 0; i < writes_.size(); ++i) {
        auto n = static_cast<int>(i);
        if (n >= reply.outcomes_size())
          writes_[i].set_exception(std::make_exception_ptr(
            error(errc::malformed,
                  "the node answered " + std::to_string(reply.outcomes_size())
                    + " of a batch of " + std::to_string(writes_.size())
                    + " writes")));
        else if (reply.outcomes(n).has_error())
          writes_[i].set_exception(
            node_exception(sys, from_proto(reply.outcomes(n).error())));
        else
          writes_[i].set_value();
      }
    } else {
      auto err = content.match_elements<caf::error>()
                   ? content.get_as<caf::error>(0)
                   : caf::make_error(caf::sec::unexpected_response);
      auto why = node_exception(sys, err);
      for (auto& w : writes_)
        w.set_exception(why);
    }
  }

  void fail(std::exception_ptr why) override {
    owner_->batch_done(writes_.size());
    for (auto& w : writes_)
      w.set_exception(why);
  }

private:
  std::shared_ptr<write_combiner> owner_;
  std::vector<std::promise<void>> writes_;
};

std::shared_ptr<write_combiner> write_combiner::make(caf::actor_system& sys,
                                                     send_function send,
                                                     limits bounds) {
  return std::shared_ptr<write_combiner>(
    new write_combiner(sys, std::move(send), bounds));
}

write_combiner::write_combiner(caf::actor_system& sys, send_function send,
                               limits bounds)
    : sys_(sys), send_(std::move(send)), bounds_(bounds) {
  if (bounds_.max_items == 0)
    bounds_.max_items = 1;
}

std::future<void> write_combiner::submit(pb::KeyValue item) {
  std::promise<void> done;
  auto result = done.get_future();
  auto bytes = item.key().size() + item.value().ByteSizeLong();
  std::lock_guard<std::recursive_mutex> guard{mtx_};
  if (closed_) {
    done.set_exception(closed_error());
    return result;
  }
  queue_.push_back(queued_write{std::move(item), std::move(done)});
  queued_bytes_ += bytes;
  // Nothing in flight: nothing to wait for. A full queue goes out now
  // (another batch in flight) rather than grow.
  if (batches_in_flight_ == 0 || queue_.size() >= bounds_.max_items
      || queued_bytes_ >= bounds_.max_bytes)
    send_queue_locked();
  return result;
}

void write_combiner::flush() {
  std::lock_guard<std::recursive_mutex> guard{mtx_};
  if (!queue_.empty())
    send_queue_locked();
}

void write_combiner::close() {
  std::vector<queued_write> orphans;
  {
    std::lock_guard<std::recursive_mutex> guard{mtx_};
    closed_ = true;
    orphans.swap(queue_);
    queued_bytes_ = 0;
  }
  auto why = closed_error();
  for (auto& w : orphans)
    w.done.set_exception(why);
}

size_t write_combiner::writes_pending() const {
  std::lock_guard<std::recursive_mutex> guard{mtx_};
  return queue_.size() + writes_in_flight_;
}

size_t write_combiner::batches_in_flight() const {
  std::lock_guard<std::recursive_mutex> guard{mtx_};
  return batches_in_flight_;
}

void write_combiner::batch_done(size_t writes) {
  std::lock_guard<std::recursive_mutex> guard{mtx_};
  --batches_in_flight_;
  writes_in_flight_ -= writes;
  if (!queue_.empty() && batches_in_flight_ == 0 && !closed_)
    send_queue_locked();
}

void write_combiner::send_queue_locked() {
  pb::SetManyRequest req;
  std::vector<std::promise<void>> writes;
  writes.reserve(queue_.size());
  req.mutable_items()->Reserve(static_cast<int>(queue_.size()));
  for (auto& w : queue_) {
    req.mutable_items()->Add()->Swap(&w.item);
    writes.push_back(std::move(w.done));
  }
  queue_.clear();
  queued_bytes_ = 0;
  auto count = writes.size();
  auto call
    = std::make_shared<batch_call>(shared_from_this(), std::move(writes));
  ++batches_in_flight_;
  writes_in_flight_ += count;
  // Still under the lock: a batch that another thread sends next cannot
  // reach the facade before this one.
  if (!send_(std::move(req), call))
    call->fail(closed_error());
}

} // namespace syncmesh
