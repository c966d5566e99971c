#include "actors/handshake_budget.hpp"

#include <algorithm>

namespace syncmesh {

uint64_t handshake_budget::enter(caf::actor_addr holder) {
  std::lock_guard<std::mutex> guard{mtx_};
  auto ticket = next_ticket_++;
  entries_[ticket].holder = std::move(holder);
  return ticket;
}

std::vector<handshake_budget::eviction> handshake_budget::hold(uint64_t ticket,
                                                               size_t bytes) {
  std::vector<eviction> result;
  std::lock_guard<std::mutex> guard{mtx_};
  auto self = entries_.find(ticket);
  if (self == entries_.end()) {
    // Evicted before it learned so: it must drop now.
    result.push_back(eviction{ticket, caf::actor_addr{}});
    return result;
  }
  total_ = total_ - self->second.bytes + bytes;
  self->second.bytes = bytes;
  while (total_ > cap_ && !entries_.empty()) {
    // The largest holder; among equals the newest (the larger ticket).
    auto victim = entries_.begin();
    for (auto i = entries_.begin(); i != entries_.end(); ++i)
      if (i->second.bytes >= victim->second.bytes)
        victim = i;
    total_ -= victim->second.bytes;
    ++evictions_;
    result.push_back(eviction{victim->first, victim->second.holder});
    entries_.erase(victim);
  }
  peak_ = std::max(peak_, total_);
  return result;
}

void handshake_budget::leave(uint64_t ticket) {
  std::lock_guard<std::mutex> guard{mtx_};
  auto i = entries_.find(ticket);
  if (i == entries_.end())
    return;
  total_ -= i->second.bytes;
  entries_.erase(i);
}

size_t handshake_budget::total() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return total_;
}

size_t handshake_budget::peak() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return peak_;
}

size_t handshake_budget::pending() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return entries_.size();
}

uint64_t handshake_budget::evictions() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return evictions_;
}

} // namespace syncmesh
