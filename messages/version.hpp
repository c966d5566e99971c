#pragma once

#include <cstdint>
#include <string>

#include "syncmesh/clock.hpp"
#include "syncmesh/node_id.hpp"

namespace syncmesh {

namespace pb {
class Hlc;
class Version;
} // namespace pb

/// A node's ID inside the node: its raw bytes, compared bytewise. The
/// public API wraps them in `syncmesh::node_id`; the rules, the store and
/// the wire keep the plain string (protobuf fields, interned tables).
using raw_node_id = std::string;

/// Largest accepted node ID, in bytes (py2p ids are 65-66 base58 chars).
inline constexpr size_t max_node_id_size = node_id::max_size;

/// Renders bytes as lowercase hex (node IDs in messages and logs), as
/// `node_id::to_hex` does.
std::string to_hex(const std::string& bytes);

/// A hybrid logical clock stamp; ordered by wall time, counter, node.
struct hlc_stamp {
  /// Wall microseconds since the Unix epoch.
  uint64_t wall_us = 0;
  /// Orders events within one microsecond.
  uint32_t counter = 0;
  /// The node that made the stamp: makes every stamp unique.
  raw_node_id node;
};

/// Three-way comparison of stamps.
int compare(const hlc_stamp& x, const hlc_stamp& y) noexcept;

/// The version of one write. See `compare(const version&, const version&)`.
struct version {
  /// Lease epoch: a claim after the previous lease ended starts a new one,
  /// numbered by its claim time (or the previous epoch + 1 when higher), so a
  /// later claim wins even where the earlier one was never seen.
  uint64_t epoch = 0;
  /// When the claimer claimed this epoch (µs); earlier claims win.
  uint64_t claim_us = 0;
  /// The node that claimed the epoch: the lease owner. Empty with leasing off.
  raw_node_id claimer;
  /// When this write happened.
  hlc_stamp stamp;
  /// When the lease carried by this write ends (µs); 0 for none.
  uint64_t lease_end_us = 0;
};

/// Largest wall, claim and stamp time (µs) a version may carry (~146,000
/// years): a time plus any valid lease duration stays far from overflow.
inline constexpr uint64_t max_version_time_us = uint64_t{1} << 62;

/// Largest epoch a version may carry: 2^40 claims of headroom below 2^64,
/// so `epoch + 1` never overflows and no key runs out of epochs in practice.
inline constexpr uint64_t max_epoch = UINT64_MAX - (uint64_t{1} << 40);

/// The lease end every replica keeps for a version: no later than the
/// version's own wall stamp + `max_lease_us`, so no record can lock a key
/// for longer, and all replicas (which share `max_lease_us`) agree.
inline uint64_t clamped_lease_end(const version& v,
                                  uint64_t max_lease_us) noexcept {
  // Stamps are below 2^62 and max_lease_us is validated far below 2^63.
  const auto limit = v.stamp.wall_us + max_lease_us;
  return v.lease_end_us < limit ? v.lease_end_us : limit;
}

/// Three-way comparison; positive when `x` wins over `y`. Higher epoch wins;
/// within an epoch the earlier claim wins (smaller claim time, then smaller
/// claimer ID); then the higher stamp wins. `lease_end_us` is not compared.
int compare(const version& x, const version& y) noexcept;

/// True when both versions belong to the same claim (epoch and claimer).
bool same_claim(const version& x, const version& y) noexcept;

/// True when `x` wins over `y`.
inline bool newer(const version& x, const version& y) noexcept {
  return compare(x, y) > 0;
}

/// Writes a stamp into its protobuf form.
void to_proto(const hlc_stamp& x, pb::Hlc* out);

/// Writes a version into its protobuf form.
void to_proto(const version& x, pb::Version* out);

/// Reads a version from untrusted protobuf; returns an explanation on
/// failure (empty string on success). Times above `max_version_time_us`
/// and epochs above `max_epoch` are refused: arithmetic on them (epoch + 1,
/// stamp + lease) could overflow. Lease ends are kept as sent (they are
/// clamped when merged, see `clamped_lease_end`).
std::string from_proto(const pb::Version& x, version& out);

/// The hybrid logical clock of one node. Its stamps are unique, strictly
/// increase, and never run more than `max_skew_us` ahead of the wall clock.
class hybrid_clock {
public:
  /// Stamps for `self`, reading `wall`.
  hybrid_clock(raw_node_id self, wall_clock wall, uint64_t max_skew_us);

  /// A new stamp, later than every stamp made or observed so far.
  hlc_stamp next();

  /// Takes a remote stamp into account. Returns false, and changes nothing,
  /// when the stamp is more than the allowed skew ahead of the wall clock:
  /// the caller holds such a write until the wall clock catches up.
  bool observe(const hlc_stamp& remote);

  /// True when `remote` is within the allowed skew now.
  bool acceptable(const hlc_stamp& remote) const;

  /// The wall clock's time.
  uint64_t wall_us() const { return wall_(); }

  /// Makes every later stamp exceed `wall_us`: a restarted node resumes
  /// above the high-water mark it persisted, even if the wall clock went back.
  void raise_floor(uint64_t wall_us) {
    if (wall_us > last_.wall_us) {
      last_.wall_us = wall_us;
      last_.counter = 0;
    }
  }

  /// The highest stamp made or observed (for persistence and hello).
  const hlc_stamp& high_water() const noexcept { return last_; }

  /// The clock's node.
  const raw_node_id& self() const noexcept { return last_.node; }

  /// The maximum skew in microseconds.
  uint64_t max_skew_us() const noexcept { return max_skew_us_; }

private:
  wall_clock wall_;
  uint64_t max_skew_us_;
  hlc_stamp last_;
};

} // namespace syncmesh
