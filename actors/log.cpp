#include "actors/log.hpp"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <memory>
#include <mutex>
#include <utility>

#include "messages/version.hpp"

namespace syncmesh {

namespace {

std::atomic<int> level_{static_cast<int>(log_level::warning)};

/// The installed sink, if any; read under the mutex, called outside it.
std::mutex sink_mtx_;
std::shared_ptr<const log_sink> sink_;

const char* name_of(log_level level) {
  switch (level) {
    case log_level::error:
      return "ERROR";
    case log_level::warning:
      return "WARN";
    case log_level::info:
      return "INFO";
    case log_level::debug:
      return "DEBUG";
    default:
      return "-";
  }
}

} // namespace

const char* log_level_name(log_level level) {
  return name_of(level);
}

void set_log_level(log_level level) {
  level_ = static_cast<int>(level);
}

log_level current_log_level() {
  return static_cast<log_level>(level_.load());
}

bool parse_log_level(const std::string& text, log_level& out) {
  static constexpr std::pair<const char*, log_level> names[]
    = {{"quiet", log_level::quiet},
       {"error", log_level::error},
       {"warning", log_level::warning},
       {"info", log_level::info},
       {"debug", log_level::debug}};
  for (const auto& [name, level] : names) {
    if (text == name) {
      out = level;
      return true;
    }
  }
  return false;
}

bool log_enabled(log_level level) {
  return level != log_level::quiet && static_cast<int>(level) <= level_.load();
}

log_sink set_log_sink(log_sink sink) {
  auto next = sink ? std::make_shared<const log_sink>(std::move(sink))
                   : std::shared_ptr<const log_sink>{};
  std::lock_guard<std::mutex> guard{sink_mtx_};
  auto prev = std::exchange(sink_, std::move(next));
  return prev ? *prev : log_sink{};
}

void log_line(log_level level, const std::string& node,
              const std::string& text) {
  if (!log_enabled(level))
    return;
  std::shared_ptr<const log_sink> sink;
  {
    std::lock_guard<std::mutex> guard{sink_mtx_};
    sink = sink_;
  }
  if (sink) {
    (*sink)(level, node, text);
    return;
  }
  using namespace std::chrono;
  auto now = system_clock::now();
  auto secs = system_clock::to_time_t(now);
  auto ms = duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
  auto id = to_hex(node).substr(0, 12);
  // One fprintf per line keeps lines whole when threads log concurrently.
  std::fprintf(stderr, "%s.%03dZ %s node=%s %s\n", stamp, static_cast<int>(ms),
               name_of(level), id.c_str(), text.c_str());
}

} // namespace syncmesh
