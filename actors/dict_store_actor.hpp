#pragma once

// The interface of the dict store (dict_store.hpp).

#include <cstdint>
#include <string>

#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "actors/atoms.hpp"
#include "actors/link_actor.hpp"
#include "syncmesh/caf_types.hpp"

namespace syncmesh {

/// The dict store: the entries with their versions and tombstones, and the
/// single sequencer of every write that reaches the node. Messages:
/// - local writes from the facade, decided with the lease rule
///   (lease_state.hpp) inside the store's sequencing, stamped, applied and
///   answered once applied: `SetRequest -> WriteAck`,
///   `SetManyRequest -> SetManyReply` (each item as its own SetRequest, one
///   outcome each),
///   `UpdateRequest -> WriteAck` (all leases first, then all or nothing),
///   `DeleteRequest -> DeleteReply`, `DeltaRequest -> WriteAck`,
///   `PopItemRequest -> DeleteReply`;
/// - reads: `GetRequest -> GetReply`, `GetManyRequest -> GetManyReply`,
///   `SnapshotRequest -> Snapshot`;
/// - remote writes, never refused for lease reasons:
///   `(remote_atom, peer, WriteBatch) -> bool` from the router (and held
///   writes released by the lease manager), answered once applied or held
///   (the reply returns the sending link's ingress credit), `(py2p_write_atom,
///   peer, WriteBatch, initial_sync) -> bool` decided with py2p's rule (the
///   reply, once applied, returns the py2p link's ingress credit),
///   `(ae_entries_atom, peer, WriteBatch) -> bool` from a link, answered once
///   applied;
/// - anti-entropy with the peer behind a link: `(ae_start_atom, link)`
///   sends our SUMMARY, `(ae_digest_atom, link, Digest)` answers the peer's
///   digest, `(ae_ack_atom, link, session)` releases the next window;
/// - from the lease manager: `(purge_atom, horizon_us) -> (purged,
///   remaining)` purges tombstones older than the horizon;
/// - `(events_atom, bool) -> bool`: build update/delete events only while
///   someone listens (the reply, the new setting, says every write handled
///   after it is published accordingly); `(dump_atom) -> std::string`
///   (canonical bytes),
///   `(export_atom) -> WriteBatch` (every entry as records, by key),
///   `(stats_atom) -> StoreStats`, `(stats_atom, lease_atom) -> LeaseStats`
///   (the store's part: local writes, refusals, remote records, tombstones,
///   the clock's high-water mark);
/// - `BackupRequest -> BackupReply`: with a data dir, writes what is
///   staged and checkpoints the storage into a new dir (a consistent copy
///   holding every acknowledged write) for a backup to read; without one,
///   errc::invalid_config;
/// - with a data dir, to itself: `(storage_sync_atom)` writes the group of
///   staged changes (and syncs with durability `always`) and releases the
///   acknowledgements and floods that wait for it (with `always`, once its
///   sync is done), `(storage_tick_atom)` asks for a sync on the `batch`
///   timer, `(storage_alive_atom)` refreshes the data dir's "last alive"
///   mark; from its syncer thread, `(storage_synced_atom, ticket, error)`
///   releases what waited for the syncs up to `ticket`;
/// - confirmed writes (issue 17): `(confirm_atom, ConfirmQuery)` from the
///   router, another node's query: answered at once through the router
///   (`(confirm_answer_atom, ConfirmAnswer)`) when every record is held or
///   one is superseded, else held (bounded, confirm_waits) and answered
///   when a write makes it so; `(confirm_tick_atom)` drops held queries
///   past their deadline.
using dict_store_actor = caf::typed_actor<
  caf::replies_to<pb::SetRequest>::with<pb::WriteAck>,
  caf::replies_to<pb::SetManyRequest>::with<pb::SetManyReply>,
  caf::replies_to<pb::UpdateRequest>::with<pb::WriteAck>,
  caf::replies_to<pb::DeleteRequest>::with<pb::DeleteReply>,
  caf::replies_to<pb::DeltaRequest>::with<pb::WriteAck>,
  caf::replies_to<pb::PopItemRequest>::with<pb::DeleteReply>,
  caf::replies_to<pb::GetRequest>::with<pb::GetReply>,
  caf::replies_to<pb::GetManyRequest>::with<pb::GetManyReply>,
  caf::replies_to<pb::SnapshotRequest>::with<pb::Snapshot>,
  caf::replies_to<pb::BackupRequest>::with<pb::BackupReply>,
  caf::replies_to<remote_atom, std::string, pb::WriteBatch>::with<bool>,
  caf::replies_to<py2p_write_atom, std::string, pb::WriteBatch,
                  bool>::with<bool>,
  caf::replies_to<ae_entries_atom, std::string, pb::WriteBatch>::with<bool>,
  caf::reacts_to<ae_start_atom, link_actor>,
  caf::reacts_to<ae_digest_atom, link_actor, pb::Digest>,
  caf::reacts_to<ae_ack_atom, link_actor, uint64_t>,
  caf::replies_to<purge_atom, uint64_t>::with<uint64_t, uint64_t>,
  caf::replies_to<events_atom, bool>::with<bool>,
  caf::replies_to<dump_atom>::with<std::string>,
  caf::replies_to<export_atom>::with<pb::WriteBatch>,
  caf::replies_to<stats_atom>::with<pb::StoreStats>,
  caf::replies_to<stats_atom, lease_atom>::with<pb::LeaseStats>,
  caf::reacts_to<storage_sync_atom>, caf::reacts_to<storage_tick_atom>,
  caf::reacts_to<storage_alive_atom>,
  caf::reacts_to<storage_synced_atom, uint64_t, std::string>,
  caf::reacts_to<confirm_atom, pb::ConfirmQuery>,
  caf::reacts_to<confirm_tick_atom>>;

} // namespace syncmesh
