#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

#include "syncmesh/clock.hpp"

namespace syncmesh {

/// Everything that configures one syncmesh node. Defaults follow py2p's
/// sync_socket: leasing on, one-hour leases.
struct config {
  /// Interface the node binds (the mesh uses it; one node needs none).
  std::string host = "127.0.0.1";
  /// TCP port; 0 lets the OS choose.
  uint16_t port = 0;
  /// Nodes only talk to nodes of the same subnet (part of the protocol ID).
  std::string subnet;
  /// Leases on (a key belongs to its setter for `lease_duration`) or off
  /// (the newest write wins). Nodes with leasing on and off never mix.
  bool leasing = true;
  /// How long a write's lease lasts.
  std::chrono::milliseconds lease_duration = std::chrono::hours(1);
  /// Margin for clock offset between nodes: the owner renews only until
  /// `end - margin`; others may claim only from `end + margin`.
  std::chrono::milliseconds lease_margin = std::chrono::seconds(1);
  /// Largest key in bytes.
  size_t max_key_size = 4096;
  /// Largest value in bytes (its encoded size).
  size_t max_value_size = 1024 * 1024;
  /// Largest frame on the wire, in bytes; an update() batch must fit it.
  size_t max_frame_size = 16 * 1024 * 1024;
  /// Deletes are remembered as tombstones this long, then purged.
  std::chrono::milliseconds tombstone_horizon = std::chrono::hours(24);
  /// Remote writes stamped further than this ahead of the local wall clock
  /// are held until the clock catches up.
  std::chrono::milliseconds max_clock_skew = std::chrono::seconds(10);
  /// Most remote writes held for clock skew at once; more are refused.
  size_t max_held_writes = 10000;
  /// Hop limit of flooded messages.
  uint32_t max_hops = 32;
  /// How long the blocking sync_socket waits for any one reply.
  std::chrono::milliseconds request_timeout = std::chrono::seconds(30);
  /// The node's ID as raw bytes (at most 64); empty picks 16 random bytes.
  std::string node_id;
  /// Wall clock for HLC stamps, leases and tombstones; empty uses the system
  /// clock. Tests and simulators inject a manual_clock here.
  wall_clock clock;

  /// Explains the first invalid setting, or returns an empty string.
  std::string validate() const;
};

/// The protocol ID a node with this configuration speaks: derived from the
/// subnet, the leasing flag and the protocol version.
std::string protocol_id(const config& cfg);

} // namespace syncmesh
