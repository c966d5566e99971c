#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace syncmesh {

/// A 64-bit hash of `bytes` keyed with this process's random seed (XXH3):
/// a peer cannot predict which of its keys collide, so tables of peer-chosen
/// keys stay fast. Never use it for anything another node must reproduce
/// (digests and buckets use `store_state::key_hash`).
uint64_t keyed_hash(std::string_view bytes) noexcept;

/// `keyed_hash` with an explicit seed (tests; tables that carry their own).
uint64_t keyed_hash(std::string_view bytes, uint64_t seed) noexcept;

/// `keyed_hash` of a number a peer chose (its 8 bytes).
uint64_t keyed_hash(uint64_t number) noexcept;

/// The seed of this process, drawn once from std::random_device.
uint64_t process_hash_seed() noexcept;

/// A hash functor for unordered containers keyed by peer-chosen strings or
/// numbers.
struct keyed_hasher {
  /// Hash of a string's bytes.
  size_t operator()(std::string_view bytes) const noexcept {
    return static_cast<size_t>(keyed_hash(bytes));
  }
  /// Hash of a string's bytes.
  size_t operator()(const std::string& bytes) const noexcept {
    return static_cast<size_t>(keyed_hash(std::string_view{bytes}));
  }
  /// Hash of a number.
  size_t operator()(uint64_t number) const noexcept {
    return static_cast<size_t>(keyed_hash(number));
  }
};

} // namespace syncmesh
