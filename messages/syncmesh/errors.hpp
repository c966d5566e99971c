#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "syncmesh/node_id.hpp"

namespace syncmesh {

/// syncmesh's error codes; usable as CAF errors in category "syncmesh" (see
/// <syncmesh/caf_types.hpp>).
enum class errc : uint8_t {
  /// No error.
  none = 0,
  /// The key is absent.
  key_not_found = 1,
  /// Another node holds the key's lease.
  lease_held = 2,
  /// The stored value has the wrong kind for the operation.
  wrong_type = 3,
  /// The key is empty.
  invalid_key = 4,
  /// The key exceeds config::max_key_size.
  key_too_large = 5,
  /// The value exceeds config::max_value_size.
  value_too_large = 6,
  /// A value, request or remote write is malformed.
  malformed = 7,
  /// A frame exceeds the maximum frame size.
  frame_too_large = 8,
  /// The socket was closed.
  closed = 9,
  /// A request did not complete in time.
  timeout = 10,
  /// A configuration value is invalid.
  invalid_config = 11,
  /// A bounded queue is full.
  overloaded = 12,
  /// A peer could not be reached (refused, unreachable, timed out).
  unreachable = 13,
  /// A peer speaks another protocol (subnet, leasing flag or version).
  protocol_mismatch = 14,
  /// A peer closed the connection or said goodbye.
  disconnected = 15,
  /// This node's clock is beyond config::max_clock_offset from a majority of
  /// the nodes it measures: local writes are refused until it is back
  /// within (HTTP 503).
  clock_offset = 16,
  /// The node's storage failed at what was asked (disk full, I/O error,
  /// such as making a backup's copy) (HTTP 503).
  storage = 17,
  /// A confirmed write (write_concern) was applied here, but fewer nodes
  /// than required were known to hold it when its timeout passed. The
  /// write stands and keeps spreading (HTTP 202).
  unconfirmed = 18,
};

/// The name of an error code, e.g. "lease_held".
const char* to_string(errc x);

/// Base of all syncmesh exceptions.
class error : public std::runtime_error {
public:
  /// Wraps a code and a human-readable message.
  error(errc code, const std::string& what)
      : std::runtime_error(what), code_(code) {}

  /// The error code.
  errc code() const noexcept { return code_; }

private:
  errc code_;
};

/// Thrown when a key is absent (like Python's KeyError).
class key_error : public error {
public:
  /// Names the missing key.
  explicit key_error(const std::string& what, errc code = errc::key_not_found)
      : error(code, what) {}
};

/// One key a write was refused for because another node holds its lease.
struct lease_conflict {
  /// The key, as written (bytes, not escaped).
  std::string key;
  /// The lease owner's node ID.
  node_id owner;
  /// When the lease ends, in microseconds since the Unix epoch (0: unknown).
  uint64_t lease_end_us = 0;
};

/// Thrown when another node holds the lease of a key: a key_error that names
/// the owner and when its lease ends. A refused batch (`update`) names every
/// leased key of the batch in `conflicts()`, so a caller learns all of them
/// from one refusal instead of retrying key by key.
class lease_error : public key_error {
public:
  /// Names the owner and the lease end (µs since the epoch).
  lease_error(std::string key, node_id owner, uint64_t lease_end_us);

  /// Names every conflict (at least one); `key()`, `owner()` and
  /// `lease_end_us()` describe the first. The message names the first few
  /// and how many there are.
  explicit lease_error(std::vector<lease_conflict> conflicts);

  /// The (first) key, printable: bytes other than text are escaped.
  const std::string& key() const noexcept { return key_; }
  /// The (first) owner's node ID (`owner().to_hex()` as the message and the
  /// HTTP API print it).
  const node_id& owner() const noexcept { return owner_; }
  /// When the (first) lease ends, in microseconds since the Unix epoch.
  uint64_t lease_end_us() const noexcept { return lease_end_us_; }
  /// Every leased key that refused the write, in the request's order.
  const std::vector<lease_conflict>& conflicts() const noexcept {
    return conflicts_;
  }

private:
  std::string key_;
  node_id owner_;
  uint64_t lease_end_us_;
  std::vector<lease_conflict> conflicts_;
};

/// Thrown by a confirmed write (`set(key, value, confirm::majority(2s))`)
/// whose timeout passed before enough nodes were known to hold it. The
/// write itself was applied on this node and stands: it keeps spreading
/// and may well reach the other nodes later. Not a lease problem: a write
/// that lost to another claim throws lease_error instead.
class unconfirmed_error : public error {
public:
  /// Names how many nodes held the write and how many were required.
  unconfirmed_error(const std::string& what, uint32_t confirmed,
                    uint32_t required, uint32_t cluster_size)
      : error(errc::unconfirmed, what), confirmed_(confirmed),
        required_(required), cluster_size_(cluster_size) {}

  /// Distinct nodes known to hold the write (this one included).
  uint32_t confirmed() const noexcept { return confirmed_; }
  /// Nodes the write concern required.
  uint32_t required() const noexcept { return required_; }
  /// The configured membership (config::cluster_size; 0: unknown).
  uint32_t cluster_size() const noexcept { return cluster_size_; }

private:
  uint32_t confirmed_;
  uint32_t required_;
  uint32_t cluster_size_;
};

/// Thrown when a value has the wrong kind (like Python's TypeError).
class type_error : public error {
public:
  /// Explains the mismatch.
  explicit type_error(const std::string& what)
      : error(errc::wrong_type, what) {}
};

/// Thrown for input the node refuses: bad keys, oversize values, bad config.
class value_error : public error {
public:
  /// Explains what is wrong.
  value_error(errc code, const std::string& what) : error(code, what) {}
};

} // namespace syncmesh
