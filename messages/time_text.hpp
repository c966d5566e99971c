#pragma once

// Times for people: messages and logs name an instant as ISO 8601 UTC with a
// hint relative to now ("2026-12-06T01:23:45Z (in 59 min)") instead of a
// count of microseconds since the epoch.

#include <cstdint>
#include <string>

namespace syncmesh {

/// `at_us` (µs since the Unix epoch) as ISO 8601 UTC to the second,
/// e.g. "2026-12-06T01:23:45Z" (fractions are cut, not rounded).
std::string iso8601_utc(uint64_t at_us);

/// How far `at_us` is from `now_us`, in the largest fitting unit, floored:
/// "in 42 s", "in 59 min", "in 3 h 5 min", "in 2 days", "now" (under a
/// second either way), and "12 min ago" for the past.
std::string relative_time(uint64_t at_us, uint64_t now_us);

/// Both: "2026-12-06T01:23:45Z (in 59 min)".
std::string format_time_until(uint64_t end_us, uint64_t now_us);

/// The wall clock in µs since the Unix epoch.
uint64_t wall_clock_us();

} // namespace syncmesh
