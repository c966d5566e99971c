#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "messages/version.hpp"
#include "syncmesh/pb/wire.pb.h"

namespace syncmesh {

/// Features this build announces in its hello.
inline constexpr const char* link_features[] = {"batch", "anti-entropy/1"};

/// Builds this node's hello.
pb::Envelope make_hello(const node_id& self, const std::string& protocol_id,
                        const std::string& listen_host, uint16_t listen_port);

/// Builds a goodbye.
pb::Envelope make_goodbye(pb::Goodbye::Reason reason, std::string detail);

/// The verdict on a peer's hello: UNSPECIFIED when acceptable, else the
/// reason to say goodbye, with a detail for the log and the peer.
struct hello_verdict {
  /// Why the hello is refused (UNSPECIFIED: accepted).
  pb::Goodbye::Reason reason = pb::Goodbye::UNSPECIFIED;
  /// Human-readable explanation.
  std::string detail;

  /// True when the hello is acceptable.
  bool ok() const noexcept { return reason == pb::Goodbye::UNSPECIFIED; }
};

/// Checks a peer's hello against ours: same protocol ID, a sane node ID that
/// is not our own.
hello_verdict check_hello(const pb::Hello& theirs,
                          const std::string& protocol_id, const node_id& self);

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

private:
  std::vector<Frame> frames_;
  size_t bytes_ = 0;
};

} // namespace syncmesh
