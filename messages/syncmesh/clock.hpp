#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>

namespace syncmesh {

/// A wall clock: microseconds since the Unix epoch. Every rule that needs
/// wall time (HLC stamps, lease ends, tombstone purge) reads one of these, so
/// tests and simulators control time. Must be callable from any thread.
using wall_clock = std::function<uint64_t()>;

/// The system's real-time clock.
inline wall_clock system_wall_clock() {
  return [] {
    using namespace std::chrono;
    return static_cast<uint64_t>(
      duration_cast<microseconds>(system_clock::now().time_since_epoch())
        .count());
  };
}

/// A clock that only moves when told to; copies share one time.
class manual_clock {
public:
  /// Starts at `start_us` microseconds since the epoch.
  explicit manual_clock(uint64_t start_us = 1'700'000'000'000'000)
      : now_(std::make_shared<std::atomic<uint64_t>>(start_us)) {}

  /// The current time.
  uint64_t now() const noexcept { return now_->load(); }
  /// Moves the time forward.
  void advance(std::chrono::microseconds d) noexcept {
    now_->fetch_add(static_cast<uint64_t>(d.count()));
  }
  /// Sets the time.
  void set(uint64_t us) noexcept { now_->store(us); }
  /// A wall_clock reading this clock.
  wall_clock as_wall_clock() const {
    auto ptr = now_;
    return [ptr] {
      return ptr->load();
    };
  }

private:
  std::shared_ptr<std::atomic<uint64_t>> now_;
};

} // namespace syncmesh
