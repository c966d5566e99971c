#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <vector>

#include <caf/actor_addr.hpp>

namespace syncmesh {

/// Caps the bytes held, in all, for the connections of one node whose
/// handshake is unfinished (decoder buffers and early frames). Links run on
/// the middleman's threads, so it is shared and locked; only links that have
/// not finished their handshake touch it, and only when their buffers
/// change. When the total would pass the cap, the connections holding the
/// most are dropped (the newest first among equals): honest handshakes hold
/// a few hundred bytes, so an attacker's buffers are always bigger, and no
/// rule ever drops the oldest.
class handshake_budget {
public:
  /// A connection that must drop to keep the total under the cap.
  struct eviction {
    /// Its ticket.
    uint64_t ticket;
    /// Its link (to tell it).
    caf::actor_addr holder;
  };

  /// Holds at most `cap` bytes in all.
  explicit handshake_budget(size_t cap) : cap_(cap) {}

  /// Registers a connection whose handshake has not finished; returns its
  /// ticket (tickets grow: a larger ticket is a newer connection).
  uint64_t enter(caf::actor_addr holder);

  /// Records that connection `ticket` now holds `bytes`. Returns the
  /// connections that must drop, largest first, so the total stays within
  /// the cap; they leave the budget at once and are counted. `ticket` itself
  /// may be among them (also when it was already evicted).
  std::vector<eviction> hold(uint64_t ticket, size_t bytes);

  /// The connection finished its handshake or closed: forget it.
  void leave(uint64_t ticket);

  /// Bytes held now.
  size_t total() const;

  /// The most bytes ever held at once.
  size_t peak() const;

  /// Connections registered now.
  size_t pending() const;

  /// Connections dropped to stay within the cap.
  uint64_t evictions() const;

  /// The cap.
  size_t cap() const noexcept { return cap_; }

private:
  struct entry {
    size_t bytes = 0;
    caf::actor_addr holder;
  };
  mutable std::mutex mtx_;
  size_t cap_;
  size_t total_ = 0;
  size_t peak_ = 0;
  uint64_t next_ticket_ = 1;
  uint64_t evictions_ = 0;
  std::map<uint64_t, entry> entries_;
};

/// What every link of one node shares (owned by the router, handed to each
/// link in link_params): the handshake budget and counters the router
/// reports in RouterStats.
struct link_shared {
  /// Caps the bytes of unfinished handshakes.
  explicit link_shared(size_t max_pending_handshake_bytes)
      : handshakes(max_pending_handshake_bytes) {}

  /// Bytes held for unfinished handshakes.
  handshake_budget handshakes;
  /// Times a link stopped reading because its peer's writes were not yet
  /// applied beyond the ingress window.
  std::atomic<uint64_t> ingress_pauses{0};
  /// Bytes of peers' writes handed on by all links and not yet applied.
  std::atomic<uint64_t> ingress_outstanding{0};
  /// The most such bytes one link ever had outstanding.
  std::atomic<uint64_t> ingress_peak{0};
  /// Flood frames not sent because a peer's send queue was full.
  std::atomic<uint64_t> flood_frames_shed{0};
  /// Their bytes.
  std::atomic<uint64_t> flood_bytes_shed{0};
};

} // namespace syncmesh
