#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "syncmesh/value.hpp"

namespace syncmesh {

/// A value as the store keeps it: its canonical encoding (`encode_canonical`)
/// in one heap block of exactly its size, 8 bytes in the entry. A `value`
/// takes 56 bytes plus, for text and bytes, a heap string rounded up to the
/// allocator's size class; most entries are written and replicated far more
/// often than they are read. Reading decodes. Empty (no block) stands for no
/// value (a tombstone).
class packed_value {
public:
  /// No value.
  packed_value() noexcept = default;

  /// Encodes `x`.
  static packed_value encode(const value& x);

  /// True when no value is held.
  bool empty() const noexcept { return block_ == nullptr; }

  /// The value; nil when empty.
  value decode() const;

  /// The canonical encoding (empty when no value is held).
  std::string_view canonical() const noexcept;

private:
  /// A 4-byte length, then that many bytes of canonical encoding.
  std::unique_ptr<char[]> block_;
};

} // namespace syncmesh
