#pragma once

// JSON forms of syncmesh values for the HTTP API and the CLI.

#include <cstddef>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

#include "messages/value_proto.hpp"
#include "syncmesh/value.hpp"

namespace syncmesh {

/// Standard base64 (with padding).
std::string base64_encode(const std::string& bytes);

/// Decodes standard base64; false on malformed input.
bool base64_decode(const std::string& text, std::string& out);

/// Decodes lowercase hex; false on odd length, other characters, or more
/// digits than a node ID may have (2 * max_node_id_size).
bool from_hex(const std::string& hex, std::string& out);

/// True when `text` is well-formed UTF-8.
bool is_utf8(const std::string& text);

/// A value as JSON: nil, bools, numbers, text and lists map directly; maps
/// become objects (bytes keys as "$base64:<b64>"); bytes become
/// {"$base64": "..."} and ext values {"$ext": type, "$base64": "..."}.
nlohmann::json to_json(const value& x);

/// The inverse of to_json; returns an explanation on failure (e.g. nesting
/// deeper than `max_depth`, config::max_value_depth), empty on success.
std::string from_json(const nlohmann::json& x, value& out,
                      int max_depth = default_max_value_depth);

/// True when the JSON text `text` nests arrays/objects deeper than
/// `max_depth` (a bare scalar is depth 0, `[1]` depth 1). A loop, not a
/// recursion: nlohmann's parser recurses once per level, so a body nested
/// 100,000 deep must be refused before it is parsed. Brackets inside
/// strings (escapes included) do not count; malformed text is left to the
/// parser.
bool json_nested_deeper_than(std::string_view text, size_t max_depth);

/// A key for JSON output: {"key": text} when it is UTF-8, else
/// {"key_base64": "..."}; written into `obj`.
void put_key(nlohmann::json& obj, const std::string& key);

} // namespace syncmesh
