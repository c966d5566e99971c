#include "actors/wal_syncer.hpp"

#include <chrono>

namespace syncmesh {

wal_syncer::wal_syncer(std::shared_ptr<entry_storage> storage, done_fn done)
    : storage_(std::move(storage)), done_(std::move(done)) {
  thread_ = std::thread{[this] {
    run();
  }};
}

wal_syncer::~wal_syncer() {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

uint64_t wal_syncer::request() {
  uint64_t ticket = 0;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    ticket = ++requested_;
  }
  cv_.notify_all();
  return ticket;
}

uint64_t wal_syncer::syncs() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return syncs_;
}

latency_histogram wal_syncer::latency() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return latency_;
}

void wal_syncer::run() {
  std::unique_lock<std::mutex> lock{mtx_};
  for (;;) {
    cv_.wait(lock, [&] { return stop_ || (requested_ > synced_ && !failed_); });
    if (requested_ <= synced_ || failed_)
      return; // stopping with nothing left to sync
    // Every write before the request of `target` is in the storage, so one
    // sync from here covers them all.
    auto target = requested_;
    lock.unlock();
    std::string error;
    auto start = std::chrono::steady_clock::now();
    try {
      storage_->sync();
    } catch (const std::exception& e) {
      error = e.what();
    }
    auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                std::chrono::steady_clock::now() - start)
                .count();
    lock.lock();
    if (error.empty()) {
      synced_ = target;
      ++syncs_;
      latency_.record(static_cast<uint64_t>(us));
    } else {
      failed_ = true;
    }
    lock.unlock();
    done_(target, error);
    lock.lock();
  }
}

} // namespace syncmesh
