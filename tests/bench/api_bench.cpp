// Micro-benchmarks of the blocking and asynchronous sync_socket calls
// (issue 17): one node in this process, called from the benchmark's thread.
// Part of syncmesh-micro:
//
//   build/bin/syncmesh-micro --benchmark_filter=api_
//
// Each benchmark starts its own actor system (two scheduler threads, as on
// the CI machine) and socket outside the timed loop; items/s is calls/s.

#include <benchmark/benchmark.h>

#include <deque>
#include <future>
#include <string>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>

#include "messages/value_proto.hpp"
#include "syncmesh/sync_socket.hpp"

namespace {

using namespace syncmesh;

/// A real system with two scheduler threads, as on the CI machine.
struct bench_config : caf::actor_system_config {
  bench_config() {
    configure(*this);
    set("scheduler.max-threads", size_t{2});
  }
};

/// An actor system and one node, leasing off (as the replication bench).
struct one_node {
  bench_config cfg;
  caf::actor_system sys{cfg};
  sync_socket sock{sys, node_config()};

  static config node_config() {
    config c;
    c.leasing = false;
    return c;
  }
};

/// 1,000 keys of 64-byte text values, reused round-robin.
std::vector<std::string> bench_keys() {
  std::vector<std::string> keys;
  for (int i = 0; i < 1000; ++i)
    keys.push_back("key-" + std::to_string(i));
  return keys;
}

const value bench_value{std::string(64, 'v')};

void api_blocking_set(benchmark::State& state) {
  one_node node;
  auto keys = bench_keys();
  size_t i = 0;
  for (auto _ : state)
    node.sock.set(keys[i++ % keys.size()], bench_value);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(api_blocking_set)->UseRealTime();

void api_blocking_get(benchmark::State& state) {
  one_node node;
  auto keys = bench_keys();
  for (auto& k : keys)
    node.sock.set(k, bench_value);
  size_t i = 0;
  for (auto _ : state)
    benchmark::DoNotOptimize(node.sock.get(keys[i++ % keys.size()]));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(api_blocking_get)->UseRealTime();

// A read through the facade and the store's mailbox (what get() did before
// it read the store's table): a blocking round trip without a write.
void api_blocking_size_via_facade(benchmark::State& state) {
  one_node node;
  for (auto _ : state)
    benchmark::DoNotOptimize(node.sock.size());
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(api_blocking_size_via_facade)->UseRealTime();

// The request the blocking set() made before issue 17: a fresh
// caf::scoped_actor per call, for comparison in the same run.
void api_scoped_actor_per_call_set(benchmark::State& state) {
  one_node node;
  auto keys = bench_keys();
  auto facade = node.sock.handle();
  size_t i = 0;
  for (auto _ : state) {
    pb::SetRequest req;
    req.set_key(keys[i++ % keys.size()]);
    to_proto(bench_value, req.mutable_value());
    caf::scoped_actor self{node.sys};
    self->request(facade, std::chrono::seconds(30), std::move(req))
      .receive([](pb::WriteAck&) {},
               [&](caf::error& err) {
                 state.SkipWithError(node.sys.render(err).c_str());
               });
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(api_scoped_actor_per_call_set)->UseRealTime();

// set_async with at most `window` unanswered writes, as the replication
// bench's writer pipelines the facade.
void api_set_async_pipelined(benchmark::State& state) {
  one_node node;
  auto keys = bench_keys();
  auto window = static_cast<size_t>(state.range(0));
  std::deque<std::future<void>> in_flight;
  size_t i = 0;
  for (auto _ : state) {
    if (in_flight.size() >= window) {
      in_flight.front().get();
      in_flight.pop_front();
    }
    in_flight.push_back(
      node.sock.set_async(keys[i++ % keys.size()], bench_value));
  }
  for (auto& f : in_flight)
    f.get();
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(api_set_async_pipelined)->Arg(1000)->Arg(10000)->UseRealTime();

} // namespace

namespace {

// update() with W pairs per call: the batch form of writing from one thread
// (one request, one store step and one reply per batch; all or nothing
// under leases, as update() documents).
void api_blocking_update_batch(benchmark::State& state) {
  one_node node;
  auto keys = bench_keys();
  auto per_batch = static_cast<size_t>(state.range(0));
  std::vector<std::pair<std::string, value>> batch;
  size_t i = 0;
  for (auto _ : state) {
    batch.clear();
    for (size_t n = 0; n < per_batch; ++n)
      batch.emplace_back(keys[i++ % keys.size()], bench_value);
    node.sock.update(batch);
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(api_blocking_update_batch)->Arg(100)->Arg(1000)->UseRealTime();

} // namespace
