#pragma once

// Hex text to bytes, header-only so that every library can use it without
// linking the wire library (the TLS library reads node IDs from
// certificates, the HTTP server percent-decodes, the daemon reads IDs from
// its data dir and its API). Bytes to hex is `to_hex` in version.hpp.

#include <cstddef>
#include <string>
#include <string_view>

namespace syncmesh {

/// The value of one hex digit (either case), or -1 when `c` is none.
constexpr int hex_digit(char c) noexcept {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/// Decodes `hex` (an even number of digits, 1 to `max_bytes` bytes) into
/// `out`; false, with `out` unspecified, on anything else.
inline bool from_hex(std::string_view hex, std::string& out, size_t max_bytes) {
  if (hex.empty() || hex.size() % 2 != 0 || hex.size() / 2 > max_bytes)
    return false;
  out.clear();
  out.reserve(hex.size() / 2);
  for (size_t i = 0; i < hex.size(); i += 2) {
    int hi = hex_digit(hex[i]);
    int lo = hex_digit(hex[i + 1]);
    if (hi < 0 || lo < 0)
      return false;
    out += static_cast<char>(hi * 16 + lo);
  }
  return true;
}

} // namespace syncmesh
