#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include "syncmesh/pb/entry.pb.h"

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

/// Bounds of one peer's anti-entropy outbox.
struct ae_limits {
  /// Most bytes the outbox holds queued (keys, key lists, digests, records
  /// waiting for room in a frame): answers beyond it are cut short, counted,
  /// and repaired in a later round (`config::max_ae_outbox_bytes`).
  size_t budget_bytes = 8 * 1024 * 1024;
  /// No frame body is built larger than this (`config::max_frame_size`).
  size_t max_frame_bytes = 4 * 1024 * 1024;
  /// Windows in flight: two keep both ends busy.
  size_t max_in_flight = 2;
};

/// The anti-entropy traffic from this node to one peer: KEYS digests and
/// entries, produced lazily in windows of at most `window_bytes`, with at
/// most `max_in_flight` windows unacknowledged: a transfer of any size never
/// overruns the link's send queue, and the sender builds the next window
/// while the peer applies the previous one.
///
/// Memory is bounded by `ae_limits::budget_bytes`, never by the store: whole
/// buckets of entries are sent by a scan of the store (a position, not a key
/// list), KEYS digests are materialised a few windows at a time, and key
/// lists from comparisons are cut at the budget. One session per peer: a
/// SUMMARY that arrives while an answer is still queued is dropped and
/// counted (replacing it would let a peer restart a long transfer forever;
/// the next round compares again).
class ae_outbox {
public:
  /// Windows in flight by default: two keep both ends busy.
  static constexpr size_t default_max_in_flight = 2;

  /// Sends windows of about `window_bytes`; `session` tags this outbox;
  /// `method` decides how differing buckets are compared.
  ae_outbox(uint64_t session, size_t window_bytes, ae_method method,
            ae_limits limits = {});

  /// Sketches of at most this many cells (~900 KB); beyond, key lists cost
  /// little more than the entries they describe.
  static constexpr size_t max_sketch_cells = 65536;

  /// Room kept in a frame for the envelope around the records or keys.
  static constexpr size_t frame_overhead = 256;

  /// Queues the answer to a peer's digest (see wire.proto, message Digest):
  /// for a SUMMARY, entries for the buckets the peer shows empty (a joining
  /// node gets them at once) and a SKETCH or KEYS for the other differing
  /// buckets, whichever costs fewer bytes; for a SKETCH, the entries the
  /// peer lacks and OFFERS, or a larger sketch, or KEYS when it does not
  /// decode; for OFFERS, the entries that win and a WANT list; for WANT, the
  /// entries; for KEYS, our own key lists where asked and the peer listed
  /// keys, and the entries the peer lacks. Digests of another layout and
  /// malformed ones are ignored; a SUMMARY while an answer is queued is
  /// dropped (see `summaries_dropped`).
  void answer(const pb::Digest& theirs, const store_state& store);

  /// Queues KEYS digests describing the store's entries in `buckets`; the
  /// key lists are read from the store when they are about to be sent.
  void add_key_digests(const store_state& store,
                       const std::vector<uint32_t>& buckets, bool reply_wanted);

  /// Queues entries to send; keys beyond the budget are dropped and
  /// counted.
  void add_entries(std::vector<std::string> keys);

  /// Queues every entry of `buckets`, read from the store window by window.
  void add_bucket_entries(const std::vector<uint32_t>& buckets);

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
  bool idle() const noexcept { return in_flight_ == 0 && nothing_queued(); }

  /// True when nothing is queued (windows may still be in flight).
  bool nothing_queued() const noexcept {
    return controls_.empty() && pending_buckets_.empty() && digests_.empty()
           && keys_.empty() && scans_.empty() && carry_.empty();
  }

  /// The session tag of this outbox.
  uint64_t session() const noexcept { return session_; }

  /// Entries queued by key but not yet sent.
  size_t queued_entries() const noexcept { return keys_.size(); }

  /// Bytes the outbox holds queued, as counted against the budget.
  size_t queued_bytes() const noexcept { return queued_bytes_; }

  /// The most bytes the outbox ever held queued.
  size_t peak_queued_bytes() const noexcept { return peak_queued_bytes_; }

  /// Sketches this outbox queued.
  size_t sketches() const noexcept { return sketches_; }

  /// Peer sketches that did not decode (too small for the difference).
  size_t sketch_failures() const noexcept { return sketch_failures_; }

  /// SUMMARY digests dropped because an answer was still queued.
  size_t summaries_dropped() const noexcept { return summaries_dropped_; }

  /// Keys, key-list entries, digests and records not queued or not sent
  /// because the budget or the frame size left no room (each repaired in a
  /// later round).
  size_t items_dropped() const noexcept { return items_dropped_; }

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
  /// Queues a serialized digest when the budget allows.
  void queue_control(std::string digest);
  /// Counts `bytes` against the budget; false (nothing counted) when they
  /// do not fit.
  bool take(size_t bytes) noexcept;
  /// Gives `bytes` back to the budget.
  void give(size_t bytes) noexcept { queued_bytes_ -= bytes; }
  /// Reads key lists of pending buckets from the store, a few windows' worth.
  void materialise_key_lists(const store_state& store);
  /// Moves the records of the next queued entry into `carry_`; false when
  /// no entry is left.
  bool load_next_entry(const store_state& store);
  bool next_key_digest(const store_state& store, pb::Envelope& out);
  /// Queues one key's entry when the budget allows.
  void queue_key(std::string_view key);
  bool next_entries(const store_state& store, pb::Envelope& out);

  struct bucket_keys {
    uint32_t bucket;
    std::vector<std::string> keys;
    bool reply_wanted;
  };

  struct pending_bucket {
    uint32_t bucket;
    bool reply_wanted;
  };

  /// Every entry of some buckets, read from the store in storage order.
  struct bucket_scan {
    std::vector<bool> buckets;
    size_t position = 0;
  };

  uint64_t session_;
  size_t window_bytes_;
  ae_method method_;
  ae_limits limits_;
  size_t in_flight_ = 0;
  size_t queued_bytes_ = 0;
  size_t peak_queued_bytes_ = 0;
  /// SKETCH, OFFERS and WANT digests, serialized when queued; sent first.
  std::deque<std::string> controls_;
  /// Buckets whose KEYS digests are still to be read from the store.
  std::deque<pending_bucket> pending_buckets_;
  std::deque<bucket_keys> digests_;
  std::deque<std::string> keys_;
  std::deque<bucket_scan> scans_;
  /// Records of an entry that did not fit the last frame.
  std::deque<pb::WriteRecord> carry_;
  size_t carry_bytes_ = 0;
  size_t sketches_ = 0;
  size_t sketch_failures_ = 0;
  size_t summaries_dropped_ = 0;
  size_t items_dropped_ = 0;
};

} // namespace syncmesh
