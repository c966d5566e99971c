#pragma once

// The node settings of tests over real sockets: heartbeats, timeouts,
// redials and repair rounds short enough that failure detection, redialling
// and anti-entropy happen within a test.

#include <chrono>

#include "syncmesh/config.hpp"

namespace syncmesh::test {

/// A config with quick timeouts (see the file comment); `leasing` as given.
inline config fast_config(bool leasing = true) {
  using namespace std::chrono_literals;
  config cfg;
  cfg.leasing = leasing;
  cfg.heartbeat_interval = 100ms;
  cfg.peer_timeout = 1s;
  cfg.handshake_timeout = 1s;
  cfg.dial_timeout = 1s;
  cfg.redial_min = 50ms;
  cfg.redial_max = 400ms;
  cfg.anti_entropy_interval = 300ms;
  return cfg;
}

} // namespace syncmesh::test
