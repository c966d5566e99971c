#pragma once

#include <cstdint>
#include <deque>
#include <string_view>
#include <type_traits>
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
/// a 32-byte std::string. References are counted by whoever holds a ref (the
/// store's entry heads, see actors/entry_head.hpp): an ID no version refers
/// to any more is forgotten and its ref reused, so the table holds the
/// writers of what is stored, not of everything ever written (a peer that
/// writes one key with a fresh writer ID each time cannot grow it).
///
/// Not thread-safe, on purpose: each store owns its own table and only the
/// store's actor touches it, so the write path takes no lock (issue 13: a
/// process-wide table used to take a global mutex on every pack, compare and
/// destroy of a version, shared by every node of an in-process mesh). A ref
/// means something only in the table that made it.
class node_id_table {
public:
  /// A table that knows only the empty ID (ref 0).
  node_id_table();

  node_id_table(const node_id_table&) = delete;
  node_id_table& operator=(const node_id_table&) = delete;
  /// Takes over `other`'s IDs with their refs (the strings do not move, so
  /// the index's views stay valid); `other` must only be destroyed or
  /// assigned afterwards.
  node_id_table(node_id_table&& other) = default;
  /// See the move constructor.
  node_id_table& operator=(node_id_table&& other) = default;

  /// The ref of `id`, adding it on first sight; counts one reference, which
  /// the caller owns and gives back with `release`.
  node_ref intern(std::string_view id);

  /// Counts one more reference to `ref`.
  void retain(node_ref ref) noexcept;

  /// Gives back one reference; the last one forgets the ID.
  void release(node_ref ref) noexcept;

  /// The bytes of `ref`, which must be referenced; the reference stays valid
  /// as long as some holder keeps `ref` (the IDs live in a deque).
  const raw_node_id& bytes(node_ref ref) const noexcept { return ids_[ref]; }

  /// Orders two refs by their IDs' bytes (not by ref): negative, zero or
  /// positive like std::string::compare. Equal refs are equal IDs.
  int compare(node_ref x, node_ref y) const noexcept;

  /// Orders the ID `x` against the ref `y` by bytes.
  int compare(const raw_node_id& x, node_ref y) const noexcept;

  /// Number of IDs referenced now, the empty one included (1 when no
  /// version holds any ID).
  size_t size() const noexcept { return ids_.size() - free_.size(); }

  /// References counted to `ref` now (0 for ref 0 or a forgotten ref): for
  /// audits that recount what the holders hold.
  uint32_t references(node_ref ref) const noexcept {
    return ref < counts_.size() ? counts_[ref] : 0;
  }

  /// Number of refs ever handed out and not yet reusable (the range valid
  /// refs fall in is [0, ref_bound())).
  size_t ref_bound() const noexcept { return ids_.size(); }

private:
  /// The IDs by ref; a deque keeps references stable as it grows. A
  /// forgotten ID's string is emptied and its ref waits in `free_`. Ref 0
  /// is the empty ID and never changes.
  std::deque<raw_node_id> ids_;
  /// References to each ID, by ref (ref 0 is not counted).
  std::deque<uint32_t> counts_;
  /// Refs of forgotten IDs, reused first.
  std::vector<node_ref> free_;
  /// Refs by ID; the views point into `ids_`. Peers choose IDs: keyed hash.
  std::unordered_map<std::string_view, node_ref, keyed_hasher> refs_;
};

/// A `version` as stored per key: the same fields with node IDs interned in
/// the holder's `node_id_table`. 48 bytes instead of ~104.
///
/// A plain value (trivially copyable): it does not know its table, so it
/// neither counts references nor reads IDs by itself. Whoever keeps one in
/// a store counts its references explicitly (`pack` hands out one for each
/// ID, `release` gives them back) and passes the same table to every
/// function that reads its IDs. A pointer to the table in each version would
/// cost 8 bytes per stored version, for millions of keys.
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

static_assert(std::is_trivially_copyable_v<packed_version>,
              "packed_version is a plain value; its holder counts references");
static_assert(sizeof(packed_version) <= 48,
              "packed_version is stored once or twice per key");

/// Packs `v`, interning its node IDs in `ids`: the result holds one counted
/// reference to each, which the caller gives back with `release`.
packed_version pack(node_id_table& ids, const version& v);

/// Gives back the references `v` holds (see `pack`).
inline void release(node_id_table& ids, const packed_version& v) noexcept {
  ids.release(v.claimer);
  ids.release(v.node);
}

/// The full version of `v`, whose IDs are interned in `ids`.
version unpack(const node_id_table& ids, const packed_version& v);

/// Three-way comparison with the order of `compare(const version&, const
/// version&)`; both versions' IDs are interned in `ids`. Node IDs compare by
/// their bytes, never by their refs (equal refs are equal, though).
int compare(const node_id_table& ids, const packed_version& x,
            const packed_version& y) noexcept;

/// Three-way comparison of a full version against a packed one interned in
/// `ids` (same order).
int compare(const node_id_table& ids, const version& x,
            const packed_version& y) noexcept;

/// True when `x` wins over `y` (both interned in `ids`).
inline bool newer(const node_id_table& ids, const packed_version& x,
                  const packed_version& y) noexcept {
  return compare(ids, x, y) > 0;
}

/// True when `x` wins over `y` (interned in `ids`).
inline bool newer(const node_id_table& ids, const version& x,
                  const packed_version& y) noexcept {
  return compare(ids, x, y) > 0;
}

} // namespace syncmesh
