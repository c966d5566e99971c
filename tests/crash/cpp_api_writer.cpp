// syncmesh-crash-writer: an application of the C++ API (sync_socket) with
// a data dir, as the crash tests kill it. Built with the same file layer
// as syncmesh-node-lossy (unsynced bytes die with the process), it starts
// a node on DIR with the given durability, prints "ready", then writes
// from four threads with the blocking set() and prints each key on stdout
// once set() returned: the test's record of acknowledged writes, which
// survives a SIGKILL in the pipe. The test then starts syncmesh-node on the
// same dir and looks for every printed key.
//
// usage: syncmesh-crash-writer DIR always|batch|none

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>

#include "syncmesh/sync_socket.hpp"

namespace {

/// Writes one whole line with one write(2): lines of several threads never
/// interleave, and nothing waits in a user-space buffer at the kill.
void print_line(const std::string& text) {
  auto line = text + "\n";
  [[maybe_unused]] auto n = ::write(1, line.data(), line.size());
}

} // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: syncmesh-crash-writer DIR always|batch|none\n";
    return 2;
  }
  syncmesh::config cfg;
  cfg.data_dir = argv[1];
  std::string mode = argv[2];
  cfg.durability = mode == "always" ? syncmesh::durability_mode::always
                   : mode == "none" ? syncmesh::durability_mode::none
                                    : syncmesh::durability_mode::batch;
  cfg.port = 0;
  caf::actor_system_config caf_cfg;
  syncmesh::configure(caf_cfg);
  caf::actor_system sys{caf_cfg};
  syncmesh::sync_socket sock{sys, cfg};
  print_line("ready");
  std::vector<std::thread> writers;
  for (int t = 0; t < 4; ++t)
    writers.emplace_back([&sock, t] {
      for (long i = 0;; ++i) {
        auto key = "c" + std::to_string(t) + "-" + std::to_string(i);
        sock.set(key, syncmesh::value{"v" + key});
        print_line(key);
      }
    });
  for (auto& w : writers)
    w.join(); // never: the test kills the process
}
