#include "messages/time_text.hpp"

#include <chrono>
#include <cstdio>
#include <ctime>

namespace syncmesh {

std::string iso8601_utc(uint64_t at_us) {
  auto secs = static_cast<std::time_t>(at_us / 1'000'000);
  std::tm parts{};
  if (::gmtime_r(&secs, &parts) == nullptr)
    return "(time out of range)";
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02dZ",
                parts.tm_year + 1900, parts.tm_mon + 1, parts.tm_mday,
                parts.tm_hour, parts.tm_min, parts.tm_sec);
  return buf;
}

std::string relative_time(uint64_t at_us, uint64_t now_us) {
  bool future = at_us >= now_us;
  auto secs = (future ? at_us - now_us : now_us - at_us) / 1'000'000;
  if (secs == 0)
    return "now";
  std::string span;
  if (secs < 60) {
    span = std::to_string(secs) + " s";
  } else if (secs < 3600) {
    span = std::to_string(secs / 60) + " min";
  } else if (secs < 48 * 3600) {
    span = std::to_string(secs / 3600) + " h";
    if (auto mins = secs % 3600 / 60; mins > 0)
      span += " " + std::to_string(mins) + " min";
  } else {
    span = std::to_string(secs / 86400) + " days";
  }
  return future ? "in " + span : span + " ago";
}

std::string format_time_until(uint64_t end_us, uint64_t now_us) {
  return iso8601_utc(end_us) + " (" + relative_time(end_us, now_us) + ")";
}

uint64_t wall_clock_us() {
  using namespace std::chrono;
  return static_cast<uint64_t>(
    duration_cast<microseconds>(system_clock::now().time_since_epoch())
      .count());
}

} // namespace syncmesh
