#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "actors/entry_head.hpp"
#include "actors/key_table.hpp"
#include "messages/packed_value.hpp"
#include "syncmesh/value.hpp"

namespace syncmesh {

namespace pb {
class GetReply;
class WriteRecord;
class WriteBatch;
class EntryMeta;
class Value;
} // namespace pb

/// Where a field sits in its map: the stamp of the write that created it
/// and the field's index in that write. It travels with every write of the
/// field (a write that updates a field carries the position the writer saw),
/// so the winning write decides it and every replica orders a map's fields
/// alike, whatever the order writes arrived in.
struct field_position {
  /// Stamp of the write that created the field.
  hlc_stamp stamp;
  /// The field's index among that write's fields.
  uint32_t index = 0;
};

/// Three-way comparison: by stamp, then index.
int compare(const field_position& x, const field_position& y) noexcept;

/// A visible write to one field of a map value.
struct field_write {
  /// The field.
  map_key key;
  /// Its value.
  value val;
  /// The write's version.
  version ver;
  /// Its place in the map.
  field_position pos;
};

/// Reads the positions of a delta's fields: `field_origins` where given,
/// else the record's own stamp and the field's index. Returns an
/// explanation for malformed origins (an index out of range or given twice,
/// a stamp without node or time), empty on success.
std::string read_field_positions(const pb::WriteRecord& rec, const version& v,
                                 std::vector<field_position>& out);

/// One key of the dictionary: a base value or tombstone plus field writes
/// newer than the base. Merging is by version only, so it is commutative,
/// associative and idempotent. The node IDs of its versions are interned in
/// the table of the store that holds it (`ids` below, always the same one);
/// `release` gives them back before the entry is dropped.
class store_entry {
public:
  /// Applies a whole-value write or delete; true when it changed the entry.
  bool apply_base(node_id_table& ids, const version& v, bool tombstone,
                  const value& val);

  /// Applies field writes that share version `v`, at positions `pos` (one
  /// per field; when empty, each field was created by this write at its
  /// index); true when any changed.
  bool apply_fields(node_id_table& ids, const version& v,
                    const value_map& fields,
                    const std::vector<field_position>& pos = {});

  /// Gives back the entry's references to node IDs: call it before the
  /// entry is erased (see entry_head::release).
  void release(node_id_table& ids) noexcept { head_.release(ids); }

  /// The value a reader sees: the base, or the fields laid over the base map
  /// (over {} when the base is a tombstone or not a map).
  value read() const;

  /// Version bookkeeping.
  const entry_head& head() const noexcept { return head_; }

  /// True when the key holds a value.
  bool live() const noexcept { return head_.live(); }

  /// Appends a canonical encoding of everything in the entry (versions,
  /// tombstone, fields) to `out`: equal entries give equal bytes.
  void encode_canonical(const node_id_table& ids, std::string& out) const;

  /// The visible field writes, in map order (position, then key).
  const std::vector<field_write>& fields() const noexcept {
    return fields_ ? *fields_ : no_fields;
  }

  /// A hash of every version in the entry (base, tombstone flag, fields):
  /// two replicas hold the same entry exactly when the hashes agree (up to
  /// hash collisions), since a version identifies its write.
  uint64_t version_hash() const noexcept { return hash_; }

  /// The writes that recreate this entry on another replica: the base
  /// (value or tombstone) and one record per field write.
  void export_records(const node_id_table& ids, std::string_view key,
                      std::vector<pb::WriteRecord>& out) const;

private:
  uint64_t compute_hash(const node_id_table& ids) const;

  /// What `fields()` shows for an entry without field writes.
  static const std::vector<field_write> no_fields;

  entry_head head_;
  /// The base value, encoded (empty for a tombstone).
  packed_value base_;
  /// Field writes are rare: a pointer (null when there are none) keeps every
  /// key 16 bytes smaller than an inline vector.
  std::unique_ptr<std::vector<field_write>> fields_;
  uint64_t hash_ = 0;
};

/// Fills reader-facing metadata (owner, time, lease end, version) of a head
/// whose IDs are interned in `ids`.
void to_proto(const node_id_table& ids, const entry_head& head,
              pb::EntryMeta* out);

class store_reader;

/// Sum and count of the version hashes of one bucket of keys.
struct bucket_digest {
  /// Sum (mod 2^64) of the entries' version hashes: order-independent.
  uint64_t hash = 0;
  /// Number of entries, tombstones included.
  uint64_t count = 0;
};

/// The dictionary: entries by key, merged by version, with a digest per
/// bucket of keys kept up to date for anti-entropy. It owns the table its
/// entries' node IDs are interned in, so each store (each node of an
/// in-process mesh too) interns on its own and, touched only by its actor,
/// without a lock.
class store_state {
public:
  /// Buckets of the anti-entropy digest; every node uses this number.
  static constexpr uint32_t digest_buckets = 4096;

  /// A stable 64-bit hash of a key's bytes, the same on every machine.
  static uint64_t key_hash(std::string_view key) noexcept;

  /// The bucket of a key (from its `key_hash`).
  static uint32_t bucket_of(std::string_view key) noexcept {
    return static_cast<uint32_t>(key_hash(key) % digest_buckets);
  }

  store_state() : buckets_(digest_buckets) {}

  /// Detaches the reader this store is published to, if any.
  ~store_state();

  /// Takes over `other`'s entries; `other` stays empty and usable, still
  /// published to its reader (if any), and this store is published to none.
  store_state(store_state&& other) noexcept;

  store_state(const store_state&) = delete;
  store_state& operator=(const store_state&) = delete;
  /// Takes over `other`'s entries (this store's own are dropped); `other`
  /// stays empty and usable. Each keeps the reader it is published to.
  store_state& operator=(store_state&& other) noexcept;

  /// Lets `reader` read this store from other threads from now on: every
  /// change below takes the reader's exclusive lock (see store_reader.hpp).
  /// A store is published to one reader at most; null unpublishes.
  void publish_to(std::shared_ptr<store_reader> reader);

  /// Fills `out` (found, value, metadata) for `key` when it holds a value;
  /// leaves `found` false otherwise.
  void read_into(std::string_view key, pb::GetReply& out) const;

  /// What applying one record did.
  struct outcome {
    /// The record changed the entry (it was new and won).
    bool changed = false;
    /// The key held a value before.
    bool was_live = false;
    /// The key holds a value after.
    bool now_live = false;
    /// The value before, when `was_live` and it was asked for.
    value old_value;
  };

  /// Applies one record whose contents were validated. Returns an
  /// explanation in `error` and changes nothing when a value is malformed.
  outcome apply(const pb::WriteRecord& rec, bool keep_old_value,
                std::string& error);

  /// `apply` with the record's version already read into `v`.
  outcome apply(const pb::WriteRecord& rec, const version& v,
                bool keep_old_value, std::string& error);

  /// The entry at `key`, or nullptr when none (not even a tombstone); valid
  /// until the store changes.
  const store_entry* find(std::string_view key) const;

  /// Hints that `keys[i]` will be looked up soon, for a loop over a batch
  /// at `i - lead`: loads the index slots of keys 2 * lead ahead and the
  /// entries of keys lead ahead, so each lookup finds them in cache.
  template <class Keys>
  void prefetch_ahead(const Keys& keys, int i) const noexcept {
    constexpr int lead = 4;
    if (i + 2 * lead < static_cast<int>(keys.size()))
      entries_.prefetch_slot(keys[i + 2 * lead].key());
    if (i + lead < static_cast<int>(keys.size()))
      entries_.prefetch_record(keys[i + lead].key());
  }

  /// For a local delta about to be stamped: adds to `rec` the origins of
  /// its fields that the entry already holds as field writes, so they keep
  /// their place in the map (fields of the base map keep the base's place
  /// anyway; new fields go after the existing ones, in the order given).
  void add_field_origins(pb::WriteRecord& rec) const;

  /// Number of keys that hold a value.
  size_t live_count() const noexcept { return live_count_; }

  /// Sizes the key table for `n` entries (no rehash pauses below that).
  void reserve(size_t n);

  /// Number of entries including tombstones.
  size_t entry_count() const noexcept { return entries_.size(); }

  /// Removes tombstones; ignores keys that hold a value.
  size_t purge(const std::vector<std::string>& keys);

  /// Keys holding a value, sorted bytewise, optionally filtered by prefix;
  /// the views are valid until the store changes.
  std::vector<std::string_view>
  sorted_live_keys(std::string_view prefix, size_t limit,
                   std::string_view start_after = {}) const;

  /// A canonical encoding of the whole store, keys sorted: replicas holding
  /// the same entries give identical bytes.
  std::string canonical_bytes() const;

  /// Every entry (tombstones included) as the records that recreate it,
  /// sorted by key: what a checker needs to compare replicas key by key.
  pb::WriteBatch export_all() const;

  /// Every entry, for iteration: yields (key as std::string_view, entry).
  const key_table<store_entry>& entries() const noexcept { return entries_; }

  /// The digest of every bucket.
  const std::vector<bucket_digest>& buckets() const noexcept {
    return buckets_;
  }

  /// The table the entries' node IDs are interned in: pass it to whatever
  /// reads their versions (entry_head::newest, owner, to_proto...).
  const node_id_table& ids() const noexcept { return ids_; }

  /// Recounts the references every entry holds and checks them against the
  /// table (no leak, no ID kept without a holder): linear in the keys, for
  /// tests and debug checks.
  bool audit_node_ids() const;

private:
  void forget_digest(std::string_view key, const store_entry& entry);

  /// The reader this store is published to (null when none).
  std::shared_ptr<store_reader> reader_;

  /// Declared before `entries_`, so it is destroyed after every entry that
  /// refers to it.
  node_id_table ids_;
  key_table<store_entry> entries_;
  std::vector<bucket_digest> buckets_;
  size_t live_count_ = 0;
};

} // namespace syncmesh
