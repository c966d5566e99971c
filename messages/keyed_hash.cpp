#include "messages/keyed_hash.hpp"

#include <random>

#include <xxhash.h>

namespace syncmesh {

namespace {

uint64_t draw_seed() {
  std::random_device rd;
  return (static_cast<uint64_t>(rd()) << 32) ^ rd();
}

} // namespace

uint64_t process_hash_seed() noexcept {
  // Drawn on first use (thread-safe), so tables built during static
  // initialisation see the same seed as all later ones.
  static const uint64_t seed = draw_seed();
  return seed;
}

uint64_t keyed_hash(std::string_view bytes, uint64_t seed) noexcept {
  return XXH3_64bits_withSeed(bytes.data(), bytes.size(), seed);
}

uint64_t keyed_hash(std::string_view bytes) noexcept {
  return keyed_hash(bytes, process_hash_seed());
}

uint64_t keyed_hash(uint64_t number) noexcept {
  return XXH3_64bits_withSeed(&number, sizeof(number), process_hash_seed());
}

} // namespace syncmesh
