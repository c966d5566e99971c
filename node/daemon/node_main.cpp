// syncmesh-node: one node of the mesh as a daemon, with its HTTP API.

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
#include <caf/config_option_adder.hpp>

#include "actors/facade.hpp"
#include "actors/log.hpp"
#include "messages/py2p_codec.hpp"
#include "messages/version.hpp"
#include "node/daemon/http_api.hpp"
#include "node/daemon/json_value.hpp"
#include "syncmesh/sync_socket.hpp"

namespace {

using namespace syncmesh;

/// The daemon's options, read from the command line and an INI file.
struct node_config : caf::actor_system_config {
  std::string host = "127.0.0.1";
  uint16_t port = 7440;
  std::string peers;
  std::string subnet;
  bool leasing = true;
  std::string wire = "native";
  bool py2p_allow_delete = false;
  std::string lease_duration = "1h";
  std::string max_lease_duration = "24h";
  size_t max_peers = 4;
  size_t max_inbound = 32;
  std::string http = "127.0.0.1:7441";
  std::string data_dir;
  std::string log_level = "info";
  std::string heartbeat_interval = "1s";
  std::string peer_timeout = "10s";
  std::string anti_entropy_interval = "30s";
  std::string anti_entropy_method = "auto";
  std::string redial_max = "30s";
  std::string tombstone_horizon = "24h";
  size_t max_value_size = 1024 * 1024;
  size_t max_value_depth = 64;
  size_t expected_keys = 0;
  size_t max_handshake_frame = 64 * 1024;
  size_t max_pending_handshake_bytes = 4 * 1024 * 1024;
  size_t ingress_window = 4 * 1024 * 1024;
  std::string duplicate_probe_timeout = "1s";

  node_config() {
    opt_group{custom_options_, "global"}
      .add(host, "host", "interface to bind for peers")
      .add(port, "port", "TCP port for peers (0: the OS picks)")
      .add(peers, "peers", "seeds to dial, \"host:port,host:port\"")
      .add(subnet, "subnet", "only peers of the same subnet talk")
      .add(leasing, "leasing", "leases on (true) or newest write wins")
      .add(wire, "wire", "peer dialect: native | py2p (py2p/js2p 0.7.870)")
      .add(py2p_allow_delete, "py2p-allow-delete",
           "py2p mode: allow deletes (nil stores crash js2p peers)")
      .add(lease_duration, "lease-duration", "lease length, e.g. \"1h\"")
      .add(max_lease_duration, "max-lease-duration",
           "longest lease any record may hold, mesh-wide (default 24h)")
      .add(max_peers, "max-peers", "outgoing connections to aim for")
      .add(max_inbound, "max-inbound", "most inbound connections")
      .add(http, "http", "HTTP API address HOST:PORT (empty: off)")
      .add(data_dir, "data-dir", "keeps the node ID and clock across runs")
      .add(log_level, "log-level", "quiet|error|warning|info|debug")
      .add(heartbeat_interval, "heartbeat-interval", "e.g. \"1s\"")
      .add(peer_timeout, "peer-timeout",
           "drop silent peers after, e.g. \"10s\"")
      .add(anti_entropy_interval, "anti-entropy-interval", "e.g. \"30s\"")
      .add(anti_entropy_method, "anti-entropy-method",
           "auto | sketch | keys: how differing buckets are compared")
      .add(redial_max, "redial-max", "longest redial backoff, e.g. \"30s\"")
      .add(tombstone_horizon, "tombstone-horizon", "e.g. \"24h\"")
      .add(max_value_size, "max-value-size", "largest value in bytes")
      .add(max_value_depth, "max-value-depth",
           "deepest nesting of lists and maps in a value (mesh-wide)")
      .add(expected_keys, "expected-keys",
           "keys to size the tables for (avoids rehash pauses)")
      .add(max_handshake_frame, "max-handshake-frame",
           "largest frame in bytes before a peer's hello is accepted")
      .add(max_pending_handshake_bytes, "max-pending-handshake-bytes",
           "most bytes held for all unfinished handshakes")
      .add(ingress_window, "ingress-window",
           "most bytes of a peer's writes not yet applied before its link "
           "stops reading")
      .add(duplicate_probe_timeout, "duplicate-probe-timeout",
           "how long a connected peer may take to answer a probe when "
           "another connection claims its ID, e.g. \"1s\"");
  }
};

/// Parses "1500ms", "30s", "5m", "1h" or a plain number of seconds.
bool parse_duration(const std::string& text, std::chrono::milliseconds& out) {
  size_t pos = 0;
  while (pos < text.size()
         && std::isdigit(static_cast<unsigned char>(text[pos])))
    ++pos;
  if (pos == 0 || pos > 12)
    return false;
  auto n = std::stoll(text.substr(0, pos));
  auto unit = text.substr(pos);
  if (unit == "ms")
    out = std::chrono::milliseconds{n};
  else if (unit.empty() || unit == "s")
    out = std::chrono::seconds{n};
  else if (unit == "m")
    out = std::chrono::minutes{n};
  else if (unit == "h")
    out = std::chrono::hours{n};
  else
    return false;
  return true;
}

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

/// Builds the library configuration from the daemon's options.
config to_node_config(const node_config& opts) {
  config cfg;
  cfg.host = opts.host;
  cfg.port = opts.port;
  cfg.subnet = opts.subnet;
  cfg.leasing = opts.leasing;
  if (opts.anti_entropy_method == "sketch")
    cfg.anti_entropy_method = ae_method::sketch;
  else if (opts.anti_entropy_method == "keys")
    cfg.anti_entropy_method = ae_method::key_lists;
  else if (opts.anti_entropy_method != "auto")
    fail("--anti-entropy-method: '" + opts.anti_entropy_method
         + "' is none of auto, sketch, keys");
  if (opts.wire == "py2p")
    cfg.wire = wire_kind::py2p;
  else if (opts.wire != "native")
    fail("--wire: '" + opts.wire + "' is neither native nor py2p");
  cfg.py2p_allow_delete = opts.py2p_allow_delete;
  cfg.max_peers = opts.max_peers;
  cfg.max_inbound = opts.max_inbound;
  cfg.max_value_size = opts.max_value_size;
  cfg.max_value_depth = opts.max_value_depth;
  cfg.expected_keys = opts.expected_keys;
  if (cfg.max_frame_size < cfg.max_value_size + cfg.max_key_size + 1024)
    cfg.max_frame_size = cfg.max_value_size + cfg.max_key_size + 1024;
  if (cfg.max_send_queue < cfg.max_frame_size * 4)
    cfg.max_send_queue = cfg.max_frame_size * 4;
  cfg.max_handshake_frame = opts.max_handshake_frame;
  cfg.max_pending_handshake_bytes = opts.max_pending_handshake_bytes;
  cfg.ingress_window = opts.ingress_window;
  if (cfg.ingress_window < cfg.max_frame_size)
    cfg.ingress_window = cfg.max_frame_size;
  struct {
    const char* name;
    const std::string& text;
    std::chrono::milliseconds& out;
  } durations[] = {
    {"lease-duration", opts.lease_duration, cfg.lease_duration},
    {"max-lease-duration", opts.max_lease_duration, cfg.max_lease_duration},
    {"heartbeat-interval", opts.heartbeat_interval, cfg.heartbeat_interval},
    {"peer-timeout", opts.peer_timeout, cfg.peer_timeout},
    {"anti-entropy-interval", opts.anti_entropy_interval,
     cfg.anti_entropy_interval},
    {"redial-max", opts.redial_max, cfg.redial_max},
    {"tombstone-horizon", opts.tombstone_horizon, cfg.tombstone_horizon},
    {"duplicate-probe-timeout", opts.duplicate_probe_timeout,
     cfg.duplicate_probe_timeout},
  };
  for (auto& d : durations)
    if (!parse_duration(d.text, d.out))
      fail(std::string{"--"} + d.name + ": '" + d.text
           + "' is not a duration (e.g. 500ms, 30s, 5m, 1h)");
  std::stringstream peers{opts.peers};
  std::string peer;
  while (std::getline(peers, peer, ','))
    if (!peer.empty())
      cfg.peers.push_back(peer);
  if (auto err = cfg.validate(); !err.empty())
    fail(err);
  return cfg;
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
    cfg.node_id = cfg.wire == wire_kind::py2p
                    ? py2p::random_node_id(protocol_id(cfg))
                    : random_node_id();
    if (!write_file(id_path, to_hex(cfg.node_id) + "\n"))
      fail("--data-dir: cannot write " + id_path);
  } else if (!from_hex(hex, cfg.node_id)) {
    fail(id_path + " does not hold a hex node ID");
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

  node_config opts;
  configure(opts);
  if (auto err = opts.parse(argc, argv)) {
    std::cerr << "syncmesh-node: " << caf::to_string(err) << "\n";
    return 2;
  }
  if (opts.cli_helptext_printed)
    return 0;
  log_level level;
  if (!parse_log_level(opts.log_level, level))
    fail("--log-level: '" + opts.log_level
         + "' is not one of quiet|error|warning|info|debug");
  set_log_level(level);
  auto cfg = to_node_config(opts);
  std::string http_host;
  uint16_t http_port = 0;
  if (!opts.http.empty()
      && !parse_host_port(opts.http, http_host, http_port, true))
    fail("--http: '" + opts.http + "' is not HOST:PORT");
  if (!opts.data_dir.empty())
    load_state(opts.data_dir, cfg);
  opts.set("scheduler.max-threads", size_t{2});
  caf::actor_system sys{opts};
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
    api = std::make_unique<http_api>(*sock, hopts);
    std::string err;
    auto bound = api->start(http_host, http_port, err);
    if (bound == 0) {
      sock->close();
      fail(err);
    }
    http_addr = http_host + ":" + std::to_string(bound);
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
