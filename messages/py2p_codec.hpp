#pragma once

// The py2p / js2p 0.7.870 wire format (see docs/py2p-wire.md in the shared
// docs, mirrored in tests/interop/README.md): msgpack arrays behind a
// SHA-256 message id, optionally compressed with zlib or gzip, framed with a
// 4-byte big-endian length. No CAF here: this is part of syncmesh_wire.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "messages/value_proto.hpp"
#include "syncmesh/pb/value.pb.h"

namespace syncmesh::py2p {

// -- flags
// ---------------------------------------------------------------------

/// Main flags (packets[0]) and sub-flags (payload[0]) of the protocol.
namespace flag {
/// Flooded to the whole mesh.
inline constexpr uint8_t broadcast = 0x00;
/// Compression renegotiation and resend requests (never relayed).
inline constexpr uint8_t renegotiate = 0x01;
/// To one direct peer, never relayed.
inline constexpr uint8_t whisper = 0x02;
/// Reserved, ignored by every implementation.
inline constexpr uint8_t ping = 0x03;
/// Reserved, ignored by every implementation.
inline constexpr uint8_t pong = 0x04;
/// Sub-flag: compression list (renegotiate).
inline constexpr uint8_t compression = 0x01;
/// Sub-flag: the handshake.
inline constexpr uint8_t handshake = 0x05;
/// Sub-flag: a peers list.
inline constexpr uint8_t peers = 0x07;
/// Sub-flag: a request (`'*'`: peers, else an id lookup).
inline constexpr uint8_t request = 0x08;
/// Sub-flag: resend the last message (never sent by syncmesh).
inline constexpr uint8_t resend = 0x09;
/// Sub-flag: the answer to an id lookup.
inline constexpr uint8_t response = 0x0A;
/// Sub-flag: a dictionary store (3 packets: write; 5 packets: initial sync).
inline constexpr uint8_t store = 0x0B;
/// Sub-flag: apply_delta.
inline constexpr uint8_t delta = 0x11;
} // namespace flag

/// Compression method ids; syncmesh speaks zlib and gzip (what js2p loads).
namespace method {
/// RFC 1952.
inline constexpr uint8_t gzip = 0x11;
/// RFC 1950.
inline constexpr uint8_t zlib = 0x13;
} // namespace method

/// The methods syncmesh advertises, in its order of preference: exactly what
/// it can both encode and decode (peers decode with the sender's list).
inline const std::vector<uint8_t>& supported_methods() {
  static const std::vector<uint8_t> xs{method::zlib, method::gzip};
  return xs;
}

/// Size of the message id (a raw SHA-256 digest) in front of the msgpack.
inline constexpr size_t id_size = 32;

/// Broadcasts older than this (seconds, receiver's clock) are dropped, and
/// message ids are remembered at least this long.
inline constexpr uint64_t max_age_s = 60;

/// py2p's fixed lease length (seconds) in the lease rule.
inline constexpr uint64_t lease_s = 3600;

// -- hashes and ids
// --------------------------------------------------------------

/// SHA-256 of `data` (32 raw bytes), via OpenSSL's libcrypto.
std::string sha256(std::string_view data);

/// SHA-384 of `data` (48 raw bytes), via OpenSSL's libcrypto.
std::string sha384(std::string_view data);

/// base58 (Bitcoin alphabet) of the big-endian integer `digest`, as py2p's
/// `b58encode_int` and js2p's `to_base_58`: no leading '1' per zero byte,
/// "1" for zero.
std::string base58_int(std::string_view digest);

/// The protocol id: base58(int(SHA-256(subnet + leasing digit + encryption +
/// version))), e.g. "p7sAnBsK3n5enFXH7vEGQjzS6t6RH1CeEoYekNjr5Jn" for a
/// leasing sync socket on the default subnet over plain TCP.
std::string protocol_id(const std::string& subnet, bool leasing,
                        const std::string& encryption = "Plaintext",
                        const std::string& version = "0.7");

/// A node id made the way py2p makes its own: base58(int(SHA-384(seed))),
/// 65 or 66 characters.
std::string node_id_from_seed(std::string_view seed);

/// A fresh node id as py2p makes one, from a random salt and the protocol
/// id (stability across restarts is not required by any peer).
std::string random_node_id(const std::string& protocol_id);

/// True when `id` is a plausible py2p node id to send as msgpack str:
/// 1..128 base58 characters.
bool is_base58_id(std::string_view id);

// -- msgpack <-> value
// ----------------------------------------------------------

/// Bounds on untrusted msgpack.
struct decode_limits {
  /// Deepest nesting of arrays and maps: a value as deep as any node may
  /// accept (max_value_depth_ceiling) inside a raw message's list and its
  /// payload. The node's own max_value_depth is enforced per record after
  /// decoding (validate_remote_record), so a too-deep write is skipped
  /// alone instead of failing the whole message.
  size_t max_depth = max_value_depth_ceiling + 4;
};

/// Appends the msgpack encoding of `x` (smallest forms, as msgpack-lite and
/// u-msgpack pick them: str8, uint32, float64) to `out`.
void encode(const pb::Value& x, std::string& out);

/// Decodes one msgpack object that spans all of `data` into `out`. Maps
/// must have str or bin keys (the syncmesh value model); every header's
/// element count is checked against the bytes left before anything is
/// allocated. Returns an explanation, or an empty string on success.
std::string decode(std::string_view data, pb::Value& out,
                   const decode_limits& limits = {});

// -- compression
// ----------------------------------------------------------------

/// Compresses `data` with `method` (zlib or gzip). Returns nullopt for an
/// unknown method.
std::optional<std::string> compress(uint8_t method, std::string_view data);

/// Decompresses `data` that must be exactly one stream of `method`; fails
/// (nullopt) on corrupt input, trailing bytes, an unknown method, or output
/// beyond `max_out` bytes, so a zip bomb costs at most `max_out` bytes;
/// `over_limit`, when given, tells the last case from the others.
std::optional<std::string> decompress(uint8_t method, std::string_view data,
                                      size_t max_out,
                                      bool* over_limit = nullptr);

// -- frames -------------------------------------------------------------------

/// A message as it crossed the wire: its msgpack bytes, kept for relaying,
/// and its id.
struct raw_message {
  /// SHA-256 of `msgpack`: checksum and message id (32 bytes).
  std::string id;
  /// The msgpack array exactly as received or built.
  std::string msgpack;
};

/// Builds a raw message from msgpack bytes (computes the id).
raw_message make_raw(std::string msgpack);

/// Frames `msg` for a peer: length + C(id || msgpack), compressed with the
/// first method of our list the peer advertised (none: raw). Returns an
/// empty string when the body would exceed `max_frame_size`.
std::string frame(const raw_message& msg, const std::vector<uint8_t>& peer,
                  size_t max_frame_size);

/// Opens one frame body (without its length): tries each method of the
/// sender's list that we support, in its order, then raw; checks the id.
/// Returns an explanation on failure (the link must close); `too_large`,
/// when given, is set when the frame failed only because it decompresses
/// to more than `max_frame_size` bytes.
std::string open_frame(std::string_view body,
                       const std::vector<uint8_t>& sender_methods,
                       size_t max_frame_size, raw_message& out,
                       bool* too_large = nullptr);

// -- messages
// -------------------------------------------------------------------

/// A decoded message: header fields plus the payload packets.
struct message {
  /// packets[0]: broadcast, renegotiate, whisper, ...
  uint8_t type = 0;
  /// The original sender's id as bytes (str or bin on the wire).
  std::string sender;
  /// True when the sender id came as bin (py2p 0.7.870 does that).
  bool sender_bin = false;
  /// Seconds since the epoch (float64 accepted and floored).
  uint64_t time = 0;
  /// packets[3:]; payload[0] is the sub-flag.
  std::vector<pb::Value> payload;

  /// The sub-flag, or -1 when the payload is empty or starts with no int.
  int sub_flag() const;
};

/// Decodes the msgpack of a raw message. Returns an explanation on failure.
std::string parse(std::string_view msgpack, message& out,
                  const decode_limits& limits = {});

/// Builds the msgpack of `[type, sender(str), time, payload...]`.
std::string build(uint8_t type, const std::string& sender, uint64_t time,
                  const std::vector<pb::Value>& payload);

/// Text or bin of a value as bytes; nullopt for other kinds.
std::optional<std::string> as_bytes(const pb::Value& x);

/// A str value.
pb::Value text(std::string x);

/// A bin value.
pb::Value bin(std::string x);

/// A node ID as msgpack bin (`as_bin`) or str: py2p 0.7.870 sends its IDs as
/// bin, js2p and syncmesh as str, and py2p compares owners type-sensitively,
/// so an ID must go back in the type it arrived in.
pb::Value id_value(std::string id, bool as_bin);

/// An unsigned integer value.
pb::Value uint(uint64_t x);

/// The payload of a handshake: sub-flag, id, protocol id, [host, port],
/// compression methods.
std::vector<pb::Value> handshake_payload(const std::string& id,
                                         const std::string& protocol_id,
                                         const std::string& host, uint16_t port,
                                         const std::vector<uint8_t>& methods);

/// A handshake read from a payload.
struct handshake_info {
  /// The peer's id (bytes).
  std::string id;
  /// Its protocol id (bytes).
  std::string protocol_id;
  /// Its declared address.
  std::string host;
  /// See host.
  uint16_t port = 0;
  /// Its compression methods, in its order.
  std::vector<uint8_t> methods;
};

/// Reads a handshake payload (sub-flag 0x05, exactly 5 elements). Returns an
/// explanation on failure.
std::string read_handshake(const std::vector<pb::Value>& payload,
                           handshake_info& out);

/// One entry of a peers list.
struct peer_address {
  /// Its declared host.
  std::string host;
  /// Its declared port.
  uint16_t port = 0;
  /// Its id (bytes).
  std::string id;
  /// The id came (and goes) as msgpack bin rather than str.
  bool id_bin = false;
};

/// The payload of a peers list: `[0x07, [[[host, port], id], ...]]`.
std::vector<pb::Value> peers_payload(const std::vector<peer_address>& peers);

/// Reads a peers payload, skipping malformed entries; at most `max` entries.
std::string read_peers(const std::vector<pb::Value>& payload,
                       std::vector<peer_address>& out, size_t max = 64);

/// A dictionary store or delta read from a payload.
struct store_info {
  /// The key's bytes (str and bin keys are the same key).
  std::string key;
  /// The value; nil for a delete; a map for a delta.
  pb::Value value;
  /// A delta (0x11) rather than a store.
  bool delta = false;
  /// A 5-packet initial-sync store: owner and timestamp below apply.
  bool initial_sync = false;
  /// The owner of an initial-sync record (bytes).
  std::string owner;
  /// The owner came as msgpack bin rather than str.
  bool owner_bin = false;
  /// The timestamp of an initial-sync record (seconds).
  uint64_t timestamp = 0;
};

/// Reads a store (3 or 5 packets) or delta payload. Returns an explanation on
/// failure.
std::string read_store(const std::vector<pb::Value>& payload, store_info& out);

/// A 3-packet store (value nil: a delete) `[0x0B, bin key, value]`.
std::vector<pb::Value> store_payload(const std::string& key,
                                     const pb::Value& value);

/// A 5-packet initial-sync store `[0x0B, bin key, value, owner, ts]`; the
/// owner in the msgpack type it arrived in (id_value).
std::vector<pb::Value> store5_payload(const std::string& key,
                                      const pb::Value& value,
                                      const pb::Value& owner, uint64_t ts);

/// A delta `[0x11, bin key, map]`.
std::vector<pb::Value> delta_payload(const std::string& key,
                                     const pb::Value& fields);

/// The payload of a mesh_socket message as py2p's `send()` and
/// `Message.reply()` build it: `[sub_flag, packets...]`, the sub-flag being
/// flag::broadcast (0x00, `send()`) or flag::whisper (0x02, `reply()`).
std::vector<pb::Value> user_payload(uint8_t sub_flag,
                                    const std::vector<pb::Value>& packets);

/// An id lookup as py2p's `Message.reply()` broadcasts it when the sender
/// is not a neighbour: `[0x08, request_id (str), target]`, the target as
/// bin (the type py2p ids arrive in) or str (js2p's type).
std::vector<pb::Value> lookup_payload(const std::string& request_id,
                                      const std::string& target,
                                      bool target_bin);

/// The answer py2p's `__handle_request` gives to an id lookup for one of its
/// neighbours: `[0x0A, request_id, [[host, port], target]]`, with the
/// request id and the target echoed in the types they arrived in.
std::vector<pb::Value> lookup_answer_payload(const pb::Value& request_id,
                                             const std::string& host,
                                             uint16_t port,
                                             const pb::Value& target);

/// An answer to an id lookup read from a payload.
struct lookup_answer {
  /// The request id (bytes).
  std::string request_id;
  /// Where the node asked for listens, and its id.
  peer_address peer;
};

/// Reads a lookup answer payload (sub-flag 0x0A, 3 elements). Returns an
/// explanation on failure.
std::string read_lookup_answer(const std::vector<pb::Value>& payload,
                               lookup_answer& out);

/// Floors a seconds value that came as int or float64; nullopt otherwise.
std::optional<uint64_t> as_seconds(const pb::Value& x);

} // namespace syncmesh::py2p
