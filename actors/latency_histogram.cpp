#include "actors/latency_histogram.hpp"

#include <algorithm>

#include "syncmesh/pb/requests.pb.h"

namespace syncmesh {

std::size_t latency_histogram::bucket_of(std::uint64_t us) noexcept {
  auto it = std::lower_bound(bounds_us.begin(), bounds_us.end(), us);
  return static_cast<std::size_t>(it - bounds_us.begin());
}

void latency_histogram::record(std::uint64_t us) noexcept {
  ++counts_[bucket_of(us)];
  ++count_;
  sum_us_ += us;
}

void latency_histogram::add(const latency_histogram& other) noexcept {
  for (std::size_t i = 0; i < buckets; ++i)
    counts_[i] += other.counts_[i];
  count_ += other.count_;
  sum_us_ += other.sum_us_;
}

void latency_histogram::write_to(pb::LatencyHistogram& out) const {
  out.Clear();
  for (auto bound : bounds_us)
    out.add_bounds_us(bound);
  for (auto n : counts_)
    out.add_counts(n);
  out.set_sum_us(sum_us_);
  out.set_count(count_);
}

} // namespace syncmesh
