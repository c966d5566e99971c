#pragma once

// Latencies counted in a fixed, small set of buckets: what the store's
// persistence keeps for each engine write and each fsync (issue 15,
// "flush latency histogram"), carried in StorageStats and exported by the
// daemon as a Prometheus histogram. A plain class, no CAF: its bucketing is
// tested directly.

#include <array>
#include <cstddef>
#include <cstdint>

namespace syncmesh {

namespace pb {
class LatencyHistogram;
} // namespace pb

/// Counts of latencies by bucket, with their sum.
class latency_histogram {
public:
  /// Upper bounds of the buckets, microseconds. An fdatasync here takes
  /// ~0.2 ms and an unsynced engine write of a group tens of µs, so the
  /// bounds are finest there; 1 s and beyond is one bucket (a stall).
  static constexpr std::array<std::uint64_t, 14> bounds_us{
    50,    100,   200,   500,    1000,   2000,   5000,
    10000, 20000, 50000, 100000, 200000, 500000, 1000000};

  /// One counter per bound, then one for what lies above every bound.
  static constexpr std::size_t buckets = bounds_us.size() + 1;

  /// Index of the bucket of a latency of `us`: the first whose bound is at
  /// least `us` (a bound is inclusive, as Prometheus's `le`), else the last.
  static std::size_t bucket_of(std::uint64_t us) noexcept;

  /// Counts one latency of `us` microseconds.
  void record(std::uint64_t us) noexcept;

  /// Samples per bucket (not cumulative).
  const std::array<std::uint64_t, buckets>& counts() const noexcept {
    return counts_;
  }

  /// Samples counted.
  std::uint64_t count() const noexcept { return count_; }

  /// Sum of every sample, microseconds.
  std::uint64_t sum_us() const noexcept { return sum_us_; }

  /// Adds every sample of `other` (same bounds).
  void add(const latency_histogram& other) noexcept;

  /// Writes bounds, counts, sum and count into `out` (replacing them).
  void write_to(pb::LatencyHistogram& out) const;

private:
  std::array<std::uint64_t, buckets> counts_{};
  std::uint64_t count_ = 0;
  std::uint64_t sum_us_ = 0;
};

} // namespace syncmesh
