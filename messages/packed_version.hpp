#pragma once

#include <cstdint>
#include <deque>
#include <mutex>
#include <string_view>
#include <unordered_map>

#include "messages/version.hpp"

namespace syncmesh {

/// A node ID interned in a `node_id_table`: a small number that stands for
/// the ID's bytes. 0 always stands for the empty ID (no claimer).
using node_ref = uint32_t;

/// Interns node IDs: each distinct ID gets a `node_ref` once and keeps it for
/// the table's lifetime, so a stored version holds 4 bytes per ID instead of
/// a 32-byte std::string. A mesh has few writers, so the table stays small
/// while millions of versions refer to it. Thread-safe: the actors of one
/// process (and the nodes of an in-process mesh) share one table.
class node_id_table {
public:
  /// A table that knows only the empty ID (ref 0).
  node_id_table();

  node_id_table(const node_id_table&) = delete;
  node_id_table& operator=(const node_id_table&) = delete;

  /// The ref of `id`, adding it on first sight.
  node_ref intern(std::string_view id);

  /// The bytes of `ref`; the reference stays valid as long as the table.
  /// `ref` must come from `intern` of this table.
  const node_id& bytes(node_ref ref) const;

  /// Orders two refs by their IDs' bytes (not by ref): negative, zero or
  /// positive like std::string::compare.
  int compare(node_ref x, node_ref y) const;

  /// Orders the ID `x` against the ref `y` by bytes.
  int compare(const node_id& x, node_ref y) const;

  /// Number of interned IDs, the empty one included.
  size_t size() const;

private:
  /// The bytes of ref 0, read without the lock (most versions have no
  /// claimer).
  const node_id empty_;
  mutable std::mutex mtx_;
  /// The IDs by ref; a deque keeps references stable as it grows.
  std::deque<node_id> ids_;
  /// Refs by ID; the views point into `ids_`.
  std::unordered_map<std::string_view, node_ref> refs_;
};

/// The table every stored version of this process uses. Its IDs are never
/// forgotten: it grows by the distinct writers ever seen (each write adds at
/// most one, and the store keeps far more per write than that).
node_id_table& process_node_ids();

/// A `version` as stored per key: the same fields with node IDs interned in
/// `process_node_ids()`. 44 bytes of data instead of ~104.
struct packed_version {
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
  /// See `version::claimer` (0: empty).
  node_ref claimer = 0;
  /// See `hlc_stamp::node`.
  node_ref node = 0;
  /// Free for the holder's flags: it sits in what would be padding, so a
  /// holder that needs a few bits pays no extra word for them.
  uint8_t holder_bits = 0;
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
