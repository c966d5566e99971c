#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>

namespace syncmesh {

/// The ID of a node of the mesh: raw bytes, compared bytewise. Native
/// nodes pick 15 random bytes; in py2p mode an ID is the 65-66 characters
/// of base58 text py2p sends (any length up to `max_size` is valid).
///
/// Every API that names a node uses this type; `to_hex()` is the form the
/// HTTP API, the CLI and the logs print. There is no implicit conversion
/// from or to a string: a string could hold the raw bytes or their hex, so
/// the named factories `from_raw` and `from_hex` say which one it is.
class node_id {
public:
  /// The largest ID, in bytes.
  static constexpr size_t max_size = 128;

  /// The empty ID: no node (e.g. "broadcast" in send_options::to).
  node_id() = default;

  /// The ID with these raw bytes.
  static node_id from_raw(std::string raw) {
    node_id result;
    result.raw_ = std::move(raw);
    return result;
  }

  /// Parses hex (either case, an even number of digits, at most
  /// `max_size` bytes); nothing for anything else. "" is the empty ID, so
  /// `from_hex(id.to_hex()) == id` for every ID.
  static std::optional<node_id> from_hex(std::string_view hex) {
    if (hex.size() % 2 != 0 || hex.size() / 2 > max_size)
      return std::nullopt;
    std::string raw;
    raw.reserve(hex.size() / 2);
    for (size_t i = 0; i < hex.size(); i += 2) {
      int hi = digit(hex[i]);
      int lo = digit(hex[i + 1]);
      if (hi < 0 || lo < 0)
        return std::nullopt;
      raw += static_cast<char>(hi * 16 + lo);
    }
    return from_raw(std::move(raw));
  }

  /// The ID as lowercase hex, two digits per byte ("" when empty).
  std::string to_hex() const {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    out.reserve(raw_.size() * 2);
    for (unsigned char c : raw_) {
      out += digits[c >> 4];
      out += digits[c & 0x0f];
    }
    return out;
  }

  /// The raw bytes.
  const std::string& raw() const& noexcept { return raw_; }
  /// The raw bytes, moved out of a temporary ID (never a reference into it).
  std::string raw() && noexcept { return std::move(raw_); }

  /// True for the empty ID.
  bool empty() const noexcept { return raw_.empty(); }
  /// The number of raw bytes.
  size_t size() const noexcept { return raw_.size(); }

  /// Bytewise equality.
  friend bool operator==(const node_id& x, const node_id& y) noexcept {
    return x.raw_ == y.raw_;
  }
  /// Bytewise inequality.
  friend bool operator!=(const node_id& x, const node_id& y) noexcept {
    return x.raw_ != y.raw_;
  }
  /// Bytewise order: the order of the seed's lease tie-break (smaller wins).
  friend bool operator<(const node_id& x, const node_id& y) noexcept {
    return x.raw_ < y.raw_;
  }
  /// Bytewise order.
  friend bool operator>(const node_id& x, const node_id& y) noexcept {
    return y < x;
  }
  /// Bytewise order.
  friend bool operator<=(const node_id& x, const node_id& y) noexcept {
    return !(y < x);
  }
  /// Bytewise order.
  friend bool operator>=(const node_id& x, const node_id& y) noexcept {
    return !(x < y);
  }

  /// Prints `to_hex()`, the form the HTTP API and the CLI print.
  friend std::ostream& operator<<(std::ostream& out, const node_id& x) {
    return out << x.to_hex();
  }

private:
  static constexpr int digit(char c) noexcept {
    if (c >= '0' && c <= '9')
      return c - '0';
    if (c >= 'a' && c <= 'f')
      return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
      return c - 'A' + 10;
    return -1;
  }

  std::string raw_;
};

/// `to_hex()` of an ID, as `to_string` is for syncmesh's other types.
inline std::string to_string(const node_id& x) {
  return x.to_hex();
}

} // namespace syncmesh

namespace std {

/// Hashes the raw bytes, so node IDs key unordered containers.
template <>
struct hash<syncmesh::node_id> {
  /// The hash of the raw bytes.
  size_t operator()(const syncmesh::node_id& x) const noexcept {
    return hash<string>{}(x.raw());
  }
};

} // namespace std
