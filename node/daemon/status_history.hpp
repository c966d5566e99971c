#pragma once

// The recent history the status page charts: one sample a second (by
// default) of the node's counters, kept for the last few minutes in a ring
// buffer of fixed capacity. The sampler (owned by the HTTP API) reads the
// node's cumulative counters and hands them to `record`, which turns them
// into per-interval rates; the page reads `samples`. Plain class, no actor,
// no protobuf: the rules (deltas, counter resets, lag per interval, the
// bound) are tested directly.

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <vector>

namespace syncmesh {

/// The node's cumulative counters at one instant (what `record` needs).
struct status_counters {
  /// Local writes applied since start.
  uint64_t local_applied = 0;
  /// Remote writes applied since start.
  uint64_t remote_applied = 0;
  /// Bytes received on peer links since start (all kinds).
  uint64_t bytes_in = 0;
  /// Bytes sent on peer links since start (all kinds).
  uint64_t bytes_out = 0;
  /// Live keys now (a gauge).
  uint64_t live_keys = 0;
  /// Tombstones held now (a gauge).
  uint64_t tombstones = 0;
  /// Sum of the delays (s) from a remote write's stamp to its application.
  double delay_sum = 0;
  /// How many delays `delay_sum` adds up.
  uint64_t delay_count = 0;
  /// Upper bounds (s) of the delay histogram's buckets (ascending).
  std::vector<double> delay_bounds;
  /// Cumulative-free counts per bucket (one more than the bounds: +Inf).
  std::vector<uint64_t> delay_counts;
};

/// One interval of the history.
struct status_sample {
  /// End of the interval, ms since the Unix epoch.
  uint64_t time_ms = 0;
  /// Local writes applied in the interval.
  uint64_t local_writes = 0;
  /// Remote writes applied in the interval.
  uint64_t remote_writes = 0;
  /// Bytes received / sent on peer links in the interval.
  uint64_t bytes_in = 0;
  uint64_t bytes_out = 0;
  /// Gauges at the end of the interval.
  uint64_t live_keys = 0;
  uint64_t tombstones = 0;
  /// Mean replication lag (s) of the remote writes applied in the
  /// interval; 0 when none was.
  double lag_avg_s = 0;
  /// Upper bound (s) of the highest histogram bucket that gained a write
  /// in the interval (the largest lag, to the histogram's resolution); the
  /// last finite bound when the +Inf bucket gained one; 0 when none did.
  double lag_max_s = 0;
};

/// A bounded, thread-safe history of `status_sample`s (see file comment).
class status_history {
public:
  /// Keeps at most `capacity` samples (300: 5 minutes at 1 s); at least 1.
  explicit status_history(size_t capacity = 300);

  /// Adds the interval ending at `time_ms` with counters `now`. The first
  /// call only remembers `now` (no interval yet). A counter that went
  /// backwards (a restart of its source) counts from zero again.
  void record(uint64_t time_ms, const status_counters& now);

  /// The samples, oldest first; only those with `time_ms > since_ms`.
  std::vector<status_sample> samples(uint64_t since_ms = 0) const;

  /// The most samples kept.
  size_t capacity() const noexcept { return capacity_; }

  /// Samples overwritten because the buffer was full (the window moving on).
  uint64_t evicted() const;

private:
  const size_t capacity_;
  mutable std::mutex mtx_;
  std::vector<status_sample> ring_;
  size_t next_ = 0;
  uint64_t evicted_ = 0;
  bool have_previous_ = false;
  status_counters previous_;
};

} // namespace syncmesh
