// What one virtual hour of the test kit costs in real time (issue 19): five
// simulated nodes, fully connected, idle or cut apart, with the default node
// timers and with cluster_options::long_span(), and a fault schedule.
// Prints one line per virtual hour: real seconds, frames delivered, dials
// refused. Results: tests/bench/README.md, "Test kit: cost per virtual hour".
//
//   syncmesh-kit-bench [--hours=N] [--nodes=N] [--only=NAME]

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include <syncmesh/testing.hpp>

using namespace std::chrono_literals;
namespace testing = syncmesh::testing;

namespace {

struct settings {
  int hours = 3;
  size_t nodes = 5;
  std::string only;
};

/// A way to spend a virtual hour, on a cluster built from `preset`.
struct scenario {
  std::string name;
  bool long_span;
  /// Called once after the nodes are connected.
  std::function<void(testing::cluster&)> prepare;
  /// Spends one virtual hour.
  std::function<void(testing::cluster&)> hour;
};

void run(const settings& cfg, const scenario& sc) {
  auto opts = sc.long_span ? testing::cluster_options::long_span()
                           : testing::cluster_options{};
  opts.nodes = cfg.nodes;
  opts.seed = 19;
  testing::cluster mesh{opts};
  for (size_t i = 0; i < cfg.nodes; ++i)
    for (size_t j = i + 1; j < cfg.nodes; ++j)
      mesh.connect(i, j);
  mesh.advance(10s);
  sc.prepare(mesh);
  for (int h = 1; h <= cfg.hours; ++h) {
    auto frames = mesh.network().frames_delivered;
    auto refused = mesh.network().connections_refused;
    auto start = std::chrono::steady_clock::now();
    sc.hour(mesh);
    std::chrono::duration<double> took
      = std::chrono::steady_clock::now() - start;
    std::printf(
      "%-24s hour %d: %6.2f s real, %8llu frames, %6llu dials "
      "refused, %zu connections held\n",
      sc.name.c_str(), h, took.count(),
      static_cast<unsigned long long>(mesh.network().frames_delivered - frames),
      static_cast<unsigned long long>(mesh.network().connections_refused
                                      - refused),
      mesh.network().connections_held);
    std::fflush(stdout);
  }
}

} // namespace

int main(int argc, char** argv) {
  settings cfg;
  for (int k = 1; k < argc; ++k) {
    if (std::strncmp(argv[k], "--hours=", 8) == 0)
      cfg.hours = std::atoi(argv[k] + 8);
    else if (std::strncmp(argv[k], "--nodes=", 8) == 0)
      cfg.nodes = static_cast<size_t>(std::atoi(argv[k] + 8));
    else if (std::strncmp(argv[k], "--only=", 7) == 0)
      cfg.only = argv[k] + 7;
    else {
      std::fprintf(stderr, "usage: %s [--hours=N] [--nodes=N] [--only=NAME]\n",
                   argv[0]);
      return 2;
    }
  }
  auto nothing = [](testing::cluster&) {
  };
  auto idle_hour = [](testing::cluster& mesh) {
    mesh.advance(1h);
  };
  auto cut_apart = [](testing::cluster& mesh) {
    std::vector<std::vector<size_t>> groups;
    for (size_t i = 0; i < mesh.size(); ++i)
      groups.push_back({i});
    mesh.partition(groups);
  };
  // 58 minutes of faults (every 10 s on average, each 5 s to 2 min), then
  // two calm minutes in which the nodes find each other again.
  auto fault_hour = [](testing::cluster& mesh) {
    testing::fault_schedule schedule;
    schedule.span = 58min;
    schedule.mean_gap = 10s;
    schedule.min_duration = 5s;
    schedule.max_duration = 2min;
    mesh.run_faults(schedule);
    mesh.advance(2min);
  };
  std::vector<scenario> scenarios{
    {"idle default", false, nothing, idle_hour},
    {"idle long_span", true, nothing, idle_hour},
    {"partitioned default", false, cut_apart, idle_hour},
    {"partitioned long_span", true, cut_apart, idle_hour},
    {"fault schedule default", false, nothing, fault_hour},
    {"fault schedule long_span", true, nothing, fault_hour},
  };
  for (const auto& sc : scenarios)
    if (cfg.only.empty() || sc.name.find(cfg.only) != std::string::npos)
      run(cfg, sc);
  return 0;
}
