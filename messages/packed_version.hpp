#pragma once

#include <cstdint>
#include <deque>
#include <mutex>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "messages/keyed_hash.hpp"
#include "messages/version.hpp"

namespace syncmesh {

/// A node ID interned in a `node_id_table`: a small number that stands for
/// the ID's bytes. 0 always stands for the empty ID (no claimer).
using node_ref = uint32_t;

/// Interns node IDs: each distinct ID gets a `node_ref` while some stored
/// version refers to it, so a stored version holds 4 bytes per ID instead of
/// a 32-byte std::string. References are counted (`packed_version` does it):
/// an ID no version refers to any more is forgotten and its ref reused, so
/// the table holds the writers of what is stored, not of everything ever
/// written (a peer that writes one key with a fresh writer ID each time
/// cannot grow it). Thread-safe: the actors of one process (and the nodes of
/// an in-process mesh) share one table.
class node_id_table {
public:
  /// A table that knows only the empty ID (ref 0).
  node_id_table();

  node_id_table(const node_id_table&) = delete;
  node_id_table& operator=(const node_id_table&) = delete;

  /// The ref of `id`, adding it on first sight; counts one reference, which
  /// the caller owns and gives back with `release`.
  node_ref intern(std::string_view id);

  /// Counts one more reference to `ref` (a copy of a version holding it).
  void retain(node_ref ref);

  /// Gives back one reference; the last one forgets the ID.
  void release(node_ref ref) noexcept;

  /// The bytes of `ref`, which must be referenced (held by a live version
  /// or interned and not released); the reference stays valid as long as
  /// that holds.
  const node_id& bytes(node_ref ref) const;

  /// Orders two refs by their IDs' bytes (not by ref): negative, zero or
  /// positive like std::string::compare.
  int compare(node_ref x, node_ref y) const;

  /// Orders the ID `x` against the ref `y` by bytes.
  int compare(const node_id& x, node_ref y) const;

  /// Number of IDs referenced now, the empty one included.
  size_t size() const;

private:
  /// The bytes of ref 0, read without the lock (most versions have no
  /// claimer).
  const node_id empty_;
  mutable std::mutex mtx_;
  /// The IDs by ref; a deque keeps references stable as it grows. A
  /// forgotten ID's string is emptied and its ref waits in `free_`.
  std::deque<node_id> ids_;
  /// References to each ID, by ref (ref 0 is not counted).
  std::deque<uint32_t> counts_;
  /// Refs of forgotten IDs, reused first.
  std::vector<node_ref> free_;
  /// Refs by ID; the views point into `ids_`. Peers choose IDs: keyed hash.
  std::unordered_map<std::string_view, node_ref, keyed_hasher> refs_;
};

/// The table every stored version of this process uses.
node_id_table& process_node_ids();

/// A `version` as stored per key: the same fields with node IDs interned in
/// `process_node_ids()`. 44 bytes of data instead of ~104.
struct packed_version {
  packed_version() = default;
  /// Copies, counting one more reference to each node ID.
  packed_version(const packed_version& other) : packed_version(other, 0) {
    retain_ids();
  }
  /// Takes over `other`'s references; `other` keeps no node IDs.
  packed_version(packed_version&& other) noexcept : packed_version(other, 0) {
    other.claimer = 0;
    other.node = 0;
  }
  /// See the copy constructor.
  packed_version& operator=(const packed_version& other) {
    if (this != &other) {
      packed_version copy{other};
      *this = std::move(copy);
    }
    return *this;
  }
  /// See the move constructor.
  packed_version& operator=(packed_version&& other) noexcept {
    if (this != &other) {
      release_ids();
      fields_from(other);
      other.claimer = 0;
      other.node = 0;
    }
    return *this;
  }
  /// Gives back the references to its node IDs.
  ~packed_version() { release_ids(); }

  /// See `version::epoch`.
  uint64_t epoch = 0;
  /// See `version::claim_us`.
  uint64_t claim_us = 0;
  /// See `hlc_stamp::wall_us`.
  uint64_t wall_us = 0;
  /// See `version::lease_end_us`.
  uint64_t lease_end_us = 0;
  /// See `hlc_stamp::counter`.
  uint32_t counter = 0;
  /// See `version::claimer` (0: empty); one counted reference.
  node_ref claimer = 0;
  /// See `hlc_stamp::node`; one counted reference.
  node_ref node = 0;
  /// Free for the holder's flags: it sits in what would be padding, so a
  /// holder that needs a few bits pays no extra word for them.
  uint8_t holder_bits = 0;

private:
  /// Copies every field without counting references.
  packed_version(const packed_version& other, int) noexcept {
    fields_from(other);
  }
  void fields_from(const packed_version& other) noexcept {
    epoch = other.epoch;
    claim_us = other.claim_us;
    wall_us = other.wall_us;
    lease_end_us = other.lease_end_us;
    counter = other.counter;
    claimer = other.claimer;
    node = other.node;
    holder_bits = other.holder_bits;
  }
  void retain_ids() {
    process_node_ids().retain(claimer);
    process_node_ids().retain(node);
  }
  void release_ids() noexcept {
    process_node_ids().release(claimer);
    process_node_ids().release(node);
  }
};

/// Packs `v`, interning its node IDs.
packed_version pack(const version& v);

/// The full version of `v`.
version unpack(const packed_version& v);

/// Three-way comparison with the order of `compare(const version&, const
/// version&)`: node IDs compare by their bytes, never by their refs.
int compare(const packed_version& x, const packed_version& y) noexcept;

/// Three-way comparison of a full version against a packed one (same order).
int compare(const version& x, const packed_version& y) noexcept;

/// True when `x` wins over `y`.
inline bool newer(const packed_version& x, const packed_version& y) noexcept {
  return compare(x, y) > 0;
}

/// True when `x` wins over `y`.
inline bool newer(const version& x, const packed_version& y) noexcept {
  return compare(x, y) > 0;
}

} // namespace syncmesh
