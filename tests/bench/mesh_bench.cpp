// Replication benchmark: a burst of N writes at one node of a 3-node chain
// or a 5-node mesh on 127.0.0.1 (nodes in one process, real TCP between
// them); reports the time until the last node has every write, and the
// frames and bytes flooded per write.
//
// For `join`: the time until a node that joins a node holding N keys holds
// them all.
//
//   syncmesh-bench [--scenario=chain3|mesh5|join|all] [--n=N] [--value-size=B]
//                  [--leasing=0|1]

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <caf/all.hpp>

#include "actors/atoms.hpp"
#include "actors/facade.hpp"
#include "messages/value_proto.hpp"
#include "support/caf_setup.hpp"
#include "syncmesh/sync_socket.hpp"

using namespace std::chrono;
using namespace syncmesh;

namespace {

struct options {
  std::string scenario = "all";
  size_t n = 100000;
  size_t value_size = 64;
  bool leasing = false;
};

bool parse(int argc, char** argv, options& opts) {
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value_of = [&](const char* name) -> const char* {
      auto len = std::strlen(name);
      return arg.compare(0, len, name) == 0 ? argv[i] + len : nullptr;
    };
    if (auto v = value_of("--scenario="))
      opts.scenario = v;
    else if (auto v = value_of("--n="))
      opts.n = std::strtoull(v, nullptr, 10);
    else if (auto v = value_of("--value-size="))
      opts.value_size = std::strtoull(v, nullptr, 10);
    else if (auto v = value_of("--leasing="))
      opts.leasing = std::string{v} == "1";
    else {
      std::fprintf(stderr, "unknown argument: %s\n", argv[i]);
      return false;
    }
  }
  if (opts.n == 0) {
    std::fprintf(stderr, "--n must be positive\n");
    return false;
  }
  return true;
}

struct result {
  std::string scenario;
  size_t nodes = 0;
  size_t n = 0;
  double seconds = 0;
  double frames_per_write = 0;
  double bytes_per_write = 0;
};

/// A node that holds N keys, then a new node joins it: the time until the
/// newcomer holds every key (anti-entropy, in acknowledged windows).
result run_join(caf::actor_system& sys, const options& opts) {
  config cfg;
  cfg.leasing = opts.leasing;
  cfg.max_peers = 0;
  sync_socket holder{sys, cfg};
  std::string payload(opts.value_size, 'v');
  std::vector<std::pair<std::string, value>> batch;
  for (size_t i = 0; i < opts.n; ++i) {
    batch.emplace_back("k" + std::to_string(i), value::from_bytes(payload));
    if (batch.size() == 5000 || i + 1 == opts.n) {
      holder.update(batch);
      batch.clear();
    }
  }
  sync_socket newcomer{sys, cfg};
  auto start = steady_clock::now();
  newcomer.connect("127.0.0.1", holder.port());
  while (newcomer.size() < opts.n)
    std::this_thread::yield();
  result r;
  r.scenario = "join";
  r.nodes = 2;
  r.n = opts.n;
  r.seconds = duration<double>(steady_clock::now() - start).count();
  return r;
}

result run(caf::actor_system& sys, const std::string& scenario,
           const options& opts) {
  config cfg;
  cfg.leasing = opts.leasing;
  cfg.max_peers = 0; // the topology below, nothing else
  std::vector<std::unique_ptr<sync_socket>> nodes;
  size_t count = scenario == "chain3" ? 3 : 5;
  for (size_t i = 0; i < count; ++i)
    nodes.push_back(std::make_unique<sync_socket>(sys, cfg));
  auto link = [&](size_t a, size_t b) {
    nodes[a]->connect("127.0.0.1", nodes[b]->port());
  };
  if (scenario == "chain3") {
    link(1, 0);
    link(2, 1);
  } else {
    // A ring plus two chords: every node has 2-4 peers.
    for (size_t i = 0; i < count; ++i)
      link(i, (i + 1) % count);
    link(0, 2);
    link(1, 3);
  }
  // The farthest node reports every update it applies to us.
  caf::scoped_actor watcher{sys};
  auto& last = *nodes.back();
  caf::scoped_actor tmp{sys};
  tmp
    ->request(last.handle(), seconds(10), subscribe_atom::value,
              caf::actor{watcher})
    .receive([](bool) {}, [](caf::error&) {});
  std::string payload(opts.value_size, 'v');
  pb::Value val;
  to_proto(value::from_bytes(payload), &val);
  caf::scoped_actor writer{sys};
  auto facade = nodes.front()->handle();
  auto start = steady_clock::now();
  size_t pending = 0;
  size_t acked = 0;
  for (size_t i = 0; i < opts.n; ++i) {
    pb::SetRequest req;
    req.set_key("k" + std::to_string(i));
    *req.mutable_value() = val;
    writer->send(facade, std::move(req));
    // Keep at most 10k requests in flight: a bounded writer, not a flood.
    if (++pending >= 10000) {
      writer->receive([&](const pb::WriteAck&) { ++acked; });
      --pending;
    }
  }
  size_t seen = 0;
  size_t progress_step = std::max<size_t>(opts.n / 4, 1);
  while (seen < opts.n) {
    watcher->receive([&](const pb::Event& ev) {
      if (ev.has_update())
        ++seen;
      if (seen % progress_step == 0)
        std::fprintf(stderr, "  %s: %zu/%zu at the last node\n",
                     scenario.c_str(), seen, opts.n);
    });
  }
  auto elapsed = duration<double>(steady_clock::now() - start).count();
  while (pending > 0) {
    writer->receive([&](const pb::WriteAck&) { ++acked; });
    --pending;
  }
  uint64_t frames = 0;
  uint64_t bytes = 0;
  for (auto& node : nodes) {
    auto stats = test::router_stats(sys, *node);
    frames += stats.frames_out();
    bytes += stats.bytes_out();
  }
  nodes.clear();
  result r;
  r.scenario = scenario;
  r.nodes = count;
  r.n = opts.n;
  r.seconds = elapsed;
  r.frames_per_write
    = static_cast<double>(frames) / static_cast<double>(opts.n);
  r.bytes_per_write = static_cast<double>(bytes) / static_cast<double>(opts.n);
  return r;
}

} // namespace

int main(int argc, char** argv) {
  options opts;
  if (!parse(argc, argv, opts))
    return 2;
  test::threaded_config cfg;
  caf::actor_system sys{cfg};
  std::vector<result> results;
  for (const char* s : {"chain3", "mesh5"})
    if (opts.scenario == "all" || opts.scenario == s)
      results.push_back(run(sys, s, opts));
  if (opts.scenario == "all" || opts.scenario == "join")
    results.push_back(run_join(sys, opts));
  if (results.empty()) {
    std::fprintf(stderr, "unknown scenario: %s\n", opts.scenario.c_str());
    return 2;
  }
  std::printf("%-8s %5s %9s %10s %14s %13s %13s\n", "scenario", "nodes",
              "writes", "seconds", "writes/s", "frames/write", "bytes/write");
  for (const auto& r : results)
    std::printf("%-8s %5zu %9zu %10.3f %14.0f %13.3f %13.1f\n",
                r.scenario.c_str(), r.nodes, r.n, r.seconds,
                static_cast<double>(r.n) / r.seconds, r.frames_per_write,
                r.bytes_per_write);
  for (const auto& r : results)
    std::printf("{\"scenario\":\"%s\",\"nodes\":%zu,\"writes\":%zu,"
                "\"value_size\":%zu,\"leasing\":%s,\"seconds\":%.6f,"
                "\"replicated_writes_per_s\":%.0f,\"frames_per_write\":%.4f,"
                "\"bytes_per_write\":%.1f}\n",
                r.scenario.c_str(), r.nodes, r.n, opts.value_size,
                opts.leasing ? "true" : "false", r.seconds,
                static_cast<double>(r.n) / r.seconds, r.frames_per_write,
                r.bytes_per_write);
  return 0;
}
