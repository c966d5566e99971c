#pragma once

// The mesh_socket half of py2p mode, without CAF: which py2p messages are
// user messages (and how they map to syncmesh messages), id lookups and
// their answers, the replies waiting for a lookup (py2p's `requests`), and
// the msgpack type each node id arrived in. The router is a thin shell over
// these rules (router_py2p_messages.cpp).
//
// Mapping (README, "py2p mode"): a py2p message `[type, sender, time,
// sub_flag, p1, p2, ...]` whose sub-flag is 0x00 (broadcast) or 0x02
// (whisper) is a user message; syncmesh shows it with packets = [p1, p2,
// ...] (py2p's `msg.packets[1:]`; the sub-flag is not a user packet),
// sender = the py2p node id's bytes, id = the 32-byte py2p message id, time
// = the sender's whole second, whisper = main flag whisper (then it is
// addressed to this node). What syncmesh sends is `[0x00, self, now, 0x00,
// packets...]` for a broadcast (py2p's `send()`), `[0x02, self, now, 0x02,
// packets...]` for a whisper or a message to a neighbour (py2p's
// `reply()`).

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "messages/py2p_codec.hpp"
#include "messages/value_proto.hpp"
#include "syncmesh/pb/wire.pb.h"

namespace syncmesh {

/// Bounds on a py2p user message from a peer (its frame is already within
/// max_frame_size and its nesting within the codec's ceiling).
struct py2p_message_limits {
  /// Most user packets in one message (native messages allow as many).
  size_t max_packets = 4096;
  /// Deepest nesting of one packet (config::max_value_depth).
  int max_value_depth = default_max_value_depth;
};

/// What a py2p message means to the mesh_socket half.
struct py2p_mesh_inbound {
  /// The kinds of messages.
  enum class kind {
    /// Not for the mesh_socket half (stores, peers, renegotiations, our own
    /// messages coming back, unknown sub-flags).
    none,
    /// A user message for this node's users: see `message`.
    user_message,
    /// An id lookup `[0x08, request_id, target]`: see request_id, target.
    lookup,
    /// An answer to an id lookup: see answer.
    lookup_answer,
    /// A user message or lookup that breaks a bound: see drop_reason.
    dropped,
  };
  /// See kind.
  kind what = kind::none;
  /// With user_message: the message as syncmesh shows it.
  pb::Message message;
  /// With lookup: the request id and the id asked for, as received (py2p
  /// echoes both in its answer).
  pb::Value request_id;
  /// See request_id.
  pb::Value target;
  /// With lookup: the target's bytes.
  std::string target_id;
  /// With lookup_answer.
  py2p::lookup_answer answer;
  /// With dropped: a short reason (the metric's label) ...
  std::string drop_reason;
  /// ... and what exactly was wrong (the log line).
  std::string drop_detail;
};

/// Classifies a decoded py2p message with id `message_id` (32 raw bytes)
/// for the mesh_socket half of node `self`: user messages (sub-flag 0x00 or
/// 0x02 under main flag broadcast or whisper, as py2p queues them for
/// `recv()`), id lookups and their answers. Bounds the packets' count and
/// nesting depth; a message from `self` (our own, echoed) is kind::none.
py2p_mesh_inbound read_mesh_message(const py2p::message& msg,
                                    const std::string& message_id,
                                    const std::string& self,
                                    const py2p_message_limits& limits);

/// Replies to nodes that are not neighbours, waiting as py2p's `requests`
/// do: keyed by the id lookup broadcast for their target; once a node
/// answers with the target's address, the node dials it and sends the
/// replies when the target attaches. Bounded in entries and bytes; entries
/// older than `ttl_s` are dropped.
class py2p_deferred_replies {
public:
  /// Bounds: entries, bytes of packets, seconds an entry waits.
  py2p_deferred_replies(size_t max_entries = 256,
                        size_t max_bytes = 4 * 1024 * 1024, uint64_t ttl_s = 60)
      : max_entries_(max_entries), max_bytes_(max_bytes), ttl_s_(ttl_s) {}

  /// Queues `packets` for `target`, waiting for lookup `request_id`, at
  /// `now_s`. False (nothing kept) when a bound is reached even after
  /// expiring old entries.
  bool add(const std::string& request_id, const std::string& target,
           std::vector<pb::Value> packets, uint64_t now_s);

  /// A lookup answer arrived for `request_id`: the target it was for, if
  /// the request is ours and still waiting (its replies stay queued until
  /// the target attaches or they expire; a second answer returns nothing).
  std::optional<std::string> answered(const std::string& request_id,
                                      uint64_t now_s);

  /// Takes the packets of every reply waiting for `target`, oldest first.
  std::vector<std::vector<pb::Value>> take(const std::string& target);

  /// Drops entries older than the ttl; returns how many.
  size_t expire(uint64_t now_s);

  /// Entries waiting.
  size_t size() const noexcept { return entries_.size(); }
  /// Bytes of their packets.
  size_t bytes() const noexcept { return bytes_; }

private:
  struct entry {
    std::string request_id;
    std::string target;
    std::vector<pb::Value> packets;
    size_t bytes = 0;
    uint64_t created_s = 0;
    bool answered = false;
  };
  size_t max_entries_;
  size_t max_bytes_;
  uint64_t ttl_s_;
  size_t bytes_ = 0;
  std::deque<entry> entries_;
};

/// A fresh request id for a lookup of `target` as py2p makes one:
/// base58(int(SHA-384(target + salt))), the salt made unique by the caller
/// (a counter and the time).
std::string py2p_request_id(const std::string& target, const std::string& salt);

} // namespace syncmesh
