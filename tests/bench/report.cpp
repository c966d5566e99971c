// Process usage from /proc and getrusage, percentiles, and the printed
// report (a table, then one JSON line per scenario).

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "bench/bench.hpp"

namespace syncmesh::bench {

namespace {

/// A "VmHWM:   1234 kB" line of /proc/<pid>/status, in bytes.
uint64_t status_kb(const std::string& status, const char* field) {
  auto pos = status.find(field);
  if (pos == std::string::npos)
    return 0;
  return std::strtoull(status.c_str() + pos + std::strlen(field), nullptr, 10)
         * 1024;
}

/// A whole file (empty when unreadable).
std::string slurp(const std::string& path) {
  std::ifstream in{path};
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// A number for JSON: null for what was not measured.
std::string num(double x, int decimals = 1) {
  if (x < 0 || !std::isfinite(x))
    return "null";
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", decimals, x);
  return buf;
}

/// A number for the table: "-" for what was not measured.
std::string cell(double x, int decimals = 1) {
  return x < 0 ? "-" : num(x, decimals);
}

/// A JSON string literal.
std::string quoted(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\')
      out += '\\';
    out += c;
  }
  return out + "\"";
}

/// A rate, or -1 when nothing was timed.
double per_s(uint64_t n, double seconds) {
  return seconds > 0 ? static_cast<double>(n) / seconds : -1;
}

} // namespace

node_usage process_usage(pid_t pid) {
  node_usage u;
  auto status = slurp(pid == 0 ? std::string{"/proc/self/status"}
                               : "/proc/" + std::to_string(pid) + "/status");
  u.peak_rss = status_kb(status, "VmHWM:");
  u.rss = status_kb(status, "VmRSS:");
  u.rss_anon = status_kb(status, "RssAnon:");
  if (pid == 0) {
    rusage ru{};
    ::getrusage(RUSAGE_SELF, &ru);
    u.cpu_s
      = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec)
        + static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
    return u;
  }
  // Fields 14 and 15 (utime, stime) in clock ticks; the command name in
  // field 2 may hold spaces, so count from its closing parenthesis.
  auto stat = slurp("/proc/" + std::to_string(pid) + "/stat");
  auto paren = stat.rfind(')');
  if (paren == std::string::npos)
    return u;
  std::istringstream in{stat.substr(paren + 2)};
  std::string field;
  unsigned long long utime = 0;
  unsigned long long stime = 0;
  for (int i = 3; i <= 15 && in >> field; ++i) {
    if (i == 14)
      utime = std::strtoull(field.c_str(), nullptr, 10);
    else if (i == 15)
      stime = std::strtoull(field.c_str(), nullptr, 10);
  }
  u.cpu_s = static_cast<double>(utime + stime)
            / static_cast<double>(::sysconf(_SC_CLK_TCK));
  return u;
}

latency_summary summarize(std::vector<int64_t>& samples) {
  latency_summary s;
  s.count = samples.size();
  if (samples.empty())
    return s;
  std::sort(samples.begin(), samples.end());
  // Nearest rank: the smallest sample with at least p of them at or below.
  auto rank = [&](double p) {
    auto idx
      = static_cast<size_t>(std::ceil(p * static_cast<double>(samples.size())));
    return static_cast<double>(samples[idx == 0 ? 0 : idx - 1]);
  };
  s.p50 = rank(0.50);
  s.p99 = rank(0.99);
  s.max = static_cast<double>(samples.back());
  return s;
}

void print_report(const scenario_report& r) {
  auto issued = per_s(r.writes, r.issue_seconds);
  auto replicated = per_s(r.writes, r.replicate_seconds);
  std::printf("\n== %s (%s mode, %zu nodes, %llu writes of %zu-byte values, "
              "leasing %s)\n",
              r.scenario.c_str(), r.mode.c_str(), r.nodes,
              static_cast<unsigned long long>(r.writes), r.value_size,
              r.leasing ? "on" : "off");
  if (!r.writer_note.empty())
    std::printf("   %s\n", r.writer_note.c_str());
  auto row = [](const char* what, const std::string& v) {
    std::printf("   %-44s %s\n", what, v.c_str());
  };
  if (r.writers > 0) {
    // acks: a closed loop of writers on one node.
    row("writers (each waits for its acknowledgement)",
        std::to_string(r.writers));
    row("acknowledged writes/s", cell(per_s(r.writes, r.ack_seconds), 0));
    row("fsyncs/s", cell(r.syncs < 0 ? -1 : r.syncs / r.ack_seconds, 0));
    row("writes per fsync",
        cell(r.syncs > 0 ? static_cast<double>(r.writes) / r.syncs : -1, 1));
    row("mean fsync (ms)",
        cell(r.syncs > 0 ? r.sync_us / r.syncs / 1e3 : -1, 3));
    row("engine writes/s (one per group)",
        cell(r.engine_writes < 0 ? -1 : r.engine_writes / r.ack_seconds, 0));
    row("ack latency p50 / p99 / max (us)",
        cell(r.ack_latency.p50, 0) + " / " + cell(r.ack_latency.p99, 0) + " / "
          + cell(r.ack_latency.max, 0));
  } else {
    row("writes issued/s at the writer", cell(issued, 0));
    row("replicated writes/s (to the last node)", cell(replicated, 0));
    row("seconds until the last node had all", cell(r.replicate_seconds, 3));
  }
  if (r.rate > 0) {
    row("latency: offered load (writes/s)", cell(r.rate, 0));
    row("latency: farthest node", r.farthest);
    row("latency: samples (missing)", std::to_string(r.latency.count) + " ("
                                        + std::to_string(r.latency_missing)
                                        + ")");
    row("latency p50 / p99 / max (us)", cell(r.latency.p50, 0) + " / "
                                          + cell(r.latency.p99, 0) + " / "
                                          + cell(r.latency.max, 0));
  }
  if (r.writers == 0) {
    row("frames to links per write", cell(r.frames_per_write, 4));
    row("bytes on the wire per write", cell(r.wire_bytes_per_write, 1));
    row("flooded bytes per write", cell(r.flood_bytes_per_write, 1));
  }
  if (r.writers == 0 && (r.memory_per_key >= 0 || !r.memory_node.empty())) {
    row(("memory per key beyond key+value (" + r.memory_node + ")").c_str(),
        r.memory_per_key < 0 ? "- (below 100k keys)"
                             : cell(r.memory_per_key, 1) + " B");
    if (r.anon_per_key >= 0)
      row("  the same from RssAnon", cell(r.anon_per_key, 1) + " B");
    if (r.engine_memory >= 0)
      row("  engine memory after (buffers, cache)",
          cell(r.engine_memory / (1024.0 * 1024.0), 1) + " MiB");
    if (r.anon_less_engine_per_key >= 0)
      row("  RssAnon less engine memory, per key",
          cell(r.anon_less_engine_per_key, 1) + " B");
  }
  if (r.write_amplification >= 0)
    row(("write amplification (" + r.memory_node + ")").c_str(),
        cell(r.write_amplification, 2));
  if (r.heal_bytes >= 0) {
    row("heal: bytes on the wire", cell(r.heal_bytes, 0));
    row("heal: bytes of the differing entries",
        cell(r.heal_differing_bytes, 0));
    row("heal: ratio", cell(r.heal_bytes / r.heal_differing_bytes, 2));
  }
  if (r.reads.count > 0) {
    row("reads done", std::to_string(r.reads.count));
    row("read latency p50 / p99 / max (us)", cell(r.reads.p50, 0) + " / "
                                               + cell(r.reads.p99, 0) + " / "
                                               + cell(r.reads.max, 0));
  }
  bool storage = std::any_of(r.per_node.begin(), r.per_node.end(),
                             [](auto& n) { return n.counters.storage_writes; });
  std::printf("   %-30s %10s %12s%s\n", "node", "CPU s", "peak RSS MB",
              storage ? "   engine writes  fsyncs  stalled ms  disk-written MB"
                      : "");
  for (const auto& n : r.per_node) {
    std::printf("   %-30s %10.2f %12.1f", n.label.c_str(), n.usage.cpu_s,
                static_cast<double>(n.usage.peak_rss) / (1024.0 * 1024.0));
    const auto& c = n.counters;
    if (storage)
      std::printf(" %16llu %7llu %11.1f %16.1f",
                  static_cast<unsigned long long>(c.storage_writes),
                  static_cast<unsigned long long>(c.storage_syncs),
                  static_cast<double>(c.engine_stall_us) / 1e3,
                  static_cast<double>(c.engine_written) / (1024.0 * 1024.0));
    std::printf("\n");
  }
  std::string nodes = "[";
  for (const auto& n : r.per_node) {
    if (nodes.size() > 1)
      nodes += ",";
    nodes += "{\"node\":" + quoted(n.label)
             + ",\"cpu_s\":" + num(n.usage.cpu_s, 3)
             + ",\"peak_rss_bytes\":" + std::to_string(n.usage.peak_rss) + "}";
  }
  nodes += "]";
  std::printf(
    "{\"scenario\":%s,\"mode\":%s,\"nodes\":%zu,\"writes\":%llu,"
    "\"value_size\":%zu,\"leasing\":%s,\"writes_issued_per_s\":%s,"
    "\"replicated_writes_per_s\":%s,\"replicate_seconds\":%s,"
    "\"latency_rate\":%s,\"latency_samples\":%zu,\"latency_missing\":%llu,"
    "\"latency_p50_us\":%s,\"latency_p99_us\":%s,\"latency_max_us\":%s,"
    "\"frames_per_write\":%s,\"wire_bytes_per_write\":%s,"
    "\"flood_bytes_per_write\":%s,\"memory_per_key_bytes\":%s,"
    "\"heal_bytes\":%s,\"heal_differing_bytes\":%s,\"reads\":%zu,"
    "\"read_p50_us\":%s,\"read_p99_us\":%s,\"anon_per_key_bytes\":%s,"
    "\"engine_memory_bytes\":%s,\"anon_less_engine_per_key_bytes\":%s,"
    "\"write_amplification\":%s,\"writers\":%zu,\"acks_per_s\":%s,"
    "\"syncs_per_s\":%s,\"mean_sync_us\":%s,\"ack_p50_us\":%s,"
    "\"ack_p99_us\":%s,"
    "\"per_node\":%s}\n",
    quoted(r.scenario).c_str(), quoted(r.mode).c_str(), r.nodes,
    static_cast<unsigned long long>(r.writes), r.value_size,
    r.leasing ? "true" : "false", num(issued, 0).c_str(),
    num(replicated, 0).c_str(), num(r.replicate_seconds, 6).c_str(),
    num(r.rate, 0).c_str(), r.latency.count,
    static_cast<unsigned long long>(r.latency_missing),
    r.latency.count ? num(r.latency.p50, 0).c_str() : "null",
    r.latency.count ? num(r.latency.p99, 0).c_str() : "null",
    r.latency.count ? num(r.latency.max, 0).c_str() : "null",
    num(r.frames_per_write, 4).c_str(), num(r.wire_bytes_per_write, 1).c_str(),
    num(r.flood_bytes_per_write, 1).c_str(), num(r.memory_per_key, 1).c_str(),
    num(r.heal_bytes, 0).c_str(), num(r.heal_differing_bytes, 0).c_str(),
    r.reads.count, r.reads.count ? num(r.reads.p50, 0).c_str() : "null",
    r.reads.count ? num(r.reads.p99, 0).c_str() : "null",
    num(r.anon_per_key, 1).c_str(), num(r.engine_memory, 0).c_str(),
    num(r.anon_less_engine_per_key, 1).c_str(),
    num(r.write_amplification, 3).c_str(), r.writers,
    r.writers ? num(per_s(r.writes, r.ack_seconds), 0).c_str() : "null",
    r.writers && r.syncs >= 0 ? num(r.syncs / r.ack_seconds, 0).c_str()
                              : "null",
    num(r.syncs > 0 ? r.sync_us / r.syncs : -1, 0).c_str(),
    r.ack_latency.count ? num(r.ack_latency.p50, 0).c_str() : "null",
    r.ack_latency.count ? num(r.ack_latency.p99, 0).c_str() : "null",
    nodes.c_str());
  std::fflush(stdout);
}

} // namespace syncmesh::bench
