// syncmesh-node: one node of the mesh as a daemon, with its HTTP API.
// Its options are read by node_options.cpp (CLI11, the rules tested there);
// this file only runs the node they describe.

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <memory>
#include <string>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>

#include "actors/facade.hpp"
#include "actors/log.hpp"
#include "node/daemon/http_api.hpp"
#include "node/daemon/node_options.hpp"
#include "syncmesh/scheduler_settings.hpp"
#include "syncmesh/sync_socket.hpp"

namespace {

using namespace syncmesh;

[[noreturn]] void fail(const std::string& what) {
  std::cerr << "syncmesh-node: " << what << "\n";
  std::exit(2);
}

/// The handler writes the signal number here; main waits on the other end.
int stop_pipe[2] = {-1, -1};

extern "C" void on_stop_signal(int sig) {
  // Only async-signal-safe calls: write(2) to a pipe.
  auto saved = errno;
  [[maybe_unused]] auto n = ::write(stop_pipe[1], &sig, sizeof(sig));
  errno = saved;
}

/// SIGINT and SIGTERM wake the main thread through a pipe, whichever thread
/// the kernel delivers them to.
void install_stop_handlers() {
  if (::pipe2(stop_pipe, O_CLOEXEC | O_NONBLOCK) != 0)
    fail(std::string{"pipe: "} + std::strerror(errno));
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  for (int sig : {SIGINT, SIGTERM}) {
    // The node, not an inherited "ignore", decides what these signals do.
    ::sigaction(sig, &sa, nullptr);
  }
  signal(SIGPIPE, SIG_IGN);
}

} // namespace

int main(int argc, char** argv) {
  install_stop_handlers();

  auto parsed = parse_node_options(argc, argv);
  switch (parsed.action) {
    case node_action::help:
    case node_action::dump_config:
      std::cout << parsed.text;
      return 0;
    case node_action::fail:
      fail(parsed.text);
    case node_action::run:
      break;
  }
  const auto& opts = parsed.options;
  set_log_level(opts.level);
  auto cfg = opts.node;
  // The node settles its ID and loads its entries from the data dir
  // (actors/data_dir.hpp); an unusable dir is one line and exit 2 below.
  cfg.data_dir = opts.data_dir;
  // CAF reads no command line or file of its own: every option is ours.
  caf::actor_system_config caf_cfg;
  configure(caf_cfg);
  caf_cfg.set("scheduler.max-threads", size_t{2});
  apply_node_scheduler_settings(caf_cfg);
  caf::actor_system sys{caf_cfg};
  std::unique_ptr<sync_socket> sock;
  try {
    sock = std::make_unique<sync_socket>(sys, cfg);
  } catch (const std::exception& e) {
    fail(e.what());
  }
  std::unique_ptr<http_api> api;
  std::string http_addr = "-";
  if (!opts.http.empty()) {
    http_options hopts;
    hopts.expects_peers = !cfg.peers.empty();
    // Limits, TLS, hosts, origins and open paths as the options read them.
    hopts.server = opts.http_server;
    hopts.server.token_file = opts.http_token_file;
    hopts.watch.max_watchers = opts.http_max_watchers;
    hopts.watch.window_bytes = opts.http_watch_window;
    api = std::make_unique<http_api>(*sock, hopts);
    std::string err;
    auto bound = api->start(opts.http_host, opts.http_port, err);
    if (bound == 0) {
      sock->close();
      fail(err);
    }
    http_addr = opts.http_host + ":" + std::to_string(bound);
  }
  // Say what the API exposes: a node reachable beyond loopback without a
  // token or TLS deserves a line an operator sees.
  if (api) {
    bool loopback = opts.http_host == "127.0.0.1" || opts.http_host == "::1"
                    || opts.http_host == "localhost";
    bool tls = !opts.http_server.tls_cert_file.empty();
    std::string what = std::string{"HTTP API: "}
                       + (tls ? "HTTPS" : "plain HTTP") + ", "
                       + (opts.http_token_file.empty()
                            ? "no token file (every client is admin)"
                            : "tokens from " + opts.http_token_file);
    log_line(!loopback && opts.http_token_file.empty() ? log_level::warning
                                                       : log_level::info,
             sock->id().raw(),
             what + (loopback ? ", loopback only" : ", not loopback"));
  }
  std::cout << "syncmesh-node ready node=" << sock->id()
            << " listen=" << cfg.host << ":" << sock->port()
            << " http=" << http_addr << std::endl;
  log_line(log_level::info, sock->id().raw(),
           "ready: peers on " + cfg.host + ":" + std::to_string(sock->port())
             + ", HTTP API on " + http_addr);
  // Wait for SIGINT/SIGTERM (the store keeps the clock and the entries).
  for (;;) {
    pollfd pfd{stop_pipe[0], POLLIN, 0};
    if (::poll(&pfd, 1, -1) > 0) {
      int sig = 0;
      if (::read(stop_pipe[0], &sig, sizeof(sig)) == sizeof(sig)) {
        log_line(log_level::info, sock->id().raw(),
                 std::string{"stopping on "} + strsignal(sig));
        break;
      }
    }
  }
  if (api)
    api->stop();
  log_line(log_level::debug, sock->id().raw(), "HTTP API stopped");
  sock->close(); // goodbye to every peer
  log_line(log_level::debug, sock->id().raw(), "node closed");
  return 0;
}
