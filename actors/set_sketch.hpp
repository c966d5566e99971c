#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace syncmesh {

/// An invertible Bloom lookup table of 64-bit element IDs. Two replicas
/// sketch their sets with the same number of cells; one subtracts the
/// other's sketch from its own and decodes the elements that only one side
/// holds. Its size follows the difference, not the sets: 1,000 differing
/// keys among a million cost a few kilobytes where key lists cost megabytes.
class set_sketch {
public:
  /// Bytes per cell on the wire: a 16-bit count (wrapping), the XOR of the
  /// IDs and the XOR of their 32-bit checksums.
  static constexpr size_t cell_bytes = 14;

  /// Each element goes to one cell in each third of the table.
  static constexpr size_t hash_count = 3;

  /// Fewest cells; a sketch has a multiple of `hash_count` cells.
  static constexpr size_t min_cells = 3 * hash_count;

  /// Cells that decode `elements` differing elements with high probability
  /// (peeling with three hashes needs ~1.23 cells per element; the rest is
  /// margin for small sets and estimation error).
  static size_t cells_for(size_t elements) noexcept;

  /// An empty sketch of `cells` cells rounded up to a multiple of
  /// `hash_count` (at least `min_cells`).
  explicit set_sketch(size_t cells);

  /// Number of cells.
  size_t cells() const noexcept { return cells_.size(); }

  /// Adds an element.
  void add(uint64_t id) noexcept { toggle(id, 1); }

  /// Removes the elements of `other`, which must have as many cells; returns
  /// false (and changes nothing) when it has not.
  bool subtract(const set_sketch& other) noexcept;

  /// The wire form: `cells() * cell_bytes` bytes, little-endian.
  std::string serialize() const;

  /// Reads a sketch of `cells` cells from untrusted bytes; false when the
  /// size does not match.
  static bool parse(const std::string& bytes, size_t cells, set_sketch& out);

  /// What a subtracted sketch decodes to.
  struct difference {
    /// Elements of the minuend only (count +1).
    std::vector<uint64_t> ours;
    /// Elements of the subtrahend only (count -1).
    std::vector<uint64_t> theirs;
    /// True when every cell emptied: the lists are the whole difference.
    bool complete = false;
  };

  /// Peels the sketch (a copy: the sketch itself is unchanged). An incomplete
  /// result means the difference was too large for the cells.
  difference decode() const;

private:
  struct cell {
    uint16_t count = 0;
    uint64_t id_sum = 0;
    uint32_t check_sum = 0;
  };

  void toggle(uint64_t id, uint16_t delta) noexcept;
  size_t position(uint64_t id, size_t which) const noexcept;
  bool pure(const cell& c, size_t index) const noexcept;

  std::vector<cell> cells_;
};

} // namespace syncmesh
