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
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <sys/stat.h>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>

#include "actors/facade.hpp"
#include "actors/log.hpp"
#include "messages/py2p_codec.hpp"
#include "messages/version.hpp"
#include "node/daemon/http_api.hpp"
#include "node/daemon/json_value.hpp"
#include "node/daemon/node_options.hpp"
#include "syncmesh/sync_socket.hpp"

namespace {

using namespace syncmesh;

[[noreturn]] void fail(const std::string& what) {
  std::cerr << "syncmesh-node: " << what << "\n";
  std::exit(2);
}

std::string read_file(const std::string& path) {
  std::ifstream in{path};
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// Writes atomically (temp file, rename), so a crash leaves the old content.
bool write_file(const std::string& path, const std::string& content) {
  auto tmp = path + ".tmp";
  {
    std::ofstream out{tmp, std::ios::trunc};
    if (!(out << content))
      return false;
  }
  return std::rename(tmp.c_str(), path.c_str()) == 0;
}

/// Loads or creates the node's identity and clock floor in `dir`.
void load_state(const std::string& dir, config& cfg) {
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
    fail("--data-dir: cannot create " + dir + ": " + std::strerror(errno));
  auto id_path = dir + "/node-id";
  auto hex = read_file(id_path);
  while (!hex.empty() && std::isspace(static_cast<unsigned char>(hex.back())))
    hex.pop_back();
  if (hex.empty()) {
    // With peer TLS the certificate names the ID (checked again, like a
    // stored one, when the node starts).
    if (cfg.tls.enabled()) {
      try {
        cfg.node_id = make_peer_tls(cfg)->node_id();
      } catch (const std::exception& e) {
        fail(e.what());
      }
    } else {
      cfg.node_id = cfg.wire == wire_kind::py2p
                      ? py2p::random_node_id(protocol_id(cfg))
                      : random_node_id();
    }
    if (!write_file(id_path, to_hex(cfg.node_id) + "\n"))
      fail("--data-dir: cannot write " + id_path);
  } else if (!from_hex(hex, cfg.node_id)) {
    fail(id_path + " does not hold a hex node ID");
  } else if (cfg.tls.enabled()) {
    std::string cert_id;
    try {
      auto unnamed = cfg; // the certificate alone decides here
      unnamed.node_id.clear();
      cert_id = make_peer_tls(unnamed)->node_id();
    } catch (const std::exception& e) {
      fail(e.what());
    }
    if (cert_id != cfg.node_id)
      fail(id_path + " holds node ID " + hex + " but --tls-cert names "
           + to_hex(cert_id)
           + ": a node keeps its ID across certificates (issue a "
             "certificate for this ID, or use another --data-dir)");
  }
  if (auto err = cfg.validate(); !err.empty())
    fail(id_path + ": " + err + " (use another --data-dir)");
  auto hlc = read_file(dir + "/hlc");
  if (!hlc.empty())
    cfg.hlc_floor_us = std::strtoull(hlc.c_str(), nullptr, 10);
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

void save_clock(const std::string& dir, const sync_socket& sock) {
  try {
    auto wall = sock.stats().lease().hlc_wall_us();
    if (!write_file(dir + "/hlc", std::to_string(wall) + "\n"))
      log_line(log_level::warning, sock.raw_id(), "cannot save the clock");
  } catch (const std::exception& e) {
    log_line(log_level::warning, sock.raw_id(),
             std::string{"cannot read the clock: "} + e.what());
  }
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
  if (!opts.data_dir.empty()) {
    load_state(opts.data_dir, cfg);
    cfg.data_dir = opts.data_dir;
  }
  // CAF reads no command line or file of its own: every option is ours.
  caf::actor_system_config caf_cfg;
  configure(caf_cfg);
  caf_cfg.set("scheduler.max-threads", size_t{2});
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
             sock->raw_id(),
             what + (loopback ? ", loopback only" : ", not loopback"));
  }
  std::cout << "syncmesh-node ready node=" << sock->id()
            << " listen=" << cfg.host << ":" << sock->port()
            << " http=" << http_addr << std::endl;
  log_line(log_level::info, sock->raw_id(),
           "ready: peers on " + cfg.host + ":" + std::to_string(sock->port())
             + ", HTTP API on " + http_addr);
  // Wait for SIGINT/SIGTERM; save the clock's high-water mark now and then.
  for (;;) {
    pollfd pfd{stop_pipe[0], POLLIN, 0};
    if (::poll(&pfd, 1, 5000) > 0) {
      int sig = 0;
      if (::read(stop_pipe[0], &sig, sizeof(sig)) == sizeof(sig)) {
        log_line(log_level::info, sock->raw_id(),
                 std::string{"stopping on "} + strsignal(sig));
        break;
      }
    }
    if (!opts.data_dir.empty())
      save_clock(opts.data_dir, *sock);
  }
  if (api)
    api->stop();
  log_line(log_level::debug, sock->raw_id(), "HTTP API stopped");
  if (!opts.data_dir.empty())
    save_clock(opts.data_dir, *sock);
  sock->close(); // goodbye to every peer
  log_line(log_level::debug, sock->raw_id(), "node closed");
  return 0;
}
