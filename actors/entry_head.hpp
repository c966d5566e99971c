#pragma once

#include <memory>

#include "messages/version.hpp"

namespace syncmesh {

/// The version bookkeeping of one key, without its data: a base (a whole
/// value or a tombstone) plus the newest visible field write. Both the lease
/// manager (which needs only versions) and the dict store (which adds the
/// data) use it, so they agree on which writes are visible.
class entry_head {
public:
  entry_head() = default;
  /// Copies, including the newest field write.
  entry_head(const entry_head& other)
      : base_(other.base_), has_base_(other.has_base_),
        base_tombstone_(other.base_tombstone_),
        base_is_map_(other.base_is_map_),
        top_field_(other.top_field_
                     ? std::make_unique<version>(*other.top_field_)
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
    return !has_base_ || newer(v, base_);
  }

  /// True when a field write with version `v` is newer than the base; older
  /// field writes are hidden by the base and dropped.
  bool field_visible(const version& v) const noexcept {
    return !has_base_ || newer(v, base_);
  }

  /// Installs a new base (the caller checked `accepts_base`). Field writes not
  /// newer than it become hidden; returns true when some may remain visible.
  bool set_base(const version& v, bool tombstone, bool is_map) {
    base_ = v;
    has_base_ = true;
    base_tombstone_ = tombstone;
    base_is_map_ = is_map;
    if (top_field_ && !newer(*top_field_, base_))
      top_field_.reset();
    return top_field_ != nullptr;
  }

  /// Records a visible field write with version `v`.
  void note_field(const version& v) {
    if (!top_field_)
      top_field_ = std::make_unique<version>(v);
    else if (newer(v, *top_field_))
      *top_field_ = v;
  }

  /// Forgets field writes (the store found none left).
  void clear_fields() noexcept { top_field_.reset(); }

  /// True when some field write is visible.
  bool has_fields() const noexcept { return top_field_ != nullptr; }

  /// True when the key holds a value: a live base or visible fields.
  bool live() const noexcept {
    return (has_base_ && !base_tombstone_) || top_field_ != nullptr;
  }

  /// True when reading the key gives a map.
  bool is_map() const noexcept {
    return top_field_ != nullptr || (live() && base_is_map_);
  }

  /// True when the base is a tombstone (or absent).
  bool base_tombstone() const noexcept { return !has_base_ || base_tombstone_; }

  /// True when a base write was applied.
  bool has_base() const noexcept { return has_base_; }

  /// The base's version (meaningless without `has_base`).
  const version& base_version() const noexcept { return base_; }

  /// The newest visible write: decides the owner, time and lease.
  const version& newest() const noexcept {
    if (top_field_ && (!has_base_ || newer(*top_field_, base_)))
      return *top_field_;
    return base_;
  }

  /// The lease end in effect: 0 when the key is deleted (a tombstone holds no
  /// lease), else what the newest write carries.
  uint64_t lease_end_us() const noexcept {
    return live() ? newest().lease_end_us : 0;
  }

  /// The owner: the claimer of the newest write, or its writer with leasing
  /// off.
  const node_id& owner() const noexcept {
    const auto& v = newest();
    return v.claimer.empty() ? v.stamp.node : v.claimer;
  }

private:
  version base_;
  bool has_base_ = false;
  bool base_tombstone_ = true;
  bool base_is_map_ = false;
  /// Field writes are rare: a pointer keeps every key 100 bytes smaller.
  std::unique_ptr<version> top_field_;
};

} // namespace syncmesh
