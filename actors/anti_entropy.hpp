#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "messages/keyed_hash.hpp"
#include "messages/version.hpp"
#include "syncmesh/pb/entry.pb.h"

namespace syncmesh {

class store_state;
class store_entry;
class node_id_table;
struct bucket_digest;
enum class ae_method : uint8_t;

namespace pb {
class Digest;
class Envelope;
} // namespace pb

/// Bounds of one peer's memory of skipped records (`ae_skip_memory`).
struct ae_skip_limits {
  /// Most records remembered; the oldest is forgotten for a new one.
  size_t max_entries = 4096;
  /// Most bytes the memory holds (keys twice, plus bookkeeping per record);
  /// the oldest records are forgotten to make room.
  size_t max_bytes = 1024 * 1024;
};

/// The records a peer sent in anti-entropy that we skipped because they
/// break a value limit, so that later rounds do not ask for them again.
///
/// Toward that peer the node presents its store as if it held each
/// remembered record (`presented_hash`, `adjust_buckets`, `absent_keys`):
/// the bucket digests, sketches and key lists then agree where the only
/// difference is the bad record, and nothing is requested. A record is
/// remembered only where holding it changes nothing we would send: the key
/// is absent here, or our entry is a plain value or tombstone older than
/// the skipped one (the peer would keep its own version anyway). A memory
/// entry counts only while our entry is the one it was recorded against
/// and the peer presents the same version: a write to the key here, or a
/// different version there, asks again (once). Bounded by `ae_skip_limits`:
/// an attacker presenting many distinct bad records evicts the oldest,
/// which costs at most one more request each.
class ae_skip_memory {
public:
  /// What is remembered of one skipped record.
  struct remembered {
    /// The version hash of the peer's entry made of this record alone.
    uint64_t peer_hash = 0;
    /// Our entry's version hash when it was skipped; 0 when we had none.
    uint64_t our_hash = 0;
    /// The skipped record's version, to recognise it in OFFERS.
    version ver;
    /// Insertion order, for eviction.
    uint64_t sequence = 0;
    /// True once it kept us from asking again (logged once).
    bool used = false;
  };

  /// Bookkeeping bytes per remembered record besides its key (twice).
  static constexpr size_t entry_overhead = sizeof(remembered) + 96;

  /// An empty memory within `limits`.
  explicit ae_skip_memory(ae_skip_limits limits = {}) : limits_(limits) {}

  /// Remembers a record of the peer's that we skipped; `ours` is our entry
  /// for its key (nullptr when none). Returns false (nothing remembered)
  /// when the record is no whole value or tombstone (a field write's entry
  /// hash cannot be known from one record), its version is malformed, our
  /// entry would not simply lose to it, or it alone exceeds an eighth of
  /// the byte bound.
  bool remember(const pb::WriteRecord& rec, const store_entry* ours,
                const node_id_table& ids);

  /// The remembered record for `key` if it still applies: our entry is
  /// the one it was recorded against. Marks it used.
  const remembered* find(std::string_view key, const store_entry* ours);

  /// The version hash we present for `key` (held as `ours`): the peer's
  /// when a remembered record applies, else our entry's.
  uint64_t presented_hash(std::string_view key, const store_entry& ours);

  /// Adds the remembered records to a copy of the store's bucket digests.
  void adjust_buckets(const store_state& store,
                      std::vector<bucket_digest>& buckets);

  /// Remembered keys that still apply and that the store does not hold,
  /// with the hash we present for them.
  std::vector<std::pair<std::string, uint64_t>>
  absent_keys(const store_state& store);

  /// Number of records remembered.
  size_t size() const noexcept { return entries_.size(); }

  /// True when nothing is remembered (every lookup is then skipped).
  bool empty() const noexcept { return entries_.empty(); }

  /// Bytes the memory holds, as counted against `ae_skip_limits`.
  size_t bytes() const noexcept { return bytes_; }

  /// Records forgotten to stay within the bounds.
  size_t evictions() const noexcept { return evictions_; }

  /// Times a remembered record kept us from asking for it again.
  size_t not_reasked() const noexcept { return not_reasked_; }

  /// Remembered records used for the first time (each logged once).
  size_t first_uses() const noexcept { return first_uses_; }

private:
  size_t cost(const std::string& key) const noexcept {
    return 2 * key.size() + entry_overhead;
  }
  void
  forget(std::unordered_map<std::string, remembered, keyed_hasher>::iterator i);
  void note_use(remembered& r) noexcept;

  ae_skip_limits limits_;
  std::unordered_map<std::string, remembered, keyed_hasher> entries_;
  /// Keys by insertion order: the oldest is evicted first.
  std::map<uint64_t, std::string> by_age_;
  uint64_t next_sequence_ = 0;
  size_t bytes_ = 0;
  size_t evictions_ = 0;
  size_t not_reasked_ = 0;
  size_t first_uses_ = 0;
};

/// Fills `out` with a SUMMARY digest: every non-empty bucket of the store
/// (or, when most are used, the hash of every bucket in order: smaller),
/// with the records in `skipped` (when given) presented as held.
void make_summary(const store_state& store, pb::Digest& out,
                  ae_skip_memory* skipped = nullptr);

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
  /// The memory of the peer's skipped records.
  ae_skip_limits skip_memory;
  /// A session that made no progress (no window acknowledged) for this
  /// long is expired when the peer's next SUMMARY arrives (µs).
  uint64_t stall_timeout_us = 30'000'000;
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

  /// Notes the time (µs): windows acknowledged or a session answered now
  /// count as progress for `expire_if_stalled`.
  void note_progress(uint64_t now_us) noexcept { last_progress_us_ = now_us; }

  /// Ends a session that made no progress for `after_us` (windows lost,
  /// e.g. written to a link before it was attached, are never
  /// acknowledged): everything queued is dropped, nothing counts as in
  /// flight, and late acknowledgements of it are ignored (a new session
  /// tag). Without this, one lost window would refuse every later SUMMARY
  /// of the peer forever. Returns whether it expired the session.
  bool expire_if_stalled(uint64_t now_us, uint64_t after_us);

  /// Sessions ended by `expire_if_stalled`.
  size_t sessions_expired() const noexcept { return sessions_expired_; }

  /// The peer's records we skipped, presented as held in later rounds.
  ae_skip_memory& skipped() noexcept { return skipped_; }

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
  uint64_t last_progress_us_ = 0;
  size_t sessions_expired_ = 0;
  ae_skip_memory skipped_;
};

} // namespace syncmesh
