#pragma once

// What a peer link of either wire dialect (native: peer_link, py2p/js2p:
// py2p_link) holds and does besides its dialect's rules: the connection's
// settings, the bounded send queue with shedding, the frame limit before the
// handshake and the node's handshake budget, the ingress-credit window with
// its halt and re-trigger of the socket, and traffic counting. The two
// brokers keep a `link_base` in their state and call the free functions
// below, so every bound holds at every entrance, whichever dialect a peer
// speaks; the bounds' rules themselves (send_budget, ingress_window,
// early_frames, handshake_budget) are plain classes tested directly.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include <caf/actor_clock.hpp>
#include <caf/io/abstract_broker.hpp>
#include <caf/io/connection_handle.hpp>

#include "actors/clock_offset.hpp"
#include "actors/dict_store_actor.hpp"
#include "actors/handshake_budget.hpp"
#include "actors/log.hpp"
#include "actors/peer_link_state.hpp"
#include "actors/router_actor.hpp"
#include "actors/tls_channel.hpp"
#include "messages/frame_codec.hpp"
#include "syncmesh/clock.hpp"
#include "syncmesh/pb/requests.pb.h"

namespace syncmesh {

/// What a peer link needs to know about its node.
struct link_params {
  /// This node's ID.
  raw_node_id self;
  /// This node's protocol ID.
  std::string protocol_id;
  /// This node's protocol versions and value limits (in the hello).
  hello_terms terms;
  /// Where this node listens (announced in the hello).
  std::string listen_host;
  /// See listen_host; 0 when it does not listen.
  uint16_t listen_port = 0;
  /// The flood table: writes, peer lists and attach requests go there.
  router_actor router;
  /// The dictionary: anti-entropy digests and entries go there.
  dict_store_actor store;
  /// Largest frame accepted or sent.
  size_t max_frame_size = default_max_frame_size;
  /// Most bytes queued for the peer before flood frames are shed (repaired
  /// once the queue drains: anti-entropy, or py2p's initial sync); twice
  /// this is the hard cap beyond which the peer is disconnected as a slow
  /// consumer.
  size_t max_send_queue = 16 * 1024 * 1024;
  /// Largest frame accepted before the peer's handshake was received and
  /// found valid (a hello fits in a few hundred bytes).
  size_t max_handshake_frame = 64 * 1024;
  /// Most bytes of the peer's writes handed on but not yet applied by the
  /// store; beyond it the link stops reading its socket.
  size_t ingress_window = 4 * 1024 * 1024;
  /// Shared by every link of the node: the handshake budget and counters
  /// (none: no shared budget, e.g. in tests of a lone link).
  std::shared_ptr<link_shared> shared;
  /// Deadline of the handshake.
  std::chrono::milliseconds handshake_timeout{5000};
  /// Interval of pings.
  std::chrono::milliseconds heartbeat_interval{1000};
  /// Silence after which the peer is dropped.
  std::chrono::milliseconds peer_timeout{10000};
  /// True when this node dialled the connection.
  bool outbound = false;
  /// Speak py2p/js2p 0.7.870 (config::wire): the listener and the router
  /// spawn py2p links instead.
  bool py2p = false;
  /// The node's wall clock (config::clock) for times a link puts on the
  /// wire itself (py2p's handshakes, peer lists, initial sync); empty: the
  /// system clock.
  wall_clock clock;
  /// Peer TLS (config::tls): every link runs a TLS handshake first and
  /// speaks through it; plain peers are refused. Empty: plain TCP.
  std::shared_ptr<const tls_context> tls;
  /// The node's clock fence, fed with every measurement of the peer's clock
  /// (native links); none in tests of a lone link.
  std::shared_ptr<clock_fence> fence;
  /// The clock offset bound (config::max_clock_offset, µs): a peer beyond
  /// it is refused or cut.
  uint64_t max_clock_offset_us = 500'000;
};

/// Hands a dialled socket from the dialler to its link without a round trip:
/// whoever comes second (the socket or the link's end) closes the socket,
/// so nothing leaks and nobody waits on anybody.
struct dial_slot {
  /// Guards the fields.
  std::mutex mtx;
  /// The connected socket, until the link adopts it; -1 otherwise.
  int fd = -1;
  /// The link ended: a socket arriving now must be closed by the dialler.
  bool abandoned = false;

  /// Called by the dialler; false when the link is gone (then the caller
  /// closes `fd`).
  bool deposit(int socket);
  /// Called by the link: takes the socket (or -1).
  int take();
  /// Called when the link ends: closes a socket nobody took.
  void abandon();
};

/// Bytes asked of the socket per read while a link reads.
inline constexpr size_t link_read_chunk = 64 * 1024;
/// Bytes asked per read until the peer's handshake arrived: the multiplexer
/// keeps a read buffer this big for every connection, counted or not.
inline constexpr size_t link_handshake_read_chunk = 4 * 1024;

/// The part of a link broker's state both dialects share. The destructor
/// gives back what the link held of the node's shared accounts (its place
/// in the handshake budget, the credit of writes whose reply will never
/// come) and closes a dialled socket nobody adopted.
struct link_base {
  /// Gives back the shared accounts (see the type's comment).
  ~link_base();

  /// Where the dialler leaves the socket (dialled links only).
  std::shared_ptr<dial_slot> slot;
  /// Settings.
  link_params params;
  /// The connection.
  caf::io::connection_handle hdl;
  /// Bytes handed to the OS but not yet written.
  send_budget budget;
  /// The peer's writes handed on and not yet applied by the store.
  ingress_window ingress;
  /// Our ticket in the node's handshake budget (0: none or left it).
  uint64_t handshake_ticket = 0;
  /// The link stopped reading at least once (then each heartbeat makes sure
  /// reading resumed: a halt and a trigger in one multiplexer round can
  /// leave a socket unregistered).
  bool ever_paused = false;
  /// Flood frames are being shed since the send queue filled up; once it
  /// drains the link asks for a repair.
  bool shedding = false;
  /// Closing: no more input is processed.
  bool closing = false;
  /// Some bytes arrived on the connection.
  bool received_any = false;
  /// When the last frame arrived (actor clock).
  caf::actor_clock::time_point last_received;
  /// Traffic since the last report to the router.
  pb::TrafficStats traffic;
  /// The connection's TLS (when params.tls is set): bytes from the socket
  /// pass through it before the decoder, frames through it before the
  /// socket.
  std::unique_ptr<tls_channel> tls;
};

/// Takes on `params` and the connection `hdl`: sizes the send queue and the
/// ingress window, enters the node's handshake budget, reads in small
/// chunks until the handshake, asks for write acknowledgements (the send
/// queue's accounting) and watches the router (the link ends with it).
void link_start(caf::io::abstract_broker* self, link_base& st,
                caf::io::connection_handle hdl, link_params params);

/// Moves the TLS channel's ciphertext (handshake flights, records,
/// alerts) to the socket and counts it in the send queue.
void link_flush_tls(caf::io::abstract_broker* self, link_base& st);

/// What became of bytes read from the socket.
enum class tls_input {
  /// No TLS on this link: `buf` itself is the plaintext.
  plain,
  /// Decrypted into `plain` (possibly nothing yet: handshake).
  ok,
  /// The TLS channel failed (st.tls->error() says why): close the link.
  failed,
};

/// Passes bytes read from the socket through the link's TLS channel,
/// appending what it decrypts to `plain`, and sends what the channel has
/// to say (handshake flights, alerts).
tls_input link_decrypt(caf::io::abstract_broker* self, link_base& st,
                       const std::vector<char>& buf, std::string& plain);

/// True when a link without TLS received, as its `first` bytes, a TLS
/// record: the peer runs with peer TLS and this node without.
bool link_tls_peer_seen(const link_base& st, const std::vector<char>& buf,
                        bool first);

/// Counts one message of `kind` and `n` bytes, received (`in`) or sent.
void link_count(link_base& st, bool in, const std::string& kind, size_t n);

/// Hands the traffic counted since the last report to the router.
void link_report_traffic(link_base& st);

/// Writes an encoded frame to the peer (through TLS when the link has it),
/// counts it in the send queue (bytes on the socket) and in the traffic as
/// `kind` (frame bytes), and flushes.
void link_write(caf::io::abstract_broker* self, link_base& st,
                const std::string& frame, const std::string& kind);

/// What to do with a frame the node asks a link to send.
enum class outgoing_verdict {
  /// Write it.
  write,
  /// Flood traffic beyond the send queue: dropped (counted and logged);
  /// repaired once the queue drains.
  shed,
  /// Past the hard cap (twice max_send_queue + max_frame_size): the peer
  /// reads far slower than we write and must be disconnected.
  disconnect,
};

/// Decides on a frame of `size` bytes the node asks to send (`flood`: flood
/// traffic, else a repair such as an anti-entropy window, which may come on
/// top of a full queue up to the hard cap). Counts and logs a shed frame as
/// the peer `who` (the first of a run of sheds).
outgoing_verdict link_admit_outgoing(link_base& st, size_t size, bool flood,
                                     const std::string& who);

/// The hard cap of the send queue (see outgoing_verdict::disconnect).
size_t link_hard_cap(const link_base& st);

/// Records the multiplexer's report that `remaining` bytes are still
/// buffered; true when the link was shedding and the queue drained to half:
/// then it should ask for a repair of what it shed (logged as `who`).
bool link_transferred(link_base& st, size_t remaining, const std::string& who);

/// The peer's handshake was received and found valid: lifts the frame limit
/// of `decoder` to max_frame_size and reads in full chunks.
void link_handshake_received(caf::io::abstract_broker* self, link_base& st,
                             frame_decoder& decoder);

/// The router attached the link: it leaves the handshake budget.
void link_leave_handshake(link_base& st);

/// Records that the unfinished handshake holds `held` bytes (decoder buffer
/// and early frames); other links evicted to keep the node's budget are
/// told to close. Returns an explanation when this link itself must close
/// (it held the most), empty otherwise.
std::string link_account_handshake(link_base& st, size_t held);

/// Records `bytes` of the peer's writes handed on (their reply returns the
/// credit) in the link's window and the node's counters; when the window is
/// passed, halts reading the socket (counted in ingress_pauses and logged
/// as `who`).
void link_charge_ingress(caf::io::abstract_broker* self, link_base& st,
                         size_t bytes, const std::string& who);

/// The store applied (or the router refused) `bytes` of the peer's writes;
/// true when a paused link may read again: then the caller handles what
/// its decoder buffered meanwhile and calls link_resume_reading.
bool link_credit(link_base& st, size_t bytes);

/// Reads the socket again after a pause (unless closing, or the buffered
/// frames filled the window again). The order matters: a trigger followed
/// by a halt in one multiplexer round cancel out in CAF's event queue but
/// leave the stream believing it still reads, and no later trigger would
/// register the socket again; so halts never follow triggers here.
void link_resume_reading(caf::io::abstract_broker* self, link_base& st);

/// The router answered for `bytes` of the peer's writes: once the window
/// allows, `drain()` handles what the link buffered meanwhile and the link
/// reads again (logged with `who()`, the peer's description).
template <class Drain, class Describe>
void link_on_applied(caf::io::abstract_broker* self, link_base& st,
                     size_t bytes, Drain drain, Describe who) {
  if (!link_credit(st, bytes))
    return;
  log_line(log_level::debug, st.params.self, "resuming " + who());
  drain();
  link_resume_reading(self, st);
}

/// On a heartbeat of a link that reads: a paused link does not count the
/// silence it caused against its peer, and a link that paused once
/// triggers its socket again (a no-op unless a halt and a trigger in the
/// same multiplexer round left it unregistered). Returns true when the peer
/// was silent for longer than peer_timeout.
bool link_heartbeat(caf::io::abstract_broker* self, link_base& st);

} // namespace syncmesh
