#pragma once

// CAF scheduler settings measured for syncmesh nodes (issue 15). Optional
// for applications: configure() leaves the scheduler as the application
// set it; syncmesh-node applies these.

namespace caf {
class actor_system_config;
} // namespace caf

namespace syncmesh {

/// Makes idle CAF workers block on a condition variable (woken by the next
/// enqueue) once they have spun briefly, instead of polling every 50 µs for
/// half a second first (CAF 0.17's "moderate" mode). Each poll is a
/// nanosleep system call, costly on virtual machines: in chain3 with a data
/// dir on every node (tests/bench/README.md, 2026-12-07) the relaying
/// nodes spent ~9 % of their samples in it, and this setting took them from
/// 9.7-10.1 to 7.2-7.4 CPU s per million writes and the replication rate
/// from 68-70k to 85-92k writes/s. Call it before constructing the system;
/// it changes no other setting.
void apply_node_scheduler_settings(caf::actor_system_config& cfg);

} // namespace syncmesh
