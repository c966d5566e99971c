#include "actors/anti_entropy.hpp"

#include <unordered_map>

#include "actors/store_state.hpp"
#include "syncmesh/pb/wire.pb.h"

namespace syncmesh {

void make_summary(const store_state& store, pb::Digest& out) {
  out.set_stage(pb::Digest::SUMMARY);
  out.set_bucket_count(store_state::digest_buckets);
  const auto& buckets = store.buckets();
  for (uint32_t i = 0; i < buckets.size(); ++i) {
    if (buckets[i].count == 0)
      continue;
    auto* b = out.add_buckets();
    b->set_bucket(i);
    b->set_hash(buckets[i].hash);
    b->set_count(buckets[i].count);
  }
}

std::vector<uint32_t> differing_buckets(const pb::Digest& theirs,
                                        const store_state& store) {
  std::vector<bucket_digest> other(store_state::digest_buckets);
  for (const auto& b : theirs.buckets())
    if (b.bucket() < store_state::digest_buckets)
      other[b.bucket()] = bucket_digest{b.hash(), b.count()};
  std::vector<uint32_t> result;
  const auto& mine = store.buckets();
  for (uint32_t i = 0; i < store_state::digest_buckets; ++i)
    if (mine[i].hash != other[i].hash || mine[i].count != other[i].count)
      result.push_back(i);
  return result;
}

std::vector<std::string> keys_to_send(const pb::Digest& their_keys,
                                      const store_state& store) {
  std::vector<bool> covered(store_state::digest_buckets, false);
  for (const auto& b : their_keys.buckets())
    if (b.bucket() < store_state::digest_buckets)
      covered[b.bucket()] = true;
  std::unordered_map<std::string, uint64_t> theirs;
  theirs.reserve(static_cast<size_t>(their_keys.keys_size()));
  for (const auto& k : their_keys.keys())
    theirs.emplace(k.key(), k.hash());
  std::vector<std::string> result;
  for (const auto& [key, entry] : store.entries()) {
    if (!covered[store_state::bucket_of(key)])
      continue;
    auto i = theirs.find(std::string{key});
    if (i == theirs.end() || i->second != entry.version_hash())
      result.emplace_back(key);
  }
  return result;
}

namespace {

/// Splits `buckets` (from differing_buckets) into those the peer's SUMMARY
/// shows empty and the rest.
void split_by_peer_empty(const pb::Digest& theirs,
                         const std::vector<uint32_t>& buckets,
                         std::vector<uint32_t>& peer_empty,
                         std::vector<uint32_t>& to_compare) {
  std::vector<bool> theirs_used(store_state::digest_buckets, false);
  for (const auto& b : theirs.buckets())
    if (b.bucket() < store_state::digest_buckets && b.count() > 0)
      theirs_used[b.bucket()] = true;
  for (auto b : buckets) {
    if (b < store_state::digest_buckets && !theirs_used[b])
      peer_empty.push_back(b);
    else
      to_compare.push_back(b);
  }
}

/// The store's keys in `buckets`.
std::vector<std::string> keys_in_buckets(const store_state& store,
                                         const std::vector<uint32_t>& buckets) {
  std::vector<bool> wanted(store_state::digest_buckets, false);
  for (auto b : buckets)
    if (b < store_state::digest_buckets)
      wanted[b] = true;
  std::vector<std::string> result;
  for (const auto& kv : store.entries())
    if (wanted[store_state::bucket_of(kv.first)])
      result.emplace_back(kv.first);
  return result;
}

} // namespace

void ae_outbox::answer(const pb::Digest& theirs, const store_state& store) {
  if (theirs.bucket_count() != store_state::digest_buckets)
    return; // another digest layout: nothing we can compare
  if (theirs.stage() == pb::Digest::SUMMARY) {
    std::vector<uint32_t> peer_empty;
    std::vector<uint32_t> to_compare;
    split_by_peer_empty(theirs, differing_buckets(theirs, store), peer_empty,
                        to_compare);
    if (!peer_empty.empty())
      add_entries(keys_in_buckets(store, peer_empty));
    if (!to_compare.empty())
      add_key_digests(store, to_compare, true);
    return;
  }
  if (theirs.reply_wanted()) {
    // Where the peer listed no keys it has nothing to send us, and
    // keys_to_send below already covers everything we hold there: our key
    // list for such a bucket would be wasted bytes.
    std::vector<bool> listed(store_state::digest_buckets, false);
    for (const auto& k : theirs.keys())
      listed[store_state::bucket_of(k.key())] = true;
    std::vector<uint32_t> buckets;
    for (const auto& b : theirs.buckets())
      if (b.bucket() < store_state::digest_buckets && listed[b.bucket()])
        buckets.push_back(b.bucket());
    if (!buckets.empty())
      add_key_digests(store, buckets, false);
  }
  add_entries(keys_to_send(theirs, store));
}

void ae_outbox::add_key_digests(const store_state& store,
                                const std::vector<uint32_t>& buckets,
                                bool reply_wanted) {
  std::unordered_map<uint32_t, size_t> index;
  auto first = digests_.size();
  for (auto b : buckets) {
    index.emplace(b, digests_.size());
    digests_.push_back(bucket_keys{b, {}, reply_wanted});
  }
  for (const auto& kv : store.entries()) {
    auto i = index.find(store_state::bucket_of(kv.first));
    if (i != index.end())
      digests_[i->second].keys.emplace_back(kv.first);
  }
  (void)first;
}

void ae_outbox::add_entries(std::vector<std::string> keys) {
  for (auto& key : keys)
    keys_.push_back(std::move(key));
}

bool ae_outbox::next(const store_state& store, pb::Envelope& out) {
  if (in_flight_ >= max_in_flight_)
    return false;
  if (!digests_.empty()) {
    auto* digest = out.mutable_digest();
    digest->set_stage(pb::Digest::KEYS);
    digest->set_bucket_count(store_state::digest_buckets);
    digest->set_session(session_);
    digest->set_reply_wanted(digests_.front().reply_wanted);
    size_t bytes = 0;
    // Whole buckets per frame; at least one, even when it is large.
    while (!digests_.empty() && (bytes == 0 || bytes < window_bytes_)
           && digests_.front().reply_wanted == digest->reply_wanted()) {
      auto& b = digests_.front();
      digest->add_buckets()->set_bucket(b.bucket);
      for (auto& key : b.keys) {
        const auto* entry = store.find(key);
        if (entry == nullptr)
          continue; // purged since the digest was queued
        auto* k = digest->add_keys();
        k->set_hash(entry->version_hash());
        bytes += key.size() + 12;
        k->set_key(std::move(key));
      }
      bytes += 8;
      digests_.pop_front();
    }
    ++in_flight_;
    return true;
  }
  if (keys_.empty())
    return false;
  auto* entries = out.mutable_entries();
  entries->set_session(session_);
  size_t bytes = 0;
  std::vector<pb::WriteRecord> records;
  while (!keys_.empty() && (bytes == 0 || bytes < window_bytes_)) {
    const auto* entry = store.find(keys_.front());
    if (entry != nullptr) {
      records.clear();
      entry->export_records(keys_.front(), records);
      for (auto& rec : records) {
        bytes += rec.ByteSizeLong() + 4;
        entries->mutable_records()->Add(std::move(rec));
      }
    }
    keys_.pop_front();
  }
  entries->set_last(keys_.empty());
  ++in_flight_;
  return true;
}

} // namespace syncmesh
