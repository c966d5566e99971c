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
  link_handshake_received(self, st, st.decoder);
  pb::PeerInfo info;
  info.set_node_id(hello.node_id());
  // A peer bound to a wildcard address is reachable where it came from.
  const auto& host = hello.listen_host();
  bool wildcard = host.empty() || host == "0.0.0.0" || host == "::";
  info.set_host(wildcard ? self->remote_addr(st.hdl) : host);
  info.set_port(hello.listen_port());
  info.set_outbound(st.params.outbound);
  info.set_protocol_version(verdict.version);
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
    case pb::Envelope::kPing: {
      pb::Envelope reply;
      reply.set_hops_left(1);
      reply.mutable_pong()->set_nonce(env.ping().nonce());
      reply.mutable_pong()->set_sent_us(env.ping().sent_us());
      write_envelope(self, reply);
      break;
    }
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
  write_envelope(self, make_hello(st.params.self, st.params.protocol_id,
                                  st.params.listen_host, st.params.listen_port,
                                  st.params.terms));
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
