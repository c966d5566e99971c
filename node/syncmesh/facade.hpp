#pragma once

// The typed actor interface of a syncmesh node, for CAF applications.

#include <caf/atom.hpp>
#include <caf/fwd.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "syncmesh/caf_types.hpp"
#include "syncmesh/config.hpp"

namespace syncmesh {

/// Subscribes an actor to events: it receives every `pb::Event` (update,
/// delete, lease_lost) as an actor message. Subscribers are monitored and
/// dropped when they terminate.
using subscribe_atom = caf::atom_constant<caf::atom("subscribe")>;

/// Ends a subscription.
using unsubscribe_atom = caf::atom_constant<caf::atom("unsubscr")>;

/// Registers a message handler: an actor answering each `ReceivedMessage`
/// with a bool (true: consumed, not queued). Handlers are asked in
/// registration order; the first that consumes wins (py2p's rule).
using handler_atom = caf::atom_constant<caf::atom("handler")>;

/// Internal: the facade's timer for confirmed writes (timeouts, resends).
using confirm_timer_atom = caf::atom_constant<caf::atom("cftimer")>;

/// The facade of one node: every sync_socket operation as a typed request.
/// Errors come back as CAF errors of category "syncmesh" (see errc):
/// key_not_found, lease_held (context: key, owner hex, lease end µs),
/// wrong_type, invalid_key, key_too_large, value_too_large, malformed.
/// A write is acknowledged only after the local store applied it.
///
/// - `GetRequest -> GetReply`: one key (found=false when absent).
/// - `GetManyRequest -> GetManyReply`: several keys read in one store step
///   (replies in request order; the HTTP API batches concurrent GETs).
/// - `SetRequest -> WriteAck`: sets one key.
/// - `SetManyRequest -> SetManyReply`: sets each pair as its own
///   SetRequest would (own lease decision, in order) in one step, with one
///   outcome per pair (its error, or none when applied); refused as a whole
///   only when a pair breaks a limit or the batch does not fit one frame.
/// - `UpdateRequest -> WriteAck`: sets many keys; all leases are checked
///   first, then all pairs are applied, or none. Its `deletes` are deleted
///   in the same step (their leases checked with the rest; absent keys are
///   skipped, not an error).
/// - `DeleteRequest -> DeleteReply`: deletes a key, returning its value.
/// - `DeltaRequest -> WriteAck`: merges fields into a map (created when
///   absent; wrong_type when the value is not a map).
/// - `PopItemRequest -> DeleteReply`: deletes some key this node may delete.
/// - `SnapshotRequest -> Snapshot`: keys or items, sorted, with prefix/limit.
/// - `InfoRequest -> NodeInfo`: node ID, leasing, protocol ID, key count,
///   listening address and peer count; answered once the listener is bound
///   (an error when binding failed).
/// - `ConnectRequest -> PeerInfo`: dials a peer; answered once the handshake
///   is done, or with errc::unreachable (refused, timed out),
///   errc::protocol_mismatch or errc::disconnected.
/// - `PeersRequest -> PeerList`: connected peers (ID, address, direction,
///   round-trip time).
/// - `SendRequest -> SendReply`: sends a message (broadcast, whisper, or to
///   one node); `RecvRequest -> MessageList` takes received messages from the
///   node's bounded queue (subscribers also get each as `Event{message}`,
///   and peer up/down events).
/// - `StatsRequest -> NodeStats`: the counters of router, lease manager and
///   store (for status pages and metrics).
/// - `BackupRequest -> BackupReply`: with a data dir, a consistent copy of
///   the node's storage in a new dir (every acknowledged write is in it),
///   to read with entry_storage::open_read_only and then remove; without
///   one, errc::invalid_config (what `GET /v1/backup` streams).
/// - `DisconnectRequest -> bool`: says goodbye to a peer and does not redial
///   it (false when it was not connected).
/// - `ConfirmedWriteRequest -> ConfirmedWriteReply`: a set, update, delete
///   or delta answered once the write concern is met: that many distinct
///   nodes (this one included) hold this version or a later one of the same
///   claim. MAJORITY and ALL count config::cluster_size (refused with
///   errc::invalid_config when unknown). When the timeout passes first:
///   errc::unconfirmed, context (message, confirmed, required, cluster
///   size as uint32_t), the write standing; when a claim that beats it is
///   found (here: lease_lost; or at an answering node): errc::lease_held
///   (key, owner hex, lease end µs); more than max_pending_confirms
///   waiting: errc::overloaded, before anything is written.
/// - `(subscribe_atom, actor) -> bool`, `(unsubscribe_atom, actor) -> bool`.
/// - `pb::Event`: internal; the node's own actors publish events through it.
/// - `pb::ConfirmAnswer`, `(confirm_timer_atom)`: internal (answers routed
///   by the router, the confirmation timer).
using facade_actor = caf::typed_actor<
  caf::replies_to<pb::GetRequest>::with<pb::GetReply>,
  caf::replies_to<pb::GetManyRequest>::with<pb::GetManyReply>,
  caf::replies_to<pb::SetRequest>::with<pb::WriteAck>,
  caf::replies_to<pb::SetManyRequest>::with<pb::SetManyReply>,
  caf::replies_to<pb::UpdateRequest>::with<pb::WriteAck>,
  caf::replies_to<pb::DeleteRequest>::with<pb::DeleteReply>,
  caf::replies_to<pb::DeltaRequest>::with<pb::WriteAck>,
  caf::replies_to<pb::PopItemRequest>::with<pb::DeleteReply>,
  caf::replies_to<pb::SnapshotRequest>::with<pb::Snapshot>,
  caf::replies_to<pb::InfoRequest>::with<pb::NodeInfo>,
  caf::replies_to<pb::ConnectRequest>::with<pb::PeerInfo>,
  caf::replies_to<pb::PeersRequest>::with<pb::PeerList>,
  caf::replies_to<pb::DisconnectRequest>::with<bool>,
  caf::replies_to<pb::StatsRequest>::with<pb::NodeStats>,
  caf::replies_to<pb::BackupRequest>::with<pb::BackupReply>,
  caf::replies_to<pb::SendRequest>::with<pb::SendReply>,
  caf::replies_to<pb::RecvRequest>::with<pb::MessageList>,
  caf::replies_to<subscribe_atom, caf::actor>::with<bool>,
  caf::replies_to<unsubscribe_atom, caf::actor>::with<bool>,
  caf::replies_to<handler_atom, caf::actor>::with<bool>,
  caf::reacts_to<pb::Event>,
  caf::replies_to<pb::ConfirmedWriteRequest>::with<pb::ConfirmedWriteReply>,
  caf::reacts_to<pb::ConfirmAnswer>, caf::reacts_to<confirm_timer_atom>>;

/// Loads what syncmesh needs into a CAF configuration: the middleman and the
/// message types. Call it before constructing the actor_system.
void configure(caf::actor_system_config& cfg);

/// Spawns a node (facade, dict store, lease manager, router) and
/// returns its facade. Throws syncmesh::value_error when `cfg` is invalid.
/// Stop it with `caf::anon_send_exit(handle, caf::exit_reason::user_shutdown)`;
/// the other actors are linked to the facade and stop with it.
facade_actor spawn_sync_socket(caf::actor_system& sys, const config& cfg);

} // namespace syncmesh
