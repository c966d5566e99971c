#pragma once

#include <cassert>
#include <memory>

#include "messages/packed_version.hpp"

namespace syncmesh {

/// The version bookkeeping of one key, without its data: a base (a whole
/// value or a tombstone) plus the newest visible field write. The dict store
/// keeps one per key, and the lease rules read the same heads, so both agree
/// on which writes are visible. Versions are kept packed (node IDs interned
/// in the store's `node_id_table`): one head is 56 bytes.
///
/// The head counts its references to node IDs itself, through the table its
/// holder passes in: installing or replacing the base or the top field
/// retains the new version's IDs and releases the old one's, and `release`
/// gives everything back before the holder drops the head (erasing a key).
/// It does not keep a pointer to the table (8 more bytes per key), so it
/// cannot release in its destructor: a head dropped without `release` leaks
/// references, which the store's `audit_node_ids` and the unit tests catch.
/// For the same reason a head cannot be copied (the copy's references would
/// go uncounted); moving hands the references over.
///
/// Invariant: the top field, when present, is newer than the base (a field
/// write is recorded only when it beats the base, and a new base drops a top
/// field it beats), so the newest visible write is known without comparing.
class entry_head {
public:
  entry_head() = default;
  entry_head(const entry_head&) = delete;
  entry_head& operator=(const entry_head&) = delete;
  /// Takes over `other`'s references; `other` holds nothing afterwards.
  entry_head(entry_head&& other) noexcept
      : base_(other.base_), top_field_(std::move(other.top_field_)) {
    other.base_ = packed_version{};
  }
  /// Takes over `other`'s references. The head assigned to must hold none
  /// (released or never set), else they would leak.
  entry_head& operator=(entry_head&& other) noexcept {
    if (this != &other) {
      assert(!holds_ids() && "entry_head overwritten without release()");
      base_ = other.base_;
      top_field_ = std::move(other.top_field_);
      other.base_ = packed_version{};
    }
    return *this;
  }

  /// True when a base write with version `v` beats the current base.
  bool accepts_base(const node_id_table& ids, const version& v) const noexcept {
    return !has_base() || newer(ids, v, base_);
  }

  /// True when a field write with version `v` is newer than the base; older
  /// field writes are hidden by the base and dropped.
  bool field_visible(const node_id_table& ids,
                     const version& v) const noexcept {
    return !has_base() || newer(ids, v, base_);
  }

  /// Installs a new base (the caller checked `accepts_base`), counting its
  /// IDs in `ids` and releasing the old base's. Field writes not newer than
  /// it become hidden; returns true when some may remain visible.
  bool set_base(node_id_table& ids, const version& v, bool tombstone,
                bool is_map) {
    // Intern before releasing: a writer that overwrites its own write keeps
    // its ID (the count goes 1 -> 2 -> 1) instead of forgetting and
    // re-adding it.
    auto fresh = pack(ids, v);
    syncmesh::release(ids, base_);
    base_ = fresh;
    base_.holder_bits
      = has_base_bit | (tombstone ? tombstone_bit : 0) | (is_map ? map_bit : 0);
    if (top_field_ && !newer(ids, *top_field_, base_))
      clear_fields(ids);
    return top_field_ != nullptr;
  }

  /// Records a field write with version `v`, counting its IDs in `ids`; a
  /// write hidden by the base, or older than the newest field write, changes
  /// nothing.
  void note_field(node_id_table& ids, const version& v) {
    if (!field_visible(ids, v))
      return;
    if (!top_field_) {
      top_field_ = std::make_unique<packed_version>(pack(ids, v));
    } else if (newer(ids, v, *top_field_)) {
      auto fresh = pack(ids, v);
      syncmesh::release(ids, *top_field_);
      *top_field_ = fresh;
    }
  }

  /// Forgets field writes (the store found none left), releasing their IDs.
  void clear_fields(node_id_table& ids) noexcept {
    if (top_field_) {
      syncmesh::release(ids, *top_field_);
      top_field_.reset();
    }
  }

  /// Gives back every reference to `ids` and empties the head: call it
  /// before the key is erased.
  void release(node_id_table& ids) noexcept {
    clear_fields(ids);
    syncmesh::release(ids, base_);
    base_ = packed_version{};
  }

  /// True when the head holds references to node IDs (see `release`).
  bool holds_ids() const noexcept {
    return base_.claimer != 0 || base_.node != 0 || top_field_ != nullptr;
  }

  /// True when some field write is visible.
  bool has_fields() const noexcept { return top_field_ != nullptr; }

  /// True when the key holds a value: a live base or visible fields.
  bool live() const noexcept {
    return (has_base() && !(base_.holder_bits & tombstone_bit))
           || top_field_ != nullptr;
  }

  /// True when reading the key gives a map.
  bool is_map() const noexcept {
    return top_field_ != nullptr || (live() && (base_.holder_bits & map_bit));
  }

  /// True when the base is a tombstone (or absent).
  bool base_tombstone() const noexcept {
    return !has_base() || (base_.holder_bits & tombstone_bit);
  }

  /// True when a base write was applied.
  bool has_base() const noexcept { return base_.holder_bits & has_base_bit; }

  /// The base's version (meaningless without `has_base`); `ids` is the
  /// table the head counts in.
  version base_version(const node_id_table& ids) const {
    return unpack(ids, base_);
  }

  /// The base's version, packed (meaningless without `has_base`).
  const packed_version& packed_base() const noexcept { return base_; }

  /// The top field write, or nullptr (for audits of the references).
  const packed_version* packed_top_field() const noexcept {
    return top_field_.get();
  }

  /// The newest visible write, packed: decides the owner, time and lease.
  /// No comparison needed (see the invariant above).
  const packed_version& packed_newest() const noexcept {
    return top_field_ ? *top_field_ : base_;
  }

  /// The newest visible write: decides the owner, time and lease.
  version newest(const node_id_table& ids) const {
    return unpack(ids, packed_newest());
  }

  /// The lease end in effect: 0 when the key is deleted (a tombstone holds no
  /// lease), else what the newest write carries.
  uint64_t lease_end_us() const noexcept {
    return live() ? packed_newest().lease_end_us : 0;
  }

  /// The owner, interned: the claimer of the newest write, or its writer
  /// with leasing off.
  node_ref owner_ref() const noexcept {
    const auto& v = packed_newest();
    return v.claimer == 0 ? v.node : v.claimer;
  }

  /// The owner's bytes; the reference lives as long as the head holds it.
  const raw_node_id& owner(const node_id_table& ids) const noexcept {
    return ids.bytes(owner_ref());
  }

private:
  static constexpr uint8_t has_base_bit = 1;
  static constexpr uint8_t tombstone_bit = 2;
  static constexpr uint8_t map_bit = 4;

  /// The base's version; its `holder_bits` hold the flags above.
  packed_version base_;
  /// Field writes are rare: a pointer keeps every key 40 bytes smaller.
  std::unique_ptr<packed_version> top_field_;
};

static_assert(sizeof(entry_head) <= 56,
              "one entry_head per key: it must not grow (no table pointer)");

} // namespace syncmesh
