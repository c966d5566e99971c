// syncmesh-node daemons as nodes under test: started like the daemon tests
// start them (tests/support/process.hpp), observed through their HTTP API.

#include <signal.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <mutex>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "bench/bench.hpp"
#include "support/process.hpp"

namespace syncmesh::bench {

namespace {

using namespace std::chrono_literals;
using nlohmann::json;

/// Daemons alive now, for the signal handler (async-signal-safe reads).
std::array<std::atomic<pid_t>, 64> live_pids{};

/// Adds a daemon for the signal handler.
void remember_pid(pid_t pid) {
  for (auto& slot : live_pids) {
    pid_t empty = 0;
    if (slot.compare_exchange_strong(empty, pid))
      return;
  }
}

/// Removes a daemon that was stopped and reaped.
void forget_pid(pid_t pid) {
  for (auto& slot : live_pids) {
    pid_t expected = pid;
    if (slot.compare_exchange_strong(expected, 0))
      return;
  }
}

/// SIGINT/SIGTERM/SIGHUP: kills every daemon, then exits.
extern "C" void kill_daemons_and_exit(int sig) {
  for (auto& slot : live_pids)
    if (auto pid = slot.load(); pid > 0)
      ::kill(pid, SIGKILL);
  // The parent reaps nothing from here; the kernel reparents the killed
  // children to init, which reaps them.
  ::_exit(128 + sig);
}

/// An HTTP client of one daemon, with keep-alive, usable from any thread.
class api_client {
public:
  api_client(const std::string& host, int port) : cli_(host, port) {
    cli_.set_keep_alive(true);
    // A PUT's header and body go out as two writes: no Nagle delay.
    cli_.set_tcp_nodelay(true);
    cli_.set_connection_timeout(5);
    cli_.set_read_timeout(30);
    cli_.set_write_timeout(30);
  }

  /// GET `path`; throws when the daemon does not answer 200.
  std::string get(const std::string& path) {
    std::lock_guard<std::mutex> guard{mtx_};
    auto res = cli_.Get(path.c_str());
    if (!res || res->status != 200)
      throw std::runtime_error("GET " + path + " failed");
    return res->body;
  }

  /// GET `path`; false on 404.
  bool get_opt(const std::string& path, std::string& body) {
    std::lock_guard<std::mutex> guard{mtx_};
    auto res = cli_.Get(path.c_str());
    if (res && res->status == 404)
      return false;
    if (!res || res->status != 200)
      throw std::runtime_error("GET " + path + " failed");
    body = std::move(res->body);
    return true;
  }

  /// PUT a text value; throws unless 204.
  void put(const std::string& path, const std::string& text) {
    std::lock_guard<std::mutex> guard{mtx_};
    auto res = cli_.Put(path.c_str(), text, "text/plain");
    if (!res || res->status != 204)
      throw std::runtime_error("PUT " + path + " failed"
                               + (res ? ": " + res->body : std::string{}));
  }

private:
  std::mutex mtx_;
  httplib::Client cli_;
};

/// The value of the first /metrics sample line that starts with `name`
/// and contains `label` (summed over every such line when `sum`).
uint64_t metric(const std::string& text, const std::string& name,
                const std::string& label, bool sum = false) {
  double total = 0;
  std::istringstream in{text};
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#' || line.compare(0, name.size(), name))
      continue;
    auto rest = line[name.size()];
    if (rest != '{' && rest != ' ')
      continue; // a longer name with this prefix
    if (!label.empty() && line.find(label) == std::string::npos)
      continue;
    auto space = line.rfind(' ');
    total += std::strtod(line.c_str() + space + 1, nullptr);
    if (!sum)
      break;
  }
  return static_cast<uint64_t>(total);
}

/// The value of the /metrics sample line whose name and labels are
/// exactly `series`; 0 when there is none.
double metric_value(const std::string& text, const std::string& series) {
  std::istringstream in{text};
  std::string line;
  while (std::getline(in, line))
    if (line.compare(0, series.size() + 1, series + " ") == 0)
      return std::strtod(line.c_str() + series.size() + 1, nullptr);
  return 0;
}

/// A syncmesh-node process, observed and written through its HTTP API.
class daemon_node : public bench_node {
public:
  daemon_node(const std::string& name, const daemon_options& opts) {
    log_ = opts.dir + "/" + name + ".log";
    std::string seeds;
    for (const auto& s : opts.seeds)
      seeds += (seeds.empty() ? "" : ",") + s;
    // CAF 0.17 takes a boolean option on the command line only as a bare
    // flag (true); false needs the INI file.
    auto ini = opts.dir + "/" + name + ".ini";
    if (!(std::ofstream{ini} << "leasing=" << (opts.leasing ? "true" : "false")
                             << "\n"))
      throw std::runtime_error("cannot write " + ini);
    std::vector<std::string> argv{
      opts.binary, "--config-file=" + ini, "--port=0", "--http=127.0.0.1:0",
      "--log-level=warning",
      // Exactly the seeds: no links beyond the scenario's topology.
      "--max-peers=" + std::to_string(opts.seeds.size()),
      // One repair round when a link comes up (by the dialler), no
      // periodic rounds in the middle of a measurement.
      "--anti-entropy-interval=1h",
      "--expected-keys=" + std::to_string(opts.expected_keys),
      "--heartbeat-interval=" + std::to_string(heartbeat_interval.count())
        + "ms"};
    if (!seeds.empty())
      argv.push_back("--peers=" + seeds);
    if (!opts.tls_cert.empty()) {
      argv.push_back("--tls-cert=" + opts.tls_cert);
      argv.push_back("--tls-key=" + opts.tls_key);
      argv.push_back("--tls-ca=" + opts.tls_ca);
    }
    if (!opts.data_dir.empty()) {
      argv.push_back("--data-dir=" + opts.data_dir);
      argv.push_back("--durability=" + opts.durability);
    }
    proc_ = std::make_unique<test::child_process>(argv, log_);
    remember_pid(proc_->pid());
    auto line = proc_->read_line(15s);
    std::smatch m;
    static const std::regex ready{
      R"(^syncmesh-node ready node=([0-9a-f]+) listen=(\S+) http=(\S+):(\d+)$)"};
    if (!std::regex_match(line, m, ready))
      throw std::runtime_error(name + ": no ready line (log: " + log_ + ")");
    label_ = name + " (pid " + std::to_string(proc_->pid()) + ")";
    listen_ = m[2];
    http_host_ = m[3];
    http_port_ = std::stoi(m[4]);
    poll_ = std::make_unique<api_client>(http_host_, http_port_);
    writes_ = std::make_unique<api_client>(http_host_, http_port_);
    reads_ = std::make_unique<api_client>(http_host_, http_port_);
  }

  ~daemon_node() override {
    unwatch();
    // Close the keep-alive connections first: the daemon's HTTP server
    // would wait out their idle timeout (5 s) before it exits.
    poll_.reset();
    writes_.reset();
    reads_.reset();
    proc_->signal(SIGTERM);
    // The child_process destructor kills and reaps what did not stop.
    proc_->wait(5s);
    forget_pid(proc_->pid());
  }

  std::string label() const override { return label_; }

  bool in_process() const override { return false; }

  std::string address() const override { return listen_; }

  uint64_t keys() override {
    return json::parse(poll_->get("/v1/status")).at("keys").get<uint64_t>();
  }

  node_counters counters() override {
    auto text = poll_->get("/metrics");
    node_counters c;
    c.keys = metric(text, "syncmesh_state", "what=\"keys\"");
    c.peers = metric(text, "syncmesh_state", "what=\"peers\"");
    c.deliveries = metric(text, "syncmesh_frame_deliveries_total", "");
    c.wire_bytes_out
      = metric(text, "syncmesh_link_bytes_total", "direction=\"out\"", true);
    c.flood_frames = metric(text, "syncmesh_flood_frames_total", "");
    c.flood_bytes = metric(text, "syncmesh_flood_bytes_total", "");
    c.ae_repaired = metric(text, "syncmesh_anti_entropy_total",
                           "kind=\"entries_repaired\"");
    c.storage_writes
      = metric(text, "syncmesh_storage_total", "kind=\"writes\"");
    c.storage_syncs = metric(text, "syncmesh_storage_total", "kind=\"syncs\"");
    c.storage_bytes = metric(text, "syncmesh_storage_total", "kind=\"bytes\"");
    c.engine_written
      = metric(text, "syncmesh_storage_total", "kind=\"wal_bytes\"")
        + metric(text, "syncmesh_storage_total", "kind=\"flush_bytes\"")
        + metric(text, "syncmesh_storage_total", "kind=\"compaction_bytes\"");
    c.engine_memory
      = metric(text, "syncmesh_storage", "what=\"engine_memory_bytes\"");
    c.engine_stall_us
      = metric(text, "syncmesh_storage_total", "kind=\"stall_us\"");
    // The histogram's sum is in seconds; metric() reads whole numbers.
    c.sync_us = static_cast<uint64_t>(
      metric_value(text, "syncmesh_storage_flush_seconds_sum{op=\"sync\"}")
      * 1e6);
    return c;
  }

  node_usage usage() override { return process_usage(proc_->pid()); }

  void set(const std::string& key, const std::string& text) override {
    writes_->put("/v1/kv/" + key, text);
  }

  bool get(const std::string& key, std::string& text) override {
    return reads_->get_opt("/v1/kv/" + key, text);
  }

  std::unique_ptr<blocking_writer> writer() override {
    // A keep-alive connection per writer, as an application's client
    // would hold one.
    struct http_writer : blocking_writer {
      http_writer(const std::string& host, int port) : cli(host, port) {}
      void set(const std::string& key, const std::string& text) override {
        cli.put("/v1/kv/" + key, text);
      }
      api_client cli;
    };
    return std::make_unique<http_writer>(http_host_, http_port_);
  }

  void watch(const std::string& prefix, arrival_fn fn) override {
    unwatch();
    stop_ = false;
    done_ = false;
    dropped_ = 0;
    watch_cli_ = std::make_unique<httplib::Client>(http_host_, http_port_);
    watch_cli_->set_read_timeout(30);
    thread_ = std::thread{[this, prefix, fn = std::move(fn)] {
      std::string buf;
      watch_cli_->Get(("/v1/watch?prefix=" + prefix).c_str(),
                      [&](const char* data, size_t len) {
                        auto at = now_us();
                        buf.append(data, len);
                        parse_events(buf, fn, at);
                        return !stop_.load();
                      });
      done_ = true;
    }};
    // The stream counts once the node reports it; writes before that
    // would not be seen.
    auto deadline = std::chrono::steady_clock::now() + 10s;
    while (metric(poll_->get("/metrics"), "syncmesh_state", "what=\"watchers\"")
           == 0) {
      if (std::chrono::steady_clock::now() > deadline)
        throw std::runtime_error(label_ + ": the watch stream did not open");
      std::this_thread::yield();
    }
  }

  void unwatch() override {
    if (!thread_.joinable())
      return;
    stop_ = true;
    // stop() shuts the socket of a request in progress; repeat it in case
    // the request had not started yet. The keep-alive comment every second
    // ends the stream anyway.
    auto deadline = std::chrono::steady_clock::now() + 3s;
    while (!done_ && std::chrono::steady_clock::now() < deadline) {
      watch_cli_->stop();
      std::this_thread::yield();
    }
    thread_.join();
    watch_cli_.reset();
  }

  uint64_t watch_dropped() const override { return dropped_; }

private:
  /// Takes every complete Server-Sent Event out of `buf`. Fields come in
  /// any order (the node puts `id:` first); an `overflow` event means the
  /// stream fell out of the node's event window and ends: what it lost is
  /// unknown: every event still expected counts as dropped.
  void parse_events(std::string& buf, const arrival_fn& fn, int64_t at) {
    size_t start = 0;
    for (;;) {
      auto end = buf.find("\n\n", start);
      if (end == std::string::npos)
        break;
      std::string_view ev{buf.data() + start, end - start};
      start = end + 2;
      std::string_view name;
      std::string_view data;
      while (!ev.empty()) {
        auto eol = ev.find('\n');
        auto line = ev.substr(0, eol);
        ev = eol == std::string_view::npos ? std::string_view{}
                                           : ev.substr(eol + 1);
        if (line.rfind("event: ", 0) == 0)
          name = line.substr(7);
        else if (line.rfind("data: ", 0) == 0)
          data = line.substr(6);
      }
      if (name == "overflow") {
        dropped_ = std::numeric_limits<uint64_t>::max() / 2;
        continue;
      }
      if (name != "update" || data.empty())
        continue;
      auto payload = json::parse(data, nullptr, false);
      if (!payload.is_discarded() && payload.contains("key")
          && payload["value"].is_string())
        fn(payload["key"].get_ref<const std::string&>(),
           payload["value"].get_ref<const std::string&>(), at);
    }
    buf.erase(0, start);
  }

  std::unique_ptr<test::child_process> proc_;
  std::string log_;
  std::string label_;
  std::string listen_;
  std::string http_host_;
  int http_port_ = 0;
  std::unique_ptr<api_client> poll_;
  std::unique_ptr<api_client> writes_;
  std::unique_ptr<api_client> reads_;
  std::unique_ptr<httplib::Client> watch_cli_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> done_{false};
  std::atomic<uint64_t> dropped_{0};
};

} // namespace

std::unique_ptr<bench_node> spawn_daemon(const std::string& name,
                                         const daemon_options& opts) {
  return std::make_unique<daemon_node>(name, opts);
}

void kill_daemons_on_signal() {
  struct sigaction sa {};
  sa.sa_handler = kill_daemons_and_exit;
  sigemptyset(&sa.sa_mask);
  for (int sig : {SIGINT, SIGTERM, SIGHUP})
    ::sigaction(sig, &sa, nullptr);
}

} // namespace syncmesh::bench
