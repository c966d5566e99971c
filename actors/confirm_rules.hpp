#pragma once

// Confirmed writes (issue 17) as plain rules, with no actor inside:
// - how many nodes a write concern requires (required_nodes);
// - whether a store holds a write a confirmation asks about (check_record);
// - the bounded table of queries a node holds until their writes arrive
//   (confirm_waits, in the dict store);
// - the table of confirmations an origin waits for (confirm_tracker, in the
//   facade).
// The actors only own these and route messages (dict_store.cpp,
// facade.cpp, router_confirm.cpp).

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "messages/version.hpp"
#include "syncmesh/value.hpp"

namespace syncmesh {

namespace pb {
class ConfirmRecord;
class ConfirmQuery;
} // namespace pb

class store_state;

// -- the concern --------------------------------------------------------------

/// The kinds of pb::WriteConcern, as plain C++ (same numbers).
enum class concern_kind : uint8_t {
  /// Applied here is enough (no confirmation).
  local = 0,
  /// A number of nodes.
  nodes = 1,
  /// cluster_size / 2 + 1.
  majority = 2,
  /// cluster_size.
  all = 3,
};

/// How many nodes (this one included) a concern requires in a membership
/// of `cluster_size` nodes (0: unknown). Returns 0 and explains in `error`
/// when it cannot be met: majority or all without a known membership, a
/// node count of 0, or one above a known membership.
uint32_t required_nodes(concern_kind kind, uint32_t nodes, size_t cluster_size,
                        std::string& error);

// -- one record ---------------------------------------------------------------

/// One write a confirmation asks about, parsed.
struct confirm_item {
  /// The key.
  std::string key;
  /// The version the origin applied.
  version ver;
  /// The fields of a delta (empty for a whole value or a delete).
  std::vector<map_key> fields;
};

/// Reads a ConfirmRecord from an untrusted peer; returns an explanation on
/// failure (empty on success). At most `max_fields` fields.
std::string from_proto(const pb::ConfirmRecord& x, confirm_item& out,
                       size_t max_fields = 4096);

/// Writes a confirm_item into its protobuf form.
void to_proto(const confirm_item& x, pb::ConfirmRecord* out);

/// What a store says about one confirm_item.
enum class confirm_status : uint8_t {
  /// Not yet: the write (or a later one of the same claim) has not arrived.
  pending,
  /// The entry holds this version or a later one of the same claim.
  held,
  /// The entry holds a version of another claim that beats this one: the
  /// write lost and never will be visible here.
  superseded,
};

/// Who beat a superseded write.
struct superseding_claim {
  /// The winning claim's owner (raw node ID).
  raw_node_id owner;
  /// When its lease ends (µs; 0: none).
  uint64_t lease_end_us = 0;
};

/// True when `later` continues the claim `v` was written in: the same claim
/// (epoch, claim time, claimer), or a later claim by the same claimer (an
/// owner that claimed again after its own lease ended). With leasing off
/// every version is of one claim.
bool continues_claim(const version& later, const version& v) noexcept;

/// Checks `item` against `store`: held when its entry has this version or a
/// later one of the same claim (for a whole value or delete, the base; for
/// a delta, the base or each named field), superseded when the entry's
/// newest visible version is of another claim and beats it (filling `by`),
/// else pending.
confirm_status check_record(const store_state& store, const confirm_item& item,
                            superseding_claim* by = nullptr);

// -- queries held at a node ---------------------------------------------------

/// A query from another node, held until its writes arrive.
struct confirm_wait {
  /// The node that asked.
  raw_node_id origin;
  /// Its query ID.
  uint64_t query_id = 0;
  /// When to drop it unanswered (µs, the node's wall clock).
  uint64_t deadline_us = 0;
  /// The writes not yet held here.
  std::vector<confirm_item> items;
};

/// The answer a finished wait gives its origin.
struct confirm_verdict {
  /// The node that asked.
  raw_node_id origin;
  /// Its query ID.
  uint64_t query_id = 0;
  /// Held (true) or superseded (false).
  bool held = false;
  /// When superseded: the key and who won it.
  std::string key;
  /// See key.
  superseding_claim by;
};

/// The queries a node holds for other nodes until their writes arrive,
/// bounded in count and bytes: adding beyond either bound drops the oldest
/// waits (the caller counts and logs them; their origins wait for other
/// nodes or time out). A wait is looked up by key when that key changes.
/// Not thread-safe: the dict store owns it.
class confirm_waits {
public:
  /// Holds at most `max_count` waits and `max_bytes` bytes of them.
  confirm_waits(size_t max_count = 10000, size_t max_bytes = 4 << 20);

  /// The bytes a wait is charged (its keys, fields and bookkeeping).
  static size_t charge(const confirm_wait& w) noexcept;

  /// Holds `w` (replacing a wait with the same origin and query ID, a
  /// resent query); drops the oldest waits while a bound is exceeded and
  /// returns how many were dropped. A wait larger than `max_bytes` alone is
  /// dropped itself (counted in the return value).
  size_t add(confirm_wait w);

  /// The key `key` changed: re-checks every held item of that key with
  /// `check` and returns the verdicts of the waits that finished (all held,
  /// or one superseded), which are removed.
  std::vector<confirm_verdict>
  on_change(std::string_view key,
            const std::function<confirm_status(const confirm_item&,
                                               superseding_claim*)>& check);

  /// Drops the waits whose deadline is at or before `now_us`; returns how
  /// many.
  size_t expire(uint64_t now_us);

  /// Waits held now.
  size_t size() const noexcept { return waits_.size(); }

  /// Bytes charged for them.
  size_t bytes() const noexcept { return bytes_; }

  /// True when nothing is held.
  bool empty() const noexcept { return waits_.empty(); }

  /// The bounds.
  size_t max_count() const noexcept { return max_count_; }
  /// See max_count.
  size_t max_bytes() const noexcept { return max_bytes_; }

private:
  struct held {
    confirm_wait wait;
    size_t bytes = 0;
  };

  void remove(uint64_t serial);

  size_t max_count_;
  size_t max_bytes_;
  size_t bytes_ = 0;
  uint64_t next_serial_ = 1;
  /// Waits by serial: the first is the oldest.
  std::map<uint64_t, held> waits_;
  /// (origin, query ID) -> serial, so a resent query replaces its wait.
  std::map<std::pair<raw_node_id, uint64_t>, uint64_t> by_query_;
  /// key -> serials of the waits with an item of that key.
  std::unordered_map<std::string, std::vector<uint64_t>> by_key_;
};

// -- confirmations an origin waits for ---------------------------------------

/// The confirmations a node waits for as the origin of confirmed writes:
/// the distinct nodes known to hold each, bounded in count (a full tracker
/// refuses new ones before their write is applied). Not thread-safe: the
/// facade owns it.
class confirm_tracker {
public:
  /// Waits for at most `max_pending` confirmations at once.
  explicit confirm_tracker(size_t max_pending = 10000)
      : max_pending_(max_pending) {}

  /// One confirmation waited for.
  struct pending {
    /// Nodes required (this one included).
    uint32_t required = 0;
    /// Distinct nodes known to hold the write (at most `required`).
    std::set<raw_node_id> holders;
    /// When it times out (µs).
    uint64_t deadline_us = 0;
    /// The keys written (to match lease losses).
    std::vector<std::string> keys;
  };

  /// What an answer or an event did to a confirmation.
  enum class outcome : uint8_t {
    /// Unknown query (answered already, or never asked): nothing.
    unknown,
    /// Counted (or a node counted before): still waiting.
    waiting,
    /// Enough nodes hold it.
    confirmed,
    /// A claim that beats it was found.
    superseded,
  };

  /// True when no more confirmations may start.
  bool full() const noexcept { return pending_.size() >= max_pending_; }

  /// Starts waiting for a confirmation that `self` already holds; returns
  /// its query ID, or 0 when full.
  uint64_t add(uint32_t required, const raw_node_id& self, uint64_t deadline_us,
               std::vector<std::string> keys);

  /// Node `responder` answered query `id`: held (counted once per node) or
  /// superseded.
  outcome on_answer(uint64_t id, const raw_node_id& responder, bool held,
                    bool superseded);

  /// The confirmations that wrote `key` (this node lost its lease of it).
  std::vector<uint64_t> waiting_on(const std::string& key) const;

  /// The confirmations whose deadline is at or before `now_us`.
  std::vector<uint64_t> expired(uint64_t now_us) const;

  /// The confirmation `id`, or nullptr.
  const pending* find(uint64_t id) const;

  /// Forgets confirmation `id` (answered).
  void erase(uint64_t id);

  /// Every confirmation's ID (for resends).
  std::vector<uint64_t> ids() const;

  /// Confirmations waited for now.
  size_t size() const noexcept { return pending_.size(); }

private:
  size_t max_pending_;
  uint64_t next_id_ = 1;
  std::map<uint64_t, pending> pending_;
  std::unordered_map<std::string, std::vector<uint64_t>> by_key_;
};

} // namespace syncmesh
