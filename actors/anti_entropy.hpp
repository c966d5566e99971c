#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <vector>

namespace syncmesh {

class store_state;
enum class ae_method : uint8_t;

namespace pb {
class Digest;
class Envelope;
} // namespace pb

/// Fills `out` with a SUMMARY digest: every non-empty bucket of the store
/// (or, when most are used, the hash of every bucket in order: smaller).
void make_summary(const store_state& store, pb::Digest& out);

/// The ID of an entry in set sketches: the low 32 bits of the key's hash
/// (so the bucket, and whether two IDs may name one key, can be read off)
/// over 32 bits of its version hash.
uint64_t element_id(uint64_t key_hash, uint64_t version_hash) noexcept;

/// The buckets in which a peer's SUMMARY and the store differ.
std::vector<uint32_t> differing_buckets(const pb::Digest& theirs,
                                        const store_state& store);

/// The store's keys, in the buckets a peer's KEYS digest covers, that the
/// peer lacks or holds in another version.
std::vector<std::string> keys_to_send(const pb::Digest& their_keys,
                                      const store_state& store);

/// The anti-entropy traffic from this node to one peer: KEYS digests and
/// entries, produced lazily in windows of at most `window_bytes`, with at
/// most `max_in_flight` windows unacknowledged: a transfer of any size never
/// overruns the link's send queue, and the sender builds the next window
/// while the peer applies the previous one.
class ae_outbox {
public:
  /// Windows in flight by default: two keep both ends busy.
  static constexpr size_t default_max_in_flight = 2;

  /// Sends windows of about `window_bytes`; `session` tags this outbox;
  /// `method` decides how differing buckets are compared.
  ae_outbox(uint64_t session, size_t window_bytes, ae_method method,
            size_t max_in_flight = default_max_in_flight)
      : session_(session), window_bytes_(window_bytes), method_(method),
        max_in_flight_(max_in_flight == 0 ? 1 : max_in_flight) {}

  /// Sketches of at most this many cells (~900 KB); beyond, key lists cost
  /// little more than the entries they describe.
  static constexpr size_t max_sketch_cells = 65536;

  /// Queues the answer to a peer's digest (see wire.proto, message Digest):
  /// for a SUMMARY, entries for the buckets the peer shows empty (a joining
  /// node gets them at once) and a SKETCH or KEYS for the other differing
  /// buckets, whichever costs fewer bytes; for a SKETCH, the entries the
  /// peer lacks and OFFERS, or a larger sketch, or KEYS when it does not
  /// decode; for OFFERS, the entries that win and a WANT list; for WANT, the
  /// entries; for KEYS, our own key lists where asked and the peer listed
  /// keys, and the entries the peer lacks. Digests of another layout and
  /// malformed ones are ignored.
  void answer(const pb::Digest& theirs, const store_state& store);

  /// Queues KEYS digests describing the store's entries in `buckets`.
  void add_key_digests(const store_state& store,
                       const std::vector<uint32_t>& buckets, bool reply_wanted);

  /// Queues entries to send.
  void add_entries(std::vector<std::string> keys);

  /// Builds the next frame body into `out` unless `max_in_flight` windows
  /// await their acknowledgement or nothing is queued; returns whether it
  /// did.
  bool next(const store_state& store, pb::Envelope& out);

  /// The peer acknowledged a frame of session `session`.
  void acknowledge(uint64_t session) noexcept {
    if (session == session_ && in_flight_ > 0)
      --in_flight_;
  }

  /// True when nothing is queued or in flight.
  bool idle() const noexcept {
    return in_flight_ == 0 && controls_.empty() && digests_.empty()
           && keys_.empty();
  }

  /// The session tag of this outbox.
  uint64_t session() const noexcept { return session_; }

  /// Entries queued but not yet sent.
  size_t queued_entries() const noexcept { return keys_.size(); }

  /// Sketches this outbox queued.
  size_t sketches() const noexcept { return sketches_; }

  /// Peer sketches that did not decode (too small for the difference).
  size_t sketch_failures() const noexcept { return sketch_failures_; }

private:
  /// Answers the buckets a SUMMARY showed differing, by SKETCH or KEYS.
  void compare_buckets(const store_state& store,
                       const std::vector<uint32_t>& buckets);
  void queue_sketch(const store_state& store,
                    const std::vector<uint32_t>& buckets, size_t cells);
  void on_sketch(const pb::Digest& theirs, const store_state& store);
  void on_offers(const pb::Digest& theirs, const store_state& store);
  void queue_offers(const store_state& store,
                    const std::vector<std::string>& keys,
                    std::vector<uint64_t> wanted);
  void queue_want(std::vector<std::string> keys);

  struct bucket_keys {
    uint32_t bucket;
    std::vector<std::string> keys;
    bool reply_wanted;
  };

  uint64_t session_;
  size_t window_bytes_;
  ae_method method_;
  size_t max_in_flight_;
  size_t in_flight_ = 0;
  /// SKETCH, OFFERS and WANT digests, serialized when queued; sent first.
  std::deque<std::string> controls_;
  std::deque<bucket_keys> digests_;
  std::deque<std::string> keys_;
  size_t sketches_ = 0;
  size_t sketch_failures_ = 0;
};

} // namespace syncmesh
