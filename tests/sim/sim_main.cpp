// syncmesh-sim: runs seeded simulations of a syncmesh cluster and checks
// their invariants. One seed replays exactly; a long batch hunts for bugs.

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "sim/simulation.hpp"

namespace {

void usage() {
  std::printf(
    "usage: syncmesh-sim [--scenario=NAME|all] [--seed=S | --seeds=N "
    "[--seed-start=S]] [--verbose]\n"
    "  Runs N seeded simulations (default 1) of each chosen scenario and\n"
    "  reports runs, faults injected and violations. Exit 1 on a violation.\n"
    "scenarios:");
  for (const auto& sc : syncmesh::sim::scenarios())
    std::printf(" %s", sc.name.c_str());
  std::printf("\n");
}

bool parse_u64(const std::string& text, uint64_t& out) {
  char* end = nullptr;
  errno = 0;
  out = std::strtoull(text.c_str(), &end, 10);
  return errno == 0 && end != nullptr && *end == '\0' && !text.empty();
}

} // namespace

int main(int argc, char** argv) {
  std::string scenario_name = "all";
  uint64_t seed_start = 1;
  uint64_t seeds = 1;
  bool verbose = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&](const char* prefix) -> const char* {
      auto n = std::string(prefix).size();
      return arg.compare(0, n, prefix) == 0 ? argv[i] + n : nullptr;
    };
    if (arg == "--help" || arg == "-h") {
      usage();
      return 0;
    } else if (arg == "--verbose") {
      verbose = true;
    } else if (auto v = value("--scenario=")) {
      scenario_name = v;
    } else if (auto v = value("--seed=")) {
      if (!parse_u64(v, seed_start)) {
        std::fprintf(stderr, "syncmesh-sim: bad --seed: %s\n", v);
        return 2;
      }
      seeds = 1;
    } else if (auto v = value("--seed-start=")) {
      if (!parse_u64(v, seed_start)) {
        std::fprintf(stderr, "syncmesh-sim: bad --seed-start: %s\n", v);
        return 2;
      }
    } else if (auto v = value("--seeds=")) {
      if (!parse_u64(v, seeds) || seeds == 0) {
        std::fprintf(stderr, "syncmesh-sim: bad --seeds: %s\n", v);
        return 2;
      }
    } else {
      std::fprintf(stderr, "syncmesh-sim: unknown argument %s (try --help)\n",
                   arg.c_str());
      return 2;
    }
  }
  std::vector<const syncmesh::sim::scenario*> chosen;
  if (scenario_name == "all") {
    for (const auto& sc : syncmesh::sim::scenarios())
      chosen.push_back(&sc);
  } else if (auto* sc = syncmesh::sim::find_scenario(scenario_name)) {
    chosen.push_back(sc);
  } else {
    std::fprintf(stderr, "syncmesh-sim: no scenario %s (try --help)\n",
                 scenario_name.c_str());
    return 2;
  }
  uint64_t runs = 0, faults = 0, failed = 0, ops = 0;
  auto started = std::chrono::steady_clock::now();
  for (uint64_t s = seed_start; s < seed_start + seeds; ++s) {
    for (const auto* sc : chosen) {
      auto report = syncmesh::sim::run(*sc, s, verbose);
      ++runs;
      faults += report.faults;
      ops += report.operations;
      if (!report.violations.empty())
        ++failed;
      if (!report.violations.empty() || seeds <= 20 || verbose)
        std::printf("%s\n", syncmesh::sim::describe(report).c_str());
      else if (runs % 100 == 0)
        std::printf("... %llu runs, %llu violations\n",
                    static_cast<unsigned long long>(runs),
                    static_cast<unsigned long long>(failed));
      std::fflush(stdout);
    }
  }
  auto secs
    = std::chrono::duration<double>(std::chrono::steady_clock::now() - started)
        .count();
  std::printf("runs=%llu faults_injected=%llu operations=%llu "
              "runs_with_violations=%llu wall_s=%.1f\n",
              static_cast<unsigned long long>(runs),
              static_cast<unsigned long long>(faults),
              static_cast<unsigned long long>(ops),
              static_cast<unsigned long long>(failed), secs);
  return failed == 0 ? 0 : 1;
}
