#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "messages/version.hpp"

namespace syncmesh {

// Clock discipline between nodes (README, "Clocks"). Every ping carries the
// pinger's wall clock t1, every pong echoes it with the responder's wall
// clock t2, and the pinger reads its wall clock t4 when the pong arrives.
// Assuming the pong's stamp was taken halfway through the round trip, the
// peer's clock minus ours is t2 - (t1 + t4) / 2, wrong by at most half the
// round trip (t4 - t1) / 2: the uncertainty. Queueing delays only add to the
// RTT, so the sample with the lowest RTT among the recent ones is the most
// exact; that is the estimate. A peer is beyond a bound B when even the most
// favourable reading of the estimate exceeds it: |offset| - uncertainty > B.

/// One NTP-style measurement of a peer's clock.
struct clock_sample {
  /// The peer's wall clock minus ours (µs).
  int64_t offset_us = 0;
  /// Round trip of the ping/pong it comes from (µs).
  uint64_t rtt_us = 0;
  /// Our wall clock when it was taken (µs).
  uint64_t at_us = 0;
};

/// The sample of one ping/pong exchange: our wall clock when the ping left
/// (`ping_wall_us`), the peer's when it answered (`peer_wall_us`) and ours
/// when the pong arrived (`arrival_us`). nullopt when a time is missing (0:
/// an older peer) or our clock went backwards during the round trip.
std::optional<clock_sample> clock_sample_from(uint64_t ping_wall_us,
                                              uint64_t peer_wall_us,
                                              uint64_t arrival_us);

/// What the recent samples of one peer say.
struct clock_estimate {
  /// The peer's wall clock minus ours (µs).
  int64_t offset_us = 0;
  /// Half the RTT of the sample the offset comes from (µs).
  uint64_t uncertainty_us = 0;
  /// When that sample was taken (our wall clock, µs).
  uint64_t at_us = 0;

  /// The offset exceeds `bound_us` even at the favourable end of its
  /// uncertainty.
  bool beyond(uint64_t bound_us) const noexcept;
};

/// Keeps the recent samples of one peer (a sliding window) and estimates its
/// offset from the lowest-RTT one. A plain class: the peer link owns one.
class offset_estimator {
public:
  /// Keeps the newest `window` samples (at least 1): with 1 s heartbeats a
  /// clock step shows in the estimate after at most `window` seconds.
  explicit offset_estimator(size_t window = 8);

  /// Adds a sample, evicting the oldest beyond the window.
  void add(const clock_sample& s);

  /// The estimate, or nullopt before the first sample.
  std::optional<clock_estimate> estimate() const;

  /// Number of samples held.
  size_t size() const noexcept { return samples_.size(); }

private:
  size_t window_;
  std::deque<clock_sample> samples_;
};

/// A change of the clock fence reported by clock_fence's updates.
enum class fence_change : uint8_t {
  /// Unchanged.
  none,
  /// The node just became beyond the bound from a majority: local writes
  /// are refused from now on.
  raised,
  /// The node is back within the bound: local writes are accepted again.
  lowered,
};

/// What one peer's clock looks like to this node (for /v1/status).
struct peer_clock {
  /// The peer.
  raw_node_id peer;
  /// The latest estimate (zero when only a refusal is known).
  clock_estimate estimate;
  /// Whether `estimate` holds a measurement.
  bool measured = false;
  /// The estimate is beyond the bound (the link was refused or cut).
  bool beyond = false;
  /// The peer refused us for our clock (Goodbye CLOCK_OFFSET) and has not
  /// been measured within the bound since.
  bool refused_us = false;
};

/// The node's self-fence, shared (thread-safe) by the peer links that feed
/// it and the store that consults it on every local write.
///
/// It counts the nodes this node can measure: every connected peer with an
/// estimate, plus every peer found beyond the bound (by our measurement or
/// its CLOCK_OFFSET refusal of us). Those stay counted after their link is
/// closed, until a later handshake measures them within the bound, so a
/// node every peer disconnected for its clock stays fenced instead of
/// writing alone. The fence is up while strictly more than half of the
/// counted nodes are beyond the bound. In a two-node mesh whose clocks
/// differ by more than the bound, each node counts one peer, beyond, so
/// BOTH fence: neither can tell whose clock is wrong, and refusing writes
/// on both sides is the only choice that cannot lose acknowledged writes.
/// A third node within the bound of one of them gives that one a majority
/// within (1 of 2 beyond), which then writes again.
class clock_fence {
public:
  /// A fence for the bound `bound_us` (config::max_clock_offset).
  explicit clock_fence(uint64_t bound_us);

  /// The bound (µs).
  uint64_t bound_us() const noexcept { return bound_us_; }

  /// A link measured `peer` (a new estimate, within the bound or not). A
  /// measurement within the bound clears a remembered refusal.
  fence_change measured(const raw_node_id& peer, const clock_estimate& e);

  /// We refused or cut `peer` for its clock (estimate `e`): remembered
  /// until it is measured within the bound again.
  fence_change refused(const raw_node_id& peer, const clock_estimate& e);

  /// `peer` refused us for our clock (Goodbye CLOCK_OFFSET): remembered
  /// like refused().
  fence_change refused_by(const raw_node_id& peer);

  /// The link to `peer` closed for another reason: its measurement no
  /// longer counts, unless it is a remembered beyond/refusal.
  fence_change closed(const raw_node_id& peer);

  /// True while local writes must be refused (lock-free: the store asks on
  /// every local write).
  bool fenced() const noexcept {
    return fenced_.load(std::memory_order_acquire);
  }

  /// Why the fence is up (or "" when it is down), e.g. "clock beyond 500 ms
  /// from 2 of 2 measured nodes".
  std::string reason() const;

  /// Every peer counted, ordered by ID.
  std::vector<peer_clock> snapshot() const;

  /// Counted local writes refused by the fence.
  void count_refused_write() noexcept { refused_writes_.fetch_add(1); }

  /// Local writes refused by the fence.
  uint64_t refused_writes() const noexcept { return refused_writes_.load(); }

  /// Links refused or cut for a peer's clock.
  uint64_t refused_peers() const noexcept { return refused_peers_.load(); }

  /// Times the fence went up.
  uint64_t times_raised() const noexcept { return raised_.load(); }

private:
  struct entry {
    clock_estimate estimate;
    bool measured = false;
    bool beyond = false;
    bool refused_us = false;
    bool connected = false;
  };

  /// Recomputes the fence; called with mtx_ held.
  fence_change update_locked();

  /// Counted and beyond nodes; called with mtx_ held.
  std::pair<size_t, size_t> tally_locked() const;

  uint64_t bound_us_;
  mutable std::mutex mtx_;
  std::map<raw_node_id, entry> peers_;
  std::atomic<bool> fenced_{false};
  std::atomic<uint64_t> refused_writes_{0};
  std::atomic<uint64_t> refused_peers_{0};
  std::atomic<uint64_t> raised_{0};
};

/// "+2000.1 ms ± 0.3 ms": an estimate for logs and goodbye details.
std::string describe_offset(const clock_estimate& e);

} // namespace syncmesh
