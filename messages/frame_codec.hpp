#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace syncmesh {

namespace pb {
class Envelope;
} // namespace pb

} // namespace syncmesh

namespace google::protobuf {
class MessageLite;
} // namespace google::protobuf

namespace syncmesh {

/// Size of a frame header: a 4-byte big-endian payload length.
inline constexpr size_t frame_header_size = 4;

/// Default largest frame payload accepted or sent (config::max_frame_size).
inline constexpr size_t default_max_frame_size = 4 * 1024 * 1024;

/// The outcome of reading frames.
enum class frame_status {
  /// A whole frame was read.
  ok,
  /// More bytes are needed.
  need_more,
  /// The header announces a payload over the maximum frame size.
  too_large,
};

/// Reads the payload length from a frame header (4 bytes, big-endian).
uint32_t read_frame_length(const char* header) noexcept;

/// Appends a frame with `payload` to `out`. Returns false, leaving `out`
/// unchanged, when the payload exceeds `max_frame_size`.
bool append_frame(std::string& out, std::string_view payload,
                  size_t max_frame_size = default_max_frame_size);

/// Serializes `msg` and appends it to `out` as one frame. Returns false,
/// leaving `out` unchanged, when it exceeds `max_frame_size`.
bool append_frame(std::string& out, const pb::Envelope& msg,
                  size_t max_frame_size = default_max_frame_size);

/// Parses a frame payload from an untrusted peer. Returns an explanation on
/// failure, an empty string on success. The parser's recursion limit holds
/// values nested as deep as any node may be configured to accept
/// (max_value_depth_ceiling), so a record too deep for this node's
/// max_value_depth still parses and is skipped alone, not the whole frame.
std::string parse_envelope(std::string_view payload, pb::Envelope& out);

/// Parses untrusted protobuf bytes (e.g. the opaque WriteBatch of a `write`
/// or `delta` body) with the same recursion limit as parse_envelope; false
/// when they do not parse.
bool parse_untrusted(std::string_view bytes,
                     google::protobuf::MessageLite& out);

/// The recursion limit parse_envelope and parse_untrusted set.
int wire_recursion_limit() noexcept;

/// Splits a byte stream into frame payloads. Bytes are fed as they arrive;
/// `next` hands out whole payloads. A header announcing more than the
/// maximum frame size is reported before its payload is buffered, so a
/// hostile peer cannot make the decoder allocate.
class frame_decoder {
public:
  /// Accepts payloads of at most `max_frame_size` bytes.
  explicit frame_decoder(size_t max_frame_size = default_max_frame_size)
      : max_frame_size_(max_frame_size) {}

  /// Appends received bytes. Call `next` until it stops returning `ok`
  /// after each call, so at most one frame plus one read stays buffered.
  void feed(std::string_view bytes);

  /// Extracts the next payload into `payload`.
  frame_status next(std::string& payload);

  /// Bytes received but not yet handed out.
  size_t buffered() const noexcept { return buf_.size() - pos_; }

  /// The limit this decoder enforces.
  size_t max_frame_size() const noexcept { return max_frame_size_; }

  /// Changes the limit for frames not yet handed out (a link raises it once
  /// the handshake is done).
  void set_max_frame_size(size_t n) noexcept { max_frame_size_ = n; }

private:
  size_t max_frame_size_;
  std::string buf_;
  size_t pos_ = 0;
};

} // namespace syncmesh
