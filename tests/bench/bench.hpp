#pragma once

// The pieces of syncmesh-bench that scenarios combine: a node under test
// (in the bench process or a syncmesh-node daemon), the asynchronous writer,
// and the report. Kept free of CAF and HTTP headers, so the scenario code
// compiles quickly; the implementations live in inproc_node.cpp,
// daemon_node.cpp and report.cpp.

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace syncmesh::bench {

/// Microseconds on the steady clock. Linux's CLOCK_MONOTONIC is one clock
/// for every process of the machine, so stamps taken in the bench and
/// arrivals seen through a daemon compare directly.
inline int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
           std::chrono::steady_clock::now().time_since_epoch())
    .count();
}

/// Heartbeat interval of every node under test. Links report their byte
/// counts once per heartbeat, so a short one keeps those counts current.
inline constexpr std::chrono::milliseconds heartbeat_interval{100};

/// Counters of one node, summed over its lifetime (callers take deltas).
struct node_counters {
  /// Keys the node holds now.
  uint64_t keys = 0;
  /// Frames the router handed to peer links (one per frame and peer).
  uint64_t deliveries = 0;
  /// Bytes written to peer links, every kind of message (heartbeats,
  /// anti-entropy, writes), closed links included.
  uint64_t wire_bytes_out = 0;
  /// Frames built for flooding writes.
  uint64_t flood_frames = 0;
  /// Bytes of those frames.
  uint64_t flood_bytes = 0;
  /// Entries changed by anti-entropy.
  uint64_t ae_repaired = 0;
  /// Connected peers.
  uint64_t peers = 0;
  /// Durable storage (0 without a data dir): engine batches written,
  /// fsyncs, bytes the store handed the engine, bytes the engine wrote to
  /// disk (log, flushes, compactions), the engine's memory now (write
  /// buffers, block cache, table readers).
  uint64_t storage_writes = 0;
  /// See storage_writes.
  uint64_t storage_syncs = 0;
  /// See storage_writes.
  uint64_t storage_bytes = 0;
  /// See storage_writes.
  uint64_t engine_written = 0;
  /// See storage_writes.
  uint64_t engine_memory = 0;
  /// Microseconds the engine stalled writes (its flushes or compactions
  /// fell behind).
  uint64_t engine_stall_us = 0;
  /// Microseconds spent in fsyncs (their sum).
  uint64_t sync_us = 0;
};

/// CPU time and memory of the process that runs a node.
struct node_usage {
  /// User + system CPU seconds of the process.
  double cpu_s = 0;
  /// Peak resident set (VmHWM), bytes.
  uint64_t peak_rss = 0;
  /// Resident set now (VmRSS), bytes.
  uint64_t rss = 0;
  /// Anonymous resident memory now (RssAnon): the heap and anonymous
  /// mappings, without mapped files (the binary, libraries).
  uint64_t rss_anon = 0;
};

/// Reads the usage of process `pid` from /proc (0: this process, via
/// getrusage for the CPU time).
node_usage process_usage(pid_t pid);

/// Called for every update seen at a watched node: key, value text, and
/// when it was seen (now_us()).
using arrival_fn
  = std::function<void(std::string_view key, std::string_view value, int64_t)>;

/// Blocking writes for one thread: each set() returns once the node
/// acknowledged the write (a daemon: an HTTP PUT on a keep-alive
/// connection of its own; in process: the blocking C++ API).
class blocking_writer {
public:
  virtual ~blocking_writer() = default;
  /// Writes `text` under `key` and waits for the acknowledgement; throws
  /// when the node refuses it.
  virtual void set(const std::string& key, const std::string& text) = 0;
};

/// One node of the mesh under test, wherever it runs.
class bench_node {
public:
  virtual ~bench_node() = default;

  /// A short label for tables: "A (bench process)", "B (pid 1234)".
  virtual std::string label() const = 0;
  /// True when the node runs inside the bench process.
  virtual bool in_process() const = 0;
  /// Where peers dial it, "host:port".
  virtual std::string address() const = 0;
  /// Keys it holds now (cheaper than counters()).
  virtual uint64_t keys() = 0;
  /// Every counter (router, store, links).
  virtual node_counters counters() = 0;
  /// CPU and memory of its process (the whole bench for in-process nodes).
  virtual node_usage usage() = 0;
  /// One blocking write (a lone HTTP PUT for a daemon); the heal and mixed
  /// scenarios use it for writers that are not the bench's own node.
  virtual void set(const std::string& key, const std::string& text) = 0;
  /// One blocking read; false when the key is absent.
  virtual bool get(const std::string& key, std::string& text) = 0;
  /// Calls `fn` for each update of a key starting with `prefix` (facade
  /// events in process; the SSE stream /v1/watch for a daemon) until
  /// unwatch(). One watch at a time.
  virtual void watch(const std::string& prefix, arrival_fn fn) = 0;
  /// Ends the watch; no call of its function runs after this returns.
  virtual void unwatch() = 0;
  /// Events the watch lost (SSE overflow), so far.
  virtual uint64_t watch_dropped() const { return 0; }
  /// A writer of its own for one thread (its own connection to a daemon).
  virtual std::unique_ptr<blocking_writer> writer() = 0;
};

/// Writes through a node's asynchronous facade: requests go out without
/// waiting for their replies, at most `window` unanswered at once. Use it
/// from one thread.
class async_writer {
public:
  virtual ~async_writer() = default;
  /// Sends one SetRequest; blocks only while `window` are unanswered.
  virtual void write(std::string key, std::string text) = 0;
  /// Takes the replies that already arrived, without waiting.
  virtual void poll() = 0;
  /// Waits (at most `limit`) until every request was answered; false on
  /// timeout.
  virtual bool drain(std::chrono::milliseconds limit) = 0;
  /// Acknowledged writes.
  virtual uint64_t acked() const = 0;
  /// Refused writes (lease or validation errors, timeouts).
  virtual uint64_t failed() const = 0;
  /// From now on, appends to `out` the µs from each write to its reply
  /// (replies matched to writes in order: the node answers a writer's
  /// writes in the order it applied them); nullptr stops.
  virtual void keep_latencies(std::vector<int64_t>* out) = 0;
};

/// How to start an in-process node.
struct node_options {
  /// Leases on or off.
  bool leasing = false;
  /// Outgoing connections it aims for; beyond its explicit dials it would
  /// add links the topology does not have, so the bench keeps it at 0.
  size_t max_peers = 0;
  /// config::expected_keys.
  size_t expected_keys = 0;
  /// Peer TLS files (config::tls); empty: plain TCP.
  std::string tls_cert;
  /// See tls_cert.
  std::string tls_key;
  /// See tls_cert.
  std::string tls_ca;
  /// config::data_dir; empty: memory only.
  std::string data_dir;
  /// config::durability as spelled on the command line (with data_dir).
  std::string durability;
};

/// The actor system of the bench process and its in-process nodes. Every
/// node it spawns must be destroyed before it.
class bench_runtime {
public:
  /// An actor system with two scheduler threads (the machine's cores).
  bench_runtime();
  ~bench_runtime();

  bench_runtime(const bench_runtime&) = delete;
  bench_runtime& operator=(const bench_runtime&) = delete;

  /// Spawns a node in this process, listening on 127.0.0.1 (OS-chosen port).
  std::unique_ptr<bench_node> spawn(const std::string& name,
                                    const node_options& opts);
  /// A writer on an in-process node: SetRequests to its facade, or with
  /// `through_socket` its sync_socket's set_async (combined writes).
  std::unique_ptr<async_writer> writer(bench_node& node, size_t window,
                                       bool through_socket = false);
  /// `from` (in process) dials `to`; returns once the handshake is done.
  void connect(bench_node& from, bench_node& to);
  /// `from` (in process) says goodbye to every peer and does not redial.
  void disconnect_all(bench_node& from);

  /// Implementation (opaque).
  struct impl;

private:
  std::unique_ptr<impl> impl_;
};

/// How to start a syncmesh-node daemon.
struct daemon_options {
  /// The syncmesh-node binary.
  std::string binary;
  /// Directory for its log.
  std::string dir;
  /// Leases on or off.
  bool leasing = false;
  /// Seeds it dials, "host:port" each; it aims for exactly these.
  std::vector<std::string> seeds;
  /// --expected-keys of the daemon.
  size_t expected_keys = 0;
  /// --tls-cert, --tls-key, --tls-ca; empty: plain TCP.
  std::string tls_cert;
  /// See tls_cert.
  std::string tls_key;
  /// See tls_cert.
  std::string tls_ca;
  /// --data-dir; empty: memory only.
  std::string data_dir;
  /// --durability (with data_dir).
  std::string durability;
};

/// Starts a daemon on 127.0.0.1 with OS-chosen ports and waits for its
/// ready line; throws std::runtime_error when it does not come.
std::unique_ptr<bench_node> spawn_daemon(const std::string& name,
                                         const daemon_options& opts);

/// Kills every daemon still running when SIGINT or SIGTERM reaches the
/// bench, so an interrupted run leaves no process behind.
void kill_daemons_on_signal();

// -- report -------------------------------------------------------------------

/// p50, p99 and max of a sample, microseconds.
struct latency_summary {
  /// Samples.
  size_t count = 0;
  /// See count.
  double p50 = 0;
  /// See count.
  double p99 = 0;
  /// See count.
  double max = 0;
};

/// Summarises `samples` (sorted in place).
latency_summary summarize(std::vector<int64_t>& samples);

/// One row of the per-node part of a report.
struct node_report {
  /// The node's label.
  std::string label;
  /// Its process's usage at the end of the scenario.
  node_usage usage;
  /// Its storage counters at the end (all zero without a data dir).
  node_counters counters;
};

/// Everything one scenario measured; -1 marks what it did not measure.
struct scenario_report {
  /// chain3, mesh5, join, heal, mixed.
  std::string scenario;
  /// process or inproc.
  std::string mode;
  /// Who writes, and how (printed with the table).
  std::string writer_note;
  /// Nodes in the mesh.
  size_t nodes = 0;
  /// Writes (or keys) of the throughput part.
  uint64_t writes = 0;
  /// Bytes per value.
  size_t value_size = 0;
  /// Leases on.
  bool leasing = false;
  /// Seconds from the first write to the last acknowledgement.
  double issue_seconds = -1;
  /// Seconds from the first write until the last node had all.
  double replicate_seconds = -1;
  /// Offered load of the latency part, writes/s.
  double rate = -1;
  /// Writes the latency part issued.
  uint64_t latency_writes = 0;
  /// Latency from write to arrival at the farthest node.
  latency_summary latency;
  /// Latency writes whose arrival was not observed.
  uint64_t latency_missing = 0;
  /// Label of the farthest node.
  std::string farthest;
  /// Frames handed to links, per write (every node).
  double frames_per_write = -1;
  /// Bytes written to links, per write (every node, every message kind).
  double wire_bytes_per_write = -1;
  /// Flooded bytes per write (frames built for writes, every node).
  double flood_bytes_per_write = -1;
  /// Resident memory per key beyond key and value bytes.
  double memory_per_key = -1;
  /// The same from anonymous memory (RssAnon growth).
  double anon_per_key = -1;
  /// The engine's memory at the memory node after the burst (durable
  /// storage: write buffers, block cache, table readers).
  double engine_memory = -1;
  /// RssAnon growth less the engine's memory, per key, beyond key and
  /// value: what the store itself holds per key.
  double anon_less_engine_per_key = -1;
  /// Bytes the memory node's engine wrote to disk over the bytes its
  /// store handed it during the burst (write amplification).
  double write_amplification = -1;
  /// acks: concurrent writers, each waiting for its acknowledgement.
  size_t writers = 0;
  /// acks: seconds of writing.
  double ack_seconds = -1;
  /// acks: fsyncs and engine writes the node made while they wrote.
  double syncs = -1;
  /// See syncs.
  double engine_writes = -1;
  /// acks: microseconds those fsyncs took, summed.
  double sync_us = -1;
  /// acks: from each write to its acknowledgement.
  latency_summary ack_latency;
  /// The node the memory figure comes from.
  std::string memory_node;
  /// heal: bytes on the wire during the repair.
  double heal_bytes = -1;
  /// heal: bytes of the keys and values that differed.
  double heal_differing_bytes = -1;
  /// mixed: reads done and their latency.
  latency_summary reads;
  /// Per node CPU and memory.
  std::vector<node_report> per_node;
};

/// Prints the table (stdout) and then the JSON line.
void print_report(const scenario_report& r);

} // namespace syncmesh::bench
