// syncmesh-bench: replication benchmarks on 127.0.0.1 (issue 6).
//
// Scenarios: chain3 (A-B-C), mesh5 (5 nodes, 2-4 peers each), join (a new
// node joins a node holding N keys), heal (two halves diverged by K writes
// each, then reconnected), mixed (several writers, reads at a fixed rate),
// acks (one node, concurrent writers that each wait for their
// acknowledgement: the group commit of durable storage).
// In --mode=process the writer node A runs in the bench process (its
// asynchronous facade) and every other node is a syncmesh-node daemon; in
// --mode=inproc every node runs in the bench process. tests/bench/README.md
// explains every figure and how the published numbers were made.

#include <algorithm>
#include <array>
#include <atomic>
#include <cinttypes>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <mutex>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

#include "actors/tls_channel.hpp"
#include "bench/bench.hpp"
#include "support/test_ca.hpp"

using namespace std::chrono_literals;
using namespace syncmesh::bench;

namespace {

// -- options ------------------------------------------------------------------

/// Command-line options.
struct options {
  std::vector<std::string> scenarios{"chain3", "mesh5", "join",
                                     "heal",   "mixed", "acks"};
  std::string mode = "process";
  uint64_t n = 100000;
  size_t value_size = 64;
  size_t nodes = 0; // 0: the scenario's own count
  double duration = 5;
  double rate = 10000;
  double read_rate = 1000;
  uint64_t k = 1000;
  size_t window = 10000;
  bool leasing = false;
  size_t expected_keys = 0;
  std::string node_bin;
  /// Peer TLS: off, on, or both (each scenario plain, then with TLS).
  std::string tls = "off";
  /// The current run uses TLS (set per run by main).
  bool tls_now = false;
  /// Durable storage of every node: always, batch or none; empty: memory.
  std::string durability;
  /// acks: concurrent writers.
  size_t writers = 16;
  /// acks: facade, http or both.
  std::string via = "both";
  /// chain3/mesh5/heal/mixed: how A's writes reach its node: `facade`
  /// (SetRequests from an actor, one per write) or `socket`
  /// (sync_socket::set_async, which combines the writes queued behind the
  /// batch in flight).
  std::string writer = "facade";
  /// chain3/mesh5: file for every latency sample with its send time.
  std::string latency_log;
  /// Where each run's scratch dir (logs, data dirs) goes: its file system
  /// decides what an fsync costs.
  std::string scratch = "/tmp";
};

/// The --help text.
const char* usage_text
  = "usage: syncmesh-bench [--scenario=all|chain3,mesh5,join,heal,mixed,acks]\n"
    "  [--mode=process|inproc] [--n=N] [--value-size=B] [--nodes=N]\n"
    "  [--duration=S] [--rate=W/s] [--read-rate=R/s] [--k=K] [--window=W]\n"
    "  [--expected-keys=K]\n"
    "  [--leasing[=0|1]] [--node-bin=PATH] [--tls[=on|both]]\n"
    "  [--durability=always|batch|none]  (every node with a data dir)\n"
    "  [--writers=W] [--via=facade|http|both]  (acks)\n"
    "  [--writer=facade|socket]  (how the bursts reach node A)\n"
    "  [--latency-log=FILE]  (chain3, mesh5: each sample with its send time)\n"
    "  [--scratch=DIR]  (logs and data dirs: /tmp by default)\n";

/// The syncmesh-node next to this binary.
std::string default_node_bin() {
  std::error_code ec;
  auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? "syncmesh-node" : (self.parent_path() / "syncmesh-node").string();
}

/// Reads the command line into `opts`; false (after a message) on errors.
bool parse(int argc, char** argv, options& opts) {
  opts.node_bin = default_node_bin();
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value_of = [&](const char* name) -> const char* {
      auto len = std::strlen(name);
      return arg.compare(0, len, name) == 0 ? argv[i] + len : nullptr;
    };
    if (arg == "--help" || arg == "-h") {
      std::fputs(usage_text, stdout);
      std::exit(0);
    } else if (auto v = value_of("--scenario=")) {
      opts.scenarios.clear();
      std::string list = v;
      if (list != "all") {
        size_t pos = 0;
        while (pos <= list.size()) {
          auto comma = list.find(',', pos);
          if (comma == std::string::npos)
            comma = list.size();
          opts.scenarios.push_back(list.substr(pos, comma - pos));
          pos = comma + 1;
        }
      } else {
        opts.scenarios = {"chain3", "mesh5", "join", "heal", "mixed", "acks"};
      }
    } else if (auto v = value_of("--mode="))
      opts.mode = v;
    else if (auto v = value_of("--n="))
      opts.n = std::strtoull(v, nullptr, 10);
    else if (auto v = value_of("--value-size="))
      opts.value_size = std::strtoull(v, nullptr, 10);
    else if (auto v = value_of("--nodes="))
      opts.nodes = std::strtoull(v, nullptr, 10);
    else if (auto v = value_of("--duration="))
      opts.duration = std::strtod(v, nullptr);
    else if (auto v = value_of("--rate="))
      opts.rate = std::strtod(v, nullptr);
    else if (auto v = value_of("--read-rate="))
      opts.read_rate = std::strtod(v, nullptr);
    else if (auto v = value_of("--k="))
      opts.k = std::strtoull(v, nullptr, 10);
    else if (auto v = value_of("--window="))
      opts.window = std::strtoull(v, nullptr, 10);
    else if (auto v = value_of("--expected-keys="))
      opts.expected_keys = std::strtoull(v, nullptr, 10);
    else if (auto v = value_of("--durability="))
      opts.durability = v;
    else if (auto v = value_of("--writers="))
      opts.writers = std::strtoull(v, nullptr, 10);
    else if (auto v = value_of("--via="))
      opts.via = v;
    else if (auto v = value_of("--writer="))
      opts.writer = v;
    else if (auto v = value_of("--latency-log="))
      opts.latency_log = v;
    else if (auto v = value_of("--scratch="))
      opts.scratch = v;
    else if (auto v = value_of("--node-bin="))
      opts.node_bin = v;
    else if (arg == "--tls")
      opts.tls = "on";
    else if (auto v = value_of("--tls="))
      opts.tls = v;
    else if (arg == "--leasing")
      opts.leasing = true;
    else if (auto v = value_of("--leasing=")) {
      std::string s = v;
      opts.leasing = s == "1" || s == "true" || s == "on";
    } else {
      std::fprintf(stderr, "unknown argument: %s\n%s", argv[i], usage_text);
      return false;
    }
  }
  for (const auto& s : opts.scenarios)
    if (s != "chain3" && s != "mesh5" && s != "join" && s != "heal"
        && s != "mixed" && s != "acks") {
      std::fprintf(stderr, "unknown scenario: %s\n", s.c_str());
      return false;
    }
  if (opts.tls != "off" && opts.tls != "on" && opts.tls != "both") {
    std::fprintf(stderr, "--tls must be on, both or off\n");
    return false;
  }
  if (opts.via != "facade" && opts.via != "http" && opts.via != "both") {
    std::fprintf(stderr, "--via must be facade, http or both\n");
    return false;
  }
  if (opts.writer != "facade" && opts.writer != "socket") {
    std::fprintf(stderr, "--writer must be facade or socket\n");
    return false;
  }
  if (opts.writers == 0) {
    std::fprintf(stderr, "--writers must be positive\n");
    return false;
  }
  if (opts.mode != "process" && opts.mode != "inproc") {
    std::fprintf(stderr, "--mode must be process or inproc\n");
    return false;
  }
  if (!opts.durability.empty() && opts.durability != "always"
      && opts.durability != "batch" && opts.durability != "none") {
    std::fprintf(stderr, "--durability must be always, batch or none\n");
    return false;
  }
  // The value carries a decimal µs stamp (up to 20 digits).
  if (opts.n == 0 || opts.value_size < 20 || opts.window == 0) {
    std::fprintf(stderr, "--n and --window must be positive, "
                         "--value-size at least 20\n");
    return false;
  }
  return true;
}

// -- helpers ------------------------------------------------------------------

/// Prints a progress line on stderr at most once a second.
class progress {
public:
  explicit progress(std::string what) : what_(std::move(what)) {}

  /// Prints `fmt` (printf-style) when a second passed since the last line.
  template <class... Ts>
  void tick(const char* fmt, Ts... xs) {
    auto now = std::chrono::steady_clock::now();
    if (now - last_ < 1s)
      return;
    last_ = now;
    std::fprintf(stderr, "  [%s] ", what_.c_str());
    std::fprintf(stderr, fmt, xs...);
    std::fputc('\n', stderr);
  }

private:
  std::string what_;
  std::chrono::steady_clock::time_point last_
    = std::chrono::steady_clock::now();
};

/// Polls `pred` with a short pause between polls until it holds; throws
/// after `limit`.
template <class Pred>
void poll_until(Pred pred, std::chrono::milliseconds limit,
                const std::string& what,
                std::chrono::milliseconds interval = 2ms) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline)
      throw std::runtime_error("timed out: " + what);
    // Polls cost the nodes CPU (an HTTP request each for a daemon).
    std::this_thread::sleep_for(interval);
  }
}

/// Seconds from the µs instant `start_us` until now.
double seconds_since(int64_t start_us) {
  return static_cast<double>(now_us() - start_us) / 1e6;
}

/// A text value of `size` bytes that starts with the µs stamp `stamp`.
std::string stamped(int64_t stamp, size_t size) {
  auto s = std::to_string(stamp);
  s.push_back(' ');
  s.resize(std::max(size, s.size()), 'v');
  return s;
}

/// Waits until the µs instant `due`, taking the writer's replies first:
/// paces a writer at a fixed rate. Never spins: at 10,000 writes/s a busy
/// wait would burn a core the nodes need (the machine has two). A sleep
/// may overshoot by tens of µs; the next writes then go out at once, so
/// the offered rate holds on average, and each stamp is the real send time.
void wait_until(int64_t due, async_writer* w) {
  if (w != nullptr)
    w->poll();
  auto left = due - now_us();
  if (left > 0)
    std::this_thread::sleep_for(std::chrono::microseconds(left));
}

/// Fills the per-write traffic figures of `r` from counter totals taken
/// before and after `n` writes; `flooded` also fills the flooded bytes.
void traffic_per_write(scenario_report& r, const node_counters& before,
                       const node_counters& after, double n, bool flooded) {
  r.frames_per_write
    = static_cast<double>(after.deliveries - before.deliveries) / n;
  r.wire_bytes_per_write
    = static_cast<double>(after.wire_bytes_out - before.wire_bytes_out) / n;
  if (flooded)
    r.flood_bytes_per_write
      = static_cast<double>(after.flood_bytes - before.flood_bytes) / n;
}

/// Sum of every node's counters.
node_counters total(std::vector<node_counters> all) {
  node_counters t;
  for (const auto& c : all) {
    t.deliveries += c.deliveries;
    t.wire_bytes_out += c.wire_bytes_out;
    t.flood_frames += c.flood_frames;
    t.flood_bytes += c.flood_bytes;
    t.ae_repaired += c.ae_repaired;
  }
  return t;
}

/// Average bytes of the keys `prefix0` .. `prefix(n-1)`.
double avg_key_bytes(const std::string& prefix, uint64_t n) {
  double digits = 0;
  for (uint64_t pow = 1, d = 1; pow <= n; pow *= 10, ++d) {
    auto hi = std::min<uint64_t>(n, pow * 10);
    digits += static_cast<double>((hi - pow) * d);
  }
  digits += 1; // the key 0
  return static_cast<double>(prefix.size()) + digits / static_cast<double>(n);
}

/// Memory per key beyond key and value, from RSS before and after `n` keys
/// arrived; -1 below 100k keys, where allocator noise dominates.
double memory_per_key(uint64_t rss_before, uint64_t rss_after, uint64_t n,
                      double key_bytes, size_t value_size) {
  if (n < 100000)
    return -1;
  auto growth
    = static_cast<double>(rss_after) - static_cast<double>(rss_before);
  return growth / static_cast<double>(n) - key_bytes
         - static_cast<double>(value_size);
}

// -- the cost of TLS per link -------------------------------------------------

/// Memory of the TLS state of one link end: RSS before and after 500
/// established channel pairs (both ends in this process) that carried a
/// frame each, divided by 1000 ends. Printed with --tls.
void print_tls_link_memory() {
  syncmesh::test::test_ca ca{"syncmesh bench CA"};
  auto context = [&](const std::string& id) {
    auto pair = ca.issue(id);
    syncmesh::tls_identity_options o;
    o.cert_pem = pair.cert;
    o.key_pem = pair.key;
    o.ca_pem = ca.cert_pem();
    syncmesh::tls_identity identity;
    std::string error;
    if (!identity.load(o, error))
      throw std::runtime_error(error);
    auto ctx = syncmesh::tls_context::make(identity, error);
    if (!ctx)
      throw std::runtime_error(error);
    return ctx;
  };
  auto a = context("bench-a");
  auto b = context("bench-b");
  constexpr int pairs = 500;
  std::vector<std::unique_ptr<syncmesh::tls_channel>> ends;
  auto rss_before = process_usage(0).rss;
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < pairs; ++i) {
    auto client = std::make_unique<syncmesh::tls_channel>(a, false);
    auto server = std::make_unique<syncmesh::tls_channel>(b, true);
    client->write(std::string(200, 'h'));
    std::string plain;
    for (int round = 0; round < 10; ++round) {
      std::string c2s;
      std::string s2c;
      client->take_output(c2s);
      server->take_output(s2c);
      if (c2s.empty() && s2c.empty())
        break;
      server->feed(c2s, plain);
      client->feed(s2c, plain);
    }
    if (!client->established() || !server->established())
      throw std::runtime_error("TLS handshake failed: " + client->error()
                               + server->error());
    ends.push_back(std::move(client));
    ends.push_back(std::move(server));
  }
  auto cpu_ms = std::chrono::duration<double, std::milli>(
                  std::chrono::steady_clock::now() - start)
                  .count();
  auto rss_after = process_usage(0).rss;
  std::printf("TLS per link end: %.1f KiB of memory (RSS growth over %d "
              "established ends); handshake CPU %.2f ms per link (both ends, "
              "one thread, P-256 certificates)\n",
              (static_cast<double>(rss_after) - static_cast<double>(rss_before))
                / 1024.0 / (2.0 * pairs),
              2 * pairs, cpu_ms / pairs);
}

// -- the mesh under test ------------------------------------------------------

/// The nodes of one scenario and their links. Node 0 (A) always runs in the
/// bench process: the writer.
struct mesh {
  bench_runtime& rt;
  const options& opts;
  std::string dir;
  std::vector<std::unique_ptr<bench_node>> nodes;
  std::vector<std::pair<size_t, size_t>> links;

  mesh(bench_runtime& runtime, const options& o) : rt(runtime), opts(o) {
    auto tmpl = opts.scratch + "/syncmesh-bench-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr)
      throw std::runtime_error("mkdtemp in " + opts.scratch + " failed");
    dir = tmpl;
    if (opts.tls_now) {
      // A throwaway cluster CA in the run's temp dir (removed with it).
      ca = std::make_unique<syncmesh::test::test_ca>("syncmesh bench CA");
      syncmesh::test::test_ca::write(dir + "/ca.pem", ca->cert_pem());
    }
  }

  /// With TLS: node `i`'s certificate and key files (its ID is
  /// "bench-<name>"); empty strings otherwise.
  std::array<std::string, 3> tls_files(size_t i) {
    if (!ca)
      return {};
    auto pair = ca->issue("bench-" + name(i));
    auto base = dir + "/" + name(i);
    syncmesh::test::test_ca::write(base + ".pem", pair.cert);
    syncmesh::test::test_ca::write(base + ".key", pair.key);
    return {base + ".pem", base + ".key", dir + "/ca.pem"};
  }

  /// With TLS, the CA of the run.
  std::unique_ptr<syncmesh::test::test_ca> ca;
  /// Milliseconds each explicit connect took (TCP, TLS handshake when on,
  /// hello and attach), for the handshake figure.
  std::vector<double> connect_ms;

  ~mesh() {
    // Daemons first (each stops within its deadline or is killed), then
    // the in-process node; then the logs.
    while (!nodes.empty())
      nodes.pop_back();
    std::error_code ignored;
    std::filesystem::remove_all(dir, ignored);
  }

  bool process_mode() const { return opts.mode == "process"; }

  static std::string name(size_t i) { return std::string(1, char('A' + i)); }

  /// Adds node `i` (the next one), wired to earlier nodes per `links`:
  /// in the bench process when it is A or the mode is inproc, unless
  /// `as_daemon` (a syncmesh-node process whatever its place).
  bench_node& add(bool as_daemon = false) {
    auto i = nodes.size();
    auto tls = tls_files(i);
    // Each node's own data dir under the run's scratch dir (removed with it).
    auto data_dir
      = opts.durability.empty() ? std::string{} : dir + "/" + name(i) + ".data";
    if (!as_daemon && (i == 0 || !process_mode())) {
      nodes.push_back(rt.spawn(
        name(i), node_options{opts.leasing, 0, opts.expected_keys, tls[0],
                              tls[1], tls[2], data_dir, opts.durability}));
      return *nodes.back();
    }
#ifdef SYNCMESH_BENCH_NO_DAEMON
    throw std::runtime_error("built without syncmesh-node "
                             "(SYNCMESH_BUILD_DAEMON=OFF): use --mode=inproc");
#else
    daemon_options d;
    d.binary = opts.node_bin;
    d.dir = dir;
    d.leasing = opts.leasing;
    d.expected_keys = opts.expected_keys;
    d.tls_cert = tls[0];
    d.tls_key = tls[1];
    d.tls_ca = tls[2];
    d.data_dir = data_dir;
    d.durability = opts.durability;
    for (auto [a, b] : links)
      if (b == i && a != 0 && a < i)
        d.seeds.push_back(nodes[a]->address());
    nodes.push_back(spawn_daemon(name(i), d));
    return *nodes.back();
#endif
  }

  /// Starts `count` nodes and makes every link; returns once every node has
  /// its peers.
  void build(size_t count, std::vector<std::pair<size_t, size_t>> ls) {
    links = std::move(ls);
    for (auto& l : links)
      if (l.first > l.second)
        std::swap(l.first, l.second);
    for (size_t i = 0; i < count; ++i)
      add();
    for (auto [a, b] : links) {
      // Daemons dial their seeds; in-process nodes dial explicitly (A in
      // process mode, the later node in inproc mode).
      auto start = std::chrono::steady_clock::now();
      if (a == 0 && process_mode())
        rt.connect(*nodes[0], *nodes[b]);
      else if (!process_mode())
        rt.connect(*nodes[b], *nodes[a]);
      else
        continue;
      connect_ms.push_back(std::chrono::duration<double, std::milli>(
                             std::chrono::steady_clock::now() - start)
                             .count());
    }
    for (size_t i = 0; i < count; ++i) {
      auto want = degree(i);
      poll_until([&] { return nodes[i]->counters().peers >= want; }, 20s,
                 nodes[i]->label() + " to reach its peers");
    }
  }

  size_t degree(size_t i) const {
    return static_cast<size_t>(
      std::count_if(links.begin(), links.end(),
                    [i](auto l) { return l.first == i || l.second == i; }));
  }

  /// The node most hops away from A (the last one of equals).
  size_t farthest() const {
    std::vector<int> dist(nodes.size(), -1);
    std::deque<size_t> todo{0};
    dist[0] = 0;
    while (!todo.empty()) {
      auto x = todo.front();
      todo.pop_front();
      for (auto [a, b] : links) {
        auto y = a == x ? b : b == x ? a : SIZE_MAX;
        if (y != SIZE_MAX && dist[y] < 0) {
          dist[y] = dist[x] + 1;
          todo.push_back(y);
        }
      }
    }
    size_t best = 0;
    for (size_t i = 0; i < dist.size(); ++i)
      if (dist[i] >= dist[best])
        best = i;
    return best;
  }

  std::vector<node_counters> counters() {
    std::vector<node_counters> out;
    for (auto& n : nodes)
      out.push_back(n->counters());
    return out;
  }

  /// Waits until every node holds at least `want[i]` keys; returns the µs
  /// instant the last one got there (to the poll interval).
  int64_t wait_for_keys(const std::vector<uint64_t>& want, const char* what,
                        std::chrono::milliseconds limit) {
    progress prog{what};
    std::vector<bool> done(nodes.size(), false);
    int64_t last = now_us();
    poll_until(
      [&] {
        bool all = true;
        for (size_t i = 0; i < nodes.size(); ++i) {
          if (done[i])
            continue;
          auto have = nodes[i]->keys();
          if (have >= want[i]) {
            done[i] = true;
            last = now_us();
          } else {
            all = false;
            prog.tick("%s has %" PRIu64 "/%" PRIu64 " keys",
                      nodes[i]->label().c_str(), have, want[i]);
          }
        }
        return all;
      },
      limit, std::string{what} + ": every node to hold its keys");
    return last;
  }

  /// One row per daemon, one for the bench process (all in-process nodes
  /// share its CPU time and memory).
  void record_usage(scenario_report& r) {
    std::string inproc;
    for (auto& n : nodes)
      if (n->in_process())
        inproc += (inproc.empty() ? "" : ",") + name_of(*n);
    // In process mode only A is in the bench process; its storage counters
    // are its own.
    node_counters inproc_counters;
    for (auto& n : nodes)
      if (n->in_process() && nodes.size() == 1 + count_daemons())
        inproc_counters = n->counters();
    if (!inproc.empty())
      r.per_node.push_back(node_report{inproc + " (bench process)",
                                       process_usage(0), inproc_counters});
    for (auto& n : nodes)
      if (!n->in_process())
        r.per_node.push_back(
          node_report{n->label(), n->usage(), n->counters()});
  }

  size_t count_daemons() const {
    return static_cast<size_t>(std::count_if(
      nodes.begin(), nodes.end(), [](auto& n) { return !n->in_process(); }));
  }

  static std::string name_of(bench_node& n) {
    auto label = n.label();
    return label.substr(0, label.find(' '));
  }

  /// Links report their byte counts to the router once per heartbeat
  /// (peer_link.cpp), and every heartbeat sends a ping, so each report moves
  /// the count. A report may already be under way when this starts, so each
  /// link must report twice: a node with `p` links has done so once its
  /// count moved 2p + 1 times (all links report at the same period, so no
  /// link can have reported less than twice by then). Then a snapshot
  /// includes what was just sent.
  void settle_traffic() {
    std::vector<uint64_t> last;
    for (auto& n : nodes)
      last.push_back(n->counters().wire_bytes_out);
    std::vector<uint64_t> moves(nodes.size(), 0);
    std::vector<bool> done(nodes.size(), false);
    poll_until(
      [&] {
        bool all = true;
        for (size_t i = 0; i < nodes.size(); ++i) {
          if (!done[i]) {
            auto c = nodes[i]->counters();
            if (c.wire_bytes_out != last[i]) {
              last[i] = c.wire_bytes_out;
              ++moves[i];
            }
            done[i] = moves[i] >= 2 * c.peers + 1 || c.peers == 0;
          }
          all = all && done[i];
        }
        return all;
      },
      // Each poll asks every node for its stats, which walk every entry.
      10s, "link traffic reports", 25ms);
  }

  /// How long the explicit connects took (TCP, the TLS handshake when on,
  /// hello, attach), for the report.
  std::string connect_note() const {
    if (connect_ms.empty())
      return {};
    double sum = 0;
    double most = 0;
    for (auto ms : connect_ms) {
      sum += ms;
      most = std::max(most, ms);
    }
    char buf[160];
    std::snprintf(buf, sizeof(buf),
                  "; link setup (TCP%s + hello + attach): mean %.1f ms, "
                  "max %.1f ms over %zu link(s)",
                  opts.tls_now ? " + TLS 1.3 handshake" : "",
                  sum / static_cast<double>(connect_ms.size()), most,
                  connect_ms.size());
    return buf;
  }

  std::string writer_note() const {
    std::string how = opts.writer == "socket"
                        ? "sync_socket::set_async, combined writes, at most "
                          "--window futures unanswered"
                        : "asynchronous facade, at most --window requests in "
                          "flight";
    return process_mode()
             ? "writer: node A inside the bench process (" + how
                 + "); other nodes are syncmesh-node processes; CPU/RSS of A "
                   "include the bench"
             : "all nodes inside the bench process (writer: " + how
                 + "); CPU/RSS are the whole process";
  }
};

/// Writes `n` keys `prefix<i>` as fast as the window allows; returns the
/// seconds until the last was acknowledged.
double burst(async_writer& w, const std::string& prefix, uint64_t n,
             size_t value_size, const char* what) {
  progress prog{what};
  auto start = now_us();
  for (uint64_t i = 0; i < n; ++i) {
    w.write(prefix + std::to_string(i), stamped(now_us(), value_size));
    if ((i & 4095) == 0)
      prog.tick("issued %" PRIu64 "/%" PRIu64 ", acknowledged %" PRIu64, i, n,
                w.acked());
  }
  if (!w.drain(300s))
    throw std::runtime_error(std::string{what} + ": writes not acknowledged");
  if (w.failed() > 0)
    std::fprintf(stderr, "  [%s] %" PRIu64 " writes refused\n", what,
                 w.failed());
  return seconds_since(start);
}

/// Arrival latencies collected by a watch.
struct arrivals {
  std::mutex mtx;
  std::vector<int64_t> samples;
  /// Send stamps of the samples (with --latency-log only).
  std::vector<int64_t> sent;
  bool keep_sent = false;

  arrival_fn recorder() {
    return [this](std::string_view, std::string_view text, int64_t at) {
      auto stamp
        = std::strtoll(std::string{text.substr(0, 20)}.c_str(), nullptr, 10);
      std::lock_guard<std::mutex> guard{mtx};
      samples.push_back(at - stamp);
      if (keep_sent)
        sent.push_back(stamp);
    };
  }

  /// Writes "µs since `t0` when sent, µs of latency" lines to `path`, in
  /// arrival order (--latency-log: when in the part the slow ones were).
  void log_to(const std::string& path, int64_t t0) {
    std::lock_guard<std::mutex> guard{mtx};
    auto* f = std::fopen(path.c_str(), "w");
    if (f == nullptr)
      throw std::runtime_error("cannot write " + path);
    // The steady clock (CLOCK_MONOTONIC) of t0, to line the samples up
    // with other records of the machine.
    std::fprintf(f, "# t0_us %lld\n", static_cast<long long>(t0));
    for (size_t i = 0; i < sent.size(); ++i)
      std::fprintf(f, "%lld %lld\n", static_cast<long long>(sent[i] - t0),
                   static_cast<long long>(samples[i]));
    std::fclose(f);
  }

  size_t size() {
    std::lock_guard<std::mutex> guard{mtx};
    return samples.size();
  }
};

// -- scenarios ----------------------------------------------------------------

/// chain3 and mesh5: a burst of N writes at A (throughput), then writes at a
/// fixed rate for --duration (latency at the farthest node).
scenario_report run_flood(bench_runtime& rt, const options& opts,
                          const std::string& scenario) {
  mesh m{rt, opts};
  size_t count = opts.nodes ? opts.nodes : scenario == "chain3" ? 3 : 5;
  if (count < 2)
    throw std::runtime_error("--nodes must be at least 2");
  std::vector<std::pair<size_t, size_t>> links;
  if (scenario == "chain3" || count < 4) {
    for (size_t i = 0; i + 1 < count; ++i)
      links.emplace_back(i, i + 1);
  } else {
    // A ring plus two chords: every node has 2 to 4 peers.
    for (size_t i = 0; i < count; ++i)
      links.emplace_back(i, (i + 1) % count);
    links.emplace_back(0, 2);
    links.emplace_back(1, 3);
  }
  m.build(count, links);
  auto far = m.farthest();
  scenario_report r;
  r.scenario = opts.tls_now ? scenario + "+tls" : scenario;
  if (opts.writer == "socket")
    r.scenario += "+socket";
  r.mode = opts.mode;
  r.writer_note = m.writer_note() + m.connect_note();
  r.nodes = count;
  r.writes = opts.n;
  r.value_size = opts.value_size;
  r.leasing = opts.leasing;
  r.farthest = m.nodes[far]->label();

  // Throughput: a bounded burst.
  m.settle_traffic();
  auto before = total(m.counters());
  auto far_usage = m.nodes[far]->usage();
  auto far_before = m.nodes[far]->counters();
  auto writer = rt.writer(*m.nodes[0], opts.window, opts.writer == "socket");
  auto start = now_us();
  r.issue_seconds
    = burst(*writer, "t/", opts.n, opts.value_size, scenario.c_str());
  std::vector<uint64_t> want(count, opts.n);
  auto last = m.wait_for_keys(want, scenario.c_str(), 600s);
  r.replicate_seconds = static_cast<double>(last - start) / 1e6;
  m.settle_traffic();
  auto after = total(m.counters());
  auto n = static_cast<double>(opts.n);
  traffic_per_write(r, before, after, n, true);
  if (opts.mode == "process") {
    r.memory_node = m.nodes[far]->label();
    auto usage = m.nodes[far]->usage();
    auto key_bytes = avg_key_bytes("t/", opts.n);
    r.memory_per_key = memory_per_key(far_usage.rss, usage.rss, opts.n,
                                      key_bytes, opts.value_size);
    r.anon_per_key = memory_per_key(far_usage.rss_anon, usage.rss_anon, opts.n,
                                    key_bytes, opts.value_size);
    if (!opts.durability.empty()) {
      // The engine's write buffers and caches are anonymous memory too;
      // without them, what is left is the store's own per key.
      auto c = m.nodes[far]->counters();
      r.engine_memory = static_cast<double>(c.engine_memory);
      r.anon_less_engine_per_key = memory_per_key(
        far_usage.rss_anon
          - std::min(far_usage.rss_anon, far_before.engine_memory),
        usage.rss_anon - std::min(usage.rss_anon, c.engine_memory), opts.n,
        key_bytes, opts.value_size);
      if (c.storage_bytes > far_before.storage_bytes)
        r.write_amplification
          = static_cast<double>(c.engine_written - far_before.engine_written)
            / static_cast<double>(c.storage_bytes - far_before.storage_bytes);
    }
  }

  // Latency: a fixed offered load, observed at the farthest node.
  auto writes = static_cast<uint64_t>(opts.duration * opts.rate);
  if (writes > 0) {
    r.rate = opts.rate;
    r.latency_writes = writes;
    arrivals seen;
    seen.keep_sent = !opts.latency_log.empty();
    m.nodes[far]->watch("l/", seen.recorder());
    progress prog{scenario + " latency"};
    auto t0 = now_us();
    for (uint64_t i = 0; i < writes; ++i) {
      wait_until(
        t0 + static_cast<int64_t>(static_cast<double>(i) * 1e6 / opts.rate),
        writer.get());
      writer->write("l/" + std::to_string(i),
                    stamped(now_us(), opts.value_size));
      prog.tick("issued %" PRIu64 "/%" PRIu64 ", arrived %zu", i, writes,
                seen.size());
    }
    writer->drain(60s);
    std::vector<uint64_t> want_all(count, opts.n + writes);
    m.wait_for_keys(want_all, "latency writes", 60s);
    // Every write is at the node; its event may still be on the way.
    try {
      poll_until([&] { return seen.size() >= writes; }, 5s, "events");
    } catch (const std::exception&) {
      // Reported as missing below (e.g. an SSE stream that overflowed).
    }
    m.nodes[far]->unwatch();
    if (seen.keep_sent)
      seen.log_to(opts.latency_log, t0);
    std::lock_guard<std::mutex> guard{seen.mtx};
    r.latency = summarize(seen.samples);
    r.latency_missing = writes - std::min<uint64_t>(writes, r.latency.count);
  }
  m.record_usage(r);
  return r;
}

/// join: A holds N keys; an empty node B connects (A dials) and receives
/// them all through anti-entropy.
scenario_report run_join(bench_runtime& rt, const options& opts) {
  mesh m{rt, opts};
  m.build(1, {});
  scenario_report r;
  r.scenario = "join";
  r.mode = opts.mode;
  r.nodes = 2;
  r.writes = opts.n;
  r.value_size = opts.value_size;
  r.leasing = opts.leasing;
  r.writer_note = "A (bench process) holds the keys, written through its "
                  "facade; B (the newcomer) is "
                  + std::string{m.process_mode() ? "a syncmesh-node process"
                                                 : "in the bench process"}
                  + "; A dials B; time from the dial until B holds every key";
  auto writer = rt.writer(*m.nodes[0], opts.window);
  burst(*writer, "j/", opts.n, opts.value_size, "join: loading A");
  auto& b = m.add();
  auto rss = b.usage().rss;
  m.settle_traffic();
  auto before = total(m.counters());
  auto start = now_us();
  rt.connect(*m.nodes[0], b);
  m.links.emplace_back(0, 1);
  auto last = m.wait_for_keys({opts.n, opts.n}, "join", 600s);
  r.replicate_seconds = static_cast<double>(last - start) / 1e6;
  m.settle_traffic();
  auto after = total(m.counters());
  auto n = static_cast<double>(opts.n);
  traffic_per_write(r, before, after, n, false);
  r.memory_node = b.label();
  r.memory_per_key = memory_per_key(
    rss, b.usage().rss, opts.n, avg_key_bytes("j/", opts.n), opts.value_size);
  m.record_usage(r);
  return r;
}

/// heal: A and B share N keys, are cut apart, each writes K keys the other
/// lacks, and are reconnected: the bytes the repair moves against the bytes
/// of the entries that differ.
scenario_report run_heal(bench_runtime& rt, const options& opts) {
  mesh m{rt, opts};
  m.build(2, {{0, 1}});
  auto& a = *m.nodes[0];
  auto& b = *m.nodes[1];
  scenario_report r;
  r.scenario = "heal";
  r.mode = opts.mode;
  r.nodes = 2;
  r.value_size = opts.value_size;
  r.leasing = opts.leasing;
  auto k = std::min(opts.k, opts.n / 2);
  r.writes = 2 * k;
  auto writer = rt.writer(a, opts.window, opts.writer == "socket");
  burst(*writer, "h/", opts.n, opts.value_size, "heal: shared keys");
  m.wait_for_keys({opts.n, opts.n}, "heal: shared keys", 600s);
  rt.disconnect_all(a);
  poll_until([&] { return a.counters().peers == 0 && b.counters().peers == 0; },
             20s, "the halves to part", 20ms);
  // With leasing off each side overwrites shared keys (the harder case for
  // digests: no key count changes); with leasing on B may not overwrite
  // A's keys, so both write keys of their own.
  std::string a_prefix = opts.leasing ? "ha/" : "h/";
  std::string b_prefix = opts.leasing ? "hb/" : "h/";
  uint64_t b_first = opts.leasing ? 0 : k;
  for (uint64_t i = 0; i < k; ++i)
    writer->write(a_prefix + std::to_string(i),
                  stamped(now_us(), opts.value_size));
  writer->drain(60s);
  progress prog{"heal: B's writes"};
  for (uint64_t i = 0; i < k; ++i) {
    b.set(b_prefix + std::to_string(b_first + i),
          stamped(now_us(), opts.value_size));
    prog.tick("%" PRIu64 "/%" PRIu64, i, k);
  }
  m.settle_traffic();
  auto before_a = a.counters();
  auto before_b = b.counters();
  // Each side sees the other's K writes arrive as update events. Counting
  // them costs the nodes nothing, unlike polling their stats, which walks
  // every entry (the tombstone count) and would slow the repair measured.
  arrivals at_a;
  arrivals at_b;
  a.watch(b_prefix, at_a.recorder());
  b.watch(a_prefix, at_b.recorder());
  auto start = now_us();
  rt.connect(a, b);
  poll_until(
    [&] {
      return at_a.size() + a.watch_dropped() >= k
             && at_b.size() + b.watch_dropped() >= k;
    },
    300s, "the halves to repair");
  if (a.watch_dropped() > 0 || b.watch_dropped() > 0)
    throw std::runtime_error("heal: a watch stream lost events (overflow): "
                             "the repair time cannot be measured");
  r.replicate_seconds = seconds_since(start);
  a.unwatch();
  b.unwatch();
  m.settle_traffic();
  auto after = total(m.counters());
  auto before = total({before_a, before_b});
  r.heal_bytes
    = static_cast<double>(after.wire_bytes_out - before.wire_bytes_out);
  auto key_bytes
    = opts.leasing ? avg_key_bytes("ha/", k) : (avg_key_bytes("h/", 2 * k));
  r.heal_differing_bytes = static_cast<double>(2 * k)
                           * (key_bytes + static_cast<double>(opts.value_size));
  r.wire_bytes_per_write = r.heal_bytes / static_cast<double>(2 * k);
  r.writer_note = std::to_string(opts.n) + " shared keys; " + std::to_string(k)
                  + " written on each side while apart (A through its "
                    "facade, B through "
                  + (m.process_mode() ? "HTTP PUT" : "its blocking API")
                  + "); time from the reconnect until both repaired";
  m.record_usage(r);
  return r;
}

/// mixed: a writer on every node (A's stamped, through its facade; the
/// others through HTTP PUT in process mode), each at --rate / writers, and
/// reads at --read-rate spread over the nodes, for --duration.
scenario_report run_mixed(bench_runtime& rt, const options& opts) {
  mesh m{rt, opts};
  size_t count = opts.nodes ? opts.nodes : 3;
  if (count < 2)
    throw std::runtime_error("--nodes must be at least 2");
  std::vector<std::pair<size_t, size_t>> links;
  for (size_t i = 0; i + 1 < count; ++i)
    links.emplace_back(i, i + 1);
  if (count >= 4)
    links.emplace_back(0, count - 1);
  m.build(count, links);
  auto far = m.farthest();
  scenario_report r;
  r.scenario = "mixed";
  r.mode = opts.mode;
  r.nodes = count;
  r.value_size = opts.value_size;
  r.leasing = opts.leasing;
  r.farthest = m.nodes[far]->label();
  r.rate = opts.rate;
  r.writer_note = std::to_string(count)
                  + " writers (one per node, each at --rate/"
                  + std::to_string(count)
                  + "): A through its asynchronous facade, the others through "
                  + (m.process_mode() ? "HTTP PUT (one round trip each)"
                                      : "their asynchronous facades")
                  + "; reads round-robin over the nodes; latency of A's writes";
  auto per_writer = opts.rate / static_cast<double>(count);
  auto per_writer_n = static_cast<uint64_t>(opts.duration * per_writer);
  m.settle_traffic();
  auto before = total(m.counters());
  arrivals seen;
  m.nodes[far]->watch("m0/", seen.recorder());
  std::atomic<uint64_t> issued{0};
  std::atomic<bool> writing{true};
  // A thread that fails records why; the scenario rethrows after joining.
  std::mutex err_mtx;
  std::string err;
  auto guarded = [&](auto&& body) {
    try {
      body();
    } catch (const std::exception& e) {
      std::lock_guard<std::mutex> guard{err_mtx};
      err = e.what();
      writing = false;
    }
  };
  // Writers report their end here, so the main thread waits for them
  // instead of polling.
  std::mutex done_mtx;
  std::condition_variable done_cv;
  size_t finished = 0;
  std::vector<std::thread> threads;
  auto start = now_us();
  for (size_t w = 0; w < count; ++w) {
    threads.emplace_back([&, w] {
      auto report_end = [&] {
        {
          std::lock_guard<std::mutex> guard{done_mtx};
          ++finished;
        }
        done_cv.notify_all();
      };
      guarded([&] {
        std::unique_ptr<async_writer> aw;
        if (m.nodes[w]->in_process())
          aw = rt.writer(*m.nodes[w], opts.window, opts.writer == "socket");
        auto prefix = "m" + std::to_string(w) + "/";
        for (uint64_t i = 0; i < per_writer_n && writing; ++i) {
          wait_until(
            start
              + static_cast<int64_t>(static_cast<double>(i) * 1e6 / per_writer),
            aw.get());
          auto val = stamped(now_us(), opts.value_size);
          if (aw)
            aw->write(prefix + std::to_string(i), std::move(val));
          else
            m.nodes[w]->set(prefix + std::to_string(i), val);
          ++issued;
        }
        if (aw)
          aw->drain(60s);
      });
      report_end();
    });
  }
  std::vector<int64_t> read_lat;
  std::thread reader{[&] {
    guarded([&] {
      std::mt19937_64 rng{42};
      uint64_t i = 0;
      std::string out;
      auto t0 = now_us();
      while (writing) {
        wait_until(t0
                     + static_cast<int64_t>(static_cast<double>(i) * 1e6
                                            / opts.read_rate),
                   nullptr);
        auto& node = *m.nodes[i % count];
        auto writer_of = rng() % count;
        auto key
          = "m" + std::to_string(writer_of) + "/"
            + std::to_string(rng() % std::max<uint64_t>(per_writer_n, 1));
        auto t = now_us();
        node.get(key, out);
        read_lat.push_back(now_us() - t);
        ++i;
      }
    });
  }};
  progress prog{"mixed"};
  {
    // Wakes when every writer ended, at most a second later for the
    // progress line, and gives up waiting after the time cap.
    std::unique_lock<std::mutex> guard{done_mtx};
    while (!done_cv.wait_for(guard, 1s, [&] { return finished == count; })
           && seconds_since(start) < opts.duration * 3 + 30)
      prog.tick("issued %" PRIu64 "/%" PRIu64, issued.load(),
                per_writer_n * count);
  }
  for (auto& t : threads)
    t.join();
  r.issue_seconds = seconds_since(start);
  writing = false;
  reader.join();
  if (!err.empty())
    throw std::runtime_error("mixed: " + err);
  r.writes = per_writer_n * count;
  std::vector<uint64_t> want(count, r.writes);
  auto last = m.wait_for_keys(want, "mixed", 300s);
  r.replicate_seconds = static_cast<double>(last - start) / 1e6;
  try {
    poll_until([&] { return seen.size() >= per_writer_n; }, 5s, "events");
  } catch (const std::exception&) {
    // Reported as missing.
  }
  m.nodes[far]->unwatch();
  m.settle_traffic();
  auto after = total(m.counters());
  auto n = static_cast<double>(std::max<uint64_t>(r.writes, 1));
  traffic_per_write(r, before, after, n, true);
  {
    std::lock_guard<std::mutex> guard{seen.mtx};
    r.latency_writes = per_writer_n;
    r.latency = summarize(seen.samples);
    r.latency_missing
      = per_writer_n - std::min<uint64_t>(per_writer_n, r.latency.count);
  }
  r.reads = summarize(read_lat);
  m.record_usage(r);
  return r;
}

/// acks: one node (with --durability, on a data dir), --writers concurrent
/// writers that each wait for the acknowledgement of a write before the
/// next, for --duration seconds. `via` is how they reach the node:
/// "facade": node A in the bench process, its asynchronous facade with
/// exactly --writers requests in flight (a new write as each reply comes;
/// one thread, so the client costs the node's cores little); "http": a
/// syncmesh-node daemon and --writers threads, each with its own keep-alive
/// connection doing PUT after PUT, as applications would. With `always`
/// each acknowledgement waits for an fsync: the rate is the group commit's
/// (writes per fsync × fsyncs/s).
scenario_report run_acks(bench_runtime& rt, const options& opts,
                         const std::string& via) {
  mesh m{rt, opts};
  auto& node = m.add(via == "http");
  scenario_report r;
  r.scenario = "acks/" + via;
  r.mode = opts.mode;
  r.nodes = 1;
  r.value_size = opts.value_size;
  r.leasing = opts.leasing;
  r.writers = opts.writers;
  r.memory_node = node.label();
  r.writer_note
    = std::to_string(opts.writers) + " writers, each waiting for its "
      + "acknowledgement before the next write; "
      + (via == "http" ? "each a thread with its own HTTP keep-alive "
                         "connection to a syncmesh-node daemon (PUT /v1/kv)"
                       : "node A in the bench process, its asynchronous "
                         "facade with exactly that many requests in flight")
      + "; durability "
      + (opts.durability.empty() ? std::string{"off (memory only)"}
                                 : opts.durability);
  auto before = node.counters();
  auto duration_us = static_cast<int64_t>(opts.duration * 1e6);
  std::vector<int64_t> latencies;
  uint64_t acked = 0;
  int64_t start = now_us();
  int64_t end = start;
  if (via == "facade") {
    auto writer = rt.writer(node, opts.writers);
    writer->keep_latencies(&latencies);
    progress prog{r.scenario};
    uint64_t i = 0;
    start = now_us();
    while (now_us() - start < duration_us) {
      writer->write("a/" + std::to_string(i++),
                    stamped(now_us(), opts.value_size));
      if ((i & 1023) == 0)
        prog.tick("acknowledged %" PRIu64, writer->acked());
    }
    if (!writer->drain(60s))
      throw std::runtime_error("acks: writes not acknowledged");
    end = now_us();
    acked = writer->acked();
    if (writer->failed() > 0)
      throw std::runtime_error("acks: " + std::to_string(writer->failed())
                               + " writes refused");
  } else {
    std::mutex mtx;
    std::string err;
    std::vector<std::thread> threads;
    start = now_us();
    for (size_t w = 0; w < opts.writers; ++w)
      threads.emplace_back([&, w] {
        std::vector<int64_t> mine;
        try {
          auto client = node.writer();
          auto prefix = "a" + std::to_string(w) + "/";
          for (uint64_t i = 0; now_us() - start < duration_us; ++i) {
            auto t = now_us();
            client->set(prefix + std::to_string(i),
                        stamped(t, opts.value_size));
            mine.push_back(now_us() - t);
          }
        } catch (const std::exception& e) {
          std::lock_guard<std::mutex> guard{mtx};
          err = e.what();
        }
        std::lock_guard<std::mutex> guard{mtx};
        latencies.insert(latencies.end(), mine.begin(), mine.end());
      });
    for (auto& t : threads)
      t.join();
    end = now_us();
    if (!err.empty())
      throw std::runtime_error("acks: " + err);
    acked = latencies.size();
  }
  auto after = node.counters();
  r.writes = acked;
  r.ack_seconds = static_cast<double>(end - start) / 1e6;
  r.issue_seconds = r.ack_seconds;
  r.syncs = static_cast<double>(after.storage_syncs - before.storage_syncs);
  r.engine_writes
    = static_cast<double>(after.storage_writes - before.storage_writes);
  r.sync_us = static_cast<double>(after.sync_us - before.sync_us);
  if (after.storage_bytes > before.storage_bytes)
    r.write_amplification
      = static_cast<double>(after.engine_written - before.engine_written)
        / static_cast<double>(after.storage_bytes - before.storage_bytes);
  r.ack_latency = summarize(latencies);
  m.record_usage(r);
  return r;
}

} // namespace

int main(int argc, char** argv) {
  options opts;
  if (!parse(argc, argv, opts))
    return 2;
  if (opts.mode == "process" && ::access(opts.node_bin.c_str(), X_OK) != 0) {
    std::fprintf(stderr,
                 "cannot run %s (build syncmesh-node or pass "
                 "--node-bin=PATH)\n",
                 opts.node_bin.c_str());
    return 2;
  }
#ifndef SYNCMESH_BENCH_NO_DAEMON
  kill_daemons_on_signal();
#endif
  int rc = 0;
  try {
    bench_runtime rt;
    std::vector<bool> tls_runs;
    if (opts.tls != "on")
      tls_runs.push_back(false);
    if (opts.tls != "off")
      tls_runs.push_back(true);
    for (const auto& s : opts.scenarios) {
      double plain_rate = 0;
      for (bool tls : tls_runs) {
        auto run_opts = opts;
        run_opts.tls_now = tls;
        std::fprintf(stderr, "running %s (%s mode%s)\n", s.c_str(),
                     opts.mode.c_str(), tls ? ", peer TLS" : "");
        if (s == "acks") {
          // Each way of writing gets a node of its own.
          for (const char* via : {"facade", "http"}) {
            if (opts.via != "both" && opts.via != via)
              continue;
            if (std::string{via} == "http" && opts.mode != "process") {
              std::fprintf(stderr, "acks over http needs --mode=process: "
                                   "skipped\n");
              continue;
            }
            print_report(run_acks(rt, run_opts, via));
          }
          continue;
        }
        scenario_report r;
        if (s == "chain3" || s == "mesh5")
          r = run_flood(rt, run_opts, s);
        else if (s == "join")
          r = run_join(rt, run_opts);
        else if (s == "heal")
          r = run_heal(rt, run_opts);
        else
          r = run_mixed(rt, run_opts);
        if (tls)
          r.scenario
            += r.scenario.find("+tls") == std::string::npos ? "+tls" : "";
        print_report(r);
        // --tls=both: the TLS rate as a share of the plaintext rate.
        if (r.replicate_seconds > 0) {
          auto rate = static_cast<double>(r.writes) / r.replicate_seconds;
          if (!tls)
            plain_rate = rate;
          else if (plain_rate > 0)
            std::printf("%s: TLS replicates at %.0f writes/s, %.0f %% of the "
                        "plaintext %.0f writes/s\n",
                        s.c_str(), rate, 100 * rate / plain_rate, plain_rate);
        }
      }
    }
    if (opts.tls != "off")
      print_tls_link_memory();
  } catch (const std::exception& e) {
    // Every node was stopped on the way out (destructors ran).
    std::fprintf(stderr, "syncmesh-bench: %s\n", e.what());
    rc = 1;
  }
  return rc;
}
