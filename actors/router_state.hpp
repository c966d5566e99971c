#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "messages/version.hpp"

namespace syncmesh {

namespace pb {
class Envelope;
class WriteBatch;
} // namespace pb

/// Limits that every write from the network must respect.
struct write_limits {
  /// Largest key in bytes.
  size_t max_key_size = 4096;
  /// Largest encoded value in bytes.
  size_t max_value_size = 1024 * 1024;
};

/// Checks a write batch from an untrusted peer: every record has a non-empty
/// key within limits, a valid version, an operation, and a well-formed value
/// or fields within limits. Returns an explanation, or an empty string when
/// the whole batch is acceptable (a batch is accepted or refused as a whole).
std::string validate_remote_batch(const pb::WriteBatch& batch,
                                  const write_limits& limits);

/// Builds the envelopes that carry a batch of changed writes to peers:
/// whole-value writes and deletes in a `write` body, field writes in a
/// `delta` body, each serialized once and framed for every peer alike.
class envelope_builder {
public:
  /// A builder for an unnamed node (replace before use).
  envelope_builder() : envelope_builder({}, 32, 16 * 1024 * 1024) {}

  /// Envelopes originate at `self` with hop limit `max_hops`.
  envelope_builder(node_id self, uint32_t max_hops, size_t max_frame_size);

  /// Appends the frames for `batch` (at most two) to `frames`. Records that
  /// would not fit one frame are split across several.
  void build(const pb::WriteBatch& batch, uint64_t now_us,
             std::vector<std::string>& frames);

  /// Decodes the write batch of a `write` or `delta` envelope body. Returns
  /// an explanation on failure.
  static std::string decode_writes(const pb::Envelope& env,
                                   pb::WriteBatch& out);

private:
  void emit(pb::WriteBatch& part, bool delta, uint64_t now_us,
            std::vector<std::string>& frames);

  node_id self_;
  uint32_t max_hops_;
  size_t max_frame_size_;
  uint64_t next_message_ = 0;
};

} // namespace syncmesh
