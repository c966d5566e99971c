#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <unordered_map>
#include <vector>

#include "actors/entry_head.hpp"

namespace syncmesh {

namespace pb {
class WriteRecord;
} // namespace pb

/// The lease settings every decision uses.
struct lease_settings {
  /// Leases on (py2p's default) or off (newest write wins).
  bool leasing = true;
  /// How long a write's lease lasts.
  uint64_t duration_us = 3'600'000'000;
  /// Clock-offset margin: owners renew only until `end - margin`, others
  /// claim only from `end + margin`.
  uint64_t margin_us = 1'000'000;
};

/// What a local write may do, decided before it is stamped.
struct local_decision {
  /// The write may happen.
  bool allowed = false;
  /// When refused: the key is absent (delete or pop of a missing key).
  bool missing = false;
  /// When refused for a lease: who holds it and until when.
  node_id owner;
  /// When refused for a lease: when it ends (µs).
  uint64_t lease_end_us = 0;
  /// When allowed: the version to stamp (all but the stamp filled in).
  version draft;
};

/// Decides whether `self` may write (or delete) a key whose bookkeeping is
/// `head` (nullptr when unknown) at wall time `now_us`: the seed's lease
/// rules as pure logic.
local_decision decide_local_write(const entry_head* head, const node_id& self,
                                  uint64_t now_us, const lease_settings& cfg,
                                  bool is_delete);

/// A lease this node held that a remote write took over.
struct lease_loss {
  /// The key.
  std::string key;
  /// The new owner.
  node_id new_owner;
  /// When the lost lease would have ended.
  uint64_t old_lease_end_us = 0;
};

/// The lease manager's rules: the version bookkeeping of every key (the
/// lease view), the hybrid clock, local decisions, and detection of lost
/// leases. Every write that reaches the node passes through `observe` in
/// arrival order, so the view always matches the store.
class lease_table {
public:
  /// Rules for an unnamed node on the system clock (replace before use).
  lease_table() : lease_table({}, system_wall_clock(), {}, 0) {}

  /// Rules for node `self`.
  lease_table(node_id self, wall_clock wall, lease_settings cfg,
              uint64_t max_skew_us);

  /// Decides a local write to `key` at the current wall time.
  local_decision decide(const std::string& key, bool is_delete) const;

  /// Stamps an allowed draft with a fresh HLC stamp and, with leasing on, the
  /// lease end; the result is newer than everything this node has seen.
  version stamp(version draft, bool is_delete);

  /// Records a write (local or remote) in the view. Returns the lost lease
  /// when this write took over a lease held by this node before it ended.
  std::optional<lease_loss> observe(const pb::WriteRecord& rec,
                                    const version& v);

  /// True when the stamp is within the clock skew bound (else hold it).
  bool acceptable(const hlc_stamp& s) const { return clock_.acceptable(s); }

  /// Never stamps at or below `wall_us` (a restarted node's high-water mark).
  void raise_clock_floor(uint64_t wall_us) { clock_.raise_floor(wall_us); }

  /// Advances the clock past an accepted remote stamp.
  void observe_stamp(const hlc_stamp& s) { clock_.observe(s); }

  /// Keys whose tombstones are older than `horizon_us`; removes them from
  /// the view (the caller purges them from the store too).
  std::vector<std::string> purge_tombstones(uint64_t horizon_us);

  /// Number of tombstones in the view.
  size_t tombstone_count() const noexcept;

  /// A key this node may delete now, or nullptr when none.
  const std::string* deletable_key() const;

  /// The bookkeeping of `key`, or nullptr.
  const entry_head* find(const std::string& key) const;

  /// The current wall time.
  uint64_t now_us() const { return clock_.wall_us(); }

  /// This node's ID.
  const node_id& self() const noexcept { return clock_.self(); }

  /// The settings.
  const lease_settings& settings() const noexcept { return cfg_; }

  /// The clock.
  const hybrid_clock& clock() const noexcept { return clock_; }

private:
  hybrid_clock clock_;
  lease_settings cfg_;
  std::unordered_map<std::string, entry_head> heads_;
};

} // namespace syncmesh
