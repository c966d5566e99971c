#include "actors/link_base.hpp"

#include <unistd.h>

#include <caf/all.hpp>
#include <caf/io/all.hpp>

#include "actors/atoms.hpp"
#include "actors/log.hpp"
#include "messages/version.hpp"
#include "syncmesh/caf_types.hpp"

namespace syncmesh {

link_base::~link_base() {
  if (slot)
    slot->abandon();
  if (handshake_ticket != 0 && params.shared)
    params.shared->handshakes.leave(handshake_ticket);
  // Replies that will never come: their credit leaves with the link.
  if (params.shared)
    params.shared->ingress_outstanding -= ingress.outstanding();
}

bool dial_slot::deposit(int socket) {
  std::lock_guard<std::mutex> guard{mtx};
  if (abandoned)
    return false;
  fd = socket;
  return true;
}

int dial_slot::take() {
  std::lock_guard<std::mutex> guard{mtx};
  auto result = fd;
  fd = -1;
  return result;
}

void dial_slot::abandon() {
  std::lock_guard<std::mutex> guard{mtx};
  abandoned = true;
  if (fd >= 0)
    ::close(fd);
  fd = -1;
}

void link_start(caf::io::abstract_broker* self, link_base& st,
                caf::io::connection_handle hdl, link_params params) {
  st.params = std::move(params);
  st.hdl = hdl;
  st.budget = send_budget{st.params.max_send_queue};
  st.ingress = ingress_window{st.params.ingress_window};
  st.last_received = self->clock().now();
  if (st.params.shared)
    st.handshake_ticket = st.params.shared->handshakes.enter(self->address());
  self->configure_read(
    hdl, caf::io::receive_policy::at_most(link_handshake_read_chunk));
  self->ack_writes(hdl, true);
  self->monitor(st.params.router);
  if (st.params.tls) {
    // Accepted connections are the TLS server; the dialler speaks first.
    st.tls = std::make_unique<tls_channel>(st.params.tls, !st.params.outbound);
    link_flush_tls(self, st);
  }
}

void link_flush_tls(caf::io::abstract_broker* self, link_base& st) {
  if (!st.tls)
    return;
  // The send queue counts what goes to the socket: ciphertext, handshake
  // flights and alerts included (the multiplexer reports the same bytes).
  auto n = st.tls->take_output(self->wr_buf(st.hdl));
  if (n == 0)
    return;
  st.budget.wrote(n);
  self->flush(st.hdl);
}

tls_input link_decrypt(caf::io::abstract_broker* self, link_base& st,
                       const std::vector<char>& buf, std::string& plain) {
  if (!st.tls)
    return tls_input::plain;
  bool was_established = st.tls->established();
  bool ok = st.tls->feed(std::string_view{buf.data(), buf.size()}, plain);
  // Handshake flights, and on failure the alert that tells the peer why.
  link_flush_tls(self, st);
  if (!ok)
    return tls_input::failed;
  if (!was_established && st.tls->established())
    log_line(log_level::debug, st.params.self,
             "TLS established with the node the certificate names "
               + to_hex(st.tls->peer_id()).substr(0, 12));
  return tls_input::ok;
}

bool link_tls_peer_seen(const link_base& st, const std::vector<char>& buf,
                        bool first) {
  // A TLS ClientHello starts with a handshake record (22); a native frame
  // with the high byte of its length (0).
  return !st.tls && first && !buf.empty() && buf[0] == 22;
}

void link_count(link_base& st, bool in, const std::string& kind, size_t n) {
  auto& t = st.traffic;
  auto& messages = in ? *t.mutable_messages_in() : *t.mutable_messages_out();
  auto& bytes = in ? *t.mutable_bytes_in() : *t.mutable_bytes_out();
  ++messages[kind];
  bytes[kind] += n;
}

void link_report_traffic(link_base& st) {
  if (st.traffic.messages_in().empty() && st.traffic.messages_out().empty())
    return;
  caf::anon_send(st.params.router, traffic_atom::value, std::move(st.traffic));
  st.traffic.Clear();
}

void link_write(caf::io::abstract_broker* self, link_base& st,
                const std::string& frame, const std::string& kind) {
  if (st.tls && !(st.tls->failed() && st.tls->plain_peer())) {
    link_count(st, false, kind, frame.size());
    // A failed channel sends nothing more (its alert is already queued).
    if (st.tls->write(frame))
      link_flush_tls(self, st);
    return;
  }
  // Plain TCP, or a plain peer refused by a TLS node: that goodbye goes
  // in clear, so the peer learns why.
  auto& buf = self->wr_buf(st.hdl);
  buf.insert(buf.end(), frame.begin(), frame.end());
  st.budget.wrote(frame.size());
  link_count(st, false, kind, frame.size());
  self->flush(st.hdl);
}

size_t link_hard_cap(const link_base& st) {
  return 2 * (st.budget.limit() + st.params.max_frame_size);
}

outgoing_verdict link_admit_outgoing(link_base& st, size_t size, bool flood,
                                     const std::string& who) {
  if (flood && !st.budget.admits(size)) {
    if (st.params.shared) {
      ++st.params.shared->flood_frames_shed;
      st.params.shared->flood_bytes_shed += size;
    }
    if (!st.shedding) {
      st.shedding = true;
      log_line(log_level::warning, st.params.self,
               who + " reads slower than we write: "
                 + std::to_string(st.budget.queued())
                 + " bytes queued, shedding flood frames until the queue "
                   "drains (then they are repaired)");
    }
    return outgoing_verdict::shed;
  }
  // Repairs fit the send queue but may come on top of a full one: the hard
  // cap leaves room for that, and bounds the bytes all the same.
  if (!flood && st.budget.queued() + size > link_hard_cap(st))
    return outgoing_verdict::disconnect;
  return outgoing_verdict::write;
}

bool link_transferred(link_base& st, size_t remaining, const std::string& who) {
  st.budget.remaining(remaining);
  if (!st.shedding || st.closing || remaining > st.budget.limit() / 2)
    return false;
  st.shedding = false;
  log_line(log_level::info, st.params.self,
           who + " caught up: asking for a repair of the shed flood frames");
  return true;
}

void link_handshake_received(caf::io::abstract_broker* self, link_base& st,
                             frame_decoder& decoder) {
  // A valid handshake lifts the handshake frame limit: the peer may consider
  // the handshake done and send writes before our router attached us (they
  // wait as early frames, within the handshake budget).
  decoder.set_max_frame_size(st.params.max_frame_size);
  if (!st.ingress.paused())
    self->configure_read(st.hdl,
                         caf::io::receive_policy::at_most(link_read_chunk));
}

void link_leave_handshake(link_base& st) {
  if (st.handshake_ticket != 0 && st.params.shared)
    st.params.shared->handshakes.leave(st.handshake_ticket);
  st.handshake_ticket = 0;
}

std::string link_account_handshake(link_base& st, size_t held) {
  if (st.handshake_ticket == 0 || !st.params.shared || st.closing)
    return {};
  auto& budget = st.params.shared->handshakes;
  std::string mine;
  for (auto& ev : budget.hold(st.handshake_ticket, held)) {
    auto detail = "unfinished handshakes hold more than "
                  + std::to_string(budget.cap())
                  + " bytes; this connection held the most";
    if (ev.ticket == st.handshake_ticket) {
      st.handshake_ticket = 0;
      mine = std::move(detail);
    } else if (auto other = caf::actor_cast<caf::actor>(ev.holder)) {
      caf::anon_send(other, goodbye_atom::value,
                     int32_t{pb::Goodbye::TOO_MANY_PEERS}, detail);
    }
  }
  return mine;
}

void link_charge_ingress(caf::io::abstract_broker* self, link_base& st,
                         size_t bytes, const std::string& who) {
  if (st.params.shared) {
    auto& shared = *st.params.shared;
    shared.ingress_outstanding += bytes;
    auto mine = static_cast<uint64_t>(st.ingress.outstanding() + bytes);
    auto peak = shared.ingress_peak.load();
    while (mine > peak
           && !shared.ingress_peak.compare_exchange_weak(peak, mine)) {
    }
  }
  if (!st.ingress.received(bytes))
    return;
  st.ever_paused = true;
  if (st.params.shared)
    ++st.params.shared->ingress_pauses;
  log_line(log_level::debug, st.params.self,
           "pausing " + who + ": " + std::to_string(st.ingress.outstanding())
             + " bytes of its writes not yet applied");
  self->halt(st.hdl);
  // The multiplexer may still read a few times before the halt takes
  // effect: keep those reads tiny (they are buffered, not decoded).
  self->configure_read(st.hdl, caf::io::receive_policy::at_most(1));
}

bool link_credit(link_base& st, size_t bytes) {
  if (st.params.shared)
    st.params.shared->ingress_outstanding -= bytes;
  return st.ingress.applied(bytes) && !st.closing;
}

void link_resume_reading(caf::io::abstract_broker* self, link_base& st) {
  st.last_received = self->clock().now();
  if (st.closing || st.ingress.paused())
    return; // the buffered frames filled the window again: stay halted
  // Only attached links pause (writes count once attached): read in full.
  self->configure_read(st.hdl,
                       caf::io::receive_policy::at_most(link_read_chunk));
  self->trigger(st.hdl);
}

bool link_heartbeat(caf::io::abstract_broker* self, link_base& st) {
  if (st.ingress.paused()) {
    // We stopped reading: the silence is ours, not the peer's.
    st.last_received = self->clock().now();
  } else if (st.ever_paused) {
    // A halt and a trigger in the same multiplexer round can leave the
    // socket unregistered; triggering again is a no-op otherwise.
    self->trigger(st.hdl);
  }
  return self->clock().now() - st.last_received > st.params.peer_timeout;
}

} // namespace syncmesh
