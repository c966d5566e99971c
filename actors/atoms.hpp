#pragma once

// Atoms of the messages between syncmesh's own actors (at most 10 chars).

#include <caf/atom.hpp>

namespace syncmesh {

/// (local_atom, WriteBatch) -> WriteAck: the store applies a local write.
using local_atom = caf::atom_constant<caf::atom("local")>;
/// (erase_atom, WriteBatch) -> DeleteReply: the store applies a local delete.
using erase_atom = caf::atom_constant<caf::atom("erase")>;
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
/// (purge_atom, keys): drop expired tombstones.
using purge_atom = caf::atom_constant<caf::atom("purge")>;
/// (stats_atom) -> RouterStats / LeaseStats.
using stats_atom = caf::atom_constant<caf::atom("stats")>;
/// (dump_atom) -> canonical bytes of the store (tests, convergence checks).
using dump_atom = caf::atom_constant<caf::atom("dump")>;

} // namespace syncmesh
