#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "actors/entry_head.hpp"
#include "actors/store_state.hpp"

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
  /// py2p mode: local writes are decided with py2p's rule (py2p_decide) and
  /// every version is a py2p_successor of the key's newest one.
  bool py2p = false;
  /// Longest lease any record keeps, mesh-wide: lease ends are clamped to
  /// the record's stamp + this when made and when merged.
  uint64_t max_duration_us = 86'400'000'000;
};

/// What a local write may do, decided before it is stamped.
struct local_decision {
  /// The write may happen.
  bool allowed = false;
  /// When refused: the key is absent (delete or pop of a missing key).
  bool missing = false;
  /// When refused for a lease: who holds it and until when.
  raw_node_id owner;
  /// When refused for a lease: when it ends (µs).
  uint64_t lease_end_us = 0;
  /// When allowed: the version to stamp (all but the stamp filled in).
  version draft;
};

/// Decides whether `self` may write (or delete) a key whose bookkeeping is
/// `head` (nullptr when unknown; its IDs interned in `ids`) at wall time
/// `now_us`: the seed's lease rules as pure logic.
local_decision decide_local_write(const entry_head* head,
                                  const node_id_table& ids,
                                  const raw_node_id& self, uint64_t now_us,
                                  const lease_settings& cfg, bool is_delete);

// -- py2p mode ----------------------------------------------------------------
//
// py2p/js2p keep (owner, whole-second timestamp) per key and accept a write
// iff (1) the key has no metadata, (2) same owner, (3) a delta with leasing
// off, (4) the metadata is older than 3600 s by the receiver's clock, (5)
// same second and the new owner is smaller, or (6) a newer second with
// leasing off. That decision depends on arrival order, so it cannot be a
// version order; in py2p mode the lease manager therefore decides each write
// with this rule when it arrives, and an accepted write gets a version that
// beats the key's newest one (py2p_successor), so the store, which merges by
// version, applies it. Mapping:
// - py2p -> syncmesh: owner = claimer = stamp node; timestamp t -> stamp
//   wall = t * 10^6 (same owner: at least the previous stamp + 1 counter);
//   lease end = (t + 3600) * 10^6; epoch + 1 and claim time = t on a change
//   of owner, kept otherwise.
// - syncmesh -> py2p: owner = the newest write's claimer (its writer with
//   leasing off); timestamp = floor(stamp wall / 10^6).

/// A key's py2p metadata.
struct py2p_meta {
  /// The owner's id (bytes).
  raw_node_id owner;
  /// Whole seconds.
  uint64_t timestamp_s = 0;
};

/// The py2p metadata of a key (`head`'s IDs interned in `ids`), or nullopt
/// when it holds no value (py2p removes metadata on delete).
std::optional<py2p_meta> py2p_meta_of(const entry_head* head,
                                      const node_id_table& ids);

/// py2p's lease rule (rules 1-6 above) for a write by `owner` at `time_s`,
/// at local time `now_s`.
bool py2p_accepts(const entry_head* head, const node_id_table& ids,
                  const raw_node_id& owner, uint64_t time_s, bool is_delta,
                  bool leasing, uint64_t now_s);

/// A version for a write by `owner` at `time_us` that beats every version
/// `head` holds (see the mapping above). Leasing on: lease end = time +
/// 3600 s; off: 0.
version py2p_successor(const entry_head* head, const node_id_table& ids,
                       const raw_node_id& owner, uint64_t time_us,
                       bool leasing);

/// A local write in py2p mode: py2p's rule with (self, now); when allowed
/// the draft is a complete py2p_successor.
local_decision py2p_decide(const entry_head* head, const node_id_table& ids,
                           const raw_node_id& self, uint64_t now_us,
                           bool leasing, bool is_delete);

/// A lease this node held that a remote write took over.
struct lease_loss {
  /// The key.
  std::string key;
  /// The new owner.
  raw_node_id new_owner;
  /// When the lost lease would have ended.
  uint64_t old_lease_end_us = 0;
};

/// A write that changed a key whose lease this node held (leasing on): what
/// the lease manager needs to tell a takeover from an expiry or a renewal.
struct lease_change {
  /// The key.
  std::string key;
  /// When the lease this node held was to end.
  uint64_t old_lease_end_us = 0;
  /// The claimer of the key's newest version after the write.
  raw_node_id new_claimer;
  /// When that claim was made.
  uint64_t new_claim_us = 0;
  /// Our wall clock when the write was applied (0: unknown).
  uint64_t observed_us = 0;
};

/// The takeover rule: this node (`self`) lost its lease when another node's
/// claim now wins and either was made before our lease ended or arrived
/// before our lease ended by OUR clock. The second half matters when the
/// claimer's clock is ahead (beyond the offset bound): its claim time says
/// "after your end" while our lease still runs here, and the writes we
/// acknowledged meanwhile are superseded; the owner is told whatever the
/// cause. Only a claim after our end by both clocks is a normal expiry
/// (within the bound a legitimate claim, made at end + margin by the
/// claimer's clock, always arrives after our end by ours); our own claim is
/// a renewal.
std::optional<lease_loss> detect_takeover(const lease_change& change,
                                          const raw_node_id& self);

/// The lease rules of one node: the hybrid clock, the local decision and
/// stamping, and recording writes into a store so that changes of this
/// node's leases are seen. The rules hold no entries: the store they work
/// on is passed in, so its owner (the dict store) keeps the one table of
/// keys, and decisions read the entry heads of that same store (no second
/// table of every key, no lease view that could be stale). They hold no
/// node refs either: IDs are interned in the store's own table.
class lease_rules {
public:
  /// Rules for an unnamed node on the system clock (replace before use).
  lease_rules() : lease_rules({}, system_wall_clock(), {}, 0) {}

  /// Rules for node `self`.
  lease_rules(raw_node_id self, wall_clock wall, lease_settings cfg,
              uint64_t max_skew_us);

  /// Decides a local write to `key` of `store` at the current wall time.
  local_decision decide(const store_state& store, std::string_view key,
                        bool is_delete) const;

  /// Stamps an allowed draft with a fresh HLC stamp and, with leasing on, the
  /// lease end; the result is newer than everything this node has seen.
  version stamp(version draft, bool is_delete);

  /// What recording one write did.
  struct recorded {
    /// What applying it to the store did.
    store_state::outcome applied;
    /// Set when it changed a key whose lease this node held.
    std::optional<lease_change> change;
    /// Its lease end was clamped to its stamp + the maximum lease.
    bool clamped = false;
    /// Why it was refused (a malformed value); empty when applied or stale.
    std::string error;
  };

  /// Applies a write (local or remote, version `v`, its lease end clamped
  /// by `clamped_lease_end`, so every replica merges alike) to `store`.
  /// Reports a change of a key whose lease this node held (see
  /// detect_takeover); `keep_old_value` asks for the value it replaced.
  recorded record(store_state& store, const pb::WriteRecord& rec,
                  const version& v, bool keep_old_value) const;

  /// True when the stamp is within the clock skew bound (else hold it).
  bool acceptable(const hlc_stamp& s) const { return clock_.acceptable(s); }

  /// Never stamps at or below `wall_us` (a restarted node's high-water mark).
  void raise_clock_floor(uint64_t wall_us) { clock_.raise_floor(wall_us); }

  /// Advances the clock past an accepted remote stamp.
  void observe_stamp(const hlc_stamp& s) { clock_.observe(s); }

  /// Removes tombstones older than `horizon_us` from `store`; returns their
  /// keys.
  std::vector<std::string> purge_tombstones(store_state& store,
                                            uint64_t horizon_us) const;

  /// A key of `store` this node may delete now, or nullopt when none.
  std::optional<std::string> deletable_key(const store_state& store) const;

  /// The bookkeeping of `key` in `store`, or nullptr (valid until the next
  /// change).
  static const entry_head* find(const store_state& store, std::string_view key);

  /// The current wall time.
  uint64_t now_us() const { return clock_.wall_us(); }

  /// This node's ID.
  const raw_node_id& self() const noexcept { return clock_.self(); }

  /// The settings.
  const lease_settings& settings() const noexcept { return cfg_; }

  /// The clock.
  const hybrid_clock& clock() const noexcept { return clock_; }

private:
  hybrid_clock clock_;
  lease_settings cfg_;
};

/// A store with its lease rules: one replica without actors, for rule
/// tests, the convergence checks and tools. (The dict store actor owns its
/// store and its rules side by side instead.)
class lease_table {
public:
  /// Rules for an unnamed node on the system clock (replace before use).
  lease_table() = default;

  /// Rules for node `self`.
  lease_table(raw_node_id self, wall_clock wall, lease_settings cfg,
              uint64_t max_skew_us)
      : rules_(std::move(self), std::move(wall), cfg, max_skew_us) {}

  /// Decides a local write to `key` at the current wall time.
  local_decision decide(std::string_view key, bool is_delete) const {
    return rules_.decide(store_, key, is_delete);
  }

  /// See lease_rules::stamp.
  version stamp(version draft, bool is_delete) {
    return rules_.stamp(std::move(draft), is_delete);
  }

  /// What recording one write did.
  struct recorded {
    /// What applying it to the store did.
    store_state::outcome applied;
    /// The lease this node lost to it, if any.
    std::optional<lease_loss> loss;
    /// Its lease end was clamped to its stamp + the maximum lease.
    bool clamped = false;
    /// Why it was refused (a malformed value); empty when applied or stale.
    std::string error;
  };

  /// Applies a write and reports the lease this node lost to it, if any.
  recorded record(const pb::WriteRecord& rec, const version& v,
                  bool keep_old_value);

  /// `record` without the old value, for callers that need only the loss.
  std::optional<lease_loss> observe(const pb::WriteRecord& rec,
                                    const version& v) {
    return record(rec, v, false).loss;
  }

  /// See lease_rules::acceptable.
  bool acceptable(const hlc_stamp& s) const { return rules_.acceptable(s); }

  /// See lease_rules::raise_clock_floor.
  void raise_clock_floor(uint64_t wall_us) {
    rules_.raise_clock_floor(wall_us);
  }

  /// See lease_rules::observe_stamp.
  void observe_stamp(const hlc_stamp& s) { rules_.observe_stamp(s); }

  /// Removes tombstones older than `horizon_us`; returns their keys.
  std::vector<std::string> purge_tombstones(uint64_t horizon_us) {
    return rules_.purge_tombstones(store_, horizon_us);
  }

  /// Sizes the store for `n` keys (no rehash pauses below that).
  void reserve(size_t n) { store_.reserve(n); }

  /// Number of tombstones in the store (constant time).
  size_t tombstone_count() const noexcept {
    return store_.entry_count() - store_.live_count();
  }

  /// A key this node may delete now, or nullopt when none.
  std::optional<std::string> deletable_key() const {
    return rules_.deletable_key(store_);
  }

  /// The bookkeeping of `key`, or nullptr (valid until the next change).
  const entry_head* find(std::string_view key) const {
    return lease_rules::find(store_, key);
  }

  /// The table the store's node IDs are interned in (to read `find`'s
  /// heads: newest, owner...).
  const node_id_table& ids() const noexcept { return store_.ids(); }

  /// The current wall time.
  uint64_t now_us() const { return rules_.now_us(); }

  /// This node's ID.
  const raw_node_id& self() const noexcept { return rules_.self(); }

  /// The settings.
  const lease_settings& settings() const noexcept { return rules_.settings(); }

  /// The clock.
  const hybrid_clock& clock() const noexcept { return rules_.clock(); }

  /// The store: every key's entry. Write to it only through `record` (and
  /// `purge_tombstones`), so lease losses are seen.
  const store_state& store() const noexcept { return store_; }

  /// The rules.
  lease_rules& rules() noexcept { return rules_; }

private:
  lease_rules rules_;
  store_state store_;
};

} // namespace syncmesh
