#include "actors/set_sketch.hpp"

#include <cmath>

namespace syncmesh {

namespace {

/// SplitMix64's finalizer: every input bit affects every output bit.
uint64_t mix(uint64_t x) noexcept {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

uint32_t checksum(uint64_t id) noexcept {
  return static_cast<uint32_t>(mix(id ^ 0x5bd1e9955bd1e995ull) >> 32);
}

constexpr uint64_t seeds[set_sketch::hash_count]
  = {0x243f6a8885a308d3ull, 0x13198a2e03707344ull, 0xa4093822299f31d0ull};

void put_le(std::string& out, uint64_t x, int bytes) {
  for (int i = 0; i < bytes; ++i)
    out.push_back(static_cast<char>((x >> (8 * i)) & 0xff));
}

uint64_t get_le(const char* in, int bytes) noexcept {
  uint64_t x = 0;
  for (int i = 0; i < bytes; ++i)
    x |= static_cast<uint64_t>(static_cast<unsigned char>(in[i])) << (8 * i);
  return x;
}

} // namespace

size_t set_sketch::cells_for(size_t elements) noexcept {
  auto cells
    = static_cast<size_t>(std::ceil(1.3 * static_cast<double>(elements))) + 24;
  return cells < min_cells ? min_cells : cells;
}

set_sketch::set_sketch(size_t cells) {
  auto per_hash = (cells + hash_count - 1) / hash_count;
  if (per_hash * hash_count < min_cells)
    per_hash = min_cells / hash_count;
  cells_.resize(per_hash * hash_count);
}

size_t set_sketch::position(uint64_t id, size_t which) const noexcept {
  auto per_hash = cells_.size() / hash_count;
  return which * per_hash + mix(id ^ seeds[which]) % per_hash;
}

void set_sketch::toggle(uint64_t id, uint16_t delta) noexcept {
  auto check = checksum(id);
  for (size_t which = 0; which < hash_count; ++which) {
    auto& c = cells_[position(id, which)];
    c.count = static_cast<uint16_t>(c.count + delta);
    c.id_sum ^= id;
    c.check_sum ^= check;
  }
}

bool set_sketch::subtract(const set_sketch& other) noexcept {
  if (other.cells_.size() != cells_.size())
    return false;
  for (size_t i = 0; i < cells_.size(); ++i) {
    cells_[i].count
      = static_cast<uint16_t>(cells_[i].count - other.cells_[i].count);
    cells_[i].id_sum ^= other.cells_[i].id_sum;
    cells_[i].check_sum ^= other.cells_[i].check_sum;
  }
  return true;
}

std::string set_sketch::serialize() const {
  std::string out;
  out.reserve(cells_.size() * cell_bytes);
  for (const auto& c : cells_) {
    put_le(out, c.count, 2);
    put_le(out, c.id_sum, 8);
    put_le(out, c.check_sum, 4);
  }
  return out;
}

bool set_sketch::parse(const std::string& bytes, size_t cells,
                       set_sketch& out) {
  set_sketch result{cells};
  if (result.cells() != cells || bytes.size() != cells * cell_bytes)
    return false;
  const char* in = bytes.data();
  for (auto& c : result.cells_) {
    c.count = static_cast<uint16_t>(get_le(in, 2));
    c.id_sum = get_le(in + 2, 8);
    c.check_sum = static_cast<uint32_t>(get_le(in + 10, 4));
    in += cell_bytes;
  }
  out = std::move(result);
  return true;
}

bool set_sketch::pure(const cell& c, size_t index) const noexcept {
  if (c.count != 1 && c.count != 0xffff)
    return false;
  if (c.check_sum != checksum(c.id_sum))
    return false;
  // The element must hash to this very cell; a forged or colliding cell
  // whose ID belongs elsewhere would otherwise corrupt other cells.
  return position(c.id_sum, index / (cells_.size() / hash_count)) == index;
}

set_sketch::difference set_sketch::decode() const {
  difference result;
  auto work = *this;
  std::vector<size_t> candidates;
  for (size_t i = 0; i < work.cells_.size(); ++i)
    if (work.pure(work.cells_[i], i))
      candidates.push_back(i);
  // Each peel removes one element from every cell it touches, so a sketch
  // decodes at most as many elements as it has cells; the bound also stops
  // a hostile sketch from looping.
  size_t peeled = 0;
  while (!candidates.empty() && peeled <= work.cells_.size()) {
    auto index = candidates.back();
    candidates.pop_back();
    const auto c = work.cells_[index];
    if (!work.pure(c, index))
      continue; // changed since it was queued
    ++peeled;
    bool ours = c.count == 1;
    (ours ? result.ours : result.theirs).push_back(c.id_sum);
    auto delta = static_cast<uint16_t>(ours ? 0xffff : 1);
    auto check = checksum(c.id_sum);
    for (size_t which = 0; which < hash_count; ++which) {
      auto pos = work.position(c.id_sum, which);
      auto& other = work.cells_[pos];
      other.count = static_cast<uint16_t>(other.count + delta);
      other.id_sum ^= c.id_sum;
      other.check_sum ^= check;
      if (work.pure(other, pos))
        candidates.push_back(pos);
    }
  }
  result.complete = true;
  for (const auto& c : work.cells_)
    if (c.count != 0 || c.id_sum != 0 || c.check_sum != 0) {
      result.complete = false;
      break;
    }
  return result;
}

} // namespace syncmesh
