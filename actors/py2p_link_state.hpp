#pragma once

// The rules of a py2p-dialect peer link, without CAF: framing and
// decompression of the byte stream, the handshake, compression
// renegotiation, classification of what arrives, de-duplication of
// broadcasts (the "waterfall") and translation of stores into syncmesh
// write records. The actors (py2p_link, router) are thin shells over this.

#include <cstddef>
#include <cstdint>
#include <deque>
#include <list>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "messages/frame_codec.hpp"
#include "messages/keyed_hash.hpp"
#include "messages/py2p_codec.hpp"
#include "messages/version.hpp"

namespace syncmesh {

namespace pb {
class WriteRecord;
} // namespace pb

/// Remembers the ids of py2p broadcasts already relayed, bounded in time
/// and size. An id stays at least `ttl_s` past the later of its arrival and
/// its message time (capped), so a copy still young enough to pass the age
/// check is always recognized unless the set overflowed.
class py2p_waterfall {
public:
  /// What to do with a broadcast.
  enum class verdict {
    /// New: relay it and handle it.
    fresh,
    /// Seen before: drop it.
    duplicate,
    /// Older than the age limit: drop it.
    too_old,
  };

  /// Keeps at most `capacity` ids.
  explicit py2p_waterfall(size_t capacity = 65536,
                          uint64_t ttl_s = py2p::max_age_s)
      : capacity_(capacity), ttl_s_(ttl_s) {}

  /// Checks a received broadcast with id `id` and time `msg_time_s` at
  /// local time `now_s`, and remembers it when fresh.
  verdict admit(const std::string& id, uint64_t msg_time_s, uint64_t now_s);

  /// Remembers one of our own messages so its echo is dropped.
  void remember(const std::string& id, uint64_t msg_time_s, uint64_t now_s);

  /// Ids remembered now.
  size_t size() const noexcept { return ids_.size(); }

private:
  void expire(uint64_t now_s);

  size_t capacity_;
  uint64_t ttl_s_;
  std::multimap<uint64_t, std::string> by_expiry_;
  std::unordered_map<
    std::string, std::multimap<uint64_t, std::string>::iterator, keyed_hasher>
    ids_;
};

/// Remembers in which msgpack type each node ID arrived (str or bin), so
/// every message carries an ID back to its peers in that type: py2p 0.7.870
/// sends its IDs as bin and compares owners type-sensitively (an owner
/// echoed as str is another owner to it, and a same-second tie between the
/// two types raises TypeError and drops the link), js2p and syncmesh send
/// str. IDs not seen are str. Bounded in count: the ID seen or used longest
/// ago is forgotten first (counted), so a peer inventing IDs costs at most
/// the bound.
class py2p_id_types {
public:
  /// Keeps at most `capacity` IDs.
  explicit py2p_id_types(size_t capacity = 16384) : capacity_(capacity) {}

  /// An ID arrived in type `bin`. `first_hand`: it was the sender of a
  /// message or a handshake's ID (a node sends its own ID in its own type),
  /// which settles the type; second-hand sightings (an owner packet, a
  /// peers list) only fill in IDs not known yet.
  void observe(const std::string& id, bool bin, bool first_hand);

  /// True when `id` goes out as bin (false when it is unknown); counts as a
  /// use for the bound.
  bool is_bin(const std::string& id);

  /// How `id` arrived (true: bin), or nullopt when unknown; counts as a use.
  std::optional<bool> known_type(const std::string& id);

  /// `id` as the msgpack value to send (see is_bin).
  pb::Value value(const std::string& id);

  /// IDs remembered now.
  size_t size() const noexcept { return index_.size(); }

  /// IDs forgotten to keep the bound.
  uint64_t evictions() const noexcept { return evictions_; }

private:
  struct known {
    bool bin = false;
    std::list<std::string>::iterator use;
  };

  size_t capacity_;
  uint64_t evictions_ = 0;
  /// Least recently seen or used first.
  std::list<std::string> uses_;
  std::unordered_map<std::string, known, keyed_hasher> index_;
};

/// The catch-up broadcasts (entries of a peer's initial sync handed on) of
/// the last `window_s` seconds, kept to give them also to peers that attach
/// while py2p would still accept them (broadcasts older than 60 s are
/// dropped by every receiver): a mesh reached through a link that comes up
/// a little later gets what an earlier link brought. Bounded in bytes: the
/// oldest go first, counted.
class py2p_recent_catch_up {
public:
  /// One handed-on broadcast.
  struct item {
    /// The peer whose initial sync brought it (it has it).
    std::string origin;
    /// Its message time (seconds).
    uint64_t time_s = 0;
    /// id || msgpack, as sent.
    std::string id_and_msgpack;
  };

  /// Keeps at most `max_bytes` of messages, each at most `window_s` old.
  explicit py2p_recent_catch_up(size_t max_bytes = size_t{4} << 20,
                                uint64_t window_s = 45)
      : max_bytes_(max_bytes), window_s_(window_s) {}

  /// Remembers a broadcast handed on at `time_s`.
  void add(item x);

  /// The broadcasts still young enough at `now_s`, oldest first (older ones
  /// are dropped).
  const std::deque<item>& young(uint64_t now_s);

  /// Broadcasts dropped to keep the byte bound (not counting those that
  /// aged out).
  uint64_t forgotten() const noexcept { return forgotten_; }

  /// Bytes held now.
  size_t bytes() const noexcept { return bytes_; }

private:
  void expire(uint64_t now_s);

  size_t max_bytes_;
  uint64_t window_s_;
  size_t bytes_ = 0;
  uint64_t forgotten_ = 0;
  std::deque<item> items_;
};

/// What a py2p link needs to know about its node.
struct py2p_link_settings {
  /// This node's id (base58 text).
  raw_node_id self;
  /// The py2p protocol id of the node's subnet.
  std::string protocol_id;
  /// The address announced in the handshake.
  std::string host;
  /// See host.
  uint16_t port = 0;
  /// Largest frame body accepted or sent, compressed or not.
  size_t max_frame_size = default_max_frame_size;
};

/// One message from the peer, classified.
struct py2p_inbound {
  /// What the message asks for.
  enum class kind {
    /// A valid handshake (same protocol id): attach the peer.
    handshake,
    /// A peers list: addresses to dial.
    peers,
    /// A store or delta: a write for the lease manager.
    write,
    /// `request '*'`: send peers (and, like js2p, our keys).
    request_peers,
    /// Not link business (user messages, id lookups and answers, pings):
    /// the router relays broadcasts and hands the rest to its mesh_socket
    /// half (py2p_mesh_messages.hpp).
    other,
  };
  /// See kind.
  kind what = kind::other;
  /// The bytes as received (for the id and for relaying).
  py2p::raw_message raw;
  /// The decoded header and payload.
  py2p::message msg;
  /// With kind::handshake.
  py2p::handshake_info hello;
  /// With kind::peers.
  std::vector<py2p::peer_address> peers;
  /// With kind::write.
  py2p::store_info store;

  /// True when the main flag asks for flooding.
  bool broadcast() const noexcept { return msg.type == py2p::flag::broadcast; }
};

/// py2p's rule for a frame the peer began and never finished: py2p 0.7.870
/// disconnects a connection that holds part of a frame and has sent nothing
/// for 60 s (`kill_old_nodes` in base.py); without it, half a frame would
/// keep a connection and its buffer forever (py2p has no pings). Time counts
/// only while the link reads: a link that paused its socket itself
/// (back-pressure) restarts the count when it reads again.
class stalled_frame_rule {
public:
  /// What check() found.
  struct verdict {
    /// The frame stalled for the limit: close the connection.
    bool expired = false;
    /// When to check again (µs, node clock); 0: nothing to watch.
    uint64_t check_at_us = 0;
  };

  /// A rule that closes after `limit_us` without bytes (py2p: 60 s).
  explicit stalled_frame_rule(uint64_t limit_us = py2p::max_age_s * 1'000'000)
      : limit_us_(limit_us) {}

  /// Bytes arrived, or the link reads again after a pause, at `now_us`.
  void restart(uint64_t now_us) noexcept { since_us_ = now_us; }

  /// The verdict at `now_us` for a link that holds `incomplete_bytes` of an
  /// unfinished frame and is (or is not) `reading` its socket.
  verdict check(uint64_t now_us, size_t incomplete_bytes,
                bool reading) const noexcept {
    if (incomplete_bytes == 0 || !reading)
      return {};
    if (now_us >= since_us_ + limit_us_)
      return {true, 0};
    return {false, since_us_ + limit_us_};
  }

  /// The limit in µs.
  uint64_t limit_us() const noexcept { return limit_us_; }

private:
  uint64_t limit_us_;
  uint64_t since_us_ = 0;
};

/// The per-connection rules of a py2p link: turns received bytes into
/// classified messages and frames what we send for this peer's compression.
class py2p_session {
public:
  /// A session for a node with `settings`.
  explicit py2p_session(py2p_link_settings settings);

  /// Our handshake, framed (always uncompressed, as both libraries do).
  std::string handshake_frame(uint64_t now_s) const;

  /// Builds and frames a whisper from us to this peer.
  std::string whisper_frame(const std::vector<pb::Value>& payload,
                            uint64_t now_s) const;

  /// Frames a message for this peer with the compression it advertised.
  std::string frame(const py2p::raw_message& msg) const;

  /// Feeds received bytes; appends complete messages to `out`. Returns an
  /// explanation when the connection must close (oversized frame, checksum
  /// mismatch, malformed msgpack, foreign protocol id).
  std::string feed(std::string_view bytes, std::vector<py2p_inbound>& out);

  /// Buffers received bytes without decoding them (a link that stopped
  /// reading decodes them once it reads again: see next()).
  void push(std::string_view bytes);

  /// What next() found.
  struct step {
    /// The buffered bytes hold no complete frame.
    bool need_more = false;
    /// Why the connection must close (empty: it may stay).
    std::string error;
    /// The error is a frame over the decoder's limit.
    bool too_large = false;
  };

  /// Decodes at most one buffered frame, appending its message (if any: a
  /// renegotiation yields none) to `out`.
  step next(std::vector<py2p_inbound>& out);

  /// Bytes received but not yet decoded.
  size_t buffered() const noexcept { return decoder_.buffered(); }

  /// The largest frame body accepted now.
  size_t max_frame_size() const noexcept { return decoder_.max_frame_size(); }

  /// The frame decoder (a link lowers its limit until the handshake).
  frame_decoder& decoder() noexcept { return decoder_; }

  /// True once the peer sent a valid handshake.
  bool handshake_received() const noexcept { return !peer_id_.empty(); }

  /// The peer's id (empty before its handshake).
  const std::string& peer_id() const noexcept { return peer_id_; }

  /// True when the peer sent its id as msgpack bin (py2p 0.7.870 does;
  /// js2p sends str), which tells the two libraries apart.
  bool peer_id_bin() const noexcept { return peer_id_bin_; }

  /// The peer's compression methods.
  const std::vector<uint8_t>& peer_methods() const noexcept {
    return peer_methods_;
  }

  /// The settings.
  const py2p_link_settings& settings() const noexcept { return cfg_; }

private:
  std::string classify(py2p::raw_message&& raw, std::vector<py2p_inbound>& out);

  py2p_link_settings cfg_;
  frame_decoder decoder_;
  std::string peer_id_;
  bool peer_id_bin_ = false;
  std::vector<uint8_t> peer_methods_;
};

/// Turns a py2p store or delta into a write record with a *provisional*
/// version that carries py2p's metadata: claimer and stamp node = the owner
/// (the sender, or the owner packet of an initial-sync record), claim and
/// stamp time = its whole-second timestamp, lease end = timestamp + 3600 s.
/// The lease manager decides with py2p's rule and replaces the version
/// (py2p_successor) before anything stores it. Returns an explanation when
/// the value does not fit the syncmesh value model.
std::string to_write_record(const py2p::store_info& store,
                            const std::string& sender, uint64_t time_s,
                            pb::WriteRecord& out);

/// Builds the msgpack of the broadcast that announces a local write
/// (3-packet store, nil store for a delete, delta for field writes), with
/// our id as sender and the write's whole second as time.
std::string local_write_message(const pb::WriteRecord& rec,
                                const raw_node_id& self);

} // namespace syncmesh
