#include "actors/store_state.hpp"

#include <algorithm>
#include <mutex>

#include "actors/store_reader.hpp"
#include "messages/value_proto.hpp"
#include "syncmesh/pb/entry.pb.h"
#include "syncmesh/pb/requests.pb.h"

namespace syncmesh {

namespace {

bool field_order(const field_write& x, const field_write& y) {
  if (auto c = compare(x.pos, y.pos))
    return c < 0;
  if (x.key.is_text != y.key.is_text)
    return x.key.is_text;
  return x.key.data < y.key.data;
}

void encode_position(std::string& out, const field_position& p) {
  put_u64(out, p.stamp.wall_us);
  put_u64(out, p.stamp.counter);
  put_blob(out, p.stamp.node);
  put_u64(out, p.index);
}

void encode_version(std::string& out, const version& v) {
  put_u64(out, v.epoch);
  put_u64(out, v.claim_us);
  put_blob(out, v.claimer);
  put_u64(out, v.stamp.wall_us);
  put_u64(out, v.stamp.counter);
  put_blob(out, v.stamp.node);
  put_u64(out, v.lease_end_us);
}

/// encode_version's bytes for a version as the store keeps it, its IDs read
/// from `ids`: the same bytes without copying the IDs into a `version`.
void encode_version(std::string& out, const node_id_table& ids,
                    const packed_version& v) {
  put_u64(out, v.epoch);
  put_u64(out, v.claim_us);
  put_blob(out, ids.bytes(v.claimer));
  put_u64(out, v.wall_us);
  put_u64(out, v.counter);
  put_blob(out, ids.bytes(v.node));
  put_u64(out, v.lease_end_us);
}

/// FNV-1a, then a strong finalizer: stable across machines and builds.
uint64_t hash_bytes(std::string_view xs) noexcept {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : xs) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ull;
  h ^= h >> 33;
  return h;
}

/// The exclusive lock of `reader` for one change of the store (none when
/// the store is not published: tests, the simulator).
std::unique_lock<store_reader>
write_lock(const std::shared_ptr<store_reader>& reader) {
  return reader ? std::unique_lock<store_reader>{*reader}
                : std::unique_lock<store_reader>{};
}

} // namespace

const std::vector<field_write> store_entry::no_fields;

int compare(const field_position& x, const field_position& y) noexcept {
  if (auto c = compare(x.stamp, y.stamp))
    return c;
  return x.index < y.index ? -1 : (x.index > y.index ? 1 : 0);
}

std::string read_field_positions(const pb::WriteRecord& rec, const version& v,
                                 std::vector<field_position>& out) {
  const auto count = static_cast<size_t>(rec.fields().entries_size());
  out.clear();
  out.reserve(count);
  for (size_t n = 0; n < count; ++n)
    out.push_back(field_position{v.stamp, static_cast<uint32_t>(n)});
  std::vector<bool> given(count, false);
  for (const auto& origin : rec.field_origins()) {
    if (origin.field() >= count)
      return "field origin names field " + std::to_string(origin.field())
             + " of " + std::to_string(count);
    if (given[origin.field()])
      return "field origin given twice for field "
             + std::to_string(origin.field());
    given[origin.field()] = true;
    const auto& stamp = origin.stamp();
    if (stamp.node().empty() || stamp.node().size() > max_node_id_size)
      return "field origin stamp names no valid node";
    if (stamp.wall_us() == 0 || stamp.wall_us() > max_version_time_us)
      return "field origin stamp time out of range";
    auto& pos = out[origin.field()];
    pos.stamp.wall_us = stamp.wall_us();
    pos.stamp.counter = stamp.counter();
    pos.stamp.node = stamp.node();
    pos.index = origin.index();
  }
  return {};
}

uint64_t store_state::key_hash(std::string_view key) noexcept {
  return hash_bytes(key);
}

uint64_t store_entry::compute_hash(const node_id_table& ids) const {
  // Once per applied write: one buffer per thread, reused, instead of a
  // string and two ID copies allocated each time (chain3 profile).
  thread_local std::string bytes;
  bytes.clear();
  bytes += head_.has_base() ? 'B' : '-';
  if (head_.has_base()) {
    encode_version(bytes, ids, head_.packed_base());
    bytes += head_.base_tombstone() ? 'T' : 'V';
  }
  for (const auto& f : fields()) {
    bytes += f.key.is_text ? 't' : 'b';
    put_blob(bytes, f.key.data);
    encode_version(bytes, f.ver);
    encode_position(bytes, f.pos);
  }
  auto hash = hash_bytes(bytes);
  // An entry with many fields leaves no large buffer behind.
  if (bytes.capacity() > (64 << 10))
    std::string{}.swap(bytes);
  return hash;
}

void store_entry::export_records(const node_id_table& ids, std::string_view key,
                                 std::vector<pb::WriteRecord>& out) const {
  if (head_.has_base()) {
    pb::WriteRecord rec;
    rec.set_key(key.data(), key.size());
    to_proto(head_.base_version(ids), rec.mutable_version());
    if (head_.base_tombstone())
      rec.mutable_tombstone();
    else
      to_proto(base_.decode(), rec.mutable_value());
    out.push_back(std::move(rec));
  }
  for (const auto& f : fields()) {
    pb::WriteRecord rec;
    rec.set_key(key.data(), key.size());
    to_proto(f.ver, rec.mutable_version());
    auto* entry = rec.mutable_fields()->add_entries();
    to_proto(f.key, entry->mutable_key());
    to_proto(f.val, entry->mutable_value());
    if (f.pos.index != 0 || compare(f.pos.stamp, f.ver.stamp) != 0) {
      auto* origin = rec.add_field_origins();
      origin->set_field(0);
      to_proto(f.pos.stamp, origin->mutable_stamp());
      origin->set_index(f.pos.index);
    }
    out.push_back(std::move(rec));
  }
}

void store_state::forget_digest(std::string_view key,
                                const store_entry& entry) {
  auto& bucket = buckets_[bucket_of(key)];
  bucket.hash -= entry.version_hash();
  --bucket.count;
}

bool store_entry::apply_base(node_id_table& ids, const version& v,
                             bool tombstone, const value& val) {
  if (!head_.accepts_base(ids, v))
    return false;
  bool is_map = !tombstone && val.is_map();
  if (head_.set_base(ids, v, tombstone, is_map) && fields_) {
    fields_->erase(
      std::remove_if(fields_->begin(), fields_->end(),
                     [&v](const field_write& f) { return !newer(f.ver, v); }),
      fields_->end());
    if (fields_->empty())
      fields_.reset();
  } else {
    fields_.reset();
  }
  base_ = tombstone ? packed_value{} : packed_value::encode(val);
  hash_ = compute_hash(ids);
  return true;
}

bool store_entry::apply_fields(node_id_table& ids, const version& v,
                               const value_map& fields,
                               const std::vector<field_position>& pos) {
  if (!head_.field_visible(ids, v))
    return false;
  bool changed = false;
  if (!fields_)
    fields_ = std::make_unique<std::vector<field_write>>();
  for (size_t n = 0; n < fields.size(); ++n) {
    const auto& item = fields[n];
    const auto here = pos.empty()
                        ? field_position{v.stamp, static_cast<uint32_t>(n)}
                        : pos[n];
    auto i = std::find_if(
      fields_->begin(), fields_->end(),
      [&item](const field_write& f) { return f.key == item.key; });
    if (i == fields_->end()) {
      fields_->push_back(field_write{item.key, item.val, v, here});
      changed = true;
    } else if (newer(v, i->ver)) {
      // The position is the winning write's, like the value.
      i->val = item.val;
      i->ver = v;
      i->pos = here;
      changed = true;
    }
  }
  if (changed) {
    head_.note_field(ids, v);
    std::sort(fields_->begin(), fields_->end(), field_order);
    hash_ = compute_hash(ids);
  } else if (fields_->empty()) {
    fields_.reset();
  }
  return changed;
}

value store_entry::read() const {
  auto base = head_.base_tombstone() ? value{} : base_.decode();
  if (!fields_)
    return base;
  auto result = base.is_map() ? std::move(base) : value::empty_map();
  for (const auto& f : *fields_)
    result.insert_or_assign(f.key, f.val);
  return result;
}

void store_entry::encode_canonical(const node_id_table& ids,
                                   std::string& out) const {
  out += head_.has_base() ? 'B' : '-';
  if (head_.has_base()) {
    encode_version(out, head_.base_version(ids));
    out += head_.base_tombstone() ? 'T' : 'V';
    if (!head_.base_tombstone())
      out += base_.canonical(); // stored in exactly this encoding
  }
  put_u64(out, fields().size());
  for (const auto& f : fields()) {
    out += f.key.is_text ? 't' : 'b';
    put_blob(out, f.key.data);
    encode_version(out, f.ver);
    encode_position(out, f.pos);
    syncmesh::encode_canonical(f.val, out);
  }
}

void to_proto(const node_id_table& ids, const entry_head& head,
              pb::EntryMeta* out) {
  const auto newest = head.newest(ids);
  out->set_owner(head.owner(ids));
  out->set_time_us(newest.stamp.wall_us);
  out->set_lease_end_us(head.lease_end_us());
  to_proto(newest, out->mutable_version());
}

store_state::~store_state() {
  publish_to(nullptr);
}

store_state::store_state(store_state&& other) noexcept
    : buckets_(digest_buckets) {
  auto lock = write_lock(other.reader_);
  ids_ = std::move(other.ids_);
  other.ids_ = node_id_table{}; // a moved-from table is only assignable
  entries_ = std::move(other.entries_);
  buckets_.swap(other.buckets_);
  live_count_ = other.live_count_;
  other.live_count_ = 0;
}

store_state& store_state::operator=(store_state&& other) noexcept {
  if (this == &other)
    return *this;
  auto mine = write_lock(reader_);
  auto theirs = write_lock(other.reader_);
  for (auto&& [key, entry] : entries_)
    entry.release(ids_);
  entries_ = key_table<store_entry>{};
  ids_ = std::move(other.ids_);
  other.ids_ = node_id_table{};
  entries_ = std::move(other.entries_);
  buckets_.swap(other.buckets_);
  other.buckets_.assign(digest_buckets, bucket_digest{});
  live_count_ = other.live_count_;
  other.live_count_ = 0;
  return *this;
}

void store_state::publish_to(std::shared_ptr<store_reader> reader) {
  if (reader_) {
    auto lock = write_lock(reader_);
    reader_->store_ = nullptr;
  }
  reader_ = std::move(reader);
  if (reader_) {
    auto lock = write_lock(reader_);
    reader_->store_ = this;
  }
}

void store_state::read_into(std::string_view key, pb::GetReply& out) const {
  const auto* entry = find(key);
  if (entry == nullptr || !entry->live())
    return;
  out.set_found(true);
  to_proto(entry->read(), out.mutable_value());
  to_proto(ids_, entry->head(), out.mutable_meta());
}

store_state::outcome store_state::apply(const pb::WriteRecord& rec,
                                        bool keep_old_value,
                                        std::string& error) {
  version v;
  if (error = from_proto(rec.version(), v); !error.empty())
    return outcome{};
  return apply(rec, v, keep_old_value, error);
}

store_state::outcome store_state::apply(const pb::WriteRecord& rec,
                                        const version& v, bool keep_old_value,
                                        std::string& error) {
  outcome result;
  // Convert before touching the entry, so bad input changes nothing.
  value val;
  value_map fields;
  std::vector<field_position> positions;
  switch (rec.op_case()) {
    case pb::WriteRecord::kValue:
      // Checked against the configured depth where it came in.
      error = from_proto(rec.value(), val, max_value_depth_ceiling);
      break;
    case pb::WriteRecord::kFields:
      error = from_proto(rec.fields(), fields, max_value_depth_ceiling);
      if (error.empty())
        error = read_field_positions(rec, v, positions);
      break;
    case pb::WriteRecord::kTombstone:
      break;
    default:
      error = "write record has no operation";
  }
  if (!error.empty())
    return result;
  auto lock = write_lock(reader_);
  auto [slot, added] = entries_.try_emplace(rec.key());
  auto& entry = *slot;
  // The digest is updated only when the entry changes; capture it first.
  auto old_hash = entry.version_hash();
  result.was_live = entry.live();
  if (result.was_live && keep_old_value)
    result.old_value = entry.read();
  switch (rec.op_case()) {
    case pb::WriteRecord::kValue:
      result.changed = entry.apply_base(ids_, v, false, std::move(val));
      break;
    case pb::WriteRecord::kTombstone:
      result.changed = entry.apply_base(ids_, v, true, value{});
      break;
    default:
      result.changed = entry.apply_fields(ids_, v, fields, positions);
  }
  result.now_live = entry.live();
  if (result.was_live != result.now_live)
    live_count_ += result.now_live ? 1 : size_t(-1);
  if (added && !result.changed) {
    entry.release(ids_); // holds nothing yet; released all the same
    entries_.erase(rec.key());
  } else if (result.changed) {
    auto& bucket = buckets_[bucket_of(rec.key())];
    if (added)
      ++bucket.count;
    bucket.hash += entry.version_hash() - old_hash;
  }
  return result;
}

void store_state::reserve(size_t n) {
  auto lock = write_lock(reader_);
  entries_.reserve(n);
}

const store_entry* store_state::find(std::string_view key) const {
  return entries_.find(key);
}

void store_state::add_field_origins(pb::WriteRecord& rec) const {
  const auto* entry = find(rec.key());
  if (entry == nullptr || entry->fields().empty() || !rec.has_fields())
    return;
  rec.clear_field_origins();
  const auto& items = rec.fields().entries();
  for (int n = 0; n < items.size(); ++n) {
    map_key key;
    if (!from_proto(items[n].key(), key).empty())
      continue; // refused when applied
    for (const auto& f : entry->fields())
      if (f.key == key) {
        auto* origin = rec.add_field_origins();
        origin->set_field(static_cast<uint32_t>(n));
        to_proto(f.pos.stamp, origin->mutable_stamp());
        origin->set_index(f.pos.index);
        break;
      }
  }
}

size_t store_state::purge(const std::vector<std::string>& keys) {
  auto lock = write_lock(reader_);
  size_t removed = 0;
  for (const auto& key : keys) {
    auto* entry = entries_.find(key);
    if (entry != nullptr && !entry->live()) {
      forget_digest(key, *entry);
      entry->release(ids_);
      entries_.erase(key);
      ++removed;
    }
  }
  return removed;
}

std::vector<std::string_view>
store_state::sorted_live_keys(std::string_view prefix, size_t limit,
                              std::string_view start_after) const {
  std::vector<std::string_view> result;
  for (const auto& [key, entry] : entries_)
    if (entry.live() && key.substr(0, prefix.size()) == prefix
        && (start_after.empty() || key > start_after))
      result.push_back(key);
  auto by_bytes = [](std::string_view x, std::string_view y) {
    return x < y;
  };
  if (limit > 0 && limit < result.size()) {
    std::partial_sort(result.begin(), result.begin() + limit, result.end(),
                      by_bytes);
    result.resize(limit);
  } else {
    std::sort(result.begin(), result.end(), by_bytes);
  }
  return result;
}

namespace {

template <class Map>
std::vector<std::string_view> sorted_keys(const Map& entries) {
  std::vector<std::string_view> keys;
  keys.reserve(entries.size());
  for (const auto& kv : entries)
    keys.push_back(kv.first);
  std::sort(keys.begin(), keys.end());
  return keys;
}

} // namespace

pb::WriteBatch store_state::export_all() const {
  std::vector<pb::WriteRecord> records;
  for (auto key : sorted_keys(entries_))
    entries_.find(key)->export_records(ids_, key, records);
  pb::WriteBatch batch;
  batch.mutable_records()->Reserve(static_cast<int>(records.size()));
  for (auto& rec : records)
    *batch.add_records() = std::move(rec);
  return batch;
}

std::string store_state::canonical_bytes() const {
  auto keys = sorted_keys(entries_);
  std::string out;
  for (auto key : keys) {
    put_blob(out, key);
    entries_.find(key)->encode_canonical(ids_, out);
  }
  return out;
}

bool store_state::audit_node_ids() const {
  std::vector<uint64_t> counted(ids_.ref_bound(), 0);
  auto count = [&](const packed_version& v) {
    for (auto ref : {v.claimer, v.node})
      if (ref != 0) {
        if (ref >= counted.size() || ids_.references(ref) == 0)
          return false; // a ref the table forgot (or never made)
        ++counted[ref];
      }
    return true;
  };
  for (const auto& kv : entries_) {
    const auto& head = kv.second.head();
    if (!count(head.packed_base()))
      return false;
    if (const auto* top = head.packed_top_field(); top && !count(*top))
      return false;
  }
  size_t referenced = 1; // the empty ID
  for (size_t ref = 1; ref < counted.size(); ++ref) {
    if (counted[ref] != ids_.references(static_cast<node_ref>(ref)))
      return false;
    referenced += counted[ref] > 0 ? 1 : 0;
  }
  return referenced == ids_.size();
}

} // namespace syncmesh
