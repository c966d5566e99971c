#pragma once

// Reads of a node's dictionary from threads outside the store actor.
//
// Why: py2p's sync_socket reads from a local copy in O(1), and the HTTP front
// answers GETs on its own I/O thread. Routing every read through the facade
// and the store's mailbox costs two thread hand-offs per GET (I/O thread to a
// CAF worker and back), which on a small machine is most of a GET's cost. The
// store actor stays the only writer: it takes this reader's lock exclusively
// around each change of its table (store_state does it), and a reader takes
// it shared around one lookup. A write is applied (and the lock released)
// before the store acknowledges it, so a read issued after an acknowledgement
// sees the write: read-your-writes holds as it does through the mailbox.
//
// The lock prefers writers: a stream of readers never holds the store up.

#include <atomic>
#include <cstdint>
#include <pthread.h>
#include <string_view>

namespace syncmesh {

namespace pb {
class GetReply;
} // namespace pb

class store_state;

/// A handle that reads one store's keys from any thread, concurrently with
/// the store actor (see the file comment). Made by spawn_node; the store
/// attaches itself with store_state::publish_to and detaches when it ends.
class store_reader {
public:
  /// A reader attached to no store yet.
  store_reader();

  ~store_reader();

  store_reader(const store_reader&) = delete;
  store_reader& operator=(const store_reader&) = delete;

  /// Fills `out` with the value and metadata of `key` when it holds a value
  /// (`found` stays false otherwise). Returns false, leaving `out` alone,
  /// when no store is attached (not yet, or no longer).
  bool get(std::string_view key, pb::GetReply& out) const;

  /// Reads served (for metrics).
  uint64_t reads() const noexcept;

  /// Exclusive lock (the store, around a change). Lockable for
  /// std::unique_lock.
  void lock() noexcept;

  /// Releases the exclusive lock.
  void unlock() noexcept;

private:
  friend class store_state;

  mutable pthread_rwlock_t lock_;
  /// The attached store, or nullptr; changed under the exclusive lock.
  const store_state* store_ = nullptr;
  mutable std::atomic<uint64_t> reads_{0};
};

} // namespace syncmesh
