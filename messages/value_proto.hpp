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

/// Default deepest nesting of lists and maps (config::max_value_depth): a
/// scalar inside 64 nested lists or maps is accepted, one inside 65 is not.
inline constexpr int default_max_value_depth = 64;

/// Highest config::max_value_depth a node may be configured with. The wire
/// decoder's protobuf recursion limit is derived from it
/// (proto_recursion_limit), so every frame carrying values within any
/// allowed depth parses and a too-deep record can be skipped alone.
inline constexpr int max_value_depth_ceiling = 256;

/// The protobuf recursion limit that holds a value nested `max_depth` deep
/// inside any frame: a map level costs three messages (Value, MapValue,
/// MapEntry), the innermost value one more (Nil, Ext), and the deepest
/// wrapper (Envelope > Entries > WriteRecord) three. Protobuf's default
/// (100) holds only about 32 map levels.
constexpr int proto_recursion_limit(int max_depth) {
  return 3 * max_depth + 3 + 1 + 4; // + 4 to spare for later wrappers
}

/// Writes a value into its protobuf form.
void to_proto(const value& x, pb::Value* out);

/// Writes map entries into their protobuf form.
void to_proto(const value_map& x, pb::MapValue* out);

/// Writes a map key into its protobuf form.
void to_proto(const map_key& x, pb::MapKey* out);

/// Reads a value from untrusted protobuf. Returns an explanation on failure
/// (unset kinds, duplicate map keys, ext codes out of range, nesting deeper
/// than `max_depth`), or an empty string on success.
std::string from_proto(const pb::Value& x, value& out,
                       int max_depth = default_max_value_depth);

/// Reads map entries from untrusted protobuf; see from_proto(pb::Value).
/// The entries' values sit one level below the map.
std::string from_proto(const pb::MapValue& x, value_map& out,
                       int max_depth = default_max_value_depth);

/// Checks untrusted protobuf without building a value: the same rules as
/// from_proto (kinds set, unique map keys, depth, ext range). Returns an
/// explanation, or an empty string when valid.
std::string validate(const pb::Value& x,
                     int max_depth = default_max_value_depth);

/// Checks untrusted map entries (a delta's fields, merged into a map, so
/// their values sit one level deep); see validate(pb::Value).
std::string validate(const pb::MapValue& x,
                     int max_depth = default_max_value_depth);

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
