#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "syncmesh/value.hpp"

namespace syncmesh {

namespace pb {
class Value;
class MapValue;
class MapKey;
} // namespace pb

/// Deepest nesting of lists and maps accepted from the network.
inline constexpr int max_value_depth = 64;

/// Writes a value into its protobuf form.
void to_proto(const value& x, pb::Value* out);

/// Writes map entries into their protobuf form.
void to_proto(const value_map& x, pb::MapValue* out);

/// Writes a map key into its protobuf form.
void to_proto(const map_key& x, pb::MapKey* out);

/// Reads a value from untrusted protobuf. Returns an explanation on failure
/// (unset kinds, duplicate map keys, ext codes out of range, nesting deeper
/// than max_value_depth), or an empty string on success.
std::string from_proto(const pb::Value& x, value& out);

/// Reads map entries from untrusted protobuf; see from_proto(pb::Value).
std::string from_proto(const pb::MapValue& x, value_map& out);

/// Checks untrusted protobuf without building a value: the same rules as
/// from_proto (kinds set, unique map keys, depth, ext range). Returns an
/// explanation, or an empty string when valid.
std::string validate(const pb::Value& x);

/// Checks untrusted map entries; see validate(pb::Value).
std::string validate(const pb::MapValue& x);

/// Reads a map key from untrusted protobuf.
std::string from_proto(const pb::MapKey& x, map_key& out);

/// Appends `x` as 8 big-endian bytes (canonical encodings).
inline void put_u64(std::string& out, uint64_t x) {
  for (int shift = 56; shift >= 0; shift -= 8)
    out += static_cast<char>((x >> shift) & 0xff);
}

/// Appends the length of `xs`, then `xs` (canonical encodings).
inline void put_blob(std::string& out, std::string_view xs) {
  put_u64(out, xs.size());
  out += xs;
}

/// Appends a canonical, deterministic encoding of `x` to `out`: equal values
/// give equal bytes on every replica (protobuf's own output is not stable).
void encode_canonical(const value& x, std::string& out);

/// Reads one value written by `encode_canonical` from the front of `in` and
/// advances `in` past it; false (and `in`, `out` unspecified) when the bytes
/// are not such an encoding.
bool decode_canonical(std::string_view& in, value& out);

} // namespace syncmesh
