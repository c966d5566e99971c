#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "syncmesh/clock.hpp"
#include "syncmesh/node_id.hpp"

namespace syncmesh {

/// How anti-entropy compares the buckets in which two replicas differ.
enum class ae_method : uint8_t {
  /// Whichever of the two below should move fewer bytes.
  automatic,
  /// A set sketch whose size follows the number of differing keys: few
  /// differences among many keys.
  sketch,
  /// The keys and version hashes each side holds there: small stores, or
  /// most keys differing.
  key_lists,
};

/// The dialect a node's peer links speak.
enum class wire_kind : uint8_t {
  /// syncmesh's own protobuf envelopes (anti-entropy, tombstones, HLC).
  native,
  /// py2p / js2p 0.7.870's msgpack frames, to join their meshes as a sync
  /// peer (docs: tests/interop/README.md, "py2p mode").
  py2p,
};

/// Mutual TLS on the native peer links (issue 16): every link runs a TLS 1.3
/// handshake in which both sides present a certificate signed by the
/// cluster CA, and a node with TLS never talks to a plain peer. The node's
/// ID is the one its certificate names in a URI SAN
/// `urn:syncmesh:node:<hex of the raw ID>` (deploy/certs.sh makes such
/// certificates): a peer whose hello claims another ID is refused. Give
/// either files or PEM text (apps that keep certificates in memory), all
/// three parts; all empty means plain TCP. py2p/js2p speak no TLS: wire
/// mode py2p with TLS is an invalid configuration.
/// When a node with a data dir makes a write durable (config::durability).
enum class durability_mode : uint8_t {
  /// Written to the engine's log, left to the OS to flush: a power cut may
  /// lose acknowledged writes (a process crash does not).
  none,
  /// As `none`, and flushed to disk (fsync) at least every
  /// `durability_interval`: a power cut loses at most that much.
  batch,
  /// A local write is acknowledged, and a write is relayed to peers, only
  /// once it is on disk; writes that arrive together share one fsync.
  always,
};

/// The option spelling of a durability mode ("none", "batch", "always").
const char* to_string(durability_mode x) noexcept;

struct tls_config {
  /// PEM certificate chain of this node (leaf first).
  std::string cert_file;
  /// PEM private key of that certificate.
  std::string key_file;
  /// PEM bundle of the cluster CA that signs every node's certificate.
  std::string ca_file;
  /// The certificate chain as PEM text (instead of cert_file).
  std::string cert_pem;
  /// The private key as PEM text (instead of key_file).
  std::string key_pem;
  /// The CA bundle as PEM text (instead of ca_file).
  std::string ca_pem;

  /// True when any part is given (then validate() wants all three).
  bool enabled() const {
    return !cert_file.empty() || !key_file.empty() || !ca_file.empty()
           || !cert_pem.empty() || !key_pem.empty() || !ca_pem.empty();
  }
};

/// The largest value a py2p-mode node accepts by default (config::for_py2p,
/// `syncmesh-node --wire=py2p` without --max-value-size). py2p and js2p
/// 0.7.870 set no limit of their own; in practice they relay 8 MiB (36 s
/// through py2p, js2p and py2p on a 2-core machine) and did not get 32 MiB
/// through in two minutes, so larger values would only stall the mesh.
inline constexpr size_t py2p_max_value_size = 8 * 1024 * 1024;

/// Everything that configures one syncmesh node. Defaults follow py2p's
/// sync_socket: leasing on, one-hour leases.
struct config {
  /// Interface the node binds.
  std::string host = "127.0.0.1";
  /// TCP port; 0 lets the OS choose (sync_socket::port() reports it).
  uint16_t port = 0;
  /// Accept connections at all; false makes a node that only dials out.
  bool listen = true;
  /// Seeds, "host:port" each: dialled at start and redialled with
  /// exponential backoff and jitter while unreachable.
  std::vector<std::string> peers;
  /// Target number of outgoing connections (py2p's default is 4).
  size_t max_peers = 4;
  /// Most inbound connections accepted at once.
  size_t max_inbound = 32;
  /// How long a dial may take before it fails.
  std::chrono::milliseconds dial_timeout = std::chrono::seconds(5);
  /// A connection must finish its handshake within this time.
  std::chrono::milliseconds handshake_timeout = std::chrono::seconds(5);
  /// Interval of heartbeats (pings) on every link.
  std::chrono::milliseconds heartbeat_interval = std::chrono::seconds(1);
  /// A peer silent for this long is dropped.
  std::chrono::milliseconds peer_timeout = std::chrono::seconds(10);
  /// First and longest delay before redialling an unreachable address.
  std::chrono::milliseconds redial_min = std::chrono::milliseconds(200);
  /// See redial_min.
  std::chrono::milliseconds redial_max = std::chrono::seconds(30);
  /// Most bytes queued for one peer; a peer that falls further behind on
  /// flood traffic is disconnected (anti-entropy repairs it later).
  size_t max_send_queue = 16 * 1024 * 1024;
  /// Interval of anti-entropy rounds, each with one peer.
  std::chrono::milliseconds anti_entropy_interval = std::chrono::seconds(30);
  /// How anti-entropy compares differing buckets; only bytes and speed
  /// depend on it, never the result.
  ae_method anti_entropy_method = ae_method::automatic;
  /// Nodes only talk to nodes of the same subnet (part of the protocol ID).
  std::string subnet;
  /// Leases on (a key belongs to its setter for `lease_duration`) or off
  /// (the newest write wins). Nodes with leasing on and off never mix.
  bool leasing = true;
  /// How long a write's lease lasts.
  std::chrono::milliseconds lease_duration = std::chrono::hours(1);
  /// The largest clock offset between nodes the lease rules assume
  /// (`--max-clock-offset`). Every heartbeat measures each peer's offset; a
  /// peer beyond it (past the measurement's uncertainty) is refused at the
  /// handshake or disconnected (Goodbye CLOCK_OFFSET), and a node beyond it
  /// from a majority of the nodes it measures refuses local writes
  /// (errc::clock_offset) until it is back within. Unless set explicitly,
  /// lease_margin and max_clock_skew are this bound (README, "Clocks").
  std::chrono::milliseconds max_clock_offset = std::chrono::milliseconds(500);
  /// Margin for clock offset between nodes: the owner renews only until
  /// `end - margin`; others may claim only from `end + margin`. Unset: the
  /// bound, max_clock_offset (see effective_lease_margin).
  std::optional<std::chrono::milliseconds> lease_margin;
  /// Largest key in bytes.
  size_t max_key_size = 4096;
  /// Largest value in bytes (its encoded size).
  size_t max_value_size = 1024 * 1024;
  /// Largest frame on the wire, in bytes; an update() batch must fit it.
  size_t max_frame_size = 4 * 1024 * 1024;
  /// Deepest nesting of lists and maps in a value. Mesh-wide like the
  /// protocol ID (exchanged in the handshake): every entrance (local API,
  /// HTTP, wire, anti-entropy, py2p) refuses deeper values, and the wire
  /// decoder's recursion limit is raised to hold this depth.
  size_t max_value_depth = 64;
  /// Longest lease any record may claim, mesh-wide (in the handshake): a
  /// record's lease end is clamped to its own wall stamp + this, when made
  /// and when merged, so no record can lock a key for longer.
  std::chrono::milliseconds max_lease_duration = std::chrono::hours(24);
  /// Largest frame a connection may send before its hello is accepted; a
  /// hello fits in a few hundred bytes.
  size_t max_handshake_frame = 64 * 1024;
  /// Most bytes held, in all, for connections that have not finished their
  /// handshake; beyond it the newest or largest pending buffer is dropped.
  size_t max_pending_handshake_bytes = 4 * 1024 * 1024;
  /// Most bytes of one peer's writes received but not yet applied by the
  /// store; beyond it the link stops reading its socket until the store
  /// catches up (credit-based back-pressure).
  size_t ingress_window = 4 * 1024 * 1024;
  /// A connection claiming the ID of a connected node makes the node probe
  /// the existing link; only if it stays silent this long is it replaced.
  std::chrono::milliseconds duplicate_probe_timeout
    = std::chrono::milliseconds(1000);
  /// Most bytes of anti-entropy traffic queued for one peer (one session
  /// per peer at a time); beyond it the session is cut short and retried
  /// in a later round.
  size_t max_ae_outbox_bytes = 8 * 1024 * 1024;
  /// Deletes are remembered as tombstones this long, then purged.
  std::chrono::milliseconds tombstone_horizon = std::chrono::hours(24);
  /// Remote writes stamped further than this ahead of the local wall clock
  /// are held until the clock catches up. Unset: max_clock_offset (see
  /// effective_max_clock_skew).
  std::optional<std::chrono::milliseconds> max_clock_skew;
  /// Most remote writes held for clock skew at once; more are refused.
  size_t max_held_writes = 10000;
  /// Keys the node is sized for up front. The key tables rehash each time
  /// they double past this, pausing the node for a time that grows with
  /// the key count (tens of ms at 100,000 keys); 0 starts small.
  size_t expected_keys = 0;
  /// The address peers should dial when it differs from host:port (NAT,
  /// container port mapping), "host:port"; empty advertises host:port.
  std::string out_addr;
  /// Most received messages queued for recv(); the oldest are dropped.
  size_t max_received = 10000;
  /// Most messages per second accepted from one peer (relayed ones
  /// included); beyond it they are dropped, so a peer flooding messages
  /// cannot starve dictionary traffic.
  size_t max_messages_per_peer = 5000;
  /// Hop limit of flooded control messages.
  uint32_t max_hops = 32;
  /// Most message IDs remembered to drop duplicate control messages.
  size_t seen_set_size = 65536;
  /// How long a control message ID is remembered.
  std::chrono::milliseconds seen_ttl = std::chrono::minutes(2);
  /// How long the blocking sync_socket waits for any one reply (a
  /// confirmed write waits its confirmation timeout on top of it).
  std::chrono::milliseconds request_timeout = std::chrono::seconds(30);

  // -- confirmed writes (issue 17) ------------------------------------------

  /// The configured membership: how many nodes the mesh is meant to have.
  /// `confirm::majority` needs cluster_size / 2 + 1 nodes, `confirm::all`
  /// cluster_size; neither counts the peers connected now (in a partition
  /// both sides would reach a majority of what they see). 0: derived from
  /// the seeds (`peers.size() + 1`, when seeds are given, see
  /// effective_cluster_size), else majority and all are refused.
  size_t cluster_size = 0;
  /// The timeout of a confirmed write that names none.
  std::chrono::milliseconds confirm_timeout = std::chrono::seconds(2);
  /// The longest confirmation timeout accepted (here and in queries from
  /// peers, which a node holds at most this long).
  std::chrono::milliseconds max_confirm_timeout = std::chrono::minutes(5);
  /// Most confirmed writes this node waits for at once; more are refused
  /// (errc::overloaded) before they are applied.
  size_t max_pending_confirms = 10000;
  /// Most confirmation queries from other nodes held until their writes
  /// arrive, and their bytes; beyond either the oldest is dropped
  /// (counted, logged): its origin then waits for other nodes or times out.
  size_t max_confirm_waits = 10000;
  /// See max_confirm_waits.
  size_t max_confirm_wait_bytes = 4 * 1024 * 1024;
  /// A pending confirmation asks again (a new flood of its query) this
  /// often, so a query lost to a shed frame or a link that came up later
  /// still reaches every node.
  std::chrono::milliseconds confirm_resend_interval
    = std::chrono::milliseconds(500);
  /// The node's ID (at most node_id::max_size bytes); empty picks 15 random
  /// bytes (py2p mode: a random base58 id, as py2p makes its own).
  syncmesh::node_id node_id;
  /// Wall clock for HLC stamps, leases and tombstones; empty uses the system
  /// clock. Tests and simulators inject a manual_clock here.
  wall_clock clock;
  /// The node never stamps a write at or below this time (µs): a restarted
  /// node passes the high-water mark it persisted (see NodeStats).
  uint64_t hlc_floor_us = 0;
  /// Directory of the node's durable state (issue 15); empty keeps
  /// everything in memory. With it the node keeps its ID in `node-id` and
  /// every entry in `entries/` (RocksDB), loads them before it serves, and
  /// persists each applied write as `durability` says.
  std::string data_dir;
  /// When writes reach the disk (README, "Durable storage").
  durability_mode durability = durability_mode::batch;
  /// The longest time `batch` leaves written data without an fsync.
  std::chrono::milliseconds durability_interval = std::chrono::milliseconds(10);
  /// Load the data dir even when it was last alive longer ago than the
  /// tombstone horizon. Off: such entries are set aside and the node rejoins
  /// empty, since its peers may have purged deletes it never saw. On only
  /// when no node can have purged them (every node was down as long).
  bool keep_stale_data = false;
  /// Dial through the middleman's backend (`add_tcp_scribe(host, port)`)
  /// instead of the non-blocking dialler. Only for CAF's test multiplexer,
  /// where connecting is simulated (syncmesh/testing.hpp sets it): with the
  /// default multiplexer the connect would block a scheduler worker.
  bool dial_via_backend = false;
  /// Make the storage's fsyncs on the store actor's own thread instead of
  /// a syncer thread. Only for CAF's test coordinator (syncmesh/testing.hpp
  /// sets it): a thread's message would arrive at no deterministic point of
  /// virtual time. Elsewhere a disk that stalls would stall the store.
  bool sync_inline = false;

  /// Peer TLS (see tls_config); empty: plain TCP. With TLS, an empty
  /// node_id is taken from the certificate, and a given one must match it.
  tls_config tls;

  /// Wire dialect of every peer link of this node (one per node: py2p and
  /// native peers never share a mesh).
  wire_kind wire = wire_kind::native;
  /// py2p mode: allow erase/pop, which send a nil store. js2p 0.7.870 throws
  /// on a nil store and closes every link on its path, so this stays off
  /// unless the mesh has no js2p node.
  bool py2p_allow_delete = false;

  /// Explains the first invalid setting, or returns an empty string.
  std::string validate() const;

  /// A configuration for joining a py2p/js2p 0.7.870 mesh: wire py2p, values
  /// up to py2p_max_value_size (what py2p and js2p accept in practice) and
  /// frames, queues and ingress window that hold one; the rest as default.
  static config for_py2p();

  /// lease_margin, or max_clock_offset when unset: leases keep a margin of
  /// the offset bound on both sides of their end.
  std::chrono::milliseconds effective_lease_margin() const {
    return lease_margin ? *lease_margin : max_clock_offset;
  }

  /// The membership majority and all count: cluster_size, or the seeds
  /// plus this node when it is 0 and seeds are given, else 0 (unknown).
  size_t effective_cluster_size() const {
    if (cluster_size > 0)
      return cluster_size;
    return peers.empty() ? 0 : peers.size() + 1;
  }

  /// max_clock_skew, or max_clock_offset when unset: a remote write stamped
  /// beyond now + the bound is held.
  std::chrono::milliseconds effective_max_clock_skew() const {
    return max_clock_skew ? *max_clock_skew : max_clock_offset;
  }
};

/// Splits "host:port" (also "[v6]:port"); false when malformed, and for
/// port 0 unless `allow_port_zero` (a listening address the OS completes).
bool parse_host_port(const std::string& text, std::string& host, uint16_t& port,
                     bool allow_port_zero = false);

/// The protocol ID a node with this configuration speaks: derived from the
/// subnet, the leasing flag and the protocol version.
std::string protocol_id(const config& cfg);

} // namespace syncmesh
