#pragma once

// The py2p-style blocking API of a syncmesh node, and everything a user of
// it needs: config, values, errors, and the facade for CAF applications.

#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "syncmesh/config.hpp"
#include "syncmesh/errors.hpp"
#include "syncmesh/facade.hpp"
#include "syncmesh/node_id.hpp"
#include "syncmesh/value.hpp"

namespace syncmesh {

struct node_actors;
class sync_socket;

namespace testing {
class cluster;
} // namespace testing

/// The actors behind a socket (for syncmesh's own tests and tools).
const node_actors& internals(const sync_socket& sock);

/// Who owns an entry, when it last changed and when its lease ends.
struct entry_meta {
  /// The owner's node ID.
  node_id owner;
  /// When the entry last changed, µs since the Unix epoch.
  uint64_t time_us = 0;
  /// When the owner's lease ends, µs since the Unix epoch (0: no lease).
  uint64_t lease_end_us = 0;
};

/// A connected peer.
struct peer_info {
  /// The peer's node ID.
  node_id id;
  /// Where the peer listens.
  std::string host;
  /// See host.
  uint16_t port = 0;
  /// True when this node dialled the connection.
  bool outbound = false;
  /// Last measured round-trip time (0 before the first heartbeat).
  std::chrono::microseconds rtt{0};
  /// When the connection was established, µs since the Unix epoch.
  uint64_t connected_since_us = 0;
};

/// A mesh_socket message: a list of packets from one node.
struct message {
  /// Unique ID (the sender's ID plus a counter).
  std::string id;
  /// The sender's node ID.
  node_id sender;
  /// When it was sent, µs since the Unix epoch (the sender's clock).
  uint64_t time_us = 0;
  /// The packets.
  std::vector<syncmesh::value> packets;
  /// The peer it arrived through.
  node_id via;
  /// Addressed to this node only (not a broadcast).
  bool direct = false;
  /// Whispered by a direct peer.
  bool whisper = false;
};

/// How send() delivers a message.
struct send_options {
  /// The node to address; empty: broadcast to the whole mesh.
  node_id to;
  /// Only to direct peers, never relayed (py2p's whisper).
  bool whisper = false;
};

/// One key with its value and metadata.
struct item {
  /// The key's bytes.
  std::string key;
  /// The value.
  syncmesh::value val;
  /// Owner and times.
  entry_meta meta;
};

/// How many nodes must hold a write before a confirmed write returns (like
/// Akka Distributed Data's WriteTo / WriteMajority / WriteAll). Make one
/// with `confirm::nodes`, `confirm::majority` or `confirm::all`.
///
/// What a confirmed write guarantees: when it returns, that many distinct
/// nodes (this one included) had applied this version or a later one of
/// the same lease claim. What it does not: it is not consensus. A claim
/// confirmed by a majority can still lose to an earlier concurrent claim
/// that had not reached those nodes (a partition, or two nodes writing a
/// fresh key at once); the writer then hears `lease_lost`
/// (`on_lease_lost`). Majority and all count the configured membership
/// (config::cluster_size), never the peers connected now.
struct write_concern {
  /// The kinds of concern.
  enum class kind : uint8_t {
    /// Applied on this node (a plain write).
    local = 0,
    /// `nodes` nodes.
    nodes = 1,
    /// cluster_size / 2 + 1 nodes.
    majority = 2,
    /// cluster_size nodes.
    all = 3,
  };
  /// Which.
  kind what = kind::local;
  /// For kind::nodes: how many nodes, this one included.
  uint32_t nodes = 1;
  /// How long to wait for them; 0: config::confirm_timeout (2 s).
  std::chrono::milliseconds timeout{0};
};

/// Write concerns for confirmed writes (`sock.set(k, v,
/// confirm::majority(2s))`).
namespace confirm {

/// `k` nodes (this one included) must hold the write within `timeout`.
inline write_concern nodes(uint32_t k, std::chrono::milliseconds timeout = {}) {
  return write_concern{write_concern::kind::nodes, k, timeout};
}

/// A majority of the configured membership (config::cluster_size / 2 + 1
/// nodes) must hold the write within `timeout`.
inline write_concern majority(std::chrono::milliseconds timeout = {}) {
  return write_concern{write_concern::kind::majority, 0, timeout};
}

/// Every node of the configured membership (config::cluster_size) must
/// hold the write within `timeout`.
inline write_concern all(std::chrono::milliseconds timeout = {}) {
  return write_concern{write_concern::kind::all, 0, timeout};
}

} // namespace confirm

/// What a confirmed write learned when it returned.
struct confirmation {
  /// Distinct nodes known to hold the write (this one included).
  uint32_t confirmed = 0;
  /// Nodes the concern required.
  uint32_t required = 0;
  /// The configured membership (0: unknown).
  uint32_t cluster_size = 0;
};

/// A node of the mesh with the API of py2p's sync_socket, blocking: every
/// call waits for the node's reply (at most config::request_timeout, then
/// syncmesh::error with errc::timeout). No actor is created per call: one
/// requester per socket sends every request and routes its reply to the
/// waiting thread, and reads (`get`, `at`, `contains`, `get_item`, `[]`)
/// come straight from the store's table under its lock, so a write that
/// returned (on any thread) is seen by every later read.
///
/// Thread safety: every member function may be called from any thread.
/// Callbacks (`on_update`, `on_delete`, `on_lease_lost`, `on_connect`,
/// `on_disconnect`, `on_message`) and message handlers run one at a time on
/// a dedicated event thread owned by this socket, never on the caller's
/// thread and never on a CAF scheduler worker; calling this socket from
/// inside a callback is safe (including `close()`). Events wait for that
/// thread in a bounded queue (65,536; the oldest are dropped beyond it).
///
/// close() never waits for the node: calls in flight on other threads (and
/// from callbacks) throw errc::closed at once (a write in flight may or may
/// not have been applied), and a callback still running
/// gets at most 50 ms before close() returns without it; it then finishes
/// on the event thread, and no callback starts after close() returned.
///
/// The actor system must outlive the socket. A callback still running after
/// close() counts as a running actor of it until its thread let go of the
/// socket's actors, so ~actor_system (and await_all_actors_done) waits for
/// that callback to return, as it waits for actors. The destructor calls
/// close().
class sync_socket {
public:
  /// Callback for `update(key, value, meta)` events.
  using update_callback
    = std::function<void(const std::string& key, const syncmesh::value& val,
                         const entry_meta& meta)>;
  /// Callback for `delete(key)` events.
  using delete_callback = std::function<void(const std::string& key)>;
  /// Callback for lost leases: the key and its new owner.
  using lease_lost_callback
    = std::function<void(const std::string& key, const node_id& owner)>;

  /// Spawns a node in `sys` (prepared with syncmesh::configure). Throws
  /// value_error for an invalid config.
  explicit sync_socket(caf::actor_system& sys, config cfg = {});

  /// A socket on node `node` of a test kit cluster (syncmesh/testing.hpp;
  /// link syncmesh::syncmesh_testing), for testing code written against
  /// this API in simulated time. The node stays the cluster's: close()
  /// does not stop it, and stopping the node closes the socket (calls then
  /// throw errc::closed; make a new socket after a restart). Nothing waits
  /// on a thread: a blocking call runs the simulation until its reply
  /// arrives (its timeout counts virtual time); callbacks run on the
  /// test's thread whenever the simulation runs (a blocking call, or the
  /// cluster's run, advance, ask, ...), one at a time, in order. The
  /// futures of set_async are deferred: get() and wait() run the simulation
  /// until the write is answered. Use it from the test's thread, and not
  /// from inside an actor (a tied actor or an on_event callback): a
  /// blocking call there throws std::logic_error.
  sync_socket(testing::cluster& mesh, size_t node);

  /// Closes the node.
  ~sync_socket();

  sync_socket(const sync_socket&) = delete;
  sync_socket& operator=(const sync_socket&) = delete;

  // -- reads ------------------------------------------------------------------

  /// The value at `key`, or nothing. To keep a part of it, read through
  /// `*sock.get(k)` (its accessors then return copies), not `->`, which
  /// refers into the temporary optional.
  std::optional<syncmesh::value> get(key_arg key) const;
  /// The value at `key`, or `fallback`.
  syncmesh::value get(key_arg key, syncmesh::value fallback) const;
  /// The value at `key`; throws key_error when absent.
  syncmesh::value at(key_arg key) const;
  /// The value and metadata at `key`, or nothing.
  std::optional<item> get_item(key_arg key) const;
  /// True when `key` holds a value.
  bool contains(key_arg key) const;
  /// Number of keys.
  size_t size() const;
  /// Every key, sorted bytewise.
  std::vector<std::string> keys() const;
  /// Every value, in key order.
  std::vector<syncmesh::value> values() const;
  /// Every key with its value and metadata, in key order.
  std::vector<item> items() const;
  /// Keys starting with `prefix` that sort after `start_after`, at most
  /// `limit` of them (0: all), with values and metadata, in key order.
  std::vector<item> items(const std::string& prefix, size_t limit,
                          const std::string& start_after = {}) const;
  /// A copy of the whole dictionary.
  std::map<std::string, syncmesh::value> copy() const;

  // -- writes -----------------------------------------------------------------

  /// Sets `key`; throws lease_error when another node holds its lease.
  void set(key_arg key, syncmesh::value val);
  /// Sets `key` without waiting: the future becomes ready once the node
  /// applied the write (as set() returns), and its get() throws what set()
  /// would (lease_error, value_error, errc::closed, errc::timeout). Writes
  /// from one thread are applied in the order they were issued, so a
  /// pipeline of them keeps set()'s ordering at the facade's speed.
  ///
  /// A future rather than a completion callback: the reply arrives on a CAF
  /// worker thread, where a callback that blocks (on this socket, say)
  /// would stall the node, and a future carries set()'s exception types.
  std::future<void> set_async(key_arg key, syncmesh::value val);
  /// Sets every pair: all leases are checked first, then all pairs are
  /// applied, or none is (lease_error::conflicts() names every leased key
  /// of the batch with its owner and lease end; key() is the first).
  void update(const std::vector<std::pair<std::string, syncmesh::value>>& kvs);
  /// Sets every pair of a map (std::map, std::unordered_map, ...), as
  /// `update` above.
  template <class Map, class = typename Map::mapped_type>
  void update(const Map& kvs) {
    update(std::vector<std::pair<std::string, syncmesh::value>>(kvs.begin(),
                                                                kvs.end()));
  }
  /// Deletes `key`; throws key_error when absent, lease_error when leased.
  void erase(key_arg key);
  /// py2p's `del sock[key]`: same as erase.
  void del(key_arg key) { erase(std::move(key)); }
  /// Deletes `key` and returns its value; throws key_error when absent.
  syncmesh::value pop(key_arg key);
  /// Deletes `key` and returns its value, or `fallback` when absent.
  syncmesh::value pop(key_arg key, syncmesh::value fallback);
  /// Deletes some key this node may delete and returns it with its value;
  /// throws key_error when there is none.
  std::pair<std::string, syncmesh::value> popitem();
  /// Merges `fields` into the map at `key` (creating it when absent); throws
  /// type_error when the value is not a map. An empty `fields` changes
  /// nothing.
  void apply_delta(key_arg key, const value_map& fields);

  // -- confirmed writes (see write_concern) -----------------------------------
  //
  // Each returns once `concern` is met: that many nodes hold this version
  // (or a later one of the same claim). Throws unconfirmed_error
  // (errc::unconfirmed) when its timeout passes first, the write standing
  // here and still spreading; lease_error when a claim that beats it was
  // found while it waited (the write lost); value_error (invalid_config)
  // for majority/all without a known cluster size; syncmesh::error with
  // errc::overloaded beyond config::max_pending_confirms (nothing written).
  // Without a concern (the forms above) nothing is sent to other nodes.

  /// Sets `key` and waits for `concern`.
  confirmation set(key_arg key, syncmesh::value val,
                   const write_concern& concern);
  /// Sets `key` without waiting: the future is ready once `concern` is met
  /// (or throws what the blocking form would).
  std::future<confirmation> set_async(key_arg key, syncmesh::value val,
                                      const write_concern& concern);
  /// Sets every pair (all or nothing, as update) and waits for `concern`
  /// on every key.
  confirmation
  update(const std::vector<std::pair<std::string, syncmesh::value>>& kvs,
         const write_concern& concern);
  /// Sets every pair of a map and waits for `concern` on every key.
  template <class Map, class = typename Map::mapped_type>
  confirmation update(const Map& kvs, const write_concern& concern) {
    return update(std::vector<std::pair<std::string, syncmesh::value>>(
                    kvs.begin(), kvs.end()),
                  concern);
  }
  /// Deletes `key` and waits for `concern` (key_error when absent).
  confirmation erase(key_arg key, const write_concern& concern);
  /// Merges `fields` into the map at `key` and waits for `concern`.
  confirmation apply_delta(key_arg key, const value_map& fields,
                           const write_concern& concern);

  /// Proxy returned by `operator[]`: reads like `at`, assigns like `set`.
  /// It names a key, not a value: every read asks the node again (a
  /// proxy kept in `auto r = sock["k"]` sees later writes), and reads
  /// return values, never references into one. Where a value is expected
  /// it converts (`syncmesh::value v = sock["k"];`); `.get()` is the value.
  class reference {
  public:
    /// Sets the key.
    reference& operator=(syncmesh::value val) {
      sock_->set(key_, std::move(val));
      return *this;
    }
    /// Sets the key to the value of another key (`sock["a"] = sock["b"]`
    /// copies the value, as in Python; it does not rebind the proxy).
    reference& operator=(const reference& other) { return *this = other.get(); }
    /// Reads the key; throws key_error when absent.
    operator syncmesh::value() const { return sock_->at(key_); }
    /// Reads the key; throws key_error when absent.
    syncmesh::value get() const { return sock_->at(key_); }

    // Each accessor reads the key (throwing key_error when absent) and
    // then behaves as the value's own (type_error for another kind).

    /// The kind of the current value.
    syncmesh::value::kind type() const { return get().type(); }
    /// True when the current value is nil.
    bool is_nil() const { return get().is_nil(); }
    /// True when the current value is text.
    bool is_text() const { return get().is_text(); }
    /// True when the current value is bytes.
    bool is_bytes() const { return get().is_bytes(); }
    /// True when the current value is a list.
    bool is_list() const { return get().is_list(); }
    /// True when the current value is a map.
    bool is_map() const { return get().is_map(); }
    /// The current bool.
    bool as_bool() const { return get().as_bool(); }
    /// The current integer as int64.
    int64_t as_int64() const { return get().as_int64(); }
    /// The current integer as uint64.
    uint64_t as_uint64() const { return get().as_uint64(); }
    /// The current number as float64.
    double as_float64() const { return get().as_float64(); }
    /// The current text (a copy).
    std::string as_text() const { return get().as_text(); }
    /// The current text's or bytes' raw bytes (a copy).
    std::string as_bytes() const { return get().as_bytes(); }
    /// The current list (a copy).
    value_list as_list() const { return get().as_list(); }
    /// The current map (a copy).
    value_map as_map() const { return get().as_map(); }
    /// The current ext value (a copy).
    ext_value as_ext() const { return get().as_ext(); }
    /// True when the current map has a field at `key`.
    bool contains(const map_key& key) const { return get().contains(key); }

    /// Compares the current value (absent compares unequal).
    bool operator==(const syncmesh::value& x) const {
      auto v = sock_->get(key_);
      return v && *v == x;
    }
    /// Compares the current value with text or bytes content.
    bool operator==(std::string_view x) const {
      auto v = sock_->get(key_);
      return v && *v == x;
    }
    /// Compares the current value with text or bytes content.
    bool operator==(const char* x) const {
      return *this == std::string_view{x};
    }
    /// Compares the current value with text or bytes content.
    bool operator==(const std::string& x) const {
      return *this == std::string_view{x};
    }
    /// Negation of operator==.
    bool operator!=(const std::string& x) const { return !(*this == x); }
    /// Negation of operator==.
    bool operator!=(const char* x) const { return !(*this == x); }
    /// Negation of operator==.
    bool operator!=(const syncmesh::value& x) const { return !(*this == x); }
    /// Negation of operator==.
    bool operator!=(std::string_view x) const { return !(*this == x); }

  private:
    friend class sync_socket;
    reference(sync_socket* sock, std::string key)
        : sock_(sock), key_(std::move(key)) {}
    sync_socket* sock_;
    std::string key_;
  };

  /// `sock[key]` reads (throws key_error when absent) and `sock[key] = v`
  /// sets.
  reference operator[](key_arg key) {
    return reference{this, std::move(key).str()};
  }
  /// Reads `key`; throws key_error when absent.
  syncmesh::value operator[](key_arg key) const { return at(std::move(key)); }

  // -- events -----------------------------------------------------------------

  /// Adds a callback for updates (local and remote).
  void on_update(update_callback cb);
  /// Adds a callback for deletes (local and remote).
  void on_delete(delete_callback cb);
  /// Adds a callback for leases this node lost to another node.
  void on_lease_lost(lease_lost_callback cb);

  // -- mesh -------------------------------------------------------------------

  /// Connects to the node at `host:port`; returns once the handshake is
  /// done. Throws syncmesh::error with errc::unreachable (refused, timed
  /// out), errc::protocol_mismatch or errc::disconnected.
  peer_info connect(const std::string& host, uint16_t port);
  /// The connected peers.
  std::vector<peer_info> peers() const;
  /// Says goodbye to the peer `id` and does not redial it; false when no
  /// such peer is connected.
  bool disconnect(const node_id& id);
  /// The port this node listens on (0 when config::listen is false).
  uint16_t port() const noexcept;

  // -- messages (the mesh_socket half) ----------------------------------------

  /// A message handler: sees each incoming message (and the peer it came
  /// through) before the receive queue; returning true consumes it.
  using message_handler
    = std::function<bool(const message& msg, const node_id& via)>;

  /// Sends `packets`: to every node of the mesh (each receives it once), to
  /// direct peers only (`whisper`), or to one node (`to`, routed through the
  /// mesh when it is not a neighbour). Returns the message ID. In py2p
  /// mode (config::wire) the message goes out in py2p's format and routing:
  /// `to` a node that is not a neighbour is found by py2p's id lookup and
  /// dialled, and the ID returned is then the lookup's request ID (README,
  /// "Joining a py2p or js2p mesh").
  std::string send(std::vector<syncmesh::value> packets,
                   const send_options& opts = {});
  /// The next received message, or nothing.
  std::optional<message> recv();
  /// Up to `n` received messages.
  std::vector<message> recv(size_t n);
  /// Answers the sender of `msg` directly, neighbour or not.
  std::string reply(const message& msg, std::vector<syncmesh::value> packets);
  /// Adds a handler (runs on the event thread, in registration order).
  void register_handler(message_handler fn);
  /// Called when a peer finished its handshake (also after reconnects).
  void on_connect(std::function<void(const peer_info&)> cb);
  /// Called when a peer link ended, with the reason.
  void on_disconnect(
    std::function<void(const node_id& id, const std::string& reason)> cb);
  /// Called when a message was queued for recv().
  void on_message(std::function<void(const message&)> cb);
  /// Messages dropped from the full receive queue (config::max_received).
  uint64_t dropped_messages() const noexcept;

  // -- node -------------------------------------------------------------------

  /// What the node says about itself (ID, protocol, address, counts).
  pb::NodeInfo info() const;
  /// Every counter of the node (router, lease manager, store).
  pb::NodeStats stats() const;
  /// This node's ID (`id().to_hex()` is what the HTTP API and the CLI
  /// print).
  const node_id& id() const noexcept;
  /// The facade, for CAF code that wants to talk to the node directly.
  facade_actor handle() const;
  /// The configuration in effect.
  const config& settings() const noexcept;
  /// Stops the node and the event thread without waiting for them (see the
  /// class comment): calls in flight and later calls throw errc::closed,
  /// pending set_async futures hold it. Idempotent; safe from a callback.
  void close();
  /// True after close().
  bool closed() const noexcept;
  /// Blocking and asynchronous calls waiting for the node's reply now (for
  /// monitoring a pipeline of set_async, and for tests of close()).
  size_t calls_in_flight() const;

  /// Implementation details (opaque).
  struct impl;

private:
  friend const node_actors& internals(const sync_socket& sock);

  std::shared_ptr<impl> impl_;
};

} // namespace syncmesh
