#pragma once

// Atoms of the messages between syncmesh's own actors (at most 10 chars).

#include <caf/atom.hpp>

namespace syncmesh {

/// (remote_atom, peer, WriteBatch): writes from the mesh.
using remote_atom = caf::atom_constant<caf::atom("remote")>;
/// (changed_atom, origin peer, WriteBatch): store -> router, to flood.
using changed_atom = caf::atom_constant<caf::atom("changed")>;
/// (inbound_atom, peer, Envelope) -> bool: a peer link -> router.
using inbound_atom = caf::atom_constant<caf::atom("inbound")>;
/// (attach_atom, peer, actor) / (detach_atom, peer): peer links.
using attach_atom = caf::atom_constant<caf::atom("attach")>;
/// See attach_atom.
using detach_atom = caf::atom_constant<caf::atom("detach")>;
/// (frame_atom, bytes): router -> peer link, one encoded frame.
using frame_atom = caf::atom_constant<caf::atom("frame")>;
/// (wire_atom, actor): tells an actor where to send its output.
using wire_atom = caf::atom_constant<caf::atom("wire")>;
/// (events_atom, bool): the store publishes events only while wanted.
using events_atom = caf::atom_constant<caf::atom("events")>;
/// (tick_atom, generation): the lease manager's single timer.
using tick_atom = caf::atom_constant<caf::atom("tick")>;
/// (rtick_atom): the router's maintenance timer (dialling).
using rtick_atom = caf::atom_constant<caf::atom("rtick")>;
/// (ae_round_atom): time for an anti-entropy round with the next peer.
using ae_round_atom = caf::atom_constant<caf::atom("aeround")>;
/// (notes_atom, store_notes): the dict store tells the lease manager what
/// changed, in order (events and changes of our leases).
using notes_atom = caf::atom_constant<caf::atom("notes")>;
/// (hold_atom, peer, WriteBatch): remote writes stamped too far ahead of
/// our clock, for the lease manager to hold until their time.
using hold_atom = caf::atom_constant<caf::atom("hold")>;
/// (tombstones_atom): the store holds tombstones; schedule a purge.
using tombstones_atom = caf::atom_constant<caf::atom("tombstones")>;
/// (purge_atom, horizon µs) -> (purged, remaining): purge old tombstones.
using purge_atom = caf::atom_constant<caf::atom("purge")>;
/// (stats_atom) -> RouterStats / LeaseStats.
using stats_atom = caf::atom_constant<caf::atom("stats")>;
/// With stats_atom: the lease manager's counters (the dict store answers
/// with its part of them: local writes, refusals, remote records).
using lease_atom = caf::atom_constant<caf::atom("lease")>;
/// (dump_atom) -> canonical bytes of the store (tests, convergence checks).
using dump_atom = caf::atom_constant<caf::atom("dump")>;
/// (export_atom) -> WriteBatch: every entry as records, sorted by key.
using export_atom = caf::atom_constant<caf::atom("export")>;

/// (adopt_atom): a dialler left a connected socket in the link's slot.
using adopt_atom = caf::atom_constant<caf::atom("adopt")>;
/// (backend_dial_atom, host, port): connect through the middleman backend.
using backend_dial_atom = caf::atom_constant<caf::atom("bdial")>;
/// (dial_fail_atom, errc, reason): a dial failed.
using dial_fail_atom = caf::atom_constant<caf::atom("dialfail")>;
/// (goodbye_atom, reason, detail): say goodbye with a reason and close.
using goodbye_atom = caf::atom_constant<caf::atom("goodbye")>;
/// (ae_frame_atom, bytes): an anti-entropy frame (windowed, never shed).
using ae_frame_atom = caf::atom_constant<caf::atom("aeframe")>;
/// (ae_start_atom, link): the store sends its SUMMARY digest over link.
using ae_start_atom = caf::atom_constant<caf::atom("aestart")>;
/// (ae_digest_atom, link, Digest): a digest from the peer behind link.
using ae_digest_atom = caf::atom_constant<caf::atom("aedigest")>;
/// (ae_ack_atom, link, session): the peer acknowledged a window.
using ae_ack_atom = caf::atom_constant<caf::atom("aeack")>;
/// (ae_entries_atom, peer, WriteBatch) -> bool: entries from anti-entropy,
/// answered once the store applied them.
using ae_entries_atom = caf::atom_constant<caf::atom("aeentries")>;
/// (rtt_atom, peer, microseconds): a link measured its round-trip time.
using rtt_atom = caf::atom_constant<caf::atom("rtt")>;
/// (open_atom, host, port) -> port: a listener binds.
using open_atom = caf::atom_constant<caf::atom("open")>;
/// (flush_atom): the router sends what it batched.
using flush_atom = caf::atom_constant<caf::atom("flush")>;
/// (peers_atom, peer, Peers): peer addresses learned from a link.
using peers_atom = caf::atom_constant<caf::atom("peers")>;
/// (link_closed_atom, reason): a link closed with a goodbye reason.
using link_closed_atom = caf::atom_constant<caf::atom("linkclosed")>;
/// (traffic_atom, TrafficStats): a link's traffic since its last report.
using traffic_atom = caf::atom_constant<caf::atom("traffic")>;
/// (message_atom, peer, Envelope): a mesh_socket message from a link.
using message_atom = caf::atom_constant<caf::atom("message")>;
/// (py2p_in_atom, peer, id, msgpack, sender, time, broadcast, WriteBatch,
/// initial_sync): a message from a py2p link (router relays and dedups).
using py2p_in_atom = caf::atom_constant<caf::atom("py2pin")>;
/// (py2p_write_atom, peer, WriteBatch, initial_sync): py2p writes for the
/// dict store, decided with py2p's rule.
using py2p_write_atom = caf::atom_constant<caf::atom("py2pwrite")>;
/// py2p link -> router: `(py2p_ids_atom, id, bin, first_hand)`, an ID arrived
/// in msgpack type bin (or str); `(py2p_ids_atom, ids) -> ids`, which of
/// `ids` go out as bin (py2p_id_types).
using py2p_ids_atom = caf::atom_constant<caf::atom("py2pids")>;
/// (probe_atom) -> bool: the router asks an established link whether its
/// peer still answers (a newcomer claims the same node ID); the answer comes
/// with the peer's next pong.
using probe_atom = caf::atom_constant<caf::atom("probe")>;
/// Confirmed writes (issue 17): `(confirm_atom, ConfirmQuery)` from the
/// facade to the router (flood it) and from the router to the store (hold
/// it until held); `(confirm_atom, peer, Envelope)` from a link to the
/// router (a query or an answer from the mesh).
using confirm_atom = caf::atom_constant<caf::atom("confirm")>;
/// (confirm_answer_atom, ConfirmAnswer): the store's answer to a query,
/// for the router to route to the query's origin.
using confirm_answer_atom = caf::atom_constant<caf::atom("cfanswer")>;
/// (confirm_tick_atom): the store's timer that drops queries past their
/// deadline.
using confirm_tick_atom = caf::atom_constant<caf::atom("cftick")>;

/// (close_atom): say goodbye to every peer and stop.
using close_atom = caf::atom_constant<caf::atom("close")>;

/// The store writes the group of changes staged since the last one to its
/// storage (synced with durability `always`) and releases what waited for
/// it: one engine write and one fsync for every write queued before it.
using storage_sync_atom = caf::atom_constant<caf::atom("stsync")>;

/// The store's storage timer (durability `batch`): sync what was written.
using storage_tick_atom = caf::atom_constant<caf::atom("sttick")>;

/// To the store from its syncer (or itself): the syncs up to a ticket are
/// done (or the error that failed one); what waited for them goes on.
using storage_synced_atom = caf::atom_constant<caf::atom("stsynced")>;

/// (checkpoint_atom) -> bool: the store asks the helper it spawned for a
/// backup to make the storage's consistent copy (on the helper's thread).
using checkpoint_atom = caf::atom_constant<caf::atom("checkpt")>;

/// The store's timer that refreshes its data dir's "last alive" mark (the
/// tombstone-horizon rule at start reads it).
using storage_alive_atom = caf::atom_constant<caf::atom("stalive")>;

} // namespace syncmesh
