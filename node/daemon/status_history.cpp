#include "node/daemon/status_history.hpp"

#include <algorithm>

namespace syncmesh {

namespace {

/// `now - before`, or `now` when the counter went backwards (its source
/// restarted and counts from zero again).
uint64_t delta(uint64_t now, uint64_t before) {
  return now >= before ? now - before : now;
}

/// The lag figures of the remote writes applied between `a` and `b`.
void lag_between(const status_counters& a, const status_counters& b,
                 status_sample& out) {
  if (b.delay_count < a.delay_count || b.delay_sum < a.delay_sum)
    return; // reset in between: no honest figure for this interval
  auto n = b.delay_count - a.delay_count;
  if (n == 0)
    return;
  out.lag_avg_s = (b.delay_sum - a.delay_sum) / static_cast<double>(n);
  // The highest bucket that gained a write bounds the largest lag.
  const auto& bounds = b.delay_bounds;
  for (size_t i = b.delay_counts.size(); i-- > 0;) {
    uint64_t before = i < a.delay_counts.size() ? a.delay_counts[i] : 0;
    if (b.delay_counts[i] > before) {
      if (i < bounds.size())
        out.lag_max_s = bounds[i];
      else if (!bounds.empty())
        out.lag_max_s = std::max(bounds.back(), out.lag_avg_s);
      else
        out.lag_max_s = out.lag_avg_s;
      break;
    }
  }
}

} // namespace

status_history::status_history(size_t capacity)
    : capacity_(std::max<size_t>(capacity, 1)) {
  ring_.reserve(capacity_);
}

void status_history::record(uint64_t time_ms, const status_counters& now) {
  std::lock_guard<std::mutex> guard{mtx_};
  if (!have_previous_) {
    previous_ = now;
    have_previous_ = true;
    return;
  }
  status_sample s;
  s.time_ms = time_ms;
  s.local_writes = delta(now.local_applied, previous_.local_applied);
  s.remote_writes = delta(now.remote_applied, previous_.remote_applied);
  s.bytes_in = delta(now.bytes_in, previous_.bytes_in);
  s.bytes_out = delta(now.bytes_out, previous_.bytes_out);
  s.live_keys = now.live_keys;
  s.tombstones = now.tombstones;
  lag_between(previous_, now, s);
  previous_ = now;
  if (ring_.size() < capacity_) {
    ring_.push_back(s);
    return;
  }
  ring_[next_] = s;
  next_ = (next_ + 1) % capacity_;
  ++evicted_;
}

std::vector<status_sample> status_history::samples(uint64_t since_ms) const {
  std::lock_guard<std::mutex> guard{mtx_};
  std::vector<status_sample> out;
  out.reserve(ring_.size());
  // Once full, `next_` is the oldest slot.
  for (size_t i = 0; i < ring_.size(); ++i) {
    const auto& s = ring_[(next_ + i) % ring_.size()];
    if (s.time_ms > since_ms)
      out.push_back(s);
  }
  return out;
}

uint64_t status_history::evicted() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return evicted_;
}

} // namespace syncmesh
