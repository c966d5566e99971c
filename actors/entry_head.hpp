#pragma once

#include <memory>

#include "messages/packed_version.hpp"

namespace syncmesh {

/// The version bookkeeping of one key, without its data: a base (a whole
/// value or a tombstone) plus the newest visible field write. Both the lease
/// manager (which needs only versions) and the dict store (which adds the
/// data) use it, so they agree on which writes are visible. Versions are kept
/// packed (node IDs interned): one head is 56 bytes.
class entry_head {
public:
  entry_head() = default;
  /// Copies, including the newest field write.
  entry_head(const entry_head& other)
      : base_(other.base_),
        top_field_(other.top_field_
                     ? std::make_unique<packed_version>(*other.top_field_)
                     : nullptr) {}
  /// See the copy constructor.
  entry_head& operator=(const entry_head& other) {
    if (this != &other)
      *this = entry_head{other};
    return *this;
  }
  entry_head(entry_head&&) noexcept = default;
  entry_head& operator=(entry_head&&) noexcept = default;

  /// True when a base write with version `v` beats the current base.
  bool accepts_base(const version& v) const noexcept {
    return !has_base() || newer(v, base_);
  }

  /// True when a field write with version `v` is newer than the base; older
  /// field writes are hidden by the base and dropped.
  bool field_visible(const version& v) const noexcept {
    return !has_base() || newer(v, base_);
  }

  /// Installs a new base (the caller checked `accepts_base`). Field writes not
  /// newer than it become hidden; returns true when some may remain visible.
  bool set_base(const version& v, bool tombstone, bool is_map) {
    base_ = pack(v);
    base_.holder_bits
      = has_base_bit | (tombstone ? tombstone_bit : 0) | (is_map ? map_bit : 0);
    if (top_field_ && !syncmesh::newer(*top_field_, base_))
      top_field_.reset();
    return top_field_ != nullptr;
  }

  /// Records a visible field write with version `v`.
  void note_field(const version& v) {
    if (!top_field_)
      top_field_ = std::make_unique<packed_version>(pack(v));
    else if (syncmesh::newer(v, *top_field_))
      *top_field_ = pack(v);
  }

  /// Forgets field writes (the store found none left).
  void clear_fields() noexcept { top_field_.reset(); }

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

  /// The base's version (meaningless without `has_base`).
  version base_version() const { return unpack(base_); }

  /// The base's version, packed (meaningless without `has_base`).
  const packed_version& packed_base() const noexcept { return base_; }

  /// The newest visible write, packed: decides the owner, time and lease.
  const packed_version& packed_newest() const noexcept {
    if (top_field_ && (!has_base() || syncmesh::newer(*top_field_, base_)))
      return *top_field_;
    return base_;
  }

  /// The newest visible write: decides the owner, time and lease.
  version newest() const { return unpack(packed_newest()); }

  /// The lease end in effect: 0 when the key is deleted (a tombstone holds no
  /// lease), else what the newest write carries.
  uint64_t lease_end_us() const noexcept {
    return live() ? packed_newest().lease_end_us : 0;
  }

  /// The owner: the claimer of the newest write, or its writer with leasing
  /// off. The reference lives as long as the process.
  const node_id& owner() const {
    const auto& v = packed_newest();
    return process_node_ids().bytes(v.claimer == 0 ? v.node : v.claimer);
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

} // namespace syncmesh
