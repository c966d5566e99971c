#pragma once

#include <algorithm>
#include <chrono>
#include <thread>

namespace syncmesh::test {

/// Polls `pred` until it holds or `limit` passes; returns its last value.
/// Sleeps between polls (1 ms, doubling up to 20 ms) so that a waiting test
/// leaves the CPU to the actors it waits for: spinning with yield() starved
/// them on a loaded machine. The last poll runs at or after the deadline, so a
/// condition that became true while we slept is still seen.
template <class Predicate>
bool eventually(Predicate pred,
                std::chrono::milliseconds limit = std::chrono::seconds(10)) {
  using clock = std::chrono::steady_clock;
  auto deadline = clock::now() + limit;
  auto pause = std::chrono::milliseconds(1);
  constexpr auto max_pause = std::chrono::milliseconds(20);
  for (;;) {
    if (pred())
      return true;
    auto now = clock::now();
    if (now >= deadline)
      return false;
    auto left
      = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now);
    std::this_thread::sleep_for(
      std::max(std::chrono::milliseconds(1), std::min(pause, left)));
    pause = std::min(pause * 2, max_pause);
  }
}

} // namespace syncmesh::test
