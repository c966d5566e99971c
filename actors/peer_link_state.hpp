#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include <caf/actor_addr.hpp>

#include "messages/version.hpp"
#include "syncmesh/config.hpp"
#include "syncmesh/pb/wire.pb.h"

namespace syncmesh {

/// Features this build announces in its hello.
inline constexpr const char* link_features[] = {"batch", "anti-entropy/1"};

/// The lowest protocol version this build speaks. Version 2 (the release
/// before version ranges) put its version into the protocol ID and sends
/// no range: it is refused with an explanation (the one clean break).
inline constexpr uint32_t min_protocol_version = 3;
/// The highest protocol version this build speaks.
inline constexpr uint32_t max_protocol_version = 3;

/// What a node states in its hello besides its identity, and requires of a
/// peer: a protocol version range to negotiate within, and the mesh-wide
/// value limits, which must be equal on both sides. Defaults equal those of
/// a default config.
struct hello_terms {
  /// Lowest protocol version spoken.
  uint32_t min_version = min_protocol_version;
  /// Highest protocol version spoken.
  uint32_t max_version = max_protocol_version;
  /// config::max_key_size.
  uint64_t max_key_size = 4096;
  /// config::max_value_size.
  uint64_t max_value_size = 1024 * 1024;
  /// config::max_value_depth.
  uint32_t max_value_depth = 64;
  /// config::max_lease_duration in microseconds.
  uint64_t max_lease_duration_us = 24ull * 3600 * 1000 * 1000;
};

/// The terms of a node with configuration `cfg` (this build's versions).
hello_terms hello_terms_of(const config& cfg);

/// The protocol version two nodes speaking [min_a, max_a] and [min_b,
/// max_b] use: the highest version in both ranges, 0 when they share none
/// (or a range is empty).
uint32_t negotiate_version(uint32_t min_a, uint32_t max_a, uint32_t min_b,
                           uint32_t max_b) noexcept;

/// Builds this node's hello.
pb::Envelope make_hello(const node_id& self, const std::string& protocol_id,
                        const std::string& listen_host, uint16_t listen_port,
                        const hello_terms& terms = {});

/// Builds a goodbye.
pb::Envelope make_goodbye(pb::Goodbye::Reason reason, std::string detail);

/// The verdict on a peer's hello: UNSPECIFIED when acceptable, else the
/// reason to say goodbye, with a detail for the log and the peer.
struct hello_verdict {
  /// Why the hello is refused (UNSPECIFIED: accepted).
  pb::Goodbye::Reason reason = pb::Goodbye::UNSPECIFIED;
  /// Human-readable explanation.
  std::string detail;
  /// The protocol version negotiated (when accepted).
  uint32_t version = 0;

  /// True when the hello is acceptable.
  bool ok() const noexcept { return reason == pb::Goodbye::UNSPECIFIED; }
};

/// Checks a peer's hello against ours: a version range (a hello without one
/// is from a syncmesh/2 node: PROTOCOL_MISMATCH, saying so), the same
/// protocol ID, a common version (else VERSION_MISMATCH), equal value
/// limits (else LIMITS_MISMATCH naming both values), a sane node ID that is
/// not our own.
hello_verdict check_hello(const pb::Hello& theirs,
                          const std::string& protocol_id, const node_id& self,
                          const hello_terms& terms = {});

/// Decides between two connections to the same peer, the same way on both
/// ends: the connection dialled by the smaller node ID survives; between two
/// dialled by the same node the existing one stays. Returns true when the
/// new connection should replace the existing one.
bool prefer_new_connection(bool existing_outbound, bool new_outbound,
                           const node_id& self, const node_id& peer);

/// Bounds the bytes a link has handed to the OS but not yet seen written.
/// CAF's write buffer grows without limit, so the link counts: what it wrote
/// minus what the multiplexer reports as transferred.
class send_budget {
public:
  /// Allows at most `limit` queued bytes of flood traffic.
  explicit send_budget(size_t limit = 0) : limit_(limit) {}

  /// True when `n` more bytes of flood traffic fit.
  bool admits(size_t n) const noexcept { return queued_ + n <= limit_; }

  /// Records bytes handed to the write buffer.
  void wrote(size_t n) noexcept { queued_ += n; }

  /// Records the multiplexer's report of what is still buffered.
  void remaining(size_t n) noexcept { queued_ = n; }

  /// Bytes queued now.
  size_t queued() const noexcept { return queued_; }

  /// The limit.
  size_t limit() const noexcept { return limit_; }

private:
  size_t limit_;
  size_t queued_ = 0;
};

/// The name of a goodbye reason, for logs and errors.
const char* to_string(pb::Goodbye::Reason reason);

/// What a link received after the peer's handshake but before the router
/// attached the link (the peer may consider the handshake done first): kept
/// in arrival order, bounded, and handled once attached. `Frame` is either
/// dialect's decoded frame.
template <class Frame>
class early_frames {
public:
  /// Keeps `frame`, which counts `bytes`; false (and nothing kept) when the
  /// frames kept would pass `limit` bytes.
  bool keep(Frame&& frame, size_t bytes, size_t limit) {
    if (bytes_ + bytes > limit)
      return false;
    bytes_ += bytes;
    frames_.push_back(std::move(frame));
    return true;
  }

  /// Hands every kept frame to `handle` in arrival order and forgets them;
  /// stops early once `closed()` is true (the link shut down meanwhile).
  template <class Handle, class Closed>
  void replay(Handle handle, Closed closed) {
    auto frames = std::move(frames_);
    frames_.clear();
    bytes_ = 0;
    for (auto& frame : frames) {
      handle(frame);
      if (closed())
        return;
    }
  }

  /// Frames kept.
  size_t size() const noexcept { return frames_.size(); }

  /// Bytes kept.
  size_t bytes() const noexcept { return bytes_; }

private:
  std::vector<Frame> frames_;
  size_t bytes_ = 0;
};

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

/// Counts the bytes of a peer's writes that a link handed on but the store
/// has not applied yet (credit-based back-pressure). Beyond the window the
/// link stops reading its socket; it reads again once the store brought the
/// count down to half the window, so it does not flap on every
/// acknowledgement.
class ingress_window {
public:
  /// Allows `limit` outstanding bytes.
  explicit ingress_window(size_t limit = 0) : limit_(limit) {}

  /// Records `n` bytes handed on; true when the link must stop reading now
  /// (it was reading and the count passed the window).
  bool received(size_t n) noexcept {
    outstanding_ += n;
    if (!paused_ && outstanding_ > limit_) {
      paused_ = true;
      return true;
    }
    return false;
  }

  /// Records `n` bytes applied; true when a paused link may read again.
  bool applied(size_t n) noexcept {
    outstanding_ = n > outstanding_ ? 0 : outstanding_ - n;
    if (paused_ && outstanding_ <= limit_ / 2) {
      paused_ = false;
      return true;
    }
    return false;
  }

  /// True while the link must not read.
  bool paused() const noexcept { return paused_; }

  /// Bytes handed on and not yet applied.
  size_t outstanding() const noexcept { return outstanding_; }

  /// The window.
  size_t limit() const noexcept { return limit_; }

private:
  size_t limit_;
  size_t outstanding_ = 0;
  bool paused_ = false;
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
