#include "actors/anti_entropy.hpp"

#include <algorithm>
#include <cmath>
#include <unordered_map>
#include <unordered_set>

#include "actors/set_sketch.hpp"
#include "actors/store_state.hpp"
#include "messages/keyed_hash.hpp"
#include "messages/version.hpp"
#include "syncmesh/config.hpp"
#include "syncmesh/pb/wire.pb.h"

namespace syncmesh {

namespace {

constexpr uint32_t bucket_count = store_state::digest_buckets;

/// A peer's SUMMARY, read from either form.
struct peer_summary {
  std::vector<uint64_t> hashes = std::vector<uint64_t>(bucket_count);
  std::vector<uint64_t> counts = std::vector<uint64_t>(bucket_count);
  /// The dense form carries no counts: buckets differ by hash alone there.
  bool has_counts = true;

  explicit peer_summary(const pb::Digest& theirs) {
    if (theirs.dense_hashes_size() > 0) {
      has_counts = false;
      auto n = std::min<size_t>(
        bucket_count, static_cast<size_t>(theirs.dense_hashes_size()));
      for (size_t i = 0; i < n; ++i)
        hashes[i] = theirs.dense_hashes(static_cast<int>(i));
      return;
    }
    for (const auto& b : theirs.buckets())
      if (b.bucket() < bucket_count) {
        hashes[b.bucket()] = b.hash();
        counts[b.bucket()] = b.count();
      }
  }

  bool empty(uint32_t bucket) const noexcept {
    return has_counts ? counts[bucket] == 0 : hashes[bucket] == 0;
  }
};

} // namespace

void make_summary(const store_state& store, pb::Digest& out,
                  ae_skip_memory* skipped) {
  out.set_stage(pb::Digest::SUMMARY);
  out.set_bucket_count(bucket_count);
  std::vector<bucket_digest> adjusted;
  if (skipped != nullptr && !skipped->empty()) {
    adjusted = store.buckets();
    skipped->adjust_buckets(store, adjusted);
  }
  const auto& buckets = adjusted.empty() ? store.buckets() : adjusted;
  size_t used = 0;
  for (const auto& b : buckets)
    used += b.count > 0 ? 1 : 0;
  // A listed bucket costs ~16 bytes, a dense one 8.
  if (used * 2 > bucket_count) {
    for (const auto& b : buckets)
      out.add_dense_hashes(b.hash);
    return;
  }
  for (uint32_t i = 0; i < buckets.size(); ++i) {
    if (buckets[i].count == 0)
      continue;
    auto* b = out.add_buckets();
    b->set_bucket(i);
    b->set_hash(buckets[i].hash);
    b->set_count(buckets[i].count);
  }
}

uint64_t element_id(uint64_t key_hash, uint64_t version_hash) noexcept {
  auto v = version_hash ^ (key_hash * 0x9e3779b97f4a7c15ull);
  v ^= v >> 29;
  v *= 0xbf58476d1ce4e5b9ull;
  v ^= v >> 32;
  return (key_hash << 32) | (v & 0xffffffffull);
}

namespace {

/// The buckets in which `other` and `mine` differ.
std::vector<uint32_t>
differing_buckets(const peer_summary& other,
                  const std::vector<bucket_digest>& mine) {
  std::vector<uint32_t> result;
  for (uint32_t i = 0; i < bucket_count; ++i)
    if (mine[i].hash != other.hashes[i]
        || (other.has_counts && mine[i].count != other.counts[i]))
      result.push_back(i);
  return result;
}

} // namespace

std::vector<uint32_t> differing_buckets(const pb::Digest& theirs,
                                        const store_state& store) {
  return differing_buckets(peer_summary{theirs}, store.buckets());
}

namespace {

/// Splits `buckets` (from differing_buckets) into those the peer's SUMMARY
/// shows empty and the rest.
void split_by_peer_empty(const peer_summary& other,
                         const std::vector<uint32_t>& buckets,
                         std::vector<uint32_t>& peer_empty,
                         std::vector<uint32_t>& to_compare) {
  for (auto b : buckets)
    (other.empty(b) ? peer_empty : to_compare).push_back(b);
}

/// One flag per bucket, set for `buckets`.
std::vector<bool> bucket_flags(const std::vector<uint32_t>& buckets) {
  std::vector<bool> flags(bucket_count, false);
  for (auto b : buckets)
    if (b < bucket_count)
      flags[b] = true;
  return flags;
}

/// The SKETCH bucket mask: one bit per bucket.
std::string mask_of(const std::vector<uint32_t>& buckets) {
  std::string mask(bucket_count / 8, '\0');
  for (auto b : buckets)
    mask[b / 8] = static_cast<char>(mask[b / 8] | (1 << (b % 8)));
  return mask;
}

/// The buckets a SKETCH mask names; empty when the mask is malformed.
std::vector<uint32_t> buckets_of(const std::string& mask) {
  std::vector<uint32_t> result;
  if (mask.size() != bucket_count / 8)
    return result;
  for (uint32_t b = 0; b < bucket_count; ++b)
    if (static_cast<unsigned char>(mask[b / 8]) & (1u << (b % 8)))
      result.push_back(b);
  return result;
}

/// The version hash presented for `entry` at `key`: see ae_skip_memory.
uint64_t presented(ae_skip_memory& skipped, std::string_view key,
                   const store_entry& entry) {
  return skipped.empty() ? entry.version_hash()
                         : skipped.presented_hash(key, entry);
}

/// The sketch of the store's entries in `buckets`, the peer's skipped
/// records presented as held.
set_sketch sketch_of(const store_state& store,
                     const std::vector<uint32_t>& buckets, size_t cells,
                     ae_skip_memory& skipped) {
  auto wanted = bucket_flags(buckets);
  set_sketch sketch{cells};
  for (const auto& [key, entry] : store.entries()) {
    auto h = store_state::key_hash(key);
    if (wanted[h % bucket_count])
      sketch.add(element_id(h, presented(skipped, key, entry)));
  }
  if (!skipped.empty())
    for (const auto& [key, hash] : skipped.absent_keys(store)) {
      auto h = store_state::key_hash(key);
      if (wanted[h % bucket_count])
        sketch.add(element_id(h, hash));
    }
  return sketch;
}

/// Node IDs of one OFFERS digest, each listed once.
class node_table {
public:
  explicit node_table(pb::Digest& digest) : digest_(digest) {}

  /// The index + 1 of `id` in the digest's node list; 0 for an empty ID.
  uint32_t index(const raw_node_id& id) {
    if (id.empty())
      return 0;
    auto [i, added]
      = indices_.emplace(id, static_cast<uint32_t>(digest_.nodes_size() + 1));
    if (added)
      digest_.add_nodes(id);
    return i->second;
  }

private:
  pb::Digest& digest_;
  std::unordered_map<raw_node_id, uint32_t, keyed_hasher> indices_;
};

void to_compact(const version& v, node_table& nodes, pb::CompactVersion* out) {
  out->set_epoch(v.epoch);
  out->set_claim_us(v.claim_us);
  out->set_claimer(nodes.index(v.claimer));
  out->set_wall_us(v.stamp.wall_us);
  out->set_counter(v.stamp.counter);
  out->set_node(nodes.index(v.stamp.node));
}

/// Reads an offered version; false when it is malformed.
bool from_compact(const pb::CompactVersion& x, const pb::Digest& digest,
                  version& out) {
  auto node = [&](uint32_t index, std::string* id) {
    if (index == 0)
      return true;
    if (index > static_cast<uint32_t>(digest.nodes_size()))
      return false;
    *id = digest.nodes(static_cast<int>(index - 1));
    return true;
  };
  pb::Version full;
  full.set_epoch(x.epoch());
  full.set_claim_us(x.claim_us());
  full.mutable_stamp()->set_wall_us(x.wall_us());
  full.mutable_stamp()->set_counter(x.counter());
  if (!node(x.claimer(), full.mutable_claimer())
      || !node(x.node(), full.mutable_stamp()->mutable_node()))
    return false;
  return from_proto(full, out).empty();
}

} // namespace

void ae_outbox::answer(const pb::Digest& theirs, const store_state& store) {
  if (theirs.bucket_count() != bucket_count)
    return; // another digest layout: nothing we can compare
  switch (theirs.stage()) {
    case pb::Digest::SUMMARY: {
      if (!nothing_queued()) {
        // One session per peer: the answer to its last SUMMARY is still
        // being sent.
        ++summaries_dropped_;
        return;
      }
      const peer_summary other{theirs};
      std::vector<bucket_digest> mine;
      if (!skipped_.empty()) {
        mine = store.buckets();
        skipped_.adjust_buckets(store, mine);
      }
      std::vector<uint32_t> peer_empty;
      std::vector<uint32_t> to_compare;
      split_by_peer_empty(
        other, differing_buckets(other, mine.empty() ? store.buckets() : mine),
        peer_empty, to_compare);
      if (!peer_empty.empty())
        add_bucket_entries(peer_empty);
      if (!to_compare.empty())
        compare_buckets(store, to_compare);
      return;
    }
    case pb::Digest::SKETCH:
      on_sketch(theirs, store);
      return;
    case pb::Digest::OFFERS:
      on_offers(theirs, store);
      return;
    case pb::Digest::WANT: {
      std::vector<std::string> keys;
      for (const auto& key : theirs.want_keys())
        if (store.find(key) != nullptr)
          keys.push_back(key);
      add_entries(std::move(keys));
      return;
    }
    case pb::Digest::KEYS:
      break;
    default:
      return; // a stage of a later protocol
  }
  // Buckets the digest covers, and those in which the peer listed keys.
  std::vector<bool> covered(bucket_count, false);
  std::vector<bool> listed(bucket_count, false);
  for (const auto& b : theirs.buckets())
    if (b.bucket() < bucket_count)
      covered[b.bucket()] = true;
  for (const auto& k : theirs.keys())
    listed[store_state::bucket_of(k.key())] = true;
  if (theirs.reply_wanted()) {
    // Where the peer listed no keys it has nothing to send us, and the
    // entries below already cover everything we hold there: our key list
    // for such a bucket would be wasted bytes.
    std::vector<uint32_t> buckets;
    for (const auto& b : theirs.buckets())
      if (b.bucket() < bucket_count && listed[b.bucket()])
        buckets.push_back(b.bucket());
    if (!buckets.empty())
      add_key_digests(store, buckets, false);
  }
  // Covered buckets without listed keys: the peer holds nothing there, so
  // all of ours go, read from the store as they are sent. Elsewhere the
  // keys the peer lacks or holds in another version, up to the budget.
  std::vector<uint32_t> peer_empty;
  for (uint32_t b = 0; b < bucket_count; ++b)
    if (covered[b] && !listed[b])
      peer_empty.push_back(b);
  add_bucket_entries(peer_empty);
  std::unordered_map<std::string_view, uint64_t, keyed_hasher> their_hashes;
  their_hashes.reserve(static_cast<size_t>(theirs.keys_size()));
  for (const auto& k : theirs.keys())
    their_hashes.emplace(k.key(), k.hash());
  for (const auto& [key, entry] : store.entries()) {
    auto b = store_state::bucket_of(key);
    if (!covered[b] || !listed[b])
      continue;
    auto i = their_hashes.find(key);
    if (i == their_hashes.end() || i->second != presented(skipped_, key, entry))
      queue_key(key);
  }
}

void ae_outbox::compare_buckets(const store_state& store,
                                const std::vector<uint32_t>& buckets) {
  // Key lists cost ~24 bytes per key we hold there, and as much again for
  // the peer's list. A sketch costs its cells plus an offer per differing
  // key; the number of differing keys is estimated from the share of
  // buckets that differ (keys spread uniformly over buckets).
  size_t listed = 0;
  for (auto b : buckets)
    listed += store.buckets()[b].count;
  const double keys_cost = method_ == ae_method::key_lists
                             ? 0.0
                             : 48.0 * static_cast<double>(listed);
  const double share = static_cast<double>(buckets.size()) / bucket_count;
  if (share < 0.9 || method_ == ae_method::sketch) {
    const double differing = std::min(
      -double{bucket_count} * std::log1p(-share), double{max_sketch_cells});
    // Each differing key may stand for two elements, one per side.
    auto cells
      = set_sketch::cells_for(static_cast<size_t>(std::ceil(2 * differing)));
    const double sketch_cost
      = static_cast<double>(cells * set_sketch::cell_bytes) + 40 * differing;
    if (cells <= max_sketch_cells
        && (sketch_cost < keys_cost || method_ == ae_method::sketch)) {
      queue_sketch(store, buckets, cells);
      return;
    }
  }
  add_key_digests(store, buckets, true);
}

void ae_outbox::queue_sketch(const store_state& store,
                             const std::vector<uint32_t>& buckets,
                             size_t cells) {
  auto sketch = sketch_of(store, buckets, cells, skipped_);
  pb::Digest digest;
  digest.set_stage(pb::Digest::SKETCH);
  digest.set_bucket_count(bucket_count);
  digest.set_bucket_mask(mask_of(buckets));
  digest.set_sketch_cells(static_cast<uint32_t>(sketch.cells()));
  digest.set_sketch(sketch.serialize());
  queue_control(digest.SerializeAsString());
  ++sketches_;
}

void ae_outbox::on_sketch(const pb::Digest& theirs, const store_state& store) {
  auto buckets = buckets_of(theirs.bucket_mask());
  const size_t cells = theirs.sketch_cells();
  set_sketch peer{set_sketch::min_cells};
  if (buckets.empty() || cells > max_sketch_cells
      || !set_sketch::parse(theirs.sketch(), cells, peer))
    return; // malformed
  auto sketch = sketch_of(store, buckets, cells, skipped_);
  sketch.subtract(peer);
  auto diff = sketch.decode();
  if (!diff.complete) {
    // Too many differences for the cells: the peer's estimate was low.
    ++sketch_failures_;
    if (2 * cells <= max_sketch_cells)
      queue_sketch(store, buckets, 2 * cells);
    else
      add_key_digests(store, buckets, true);
    return;
  }
  // Every differing bucket must show a differing element; where none does,
  // two versions of a key share an ID's 32 version bits and cancelled out:
  // compare those buckets by key lists instead.
  std::vector<bool> explained(bucket_count, false);
  // Two of their IDs may share 32 key bits (two keys): a multimap keeps
  // both, and pairing one with our key leaves the other wanted (at worst a
  // false pairing delays that key by one round).
  std::unordered_multimap<uint32_t, uint64_t, keyed_hasher> theirs_by_key;
  for (auto id : diff.ours)
    explained[(id >> 32) % bucket_count] = true;
  for (auto id : diff.theirs) {
    explained[(id >> 32) % bucket_count] = true;
    theirs_by_key.emplace(static_cast<uint32_t>(id >> 32), id);
  }
  std::vector<uint32_t> unexplained;
  for (auto b : buckets)
    if (!explained[b])
      unexplained.push_back(b);
  if (!unexplained.empty())
    add_key_digests(store, unexplained, true);
  // Our differing entries: the peer lacks the key (send it), or holds it in
  // another version (offer ours, so that only the winner travels). IDs are
  // matched to keys by their 32 key bits; a false match only turns an entry
  // into an offer, which the peer answers with a WANT.
  std::unordered_set<uint64_t, keyed_hasher> ours(diff.ours.begin(),
                                                  diff.ours.end());
  std::vector<std::string> send;
  std::vector<std::string> offer;
  if (!ours.empty()) {
    for (const auto& [key, entry] : store.entries()) {
      auto h = store_state::key_hash(key);
      if (ours.count(element_id(h, presented(skipped_, key, entry))) == 0)
        continue;
      auto match = theirs_by_key.find(static_cast<uint32_t>(h));
      if (match == theirs_by_key.end()) {
        send.emplace_back(key);
      } else if (!entry.head().has_base() || !entry.fields().empty()) {
        // Field writes merge per field, so neither version simply wins:
        // send ours and leave theirs wanted.
        send.emplace_back(key);
      } else {
        offer.emplace_back(key);
        theirs_by_key.erase(match);
      }
    }
  }
  add_entries(std::move(send));
  std::vector<uint64_t> wanted;
  wanted.reserve(theirs_by_key.size());
  for (const auto& kv : theirs_by_key)
    wanted.push_back(kv.second);
  queue_offers(store, offer, std::move(wanted));
}

void ae_outbox::queue_offers(const store_state& store,
                             const std::vector<std::string>& keys,
                             std::vector<uint64_t> wanted) {
  size_t next_key = 0;
  size_t next_wanted = 0;
  while (next_key < keys.size() || next_wanted < wanted.size()) {
    pb::Digest digest;
    digest.set_stage(pb::Digest::OFFERS);
    digest.set_bucket_count(bucket_count);
    node_table nodes{digest};
    size_t bytes = 0;
    for (; next_key < keys.size() && bytes < window_bytes_; ++next_key) {
      const auto& key = keys[next_key];
      const auto* entry = store.find(key);
      auto* offer = digest.add_offers();
      offer->set_key(key);
      to_compact(entry->head().base_version(store.ids()), nodes,
                 offer->mutable_version());
      bytes += key.size() + 24;
    }
    for (; next_wanted < wanted.size() && bytes < window_bytes_;
         ++next_wanted) {
      digest.add_wanted(wanted[next_wanted]);
      bytes += 8;
    }
    queue_control(digest.SerializeAsString());
  }
}

void ae_outbox::on_offers(const pb::Digest& theirs, const store_state& store) {
  std::vector<std::string> send;
  std::vector<std::string> want;
  for (const auto& offer : theirs.offers()) {
    const auto* entry = store.find(offer.key());
    version offered;
    if (!from_compact(offer.version(), theirs, offered))
      continue; // malformed
    if (!skipped_.empty()) {
      // The version we skipped before: asking again brings the same record.
      const auto* known = skipped_.find(offer.key(), entry);
      if (known != nullptr && compare(known->ver, offered) == 0)
        continue;
    }
    if (entry == nullptr) {
      want.push_back(offer.key());
      continue;
    }
    if (!entry->head().has_base() || !entry->fields().empty()) {
      // Field writes merge per field: exchange both entries.
      send.push_back(offer.key());
      want.push_back(offer.key());
      continue;
    }
    auto order = compare(entry->head().base_version(store.ids()), offered);
    if (order > 0)
      send.push_back(offer.key());
    else if (order < 0)
      want.push_back(offer.key());
  }
  if (theirs.wanted_size() > 0) {
    std::unordered_set<uint64_t, keyed_hasher> wanted(theirs.wanted().begin(),
                                                      theirs.wanted().end());
    for (const auto& [key, entry] : store.entries())
      if (wanted.count(
            element_id(store_state::key_hash(key), entry.version_hash()))
          > 0)
        send.emplace_back(key);
  }
  add_entries(std::move(send));
  queue_want(std::move(want));
}

void ae_outbox::queue_want(std::vector<std::string> keys) {
  size_t next = 0;
  while (next < keys.size()) {
    pb::Digest digest;
    digest.set_stage(pb::Digest::WANT);
    digest.set_bucket_count(bucket_count);
    size_t bytes = 0;
    for (; next < keys.size() && bytes < window_bytes_; ++next) {
      bytes += keys[next].size() + 2;
      digest.add_want_keys(std::move(keys[next]));
    }
    queue_control(digest.SerializeAsString());
  }
}

namespace {

/// What a queued std::string costs besides its bytes.
constexpr size_t string_cost = sizeof(std::string);

/// What a queued bucket scan costs.
constexpr size_t scan_cost = sizeof(std::vector<bool>) + bucket_count / 8 + 64;

/// Bytes a KEYS digest entry takes in a frame, at most.
size_t listed_key_bytes(const std::string& key) noexcept {
  return key.size() + 20;
}

} // namespace

ae_outbox::ae_outbox(uint64_t session, size_t window_bytes, ae_method method,
                     ae_limits limits)
    : session_(session), window_bytes_(window_bytes), method_(method),
      limits_(limits), skipped_(limits.skip_memory) {
  if (limits_.max_in_flight == 0)
    limits_.max_in_flight = 1;
  if (limits_.max_frame_bytes < 2 * frame_overhead)
    limits_.max_frame_bytes = 2 * frame_overhead;
  // A window never exceeds a frame.
  window_bytes_ = std::max<size_t>(
    1, std::min(window_bytes_, limits_.max_frame_bytes - frame_overhead));
}

bool ae_outbox::expire_if_stalled(uint64_t now_us, uint64_t after_us) {
  if (idle() || now_us < last_progress_us_
      || now_us - last_progress_us_ < after_us)
    return false;
  controls_.clear();
  pending_buckets_.clear();
  digests_.clear();
  keys_.clear();
  scans_.clear();
  carry_.clear();
  carry_bytes_ = 0;
  queued_bytes_ = 0;
  in_flight_ = 0;
  // Acknowledgements of the old session must not open windows of the next:
  // a new tag, far from those of other outboxes (numbered from 0 up).
  session_ += uint64_t{1} << 40;
  last_progress_us_ = now_us;
  ++sessions_expired_;
  return true;
}

bool ae_outbox::take(size_t bytes) noexcept {
  if (bytes > limits_.budget_bytes
      || queued_bytes_ > limits_.budget_bytes - bytes)
    return false;
  queued_bytes_ += bytes;
  peak_queued_bytes_ = std::max(peak_queued_bytes_, queued_bytes_);
  return true;
}

void ae_outbox::queue_control(std::string digest) {
  if (!take(digest.size() + string_cost)) {
    ++items_dropped_;
    return;
  }
  controls_.push_back(std::move(digest));
}

void ae_outbox::add_key_digests(const store_state&,
                                const std::vector<uint32_t>& buckets,
                                bool reply_wanted) {
  for (auto b : buckets) {
    if (!take(sizeof(pending_bucket))) {
      ++items_dropped_;
      continue;
    }
    pending_buckets_.push_back(pending_bucket{b, reply_wanted});
  }
}

void ae_outbox::add_entries(std::vector<std::string> keys) {
  for (auto& key : keys)
    queue_key(key);
}

void ae_outbox::queue_key(std::string_view key) {
  if (!take(key.size() + string_cost)) {
    ++items_dropped_;
    return;
  }
  keys_.emplace_back(key);
}

void ae_outbox::add_bucket_entries(const std::vector<uint32_t>& buckets) {
  if (buckets.empty())
    return;
  if (!take(scan_cost)) {
    ++items_dropped_;
    return;
  }
  scans_.push_back(bucket_scan{bucket_flags(buckets), 0});
}

void ae_outbox::materialise_key_lists(const store_state& store) {
  // Take buckets while their estimated key lists fit a few windows and the
  // budget; at least one, so progress never stalls.
  const size_t room = limits_.budget_bytes > queued_bytes_
                        ? limits_.budget_bytes - queued_bytes_
                        : 0;
  const size_t goal = std::min(room, 4 * window_bytes_);
  std::unordered_map<uint32_t, size_t> index;
  size_t estimate = 0;
  const bool reply_wanted = pending_buckets_.front().reply_wanted;
  while (!pending_buckets_.empty()
         && pending_buckets_.front().reply_wanted == reply_wanted
         && (index.empty() || estimate < goal)) {
    auto b = pending_buckets_.front().bucket;
    pending_buckets_.pop_front();
    give(sizeof(pending_bucket));
    if (b >= bucket_count || index.count(b) > 0)
      continue;
    estimate += store.buckets()[b].count * 48;
    index.emplace(b, digests_.size());
    digests_.push_back(bucket_keys{b, {}, reply_wanted});
  }
  if (index.empty())
    return;
  for (const auto& kv : store.entries()) {
    auto i = index.find(store_state::bucket_of(kv.first));
    if (i == index.end())
      continue;
    if (!take(kv.first.size() + string_cost)) {
      // Listing part of a bucket only makes the peer send keys we hold:
      // more bytes, never a wrong result.
      ++items_dropped_;
      continue;
    }
    digests_[i->second].keys.emplace_back(kv.first);
  }
  // Keys we skipped and do not hold are listed as held (next_key_digest
  // lists them with the peer's hash): otherwise the peer sends them again.
  if (!skipped_.empty())
    for (auto& [key, hash] : skipped_.absent_keys(store)) {
      auto i = index.find(store_state::bucket_of(key));
      if (i == index.end() || !take(key.size() + string_cost))
        continue;
      digests_[i->second].keys.push_back(std::move(key));
    }
}

bool ae_outbox::next_key_digest(const store_state& store, pb::Envelope& out) {
  auto* digest = out.mutable_digest();
  digest->set_stage(pb::Digest::KEYS);
  digest->set_bucket_count(bucket_count);
  digest->set_session(session_);
  digest->set_reply_wanted(digests_.front().reply_wanted);
  const size_t limit = limits_.max_frame_bytes - frame_overhead;
  size_t bytes = 0;
  // Whole buckets per frame while they fit; a bucket larger than a frame
  // is split (the peer then sends keys listed in the other part: more
  // bytes, never a wrong result).
  while (!digests_.empty() && bytes < window_bytes_
         && digests_.front().reply_wanted == digest->reply_wanted()) {
    auto& b = digests_.front();
    digest->add_buckets()->set_bucket(b.bucket);
    bytes += 8;
    while (!b.keys.empty()) {
      auto& key = b.keys.back();
      auto size = listed_key_bytes(key);
      if (bytes + size > limit)
        break;
      give(key.size() + string_cost);
      const auto* entry = store.find(key);
      const auto* known
        = skipped_.empty() ? nullptr : skipped_.find(key, entry);
      if (entry != nullptr || known != nullptr) {
        bytes += size;
        auto* k = digest->add_keys();
        k->set_hash(known != nullptr ? known->peer_hash
                                     : entry->version_hash());
        k->set_key(std::move(key));
      } // else: purged since the list was read
      b.keys.pop_back();
    }
    if (!b.keys.empty())
      break; // the rest of this bucket goes in the next frame
    digests_.pop_front();
  }
  return true;
}

bool ae_outbox::load_next_entry(const store_state& store) {
  std::vector<pb::WriteRecord> records;
  auto load = [&](std::string_view key, const store_entry& entry) {
    records.clear();
    entry.export_records(store.ids(), key, records);
    for (auto& rec : records) {
      auto size = rec.ByteSizeLong();
      carry_bytes_ += size;
      // Records of one entry are held whatever the budget: one entry is
      // bounded by the value limits.
      queued_bytes_ += size;
      peak_queued_bytes_ = std::max(peak_queued_bytes_, queued_bytes_);
      carry_.push_back(std::move(rec));
    }
  };
  while (!keys_.empty()) {
    auto key = std::move(keys_.front());
    keys_.pop_front();
    give(key.size() + string_cost);
    if (const auto* entry = store.find(key)) {
      load(key, *entry);
      return true;
    }
  }
  while (!scans_.empty()) {
    auto& scan = scans_.front();
    const auto& table = store.entries();
    while (scan.position < table.size()) {
      auto [key, entry]
        = *key_table<store_entry>::const_iterator{&table, scan.position++};
      if (scan.buckets[store_state::bucket_of(key)]) {
        load(key, entry);
        return true;
      }
    }
    scans_.pop_front();
    give(scan_cost);
  }
  return false;
}

bool ae_outbox::next_entries(const store_state& store, pb::Envelope& out) {
  auto* entries = out.mutable_entries();
  entries->set_session(session_);
  const size_t limit = limits_.max_frame_bytes - frame_overhead;
  size_t bytes = 0;
  while (bytes < window_bytes_) {
    if (carry_.empty() && !load_next_entry(store))
      break;
    auto& rec = carry_.front();
    const auto held = rec.ByteSizeLong();
    const auto size = held + 6;
    if (size > limit) {
      // Cannot happen with validated limits (key + value + 1 KiB fit a
      // frame); never build a frame the peer must refuse.
      ++items_dropped_;
    } else if (bytes + size > limit) {
      break; // the next frame takes it
    } else {
      bytes += size;
      entries->mutable_records()->Add(std::move(rec));
    }
    carry_bytes_ -= std::min(carry_bytes_, held);
    give(std::min(queued_bytes_, held));
    carry_.pop_front();
  }
  if (entries->records_size() == 0 && nothing_queued()) {
    out.clear_entries();
    return false;
  }
  entries->set_last(nothing_queued());
  return true;
}

bool ae_outbox::next(const store_state& store, pb::Envelope& out) {
  if (in_flight_ >= limits_.max_in_flight)
    return false;
  if (!controls_.empty()) {
    auto* digest = out.mutable_digest();
    give(controls_.front().size() + string_cost);
    bool ok = digest->ParseFromString(controls_.front());
    controls_.pop_front();
    if (!ok)
      return false; // cannot happen: we serialized it
    digest->set_session(session_);
    ++in_flight_;
    return true;
  }
  // Duplicate or out-of-range buckets may yield no list: read on.
  while (digests_.empty() && !pending_buckets_.empty())
    materialise_key_lists(store);
  if (!digests_.empty()) {
    next_key_digest(store, out);
    ++in_flight_;
    return true;
  }
  if (carry_.empty() && keys_.empty() && scans_.empty())
    return false;
  if (!next_entries(store, out))
    return false;
  ++in_flight_;
  return true;
}

// -- ae_skip_memory
// ------------------------------------------------------------

bool ae_skip_memory::remember(const pb::WriteRecord& rec,
                              const store_entry* ours,
                              const node_id_table& ids) {
  if (rec.op_case() != pb::WriteRecord::kValue
      && rec.op_case() != pb::WriteRecord::kTombstone)
    return false;
  version v;
  if (!from_proto(rec.version(), v).empty())
    return false;
  // Holding the record must change nothing we send: our entry, if any, is
  // a plain value or tombstone that loses to it.
  if (ours != nullptr
      && (!ours->head().has_base() || !ours->fields().empty()
          || compare(ours->head().base_version(ids), v) >= 0))
    return false;
  const auto size = cost(rec.key());
  if (size > limits_.max_bytes / 8)
    return false;
  // The peer's entry made of this record alone: its version hash covers
  // the version and the tombstone flag, not the value.
  // A table of its own: the entry is dropped at the end of this call and
  // must not leave references in the store's table.
  node_id_table scratch_ids;
  store_entry theirs;
  theirs.apply_base(scratch_ids, v, rec.has_tombstone(), value{});
  auto existing = entries_.find(rec.key());
  if (existing != entries_.end())
    forget(existing);
  while (!entries_.empty()
         && (entries_.size() >= limits_.max_entries
             || bytes_ + size > limits_.max_bytes)) {
    forget(entries_.find(by_age_.begin()->second));
    ++evictions_;
  }
  if (limits_.max_entries == 0)
    return false;
  remembered r;
  r.peer_hash = theirs.version_hash();
  r.our_hash = ours != nullptr ? ours->version_hash() : 0;
  r.ver = std::move(v);
  r.sequence = next_sequence_++;
  by_age_.emplace(r.sequence, rec.key());
  entries_.emplace(rec.key(), std::move(r));
  bytes_ += size;
  return true;
}

void ae_skip_memory::forget(
  std::unordered_map<std::string, remembered, keyed_hasher>::iterator i) {
  bytes_ -= cost(i->first);
  by_age_.erase(i->second.sequence);
  entries_.erase(i);
}

void ae_skip_memory::note_use(remembered& r) noexcept {
  ++not_reasked_;
  if (!r.used) {
    r.used = true;
    ++first_uses_;
  }
}

const ae_skip_memory::remembered*
ae_skip_memory::find(std::string_view key, const store_entry* ours) {
  if (entries_.empty())
    return nullptr;
  auto i = entries_.find(std::string{key});
  if (i == entries_.end())
    return nullptr;
  // Our entry changed since: the record may no longer simply win; forget
  // it (the next round asks once more and remembers it again if needed).
  if ((ours != nullptr ? ours->version_hash() : 0) != i->second.our_hash) {
    forget(i);
    return nullptr;
  }
  note_use(i->second);
  return &i->second;
}

uint64_t ae_skip_memory::presented_hash(std::string_view key,
                                        const store_entry& ours) {
  const auto* r = find(key, &ours);
  return r != nullptr ? r->peer_hash : ours.version_hash();
}

void ae_skip_memory::adjust_buckets(const store_state& store,
                                    std::vector<bucket_digest>& buckets) {
  for (auto i = entries_.begin(); i != entries_.end();) {
    const auto* ours = store.find(i->first);
    if ((ours != nullptr ? ours->version_hash() : 0) != i->second.our_hash) {
      auto stale = i++;
      forget(stale);
      continue;
    }
    auto& b = buckets[store_state::bucket_of(i->first)];
    if (ours == nullptr)
      ++b.count;
    b.hash += i->second.peer_hash - i->second.our_hash;
    note_use(i->second);
    ++i;
  }
}

std::vector<std::pair<std::string, uint64_t>>
ae_skip_memory::absent_keys(const store_state& store) {
  std::vector<std::pair<std::string, uint64_t>> result;
  for (auto i = entries_.begin(); i != entries_.end();) {
    const auto* ours = store.find(i->first);
    if ((ours != nullptr ? ours->version_hash() : 0) != i->second.our_hash) {
      auto stale = i++;
      forget(stale);
      continue;
    }
    if (ours == nullptr) {
      note_use(i->second);
      result.emplace_back(i->first, i->second.peer_hash);
    }
    ++i;
  }
  return result;
}

} // namespace syncmesh
