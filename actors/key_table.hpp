#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <new>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "messages/keyed_hash.hpp"

namespace syncmesh {

/// A byte-string key in 16 bytes: up to 15 bytes inline, longer keys in one
/// heap block of exactly their size. A std::string takes 32 bytes and, past
/// 15 bytes, a heap block rounded up to the allocator's size class.
class packed_key {
public:
  /// The empty key.
  packed_key() noexcept { bytes_[last] = 0; }

  /// Copies `bytes`.
  explicit packed_key(std::string_view bytes) {
    if (bytes.size() <= max_inline) {
      std::memcpy(bytes_, bytes.data(), bytes.size());
      bytes_[last] = static_cast<char>(bytes.size());
    } else {
      heap_ref ref{new char[bytes.size()], static_cast<uint32_t>(bytes.size())};
      std::memcpy(ref.data, bytes.data(), bytes.size());
      std::memcpy(bytes_, &ref, sizeof(ref));
      bytes_[last] = heap_marker;
    }
  }

  packed_key(const packed_key&) = delete;
  packed_key& operator=(const packed_key&) = delete;

  /// Takes over `other`'s bytes; `other` becomes empty.
  packed_key(packed_key&& other) noexcept {
    std::memcpy(bytes_, other.bytes_, sizeof(bytes_));
    other.bytes_[last] = 0;
  }

  /// Takes over `other`'s bytes; `other` becomes empty.
  packed_key& operator=(packed_key&& other) noexcept {
    if (this != &other) {
      release();
      std::memcpy(bytes_, other.bytes_, sizeof(bytes_));
      other.bytes_[last] = 0;
    }
    return *this;
  }

  ~packed_key() { release(); }

  /// The key's bytes.
  std::string_view view() const noexcept {
    if (on_heap()) {
      auto ref = heap();
      return {ref.data, ref.size};
    }
    return {bytes_, static_cast<size_t>(bytes_[last])};
  }

  /// Most bytes kept inline.
  static constexpr size_t max_inline = 15;

private:
  /// A long key's block; it sits in the first 12 bytes of `bytes_`.
  struct heap_ref {
    char* data;
    uint32_t size;
  };

  static constexpr size_t last = 15;
  static constexpr char heap_marker = static_cast<char>(0x80);

  bool on_heap() const noexcept { return bytes_[last] == heap_marker; }

  heap_ref heap() const noexcept {
    heap_ref ref;
    std::memcpy(&ref, bytes_, sizeof(ref));
    return ref;
  }

  void release() noexcept {
    if (on_heap())
      delete[] heap().data;
  }

  /// Inline: the bytes, then their count in the last byte. On the heap: a
  /// heap_ref, then `heap_marker` in the last byte.
  alignas(8) char bytes_[16];
};

static_assert(sizeof(packed_key) == 16);

/// A hash table from byte-string keys to `T`, built for millions of small
/// entries: the entries sit densely in fixed-size chunks (no per-entry
/// allocation, no allocator rounding, never moved by growth) and an
/// open-addressing index of 8-byte slots (linear probing, at most 4/5 full)
/// finds them. Per entry that is `sizeof(T)` + 16 key bytes + about 10 index
/// bytes, against ~70 bytes of node, key and bucket overhead in a
/// std::unordered_map. Erasing moves the last entry into the hole, so
/// references to entries are valid only until the next insert or erase.
/// Growing the index rehashes no key (slots keep 32 bits of the hash).
/// Keys come from peers, so the hash is keyed with a random seed (by
/// default this process's): nobody can pick keys that share probe runs.
template <class T>
class key_table {
public:
  /// One key and its entry.
  struct record {
    /// The key.
    packed_key key;
    /// The entry.
    T entry;
  };

  /// Iterates records in storage order (not sorted, not insertion order).
  template <bool Const>
  class basic_iterator {
  public:
    using table_type = std::conditional_t<Const, const key_table, key_table>;
    using entry_type = std::conditional_t<Const, const T, T>;
    /// What iteration yields: the key and a reference to its entry.
    using value_type = std::pair<std::string_view, entry_type&>;

    /// Iterator at position `pos` of `table`.
    basic_iterator(table_type* table, size_t pos) : table_(table), pos_(pos) {}

    /// The key and entry here.
    value_type operator*() const {
      auto& rec = table_->at(pos_);
      return {rec.key.view(), rec.entry};
    }

    /// Steps to the next record.
    basic_iterator& operator++() {
      ++pos_;
      return *this;
    }

    /// Same position.
    bool operator==(const basic_iterator& other) const {
      return pos_ == other.pos_;
    }

    /// Different position.
    bool operator!=(const basic_iterator& other) const {
      return pos_ != other.pos_;
    }

  private:
    table_type* table_;
    size_t pos_;
  };

  /// Mutable iterator. Iterators are positions: inserting or erasing
  /// invalidates them (erasing moves the last record into the hole), so
  /// collect keys first and erase after the loop.
  using iterator = basic_iterator<false>;
  /// Read-only iterator.
  using const_iterator = basic_iterator<true>;

  /// An empty table hashing with this process's seed.
  key_table() : key_table(process_hash_seed()) {}

  /// An empty table hashing with `seed`.
  explicit key_table(uint64_t seed) noexcept : seed_(seed) {}

  key_table(const key_table&) = delete;
  key_table& operator=(const key_table&) = delete;
  /// Takes over `other`'s entries.
  key_table(key_table&& other) noexcept { swap(other); }
  /// Takes over `other`'s entries.
  key_table& operator=(key_table&& other) noexcept {
    if (this != &other) {
      clear();
      swap(other);
    }
    return *this;
  }

  ~key_table() { clear(); }

  /// Number of entries.
  size_t size() const noexcept { return size_; }

  /// True when there is no entry.
  bool empty() const noexcept { return size_ == 0; }

  /// Sizes the index for `n` entries, so it does not grow below that.
  void reserve(size_t n) {
    if (n > max_load(slots_.size()))
      rebuild_index(capacity_for(n));
  }

  /// The entry at `key`, or nullptr.
  T* find(std::string_view key) noexcept {
    auto slot = find_slot(key, hash_of(key));
    return slot == npos ? nullptr : &at(slots_[slot].pos - 1).entry;
  }

  /// The entry at `key`, or nullptr.
  const T* find(std::string_view key) const noexcept {
    return const_cast<key_table*>(this)->find(key);
  }

  /// Starts loading, without waiting, the index slot where `key` is looked
  /// for: a find() of it a few keys later then finds the slot in cache. A
  /// hint; nothing changes. With a million keys the table is far larger
  /// than the caches and each find waits for memory twice (slot, record).
  void prefetch_slot(std::string_view key) const noexcept {
    if (!slots_.empty())
      __builtin_prefetch(&slots_[home(hash_of(key))]);
  }

  /// Starts loading the record of `key` as its slot (best prefetched by
  /// prefetch_slot a few keys before) names it; nothing when absent.
  void prefetch_record(std::string_view key) const noexcept {
    if (slots_.empty())
      return;
    auto tag = hash_of(key);
    for (auto i = home(tag);; i = next(i)) {
      const auto& s = slots_[i];
      if (s.pos == 0)
        return;
      if (s.tag == tag) {
        __builtin_prefetch(&at(s.pos - 1));
        return;
      }
    }
  }

  /// The entry at `key`, default-constructed first when absent; the flag
  /// says whether it was added.
  std::pair<T*, bool> try_emplace(std::string_view key) {
    auto tag = hash_of(key);
    if (auto slot = find_slot(key, tag); slot != npos)
      return {&at(slots_[slot].pos - 1).entry, false};
    if (size_ + 1 > max_load(slots_.size()))
      rebuild_index(capacity_for(2 * size_ + 1));
    auto pos = size_;
    if (pos / chunk_size == chunks_.size())
      chunks_.push_back(std::make_unique<chunk>());
    new (&at(pos)) record{packed_key{key}, T{}};
    ++size_;
    place(tag, static_cast<uint32_t>(pos + 1));
    return {&at(pos).entry, true};
  }

  /// Removes `key`; returns whether it was there.
  bool erase(std::string_view key) {
    auto slot = find_slot(key, hash_of(key));
    if (slot == npos)
      return false;
    auto pos = slots_[slot].pos - 1;
    remove_slot(slot);
    auto last = size_ - 1;
    if (pos != last) {
      // Fill the hole with the last record and point its slot at the hole.
      auto& moved = at(last);
      auto moved_slot = find_slot(moved.key.view(), hash_of(moved.key.view()));
      slots_[moved_slot].pos = static_cast<uint32_t>(pos + 1);
      at(pos) = std::move(moved);
    }
    at(last).~record();
    --size_;
    if (size_ % chunk_size == 0 && size_ / chunk_size + 1 < chunks_.size())
      chunks_.pop_back(); // keep one spare chunk against insert/erase churn
    return true;
  }

  /// Removes every entry and frees all memory.
  void clear() noexcept {
    for (size_t i = 0; i < size_; ++i)
      at(i).~record();
    size_ = 0;
    chunks_.clear();
    slots_.clear();
    slots_.shrink_to_fit();
  }

  /// First record.
  iterator begin() noexcept { return {this, 0}; }
  /// Past the last record.
  iterator end() noexcept { return {this, size_}; }
  /// First record.
  const_iterator begin() const noexcept { return {this, 0}; }
  /// Past the last record.
  const_iterator end() const noexcept { return {this, size_}; }

  /// The 32 bits of `key`'s keyed hash that choose its slot (for tests).
  uint32_t tag_of(std::string_view key) const noexcept { return hash_of(key); }

  /// Bytes held by the table itself (chunks and index, not heap blocks that
  /// the entries or long keys own).
  size_t footprint() const noexcept {
    return chunks_.size() * sizeof(chunk) + slots_.size() * sizeof(slot);
  }

private:
  /// Records per chunk: as many as fit in 64 KiB, one of the allocator's
  /// size classes, so no chunk is rounded up; large enough that the chunk
  /// table is negligible.
  static constexpr size_t chunk_size
    = std::max<size_t>(1, 65536 / sizeof(record));
  static constexpr size_t npos = static_cast<size_t>(-1);

  struct chunk {
    alignas(record) unsigned char bytes[sizeof(record) * chunk_size];
  };

  /// An index slot: where the record is (+1; 0 marks a free slot) and the
  /// high 32 bits of its key's hash, which choose its home slot and reject
  /// most mismatches without touching the record.
  struct slot {
    uint32_t pos = 0;
    uint32_t tag = 0;
  };

  uint32_t hash_of(std::string_view key) const noexcept {
    return static_cast<uint32_t>(keyed_hash(key, seed_) >> 32);
  }

  static size_t max_load(size_t capacity) noexcept { return capacity / 5 * 4; }

  /// The smallest capacity that holds `n` entries: any size will do (see
  /// `home`), so a reserved table wastes no power-of-two headroom.
  static size_t capacity_for(size_t n) noexcept {
    return std::max<size_t>(20, n / 4 * 5 + 5);
  }

  /// The slot a tag starts probing at: the tag scaled onto the capacity,
  /// which needs no power-of-two capacity.
  size_t home(uint32_t tag) const noexcept {
    return static_cast<size_t>((static_cast<uint64_t>(tag) * slots_.size())
                               >> 32);
  }

  size_t next(size_t i) const noexcept {
    return i + 1 == slots_.size() ? 0 : i + 1;
  }

  record& at(size_t pos) noexcept {
    return reinterpret_cast<record*>(
      chunks_[pos / chunk_size]->bytes)[pos % chunk_size];
  }

  const record& at(size_t pos) const noexcept {
    return const_cast<key_table*>(this)->at(pos);
  }

  size_t find_slot(std::string_view key, uint32_t tag) const noexcept {
    if (slots_.empty())
      return npos;
    for (auto i = home(tag);; i = next(i)) {
      const auto& s = slots_[i];
      if (s.pos == 0)
        return npos;
      if (s.tag == tag && at(s.pos - 1).key.view() == key)
        return i;
    }
  }

  void place(uint32_t tag, uint32_t pos) noexcept {
    auto i = home(tag);
    while (slots_[i].pos != 0)
      i = next(i);
    slots_[i] = slot{pos, tag};
  }

  /// Frees slot `i` by shifting later members of its probe run back, so
  /// lookups need no tombstones.
  void remove_slot(size_t i) noexcept {
    for (auto j = next(i);; j = next(j)) {
      if (slots_[j].pos == 0)
        break;
      auto k = home(slots_[j].tag);
      // Slot j may stay when its home lies cyclically in (i, j].
      bool stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
      if (stays)
        continue;
      slots_[i] = slots_[j];
      i = j;
    }
    slots_[i] = slot{};
  }

  void rebuild_index(size_t capacity) {
    // Allocate first: if that throws, the table is unchanged.
    std::vector<slot> fresh(capacity, slot{});
    fresh.swap(slots_);
    for (const auto& s : fresh)
      if (s.pos != 0)
        place(s.tag, s.pos);
  }

  void swap(key_table& other) noexcept {
    std::swap(chunks_, other.chunks_);
    std::swap(slots_, other.slots_);
    std::swap(size_, other.size_);
    std::swap(seed_, other.seed_);
  }

  std::vector<std::unique_ptr<chunk>> chunks_;
  std::vector<slot> slots_;
  size_t size_ = 0;
  /// Seed of the keyed hash: the slots' tags depend on it.
  uint64_t seed_ = 0;
};

} // namespace syncmesh
