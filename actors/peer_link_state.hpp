#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "messages/version.hpp"
#include "syncmesh/config.hpp"
#include "syncmesh/pb/wire.pb.h"

namespace syncmesh {

/// Features this build announces in its hello.
inline constexpr const char* link_features[] = {"batch", "anti-entropy/1"};

/// The lowest protocol version this build speaks. Version 2 (the release
/// before version ranges) put its version into the protocol ID and sends
/// no range: it is refused with an explanation. Version 3 lacks the field
/// positions of map deltas (`FieldOrigin`): a version-3 node would order
/// fields differently and its digests would never match, so it is refused
/// in the hello (VERSION_MISMATCH, naming both ranges).
inline constexpr uint32_t min_protocol_version = 4;
/// The highest protocol version this build speaks.
inline constexpr uint32_t max_protocol_version = 4;

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

} // namespace syncmesh
