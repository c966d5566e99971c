#pragma once

#include <deque>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <caf/actor.hpp>

#include "actors/clock_offset.hpp"
#include "actors/confirm_rules.hpp"
#include "actors/dict_store_actor.hpp"
#include "actors/lease_manager_actor.hpp"
#include "actors/router_actor.hpp"
#include "actors/store_reader.hpp"
#include "actors/tls_channel.hpp"
#include "messages/version.hpp"
#include "syncmesh/facade.hpp"

namespace syncmesh {

/// State of the facade actor.
struct facade_state {
  /// The node's configuration.
  config cfg;
  /// The node's ID.
  raw_node_id id;
  /// Lease metrics.
  lease_manager_actor lease_manager;
  /// The dictionary, sequencer of every write.
  dict_store_actor store;
  /// The flood table.
  router_actor router;
  /// The node's clock fence (for /v1/status: offsets, fenced flag).
  std::shared_ptr<clock_fence> fence;
  /// Event subscribers (monitored).
  std::vector<caf::actor> subscribers;
  /// Received messages waiting for RecvRequest (at most cfg.max_received).
  std::deque<pb::ReceivedMessage> inbox;
  /// Messages dropped from a full inbox since the last RecvRequest.
  uint64_t dropped_messages = 0;
  /// Message handlers, asked in order before a message is queued.
  std::vector<caf::actor> handlers;
  /// Messages waiting for the handlers (bounded like the inbox).
  std::deque<pb::ReceivedMessage> unhandled;
  /// A message is with the handlers now.
  bool handling = false;

  /// One confirmed write waiting for answers (beside its entry in
  /// `confirms`).
  struct confirm_wait {
    /// Answers the caller.
    caf::typed_response_promise<pb::ConfirmedWriteReply> rp;
    /// The reply so far (the store's answer).
    pb::ConfirmedWriteReply reply;
    /// The query, flooded again every confirm_resend_interval.
    pb::ConfirmQuery query;
    /// When to flood it again (µs, wall clock).
    uint64_t next_resend_us = 0;
  };
  /// The confirmations this node waits for as the origin (bounded by
  /// config::max_pending_confirms).
  confirm_tracker confirms;
  /// Their callers, by query ID.
  std::map<uint64_t, confirm_wait> confirm_waiting;
  /// Confirmed writes with the store now: they count against
  /// max_pending_confirms before they reach `confirms`.
  size_t confirm_reserved = 0;
  /// Counters of confirmed writes.
  pb::ConfirmStats confirm_stats;
  /// The confirmation timer is armed.
  bool confirm_timer_armed = false;
  /// Wall clock of the deadlines (config::clock or the system's).
  wall_clock clock;

  /// The actor's name in CAF's registry and logs.
  static inline const char* name = "syncmesh.facade";
};

/// The facade's behavior: validates requests (key and value limits), passes
/// writes and reads to the store, and fans events out to subscribers.
facade_actor::behavior_type
facade_behavior(facade_actor::stateful_pointer<facade_state> self, config cfg,
                raw_node_id id, lease_manager_actor lease_manager,
                dict_store_actor store, router_actor router,
                std::shared_ptr<clock_fence> fence);

/// Handles to every actor of one node; tests and the mesh use the internals.
struct node_actors {
  /// The public face.
  facade_actor facade;
  /// Lease timers, takeovers (lease_lost), lease metrics; events pass
  /// through it from the store to the facade.
  lease_manager_actor lease_manager;
  /// The dictionary and sequencer of writes (with the per-write lease rule).
  dict_store_actor store;
  /// The routing and flood table.
  router_actor router;
  /// The node's ID (raw bytes).
  raw_node_id id;
  /// The clock fence shared by the links, the store and the facade.
  std::shared_ptr<clock_fence> fence;
  /// Reads the store's keys from any thread (the HTTP front's GETs).
  std::shared_ptr<store_reader> reader;
};

/// Spawns and wires the actors of one node; the others are linked to the
/// facade. Throws value_error for an invalid configuration.
node_actors spawn_node(caf::actor_system& sys, const config& cfg);

/// The peer TLS context of `cfg` (nullptr when cfg.tls is empty); throws
/// value_error(invalid_config) with one line when the certificate, key or
/// CA cannot be loaded, the certificate names no node, or cfg.node_id is
/// set and differs from the certificate's ID.
std::shared_ptr<const tls_context> make_peer_tls(const config& cfg);

/// Explains why `key` is unacceptable under `cfg` (empty, too long), or
/// returns none: the facade's check, shared with readers that bypass it.
caf::error check_key(const config& cfg, const std::string& key);

/// Explains why setting `key` to `val` is unacceptable under `cfg` (the
/// key, the value's size and depth), or returns none: the facade's check
/// of a SetRequest, which a socket makes before it queues a write.
caf::error check_write(const config& cfg, const std::string& key,
                       const pb::Value& val);

/// Bytes of a random node ID.
inline constexpr size_t random_node_id_size = 15;

/// A fresh random node ID (random_node_id_size bytes).
raw_node_id random_node_id();

} // namespace syncmesh
