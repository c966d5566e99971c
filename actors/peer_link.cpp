#include "actors/peer_link.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <caf/all.hpp>
#include <caf/io/all.hpp>

#include "actors/atoms.hpp"
#include "actors/dialing.hpp"
#include "actors/log.hpp"
#include "syncmesh/caf_types.hpp"

namespace syncmesh {

namespace {

using namespace std::chrono;

/// (tick_atom, generation): the heartbeat timer.
using hb_tick_atom = caf::atom_constant<caf::atom("hbtick")>;
/// (hs_timeout_atom): the handshake deadline.
using hs_timeout_atom = caf::atom_constant<caf::atom("hstimeout")>;

std::string describe(peer_link_ptr self) {
  const auto& st = self->state;
  std::string who = st.hello_received ? to_hex(st.peer.node_id()).substr(0, 12)
                                      : std::string{"?"};
  return "peer " + who + " (" + (st.params.outbound ? "out" : "in") + ")";
}

/// The name of an envelope's body ("write", "ping", ...), for metrics.
const std::string& body_name(const pb::Envelope& env) {
  static const std::string none = "empty";
  const auto* field
    = pb::Envelope::descriptor()->FindFieldByNumber(env.body_case());
  return field != nullptr ? field->name() : none;
}

bool write_envelope(peer_link_ptr self, const pb::Envelope& env) {
  std::string frame;
  if (!append_frame(frame, env, self->state.params.max_frame_size))
    return false;
  link_write(self, self->state, frame, body_name(env));
  return true;
}

errc error_for(pb::Goodbye::Reason reason) {
  switch (reason) {
    case pb::Goodbye::PROTOCOL_MISMATCH:
      return errc::protocol_mismatch;
    default:
      return errc::disconnected;
  }
}

void report_fence(peer_link_ptr self, fence_change change);

/// An established link's measurement stops counting in the node's fence
/// once the link closes, unless it ended for the clock (the fence remembers
/// a peer beyond the bound until it is measured within).
void forget_clock(peer_link_ptr self, pb::Goodbye::Reason reason,
                  const std::string& detail = {}) {
  auto& st = self->state;
  // A node that stops keeps its fence as it was (no "fence up" noise from
  // its own links closing one by one).
  bool stopping = reason == pb::Goodbye::SHUTDOWN && detail == "node stopping";
  if (!st.params.fence || !st.established || reason == pb::Goodbye::CLOCK_OFFSET
      || stopping)
    return;
  report_fence(self, st.params.fence->closed(st.peer.node_id()));
}

/// Says goodbye (when the connection can still carry it), closes the
/// connection and stops. Before the handshake the link quits with an error,
/// so whoever waits for it learns why.
void shut_down(peer_link_ptr self, pb::Goodbye::Reason reason,
               const std::string& detail, bool send_goodbye = true) {
  auto& st = self->state;
  if (st.closing)
    return;
  st.closing = true;
  link_report_traffic(st);
  // Shutdowns and duplicate connections are routine; the rest is news.
  auto level = reason == pb::Goodbye::SHUTDOWN
                   || reason == pb::Goodbye::DUPLICATE_CONNECTION
                 ? log_level::info
                 : log_level::warning;
  log_line(level, st.params.self,
           "closing " + describe(self) + ": " + to_string(reason)
             + (detail.empty() ? "" : " (" + detail + ")"));
  caf::anon_send(st.params.router, link_closed_atom::value,
                 std::string{to_string(reason)});
  forget_clock(self, reason, send_goodbye ? detail : std::string{});
  for (auto& rp : st.probes)
    rp.deliver(make_error(errc::disconnected, std::string{"link closed"}));
  st.probes.clear();
  link_leave_handshake(st);
  if (send_goodbye)
    write_envelope(self, make_goodbye(reason, detail));
  if (st.tls) {
    st.tls->close(); // close_notify after the goodbye
    link_flush_tls(self, st);
  }
  // close() still sends what is buffered.
  self->close(st.hdl);
  if (st.established)
    self->quit(caf::exit_reason::normal);
  else
    self->quit(make_error(error_for(reason),
                          std::string{to_string(reason)} + ": " + detail));
}

/// The node's wall clock (µs): the clock leases and stamps use, so the
/// offsets measured are those the lease rules see.
uint64_t wall_now(peer_link_ptr self) {
  const auto& clock = self->state.params.clock;
  return clock ? clock() : system_wall_clock()();
}

/// Logs a change of the node's clock fence (the link whose measurement
/// tipped it reports it).
void report_fence(peer_link_ptr self, fence_change change) {
  const auto& st = self->state;
  if (change == fence_change::raised)
    log_line(log_level::error, st.params.self,
             "clock fence up: " + st.params.fence->reason()
               + "; local writes are refused (clock_offset) until the "
                 "offset is back within the bound");
  else if (change == fence_change::lowered)
    log_line(log_level::warning, st.params.self,
             "clock fence down: this node's clock is within the clock offset "
             "bound of a majority of the nodes it measures; local writes are "
             "accepted again");
}

/// Refuses (during the handshake) or cuts the peer because its clock is
/// beyond the bound; the fence remembers it until it is measured within.
void refuse_clock(peer_link_ptr self, const clock_estimate& e) {
  auto& st = self->state;
  auto detail = "clock offset " + describe_offset(e) + " exceeds the bound of "
                + std::to_string(st.params.max_clock_offset_us / 1000) + " ms"
                + (st.established ? "" : " (at the handshake)");
  if (st.params.fence)
    report_fence(self, st.params.fence->refused(st.peer.node_id(), e));
  shut_down(self, pb::Goodbye::CLOCK_OFFSET, detail);
}

/// Feeds a pong's clock sample to the estimator; returns the estimate, or
/// nullopt when the pong carries no clock (an older peer).
std::optional<clock_estimate> take_clock_sample(peer_link_ptr self,
                                                const pb::Pong& pong) {
  auto& st = self->state;
  auto sample
    = clock_sample_from(pong.ping_wall_us(), pong.wall_us(), wall_now(self));
  if (!sample)
    return std::nullopt;
  st.clock_samples.add(*sample);
  return st.clock_samples.estimate();
}

void arm_heartbeat(peer_link_ptr self) {
  self->delayed_send(self, self->state.params.heartbeat_interval,
                     hb_tick_atom::value);
}

/// Sends a ping; returns its nonce.
uint64_t send_ping(peer_link_ptr self) {
  auto& st = self->state;
  pb::Envelope env;
  env.set_hops_left(1);
  auto* ping = env.mutable_ping();
  ping->set_nonce(++st.next_ping);
  ping->set_sent_us(static_cast<uint64_t>(
    duration_cast<microseconds>(self->clock().now().time_since_epoch())
      .count()));
  ping->set_wall_us(wall_now(self));
  write_envelope(self, env);
  return st.next_ping;
}

void on_heartbeat(peer_link_ptr self) {
  auto& st = self->state;
  if (st.closing)
    return;
  if (link_heartbeat(self, st)) {
    shut_down(self, pb::Goodbye::HEARTBEAT_TIMEOUT,
              "silent for more than "
                + std::to_string(st.params.peer_timeout.count()) + " ms");
    return;
  }
  link_report_traffic(st);
  send_ping(self);
  arm_heartbeat(self);
}

void on_envelope(peer_link_ptr self, pb::Envelope& env, size_t bytes);
void drain(peer_link_ptr self);
void attach(peer_link_ptr self);

/// Answers a ping with our wall clock (the peer's offset measurement).
void answer_ping(peer_link_ptr self, const pb::Ping& ping) {
  pb::Envelope reply;
  reply.set_hops_left(1);
  auto* pong = reply.mutable_pong();
  pong->set_nonce(ping.nonce());
  pong->set_sent_us(ping.sent_us());
  pong->set_ping_wall_us(ping.wall_us());
  pong->set_wall_us(wall_now(self));
  write_envelope(self, reply);
}

/// The store applied (or the router refused) `bytes` of the peer's writes:
/// once the window allows, handle what arrived meanwhile, then read again.
void on_applied(peer_link_ptr self, size_t bytes) {
  link_on_applied(
    self, self->state, bytes, [=] { drain(self); },
    [=] { return describe(self); });
}

/// Drops this or other links when the node's unfinished handshakes hold
/// more than their budget.
void account_handshake(peer_link_ptr self) {
  auto& st = self->state;
  auto why
    = link_account_handshake(st, st.decoder.buffered() + st.early.bytes()
                                   + (st.tls ? st.tls->held_bytes() : 0));
  if (!why.empty())
    shut_down(self, pb::Goodbye::TOO_MANY_PEERS, why);
}

/// The peer's hello arrived: check it, then ask the router to attach us.
void on_hello(peer_link_ptr self, const pb::Hello& hello) {
  auto& st = self->state;
  auto verdict = check_hello(hello, st.params.protocol_id, st.params.self,
                             st.params.terms);
  if (!verdict.ok()) {
    shut_down(self, verdict.reason, verdict.detail);
    return;
  }
  // With TLS the certificate proves who the peer is: a hello claiming
  // another ID is an impersonation, refused before any write is read.
  if (st.tls && hello.node_id() != st.tls->peer_id()) {
    shut_down(self, pb::Goodbye::IDENTITY_MISMATCH,
              "the hello claims node " + to_hex(hello.node_id())
                + " but the certificate names " + to_hex(st.tls->peer_id()));
    return;
  }
  st.peer = hello;
  st.hello_received = true;
  st.negotiated_version = verdict.version;
  link_handshake_received(self, st, st.decoder);
  // A peer that announces its clock answers a ping now: measure its offset
  // before it is accepted (attach() follows the pong, on_clock_pong).
  if (hello.wall_us() != 0) {
    st.awaiting_clock = true;
    send_ping(self);
    return;
  }
  attach(self);
}

/// The clock check of the handshake: the pong to our first ping.
void on_clock_pong(peer_link_ptr self, const pb::Pong& pong) {
  auto& st = self->state;
  st.awaiting_clock = false;
  if (auto e = take_clock_sample(self, pong);
      e && e->beyond(st.params.max_clock_offset_us)) {
    refuse_clock(self, *e);
    return;
  }
  attach(self);
}

/// Asks the router to attach the link (the handshake is complete).
void attach(peer_link_ptr self) {
  auto& st = self->state;
  const auto& hello = st.peer;
  pb::PeerInfo info;
  info.set_node_id(hello.node_id());
  // A peer bound to a wildcard address is reachable where it came from.
  const auto& host = hello.listen_host();
  bool wildcard = host.empty() || host == "0.0.0.0" || host == "::";
  info.set_host(wildcard ? self->remote_addr(st.hdl) : host);
  info.set_port(hello.listen_port());
  info.set_outbound(st.params.outbound);
  info.set_protocol_version(st.negotiated_version);
  self->request(st.params.router, caf::infinite, attach_atom::value, info)
    .then(
      [=](bool accepted) {
        auto& st = self->state;
        if (st.closing)
          return;
        if (!accepted) {
          shut_down(self, pb::Goodbye::DUPLICATE_CONNECTION,
                    "another connection to this peer stays");
          return;
        }
        st.established = true;
        link_leave_handshake(st);
        if (auto e = st.clock_samples.estimate(); e && st.params.fence)
          report_fence(self, st.params.fence->measured(st.peer.node_id(), *e));
        log_line(log_level::info, st.params.self,
                 "connected to " + describe(self));
        arm_heartbeat(self);
        st.early.replay(
          [=](pb::Envelope& env) {
            on_envelope(self, env, env.ByteSizeLong() + frame_header_size);
          },
          [=] { return self->state.closing; });
        drain(self);
      },
      [=](caf::error& err) {
        auto reason = code_of(err) == errc::overloaded
                        ? pb::Goodbye::TOO_MANY_PEERS
                        : pb::Goodbye::UNEXPECTED;
        shut_down(self, reason, self->system().render(err));
      });
}

void on_envelope(peer_link_ptr self, pb::Envelope& env, size_t bytes) {
  auto& st = self->state;
  if (env.body_case() == pb::Envelope::kGoodbye) {
    if (env.goodbye().reason() == pb::Goodbye::CLOCK_OFFSET) {
      // The peer finds our clock beyond its bound: count it in our fence
      // (a node every peer refuses must not keep writing alone).
      log_line(log_level::error, st.params.self,
               describe(self) + " refused this node for its clock: "
                 + env.goodbye().detail());
      if (st.params.fence && st.hello_received)
        report_fence(self, st.params.fence->refused_by(st.peer.node_id()));
    }
    shut_down(self, env.goodbye().reason(),
              "peer said goodbye: " + env.goodbye().detail(), false);
    return;
  }
  if (!st.hello_received) {
    if (env.body_case() != pb::Envelope::kHello) {
      shut_down(self, pb::Goodbye::UNEXPECTED, "frame before the handshake");
      return;
    }
    on_hello(self, env.hello());
    return;
  }
  if (!st.established) {
    // The peer may consider the handshake done before our router answered:
    // keep what it sends (bounded) and process it once we are attached.
    if (env.body_case() == pb::Envelope::kHello) {
      shut_down(self, pb::Goodbye::UNEXPECTED, "second hello");
      return;
    }
    // The peer's clock check: answered at once (it waits for it).
    if (env.body_case() == pb::Envelope::kPing) {
      answer_ping(self, env.ping());
      return;
    }
    if (env.body_case() == pb::Envelope::kPong && st.awaiting_clock) {
      on_clock_pong(self, env.pong());
      return;
    }
    auto bytes = env.ByteSizeLong();
    if (!st.early.keep(std::move(env), bytes, st.params.max_send_queue))
      shut_down(self, pb::Goodbye::SLOW_CONSUMER,
                "more than " + std::to_string(st.params.max_send_queue)
                  + " bytes before the handshake completed");
    return;
  }
  const auto& peer = st.peer.node_id();
  switch (env.body_case()) {
    case pb::Envelope::kWrite:
    case pb::Envelope::kDelta: {
      // The store's reply (through the router) returns the credit.
      self
        ->request(st.params.router, caf::infinite, inbound_atom::value, peer,
                  std::move(env))
        .then([=](bool) { on_applied(self, bytes); },
              [=](caf::error&) { on_applied(self, bytes); });
      link_charge_ingress(self, st, bytes, describe(self));
      break;
    }
    case pb::Envelope::kPeers:
      caf::anon_send(st.params.router, peers_atom::value, peer,
                     std::move(*env.mutable_peers()), env.message_id(),
                     env.hops_left());
      break;
    case pb::Envelope::kMessage:
      caf::anon_send(st.params.router, message_atom::value, peer,
                     std::move(env));
      break;
    case pb::Envelope::kConfirmQuery:
    case pb::Envelope::kConfirmAnswer:
      caf::anon_send(st.params.router, confirm_atom::value, peer,
                     std::move(env));
      break;
    case pb::Envelope::kPing:
      answer_ping(self, env.ping());
      break;
    case pb::Envelope::kPong: {
      if (!st.probes.empty() && env.pong().nonce() >= st.probe_nonce) {
        for (auto& rp : st.probes)
          rp.deliver(true);
        st.probes.clear();
      }
      auto now
        = duration_cast<microseconds>(self->clock().now().time_since_epoch())
            .count();
      auto sent = static_cast<int64_t>(env.pong().sent_us());
      if (now >= sent)
        caf::anon_send(st.params.router, rtt_atom::value, peer,
                       static_cast<uint64_t>(now - sent));
      if (auto e = take_clock_sample(self, env.pong())) {
        if (e->beyond(st.params.max_clock_offset_us)) {
          refuse_clock(self, *e);
          return;
        }
        if (st.params.fence)
          report_fence(self, st.params.fence->measured(peer, *e));
      }
      break;
    }
    case pb::Envelope::kDigest: {
      // Every stage but SUMMARY travels in the flow-controlled stream.
      bool streamed = env.digest().stage() != pb::Digest::SUMMARY;
      auto session = env.digest().session();
      self->send(st.params.store, ae_digest_atom::value,
                 caf::actor_cast<link_actor>(self),
                 std::move(*env.mutable_digest()));
      if (streamed) {
        pb::Envelope ack;
        ack.set_hops_left(1);
        ack.mutable_entries_ack()->set_session(session);
        write_envelope(self, ack);
      }
      break;
    }
    case pb::Envelope::kEntries: {
      pb::WriteBatch batch;
      batch.mutable_records()->Swap(env.mutable_entries()->mutable_records());
      auto session = env.entries().session();
      // Acknowledge once the store applied the window: the peer sends the
      // next one only then, so a catching-up node is never flooded.
      self
        ->request(st.params.store, caf::infinite, ae_entries_atom::value, peer,
                  std::move(batch))
        .then(
          [=](bool) {
            if (self->state.closing)
              return;
            pb::Envelope ack;
            ack.set_hops_left(1);
            ack.mutable_entries_ack()->set_session(session);
            write_envelope(self, ack);
          },
          [=](caf::error& err) {
            shut_down(self, pb::Goodbye::MALFORMED,
                      "anti-entropy entries refused: "
                        + self->system().render(err));
          });
      break;
    }
    case pb::Envelope::kEntriesAck:
      self->send(st.params.store, ae_ack_atom::value,
                 caf::actor_cast<link_actor>(self),
                 env.entries_ack().session());
      break;
    case pb::Envelope::kHello:
      shut_down(self, pb::Goodbye::UNEXPECTED, "second hello");
      break;
    default:
      shut_down(self, pb::Goodbye::MALFORMED, "envelope without a body");
  }
}

/// Handles the frames buffered in the decoder until it needs more bytes,
/// the link closes or it stops reading.
void drain(peer_link_ptr self) {
  auto& st = self->state;
  std::string payload;
  while (!st.closing && !st.ingress.paused()) {
    switch (st.decoder.next(payload)) {
      case frame_status::need_more:
        account_handshake(self);
        return;
      case frame_status::too_large:
        shut_down(self, pb::Goodbye::FRAME_TOO_LARGE,
                  "frame exceeds " + std::to_string(st.decoder.max_frame_size())
                    + " bytes"
                    + (st.hello_received ? "" : " (before the hello)"));
        return;
      case frame_status::ok:
        break;
    }
    pb::Envelope env;
    if (auto err = parse_envelope(payload, env); !err.empty()) {
      shut_down(self, pb::Goodbye::MALFORMED, err);
      return;
    }
    link_count(st, true, body_name(env), payload.size() + frame_header_size);
    on_envelope(self, env, payload.size() + frame_header_size);
  }
  account_handshake(self);
}

void on_data(peer_link_ptr self, const std::vector<char>& buf) {
  auto& st = self->state;
  if (st.closing)
    return;
  st.last_received = self->clock().now();
  bool first = !st.received_any;
  st.received_any = true;
  if (link_tls_peer_seen(st, buf, first)) {
    shut_down(self, pb::Goodbye::TLS_REQUIRED,
              "the peer speaks TLS and this node has no peer TLS "
              "(--tls-cert, --tls-key, --tls-ca)");
    return;
  }
  std::string plain;
  switch (link_decrypt(self, st, buf, plain)) {
    case tls_input::plain:
      st.decoder.feed(std::string_view{buf.data(), buf.size()});
      break;
    case tls_input::ok:
      st.decoder.feed(plain);
      break;
    case tls_input::failed:
      shut_down(self, pb::Goodbye::TLS_REQUIRED,
                st.tls->plain_peer()
                  ? "this node accepts TLS peers only (the peer spoke plain "
                    "TCP)"
                  : st.tls->error());
      return;
  }
  // While paused, what the multiplexer still reads waits in the decoder.
  if (!st.ingress.paused())
    drain(self);
}

/// Writes a frame from the node. Flood traffic is shed while the send
/// queue is full (the peer reads slower than we write, e.g. because it
/// applies slower and paused us): anti-entropy repairs it once the queue
/// drains, so back-pressure never turns into disconnect churn. Only a queue
/// past the hard cap disconnects.
void on_outgoing(peer_link_ptr self, const std::string& frame, bool flood) {
  auto& st = self->state;
  if (st.closing || !st.established)
    return;
  switch (link_admit_outgoing(st, frame.size(), flood, describe(self))) {
    case outgoing_verdict::shed:
      return;
    case outgoing_verdict::disconnect:
      shut_down(self, pb::Goodbye::SLOW_CONSUMER,
                std::to_string(st.budget.queued()) + " bytes queued, hard cap "
                  + std::to_string(link_hard_cap(st)));
      return;
    case outgoing_verdict::write:
      link_write(self, st, frame, flood ? "flood" : "anti_entropy");
  }
}

} // namespace

caf::behavior peer_link_actor(peer_link_ptr self,
                              caf::io::connection_handle hdl,
                              link_params params) {
  auto& st = self->state;
  link_start(self, st, hdl, std::move(params));
  st.decoder = frame_decoder{
    std::min(st.params.max_handshake_frame, st.params.max_frame_size)};
  self->set_down_handler([=](const caf::down_msg& msg) {
    if (msg.source == self->state.params.router)
      shut_down(self, pb::Goodbye::SHUTDOWN, "node stopping");
  });
  auto hello
    = make_hello(st.params.self, st.params.protocol_id, st.params.listen_host,
                 st.params.listen_port, st.params.terms);
  hello.mutable_hello()->set_wall_us(wall_now(self));
  write_envelope(self, hello);
  self->delayed_send(self, st.params.handshake_timeout, hs_timeout_atom::value);
  return {
    [=](const caf::io::new_data_msg& msg) { on_data(self, msg.buf); },
    [=](const caf::io::data_transferred_msg& msg) {
      auto& st = self->state;
      if (link_transferred(st, msg.remaining, describe(self)))
        self->send(st.params.store, ae_start_atom::value,
                   caf::actor_cast<link_actor>(self));
    },
    [=](const caf::io::connection_closed_msg&) {
      auto& st = self->state;
      if (st.closing)
        return;
      st.closing = true;
      log_line(log_level::info, st.params.self,
               describe(self) + " closed the connection");
      forget_clock(self, pb::Goodbye::UNSPECIFIED);
      if (st.established)
        self->quit(caf::exit_reason::normal);
      else
        self->quit(make_error(errc::disconnected,
                              std::string{"connection closed during the "
                                          "handshake"}));
    },
    [=](frame_atom, const std::string& frame) {
      on_outgoing(self, frame, true);
    },
    [=](ae_frame_atom, const std::string& frame) {
      on_outgoing(self, frame, false);
    },
    [=](goodbye_atom, int32_t reason, const std::string& detail) {
      shut_down(self, static_cast<pb::Goodbye::Reason>(reason), detail);
    },
    [=](hb_tick_atom) { on_heartbeat(self); },
    [=](probe_atom) -> caf::result<bool> {
      auto& st = self->state;
      if (st.closing || !st.established)
        return make_error(errc::disconnected, std::string{"link closing"});
      // A peer we paused sends more than we apply: it is alive.
      if (st.ingress.paused())
        return true;
      auto rp = self->make_response_promise();
      if (st.probes.empty())
        st.probe_nonce = send_ping(self);
      st.probes.push_back(rp);
      return rp;
    },
    [=](hs_timeout_atom) {
      if (!self->state.established && !self->state.closing)
        shut_down(
          self, pb::Goodbye::HANDSHAKE_TIMEOUT,
          "no handshake within "
            + std::to_string(self->state.params.handshake_timeout.count())
            + " ms");
    },
  };
}

caf::behavior dialing_link_actor(peer_link_ptr self, link_params params,
                                 std::shared_ptr<dial_slot> slot) {
  return dialing_behavior(self, std::move(slot),
                          [=](caf::io::connection_handle hdl) {
                            self->become(peer_link_actor(self, hdl, params));
                          });
}

namespace {

/// Connects without blocking past `timeout`; returns the socket or -1 with
/// an explanation in `why` and the error class in `code`.
int connect_with_deadline(const std::string& host, uint16_t port,
                          std::chrono::milliseconds timeout, std::string& why,
                          errc& code) {
  code = errc::unreachable;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  auto service = std::to_string(port);
  if (auto rc = getaddrinfo(host.c_str(), service.c_str(), &hints, &res);
      rc != 0) {
    why = "cannot resolve " + host + ": " + gai_strerror(rc);
    return -1;
  }
  auto deadline = steady_clock::now() + timeout;
  int result = -1;
  for (auto* ai = res; ai != nullptr && result < 0; ai = ai->ai_next) {
    int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
                      ai->ai_protocol);
    if (fd < 0) {
      why = std::string{"socket: "} + std::strerror(errno);
      continue;
    }
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
    int rc = ::connect(fd, ai->ai_addr, ai->ai_addrlen);
    if (rc < 0 && errno != EINPROGRESS) {
      why = "connect to " + host + ":" + service + ": " + std::strerror(errno);
      ::close(fd);
      continue;
    }
    if (rc < 0) {
      auto left = duration_cast<milliseconds>(deadline - steady_clock::now());
      pollfd pfd{fd, POLLOUT, 0};
      rc = left.count() > 0 ? ::poll(&pfd, 1, static_cast<int>(left.count()))
                            : 0;
      if (rc == 0) {
        why = "connect to " + host + ":" + service + " timed out after "
              + std::to_string(timeout.count()) + " ms";
        ::close(fd);
        continue;
      }
      int err = 0;
      socklen_t len = sizeof(err);
      ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
      if (rc < 0 || err != 0) {
        why = "connect to " + host + ":" + service + ": "
              + std::strerror(rc < 0 ? errno : err);
        ::close(fd);
        continue;
      }
    }
    result = fd;
  }
  freeaddrinfo(res);
  return result;
}

} // namespace

void dial(caf::actor_system& sys, caf::actor link,
          std::shared_ptr<dial_slot> slot, std::string host, uint16_t port,
          std::chrono::milliseconds timeout) {
  // A detached actor has its own thread: poll() never blocks a CAF worker,
  // and the actor system waits for it (at most the dial timeout) at exit.
  sys.spawn<caf::detached>([=](caf::blocking_actor* self) {
    std::string why;
    errc code;
    int fd = connect_with_deadline(host, port, timeout, why, code);
    if (fd < 0) {
      self->send(link, dial_fail_atom::value, static_cast<uint8_t>(code), why);
      return;
    }
    if (!slot->deposit(fd)) {
      ::close(fd); // the link ended while we dialled
      return;
    }
    self->send(link, adopt_atom::value);
  });
}

} // namespace syncmesh
