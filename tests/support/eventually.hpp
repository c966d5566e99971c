#pragma once

#include <chrono>
#include <thread>

namespace syncmesh::test {

/// Polls `pred` until it holds or `limit` passes; returns its last value.
template <class Predicate>
bool eventually(Predicate pred,
                std::chrono::milliseconds limit = std::chrono::seconds(10)) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred())
      return true;
    std::this_thread::yield();
  }
  return pred();
}

} // namespace syncmesh::test
