#include "actors/clock_offset.hpp"

#include <algorithm>
#include <cstdio>

namespace syncmesh {

std::optional<clock_sample> clock_sample_from(uint64_t ping_wall_us,
                                              uint64_t peer_wall_us,
                                              uint64_t arrival_us) {
  if (ping_wall_us == 0 || peer_wall_us == 0 || arrival_us < ping_wall_us)
    return std::nullopt;
  clock_sample s;
  s.rtt_us = arrival_us - ping_wall_us;
  // The midpoint without overflow: ping + rtt / 2 (rounded down).
  auto mid = ping_wall_us + s.rtt_us / 2;
  s.offset_us = static_cast<int64_t>(peer_wall_us - mid);
  s.at_us = arrival_us;
  return s;
}

bool clock_estimate::beyond(uint64_t bound_us) const noexcept {
  auto magnitude = offset_us < 0
                     ? uint64_t{0} - static_cast<uint64_t>(offset_us)
                     : static_cast<uint64_t>(offset_us);
  return magnitude > bound_us && magnitude - bound_us > uncertainty_us;
}

offset_estimator::offset_estimator(size_t window)
    : window_(std::max<size_t>(window, 1)) {}

void offset_estimator::add(const clock_sample& s) {
  samples_.push_back(s);
  while (samples_.size() > window_)
    samples_.pop_front();
}

std::optional<clock_estimate> offset_estimator::estimate() const {
  if (samples_.empty())
    return std::nullopt;
  // The lowest RTT; among equal RTTs the newest (the clock may have moved).
  const clock_sample* best = &samples_.front();
  for (const auto& s : samples_)
    if (s.rtt_us <= best->rtt_us)
      best = &s;
  clock_estimate e;
  e.offset_us = best->offset_us;
  e.uncertainty_us = (best->rtt_us + 1) / 2;
  e.at_us = best->at_us;
  return e;
}

clock_fence::clock_fence(uint64_t bound_us) : bound_us_(bound_us) {}

fence_change clock_fence::measured(const raw_node_id& peer,
                                   const clock_estimate& e) {
  std::lock_guard<std::mutex> guard{mtx_};
  auto& x = peers_[peer];
  x.estimate = e;
  x.measured = true;
  x.connected = true;
  x.beyond = e.beyond(bound_us_);
  if (!x.beyond)
    x.refused_us = false;
  return update_locked();
}

fence_change clock_fence::refused(const raw_node_id& peer,
                                  const clock_estimate& e) {
  refused_peers_.fetch_add(1);
  std::lock_guard<std::mutex> guard{mtx_};
  auto& x = peers_[peer];
  x.estimate = e;
  x.measured = true;
  x.beyond = true;
  x.connected = false;
  return update_locked();
}

fence_change clock_fence::refused_by(const raw_node_id& peer) {
  std::lock_guard<std::mutex> guard{mtx_};
  auto& x = peers_[peer];
  x.refused_us = true;
  x.connected = false;
  return update_locked();
}

fence_change clock_fence::closed(const raw_node_id& peer) {
  std::lock_guard<std::mutex> guard{mtx_};
  auto i = peers_.find(peer);
  if (i == peers_.end())
    return fence_change::none;
  i->second.connected = false;
  // A remembered beyond or refusal keeps counting until a measurement
  // within the bound clears it; a plain measurement ends with its link.
  if (!i->second.beyond && !i->second.refused_us)
    peers_.erase(i);
  return update_locked();
}

std::pair<size_t, size_t> clock_fence::tally_locked() const {
  size_t counted = 0;
  size_t beyond = 0;
  for (const auto& [id, x] : peers_) {
    ++counted;
    if (x.beyond || x.refused_us)
      ++beyond;
  }
  return {counted, beyond};
}

fence_change clock_fence::update_locked() {
  auto [counted, beyond] = tally_locked();
  bool now = counted > 0 && beyond * 2 > counted;
  bool before = fenced_.exchange(now, std::memory_order_acq_rel);
  if (now == before)
    return fence_change::none;
  if (now) {
    raised_.fetch_add(1);
    return fence_change::raised;
  }
  return fence_change::lowered;
}

std::string clock_fence::reason() const {
  std::lock_guard<std::mutex> guard{mtx_};
  if (!fenced_.load())
    return {};
  auto [counted, beyond] = tally_locked();
  return "this node's clock is beyond the clock offset bound ("
         + std::to_string(bound_us_ / 1000) + " ms) from "
         + std::to_string(beyond) + " of " + std::to_string(counted)
         + " measured nodes";
}

std::vector<peer_clock> clock_fence::snapshot() const {
  std::lock_guard<std::mutex> guard{mtx_};
  std::vector<peer_clock> out;
  out.reserve(peers_.size());
  for (const auto& [id, x] : peers_)
    out.push_back(
      peer_clock{id, x.estimate, x.measured, x.beyond, x.refused_us});
  return out;
}

std::string describe_offset(const clock_estimate& e) {
  char buf[96];
  std::snprintf(buf, sizeof(buf), "%+.1f ms ± %.1f ms",
                static_cast<double>(e.offset_us) / 1000.0,
                static_cast<double>(e.uncertainty_us) / 1000.0);
  return buf;
}

} // namespace syncmesh
