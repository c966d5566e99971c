#pragma once

// A node's data dir (config::data_dir, issue 15): the node ID in `node-id`
// (hex) and the entries in `entries/` (the engine's dir). Opened by
// spawn_node before any actor runs, so a dir that cannot be used stops the
// start with one line instead of an actor that dies. Plain functions, no
// CAF: tested directly.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "actors/store_persistence.hpp"
#include "actors/store_state.hpp"
#include "syncmesh/config.hpp"

namespace syncmesh {

/// A store loaded from its data dir before the node starts, handed to the
/// dict store actor.
struct durable_start {
  /// The entries loaded.
  store_state store;
  /// Writes what changes from now on.
  std::shared_ptr<store_persistence> persistence;
  /// Every stored stamp and the reserved clock mark are at or below this
  /// time (µs): the node stamps above it.
  uint64_t clock_floor_us = 0;
  /// Keys loaded, tombstones included.
  uint64_t entries = 0;
  /// How long the load took (ms), for the start's log line.
  uint64_t load_ms = 0;
  /// The entries were older than the tombstone horizon and were moved to
  /// this dir instead of loaded (empty when loaded).
  std::string set_aside;
};

/// Writes `content` to `path` so that a crash at any point leaves either
/// the old content or the new one, and the new one survives a power cut
/// once this returns: a temporary file, fsync, rename, fsync of the dir.
/// Throws std::system_error naming the path.
void write_file_durably(const std::string& path, std::string_view content);

/// The node ID kept in `<dir>/node-id`, or empty when there is none yet.
/// Throws value_error (invalid_config) when the file holds no hex ID.
std::string read_node_id(const std::string& dir);

/// Keeps `id` in `<dir>/node-id` durably (write_file_durably).
void write_node_id(const std::string& dir, const std::string& id);

/// Whether data last known alive at `last_alive_us` may hold keys whose
/// deletion its peers have already forgotten: it was away longer than the
/// tombstone horizon (less the clock offset the peers may have). Loading it
/// could bring deleted keys back, so such entries are set aside and the
/// node rejoins empty (README, "Durable storage").
bool older_than_horizon(uint64_t last_alive_us, uint64_t now_us,
                        uint64_t horizon_us, uint64_t max_clock_offset_us);

/// How far ahead of its clock a node reserves stamps on disk: a restarted
/// node starts its clock above the reservation, so it never stamps a
/// version it may have published before the crash. Half the clock offset
/// bound: a restarted node's stamps are then never further ahead of the
/// wall clock than a peer accepts.
uint64_t clock_reservation_us(const config& cfg);

/// Creates the data dir of `cfg` when missing, settles the node ID (the
/// configured one, the stored one, the certificate's `tls_id`, or
/// `fresh_id`, checking that they agree) and keeps it, then opens and loads
/// the entries (durability as `cfg` says). Entries older than the tombstone
/// horizon are moved to `entries.stale-<time>` unless cfg.keep_stale_data.
/// Returns the node ID and what was loaded. Throws value_error
/// (invalid_config) with one line naming the dir when it cannot be used.
std::pair<std::string, std::shared_ptr<durable_start>>
open_data_dir(const config& cfg, const std::string& tls_id,
              const std::string& fresh_id);

} // namespace syncmesh
