#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <random>
#include <string>
#include <unordered_set>
#include <vector>

#include "messages/keyed_hash.hpp"
#include "messages/value_proto.hpp"
#include "messages/version.hpp"

namespace syncmesh {

namespace pb {
class Envelope;
class WriteBatch;
class WriteRecord;
} // namespace pb

/// Limits that every write from the network must respect.
struct write_limits {
  /// Largest key in bytes.
  size_t max_key_size = 4096;
  /// Largest encoded value in bytes.
  size_t max_value_size = 1024 * 1024;
  /// Deepest nesting of lists and maps (config::max_value_depth).
  int max_value_depth = default_max_value_depth;
};

/// Checks one write record from an untrusted peer: a non-empty key within
/// limits, a valid version, an operation, and a well-formed value or fields
/// within limits. Returns an explanation, or an empty string when the
/// record is acceptable.
std::string validate_remote_record(const pb::WriteRecord& rec,
                                   const write_limits& limits);

/// Checks a write batch from an untrusted peer record by record (see
/// validate_remote_record). Returns the first record's explanation
/// ("record <i>: ..."), or an empty string when every record is acceptable.
std::string validate_remote_batch(const pb::WriteBatch& batch,
                                  const write_limits& limits);

/// What remove_invalid_records took out of a batch.
struct skipped_records {
  /// Records removed.
  size_t count = 0;
  /// The first one's explanation ("record <i>: ..."), for the log.
  std::string first_error;
};

/// Removes from `batch` every record validate_remote_record refuses, keeping
/// the others in order: a peer's bad record is skipped alone, never a reason
/// to refuse the rest of its batch or to drop its link.
skipped_records remove_invalid_records(pb::WriteBatch& batch,
                                       const write_limits& limits);

/// Rate limit of the log lines about skipped records: true when a counter
/// that grew by `added` to `total` crossed one of the first 10 counts or a
/// multiple of 1000, so a flood of bad records logs a line per thousand.
inline bool worth_logging(uint64_t total, uint64_t added) {
  if (total - added < 10)
    return true;
  return total / 1000 != (total - added) / 1000;
}

/// Builds the envelopes that carry a batch of changed writes to peers:
/// whole-value writes and deletes in a `write` body, field writes in a
/// `delta` body, each serialized once and framed for every peer alike.
class envelope_builder {
public:
  /// A builder for an unnamed node (replace before use).
  envelope_builder() : envelope_builder({}, 32, 16 * 1024 * 1024) {}

  /// Envelopes originate at `self` with hop limit `max_hops`.
  envelope_builder(raw_node_id self, uint32_t max_hops, size_t max_frame_size);

  /// Appends the frames for `batch` (at most two) to `frames`. Records that
  /// would not fit one frame are split across several.
  void build(const pb::WriteBatch& batch, uint64_t now_us,
             std::vector<std::string>& frames);

  /// As above, moving the records out of `batch` instead of copying them.
  void build(pb::WriteBatch&& batch, uint64_t now_us,
             std::vector<std::string>& frames);

  /// Decodes the write batch of a `write` or `delta` envelope body. Returns
  /// an explanation on failure.
  static std::string decode_writes(const pb::Envelope& env,
                                   pb::WriteBatch& out);

private:
  void emit(pb::WriteBatch& part, bool delta, uint64_t now_us,
            std::vector<std::string>& frames);

  raw_node_id self_;
  uint32_t max_hops_;
  size_t max_frame_size_;
  uint64_t next_message_ = 0;
};

} // namespace syncmesh

namespace syncmesh {

/// Remembers recently seen message IDs, bounded in both time and size, so
/// flooded control messages are relayed once.
class seen_set {
public:
  /// Clock of the entries.
  using time_point = std::chrono::steady_clock::time_point;

  /// Keeps at most `capacity` IDs for at most `ttl`.
  seen_set(size_t capacity = 65536,
           std::chrono::milliseconds ttl = std::chrono::minutes(2))
      : capacity_(capacity), ttl_(ttl) {}

  /// Records `id`; false when it was already seen (a duplicate).
  bool insert(const std::string& id, time_point now);

  /// IDs remembered now.
  size_t size() const noexcept { return ids_.size(); }

private:
  void expire(time_point now);

  size_t capacity_;
  std::chrono::milliseconds ttl_;
  std::deque<std::pair<time_point, std::string>> order_;
  std::unordered_set<std::string, keyed_hasher> ids_;
};

/// A TCP address.
struct address {
  /// Host name or IP.
  std::string host;
  /// Port.
  uint16_t port = 0;

  /// "host:port".
  std::string str() const { return host + ":" + std::to_string(port); }

  /// Compares host and port.
  friend bool operator==(const address& x, const address& y) {
    return x.port == y.port && x.host == y.host;
  }
};

/// The addresses a node may dial: seeds and addresses learned from peers,
/// each with its redial schedule (exponential backoff with jitter).
class address_book {
public:
  /// Clock of the schedule.
  using time_point = std::chrono::steady_clock::time_point;

  /// Keeps at most `capacity` addresses; redials between `min` and `max`.
  address_book(size_t capacity, std::chrono::milliseconds min,
               std::chrono::milliseconds max, uint64_t seed);

  /// Adds an address (seeds are never evicted); returns false when it is our
  /// own, already known, or the book is full.
  bool add(const address& addr, bool seed, time_point now);

  /// Our own listening address, never dialled.
  void set_self(const address& addr);

  /// Up to `n` addresses due for a dial now, neither connected nor being
  /// dialled; they become "dialling".
  std::vector<address> due(time_point now, size_t n);

  /// A dial or connection to `addr` failed: redial after a growing delay.
  void failed(const address& addr, time_point now);

  /// `addr` is connected (by us or by it).
  void connected(const address& addr);

  /// The connection to `addr` ended: redial after the shortest delay.
  void disconnected(const address& addr, time_point now);

  /// `addr` turned out to be ourselves: never dial it again.
  void forget(const address& addr);

  /// Number of addresses known.
  size_t size() const noexcept { return entries_.size(); }

  /// The delay before the next dial after `failures` failures (no jitter).
  std::chrono::milliseconds backoff(uint32_t failures) const;

private:
  struct entry {
    address addr;
    bool seed = false;
    bool dialing = false;
    bool connected = false;
    uint32_t failures = 0;
    time_point next_dial;
  };

  entry* find(const address& addr);

  size_t capacity_;
  std::chrono::milliseconds min_;
  std::chrono::milliseconds max_;
  std::mt19937_64 rng_;
  address self_;
  std::vector<entry> entries_;
};

} // namespace syncmesh
