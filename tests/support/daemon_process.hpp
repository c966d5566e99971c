#pragma once

// One syncmesh-node process started by a test: the ready line it prints is
// parsed (node ID, peer address, HTTP address), its stderr goes to a log
// file in the test's scratch dir, and a client of its API is a call away.
// Shared by the daemon, HTTP API and CLI tests.

#include <boost/test/unit_test.hpp>

#include <chrono>
#include <cstdint>
#include <fstream>
#include <memory>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "support/process.hpp"

namespace syncmesh::test {

/// The whole of a small file (a daemon's stderr, a CLI's output).
inline std::string slurp(const std::string& path) {
  std::ifstream in{path};
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// The arguments of a daemon in a test: quick heartbeats, timeouts and
/// redials, then `base` (what a test file starts every node with), then
/// `extra` (what one test adds; later arguments win).
inline std::vector<std::string>
quick_daemon_args(std::vector<std::string> base = {},
                  const std::vector<std::string>& extra = {}) {
  std::vector<std::string> all{"--port=0", "--heartbeat-interval=100ms",
                               "--peer-timeout=1s", "--redial-max=300ms"};
  all.insert(all.end(), base.begin(), base.end());
  all.insert(all.end(), extra.begin(), extra.end());
  return all;
}

/// A syncmesh-node started with `args` (see the file comment).
class daemon_process {
public:
  /// The process (signal, wait, pid).
  std::unique_ptr<child_process> proc;
  /// Its node ID (hex).
  std::string id;
  /// Where it listens for peers, HOST:PORT.
  std::string listen;
  /// Its API, HOST:PORT, or "-" when the API is off.
  std::string http;
  /// The host part of `http`.
  std::string host;
  /// The port part of `http` (0 when off).
  uint16_t port = 0;
  /// The file its stderr goes to.
  std::string log;

  /// Starts the node binary with `args`, stderr to `dir`/`name`N.log, and
  /// waits (10 s at most) for its ready line. `binary` is another build of
  /// the node (the crash tests' syncmesh-node-lossy).
  daemon_process(const std::string& dir, const std::vector<std::string>& args,
                 const std::string& name = "node",
                 const std::string& binary = SYNCMESH_NODE_BIN) {
    static int counter = 0;
    log = dir + "/" + name + std::to_string(counter++) + ".log";
    std::vector<std::string> argv{binary};
    argv.insert(argv.end(), args.begin(), args.end());
    proc = std::make_unique<child_process>(argv, log);
    auto line = proc->read_line(std::chrono::seconds(10));
    static const std::regex ready{
      R"(^syncmesh-node ready node=([0-9a-f]+) listen=(\S+) http=(\S+)$)"};
    std::smatch m;
    BOOST_REQUIRE_MESSAGE(std::regex_match(line, m, ready),
                          "no ready line, got '"
                            << line << "'; stderr: " << slurp(log));
    id = m[1];
    listen = m[2];
    http = m[3];
    auto colon = http.rfind(':');
    if (http != "-" && colon != std::string::npos) {
      host = http.substr(0, colon);
      port = static_cast<uint16_t>(std::stoi(http.substr(colon + 1)));
    }
  }

  /// A client of the API (5 s to connect, `read_timeout_s` to answer).
  httplib::Client client(int read_timeout_s = 10) const {
    httplib::Client cli{host, port};
    cli.set_connection_timeout(5);
    cli.set_read_timeout(read_timeout_s);
    return cli;
  }

  /// The HTTP status of a GET, or 0 when the request failed (a loaded
  /// machine may time it out; a poll then simply tries again).
  int status_of(const std::string& path) const {
    auto res = client().Get(path);
    return res ? res->status : 0;
  }

  /// The peers /v1/status reports, or -1 when it does not answer.
  int peer_count() const {
    auto res = client().Get("/v1/status");
    if (!res || res->status != 200)
      return -1;
    auto body = nlohmann::json::parse(res->body, nullptr, false);
    return body.is_object() && body.contains("peers") ? body["peers"].get<int>()
                                                      : -1;
  }

  /// The node's resident memory in KiB (VmRSS), -1 when unreadable.
  long rss_kib() const {
    std::ifstream in{"/proc/" + std::to_string(proc->pid()) + "/status"};
    std::string line;
    while (std::getline(in, line))
      if (line.rfind("VmRSS:", 0) == 0)
        return std::stol(line.substr(6));
    return -1;
  }
};

} // namespace syncmesh::test
