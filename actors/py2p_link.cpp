#include "actors/py2p_link.hpp"

#include <algorithm>
#include <chrono>
#include <memory>
#include <utility>

#include <caf/all.hpp>
#include <caf/io/all.hpp>

#include "actors/atoms.hpp"
#include "actors/dialing.hpp"
#include "actors/log.hpp"
#include "syncmesh/caf_types.hpp"
#include "syncmesh/pb/entry.pb.h"

namespace syncmesh {

namespace {

using namespace std::chrono;

/// (py2p_hs_atom): the handshake deadline.
using py2p_hs_atom = caf::atom_constant<caf::atom("py2phs")>;
/// (py2p_tick_atom): re-triggers a socket halted once, reports traffic.
using py2p_tick_atom = caf::atom_constant<caf::atom("py2ptick")>;

/// Keys sent per snapshot page during the initial sync.
constexpr uint32_t sync_page = 256;

/// (py2p_stall_atom): checks a frame the peer left unfinished.
using py2p_stall_atom = caf::atom_constant<caf::atom("py2pstall")>;

/// The node's wall time in µs.
uint64_t now_us(py2p_link_ptr self) {
  const auto& clock = self->state.params.clock;
  if (clock)
    return clock();
  return static_cast<uint64_t>(
    duration_cast<microseconds>(system_clock::now().time_since_epoch())
      .count());
}

/// The node's wall time in seconds (py2p's unit).
uint64_t now_s(py2p_link_ptr self) {
  return now_us(self) / 1'000'000;
}

std::string describe(py2p_link_ptr self) {
  const auto& st = self->state;
  auto who = st.session && st.session->handshake_received()
               ? st.session->peer_id().substr(0, 12)
               : std::string{"?"};
  return "py2p peer " + who + " (" + (st.params.outbound ? "out" : "in") + ")";
}

const char* kind_name(int sub_flag) {
  switch (sub_flag) {
    case py2p::flag::handshake:
      return "py2p_handshake";
    case py2p::flag::peers:
      return "py2p_peers";
    case py2p::flag::store:
      return "py2p_store";
    case py2p::flag::delta:
      return "py2p_delta";
    case py2p::flag::request:
      return "py2p_request";
    default:
      return "py2p_other";
  }
}

void report_traffic(py2p_link_ptr self) {
  self->state.unreported = 0;
  link_report_traffic(self->state);
}

/// py2p links have no heartbeat: traffic is reported every 64 messages.
void count(py2p_link_ptr self, bool in, const char* kind, size_t n) {
  link_count(self->state, in, kind, n);
  if (++self->state.unreported >= 64)
    report_traffic(self);
}

void write_raw(py2p_link_ptr self, const std::string& frame, const char* kind) {
  auto& st = self->state;
  if (frame.empty())
    return; // over the frame size: nothing a peer could read
  link_write(self, st, frame, kind);
  if (++st.unreported >= 64)
    report_traffic(self);
}

/// Closes the connection and stops. Before the handshake the link quits
/// with an error, so whoever dialled it learns why. An unexpected close is
/// counted under `bound` when a bound of the link base closed it (the
/// reason native links count it under), else under its reason's start.
void shut_down(py2p_link_ptr self, const std::string& reason,
               bool expected = false,
               pb::Goodbye::Reason bound = pb::Goodbye::UNSPECIFIED) {
  auto& st = self->state;
  if (st.closing)
    return;
  st.closing = true;
  report_traffic(self);
  link_leave_handshake(st);
  log_line(expected ? log_level::info : log_level::warning, st.params.self,
           "closing " + describe(self) + ": " + reason);
  if (!expected)
    caf::anon_send(st.params.router, link_closed_atom::value,
                   bound != pb::Goodbye::UNSPECIFIED
                     ? std::string{to_string(bound)}
                     : std::string{"py2p: "} + reason.substr(0, 40));
  self->close(st.hdl);
  if (st.attached || st.passive)
    self->quit(caf::exit_reason::normal);
  else
    self->quit(make_error(errc::disconnected, "py2p link: " + reason));
}

void send_initial_sync(py2p_link_ptr self);

/// An initial sync ended: when flood frames were shed meanwhile, the next
/// one repairs them.
void sync_done(py2p_link_ptr self) {
  auto& st = self->state;
  st.syncing = false;
  if (st.resync && !st.closing) {
    st.resync = false;
    send_initial_sync(self);
  }
}

void send_keys(py2p_link_ptr self, std::string start_after);

/// Writes one snapshot page as 5-packet stores (owners in the msgpack type
/// they arrived in: `bin_owners`), then asks for the next page.
void write_key_page(py2p_link_ptr self, const pb::Snapshot& snap,
                    const std::vector<std::string>& bin_owners) {
  auto& st = self->state;
  if (st.closing)
    return;
  auto t = now_s(self);
  std::string cursor;
  for (const auto& item : snap.items()) {
    const auto& owner
      = item.meta().owner().empty() ? st.params.self : item.meta().owner();
    bool bin = std::find(bin_owners.begin(), bin_owners.end(), owner)
               != bin_owners.end();
    auto payload = py2p::store5_payload(item.key(), item.value(),
                                        py2p::id_value(owner, bin),
                                        item.meta().time_us() / 1'000'000);
    write_raw(self, st.session->whisper_frame(payload, t), "py2p_store");
    cursor = item.key();
    // A full send queue stops the page: at most one frame beyond it.
    if (st.budget.queued() >= st.budget.limit())
      break;
  }
  if (cursor.empty()
      || (snap.items_size() < static_cast<int>(sync_page)
          && cursor == snap.items(snap.items_size() - 1).key())) {
    sync_done(self);
    return;
  }
  // Paced by the send queue: the next keys wait until the OS took half of
  // what is queued, so a large store never piles up in memory.
  if (st.budget.queued() < st.budget.limit() / 2)
    send_keys(self, std::move(cursor));
  else
    st.sync_cursor = std::move(cursor);
}

/// Sends one snapshot page of keys as 5-packet stores, then the next.
void send_keys(py2p_link_ptr self, std::string start_after) {
  pb::SnapshotRequest req;
  req.set_limit(sync_page);
  req.set_start_after(std::move(start_after));
  auto fail = [=](caf::error& err) {
    sync_done(self);
    log_line(log_level::warning, self->state.params.self,
             "initial sync to " + describe(self)
               + " stopped: " + self->system().render(err));
  };
  self->request(self->state.params.store, caf::infinite, std::move(req))
    .then(
      [=](pb::Snapshot& snap) {
        auto& st = self->state;
        if (st.closing)
          return;
        // The router knows which owners arrived as msgpack bin.
        std::vector<std::string> owners;
        for (const auto& item : snap.items())
          if (!item.meta().owner().empty()
              && std::find(owners.begin(), owners.end(), item.meta().owner())
                   == owners.end())
            owners.push_back(item.meta().owner());
        auto page = std::make_shared<pb::Snapshot>(std::move(snap));
        self
          ->request(st.params.router, caf::infinite, py2p_ids_atom::value,
                    std::move(owners))
          .then(
            [=](const std::vector<std::string>& bins) {
              write_key_page(self, *page, bins);
            },
            fail);
      },
      fail);
}

/// What py2p's `_send_peers` does: the peers list, then every key.
void send_initial_sync(py2p_link_ptr self) {
  auto& st = self->state;
  if (st.syncing)
    return; // one at a time: a repeated request '*' joins the running one
  st.syncing = true;
  self->request(st.params.router, caf::infinite, pb::PeersRequest{})
    .then(
      [=](const pb::PeerList& list) {
        auto& st = self->state;
        if (st.closing)
          return;
        std::vector<py2p::peer_address> peers;
        // js2p (ids as str) closes the link on a list with two entries it
        // would dial (bug J4): give it at most one.
        size_t cap = st.session->peer_id_bin() ? 32 : 1;
        std::vector<std::string> ids;
        for (const auto& p : list.peers()) {
          if (p.port() == 0 || p.node_id() == st.session->peer_id())
            continue;
          if (peers.size() >= cap)
            break;
          peers.push_back(py2p::peer_address{
            p.host(), static_cast<uint16_t>(p.port()), p.node_id()});
          ids.push_back(p.node_id());
        }
        // Each id in the msgpack type it arrived in (the router knows).
        self
          ->request(st.params.router, caf::infinite, py2p_ids_atom::value,
                    std::move(ids))
          .then(
            [=](const std::vector<std::string>& bins) mutable {
              auto& st = self->state;
              if (st.closing)
                return;
              for (auto& p : peers)
                p.id_bin
                  = std::find(bins.begin(), bins.end(), p.id) != bins.end();
              write_raw(self,
                        st.session->whisper_frame(py2p::peers_payload(peers),
                                                  now_s(self)),
                        "py2p_peers");
              send_keys(self, std::string{});
            },
            [=](caf::error&) { send_keys(self, std::string{}); });
      },
      [=](caf::error&) { send_keys(self, std::string{}); });
}

void handle(py2p_link_ptr self, py2p_inbound& in);
void on_applied(py2p_link_ptr self, size_t bytes);
void watch_stall(py2p_link_ptr self);

/// Tells the router the msgpack type node ID `id` arrived in (once per type
/// and link, from a small per-link memory), so it goes back to every peer in
/// that type.
void report_id_type(py2p_link_ptr self, const std::string& id, bool bin,
                    bool first_hand) {
  auto& seen = self->state.reported_id_types;
  auto i = seen.find(id);
  // Told already, unless this settles what was only hearsay.
  if (i != seen.end() && (i->second & 1) == (bin ? 1 : 0)
      && ((i->second & 2) != 0 || !first_hand))
    return;
  if (seen.size() >= 1024)
    seen.clear(); // a peer inventing IDs costs a report per message at most
  seen[id] = static_cast<uint8_t>((bin ? 1 : 0) | (first_hand ? 2 : 0));
  caf::anon_send(self->state.params.router, py2p_ids_atom::value, id, bin,
                 first_hand);
}

/// The peer's first valid handshake: ask the router to attach it.
void on_handshake(py2p_link_ptr self, const py2p::handshake_info& hello) {
  auto& st = self->state;
  if (st.attach_requested)
    return; // repeated handshakes (js2p sends two) change nothing
  st.attach_requested = true;
  report_id_type(self, hello.id, st.session->peer_id_bin(), true);
  pb::PeerInfo info;
  info.set_node_id(hello.id);
  bool wildcard = hello.host == "0.0.0.0" || hello.host == "::";
  info.set_host(wildcard ? self->remote_addr(st.hdl) : hello.host);
  info.set_port(hello.port);
  info.set_outbound(st.params.outbound);
  self->request(st.params.router, caf::infinite, attach_atom::value, info)
    .then(
      [=](bool accepted) {
        auto& st = self->state;
        if (st.closing)
          return;
        st.attached = accepted;
        st.passive = !accepted;
        link_leave_handshake(st);
        log_line(log_level::info, st.params.self,
                 std::string{accepted ? "connected to " : "second link to "}
                   + describe(self));
        if (!st.initial_sync_started) {
          st.initial_sync_started = true;
          send_initial_sync(self);
        }
        st.early.replay([=](py2p_inbound& in) { handle(self, in); },
                        [=] { return self->state.closing; });
      },
      [=](caf::error& err) {
        shut_down(self, "not attached: " + self->system().render(err));
      });
}

void handle(py2p_link_ptr self, py2p_inbound& in) {
  auto& st = self->state;
  if (in.what == py2p_inbound::kind::handshake) {
    on_handshake(self, in.hello);
    return;
  }
  if (!st.attached && !st.passive) {
    // Processed once the router answered the attach, in order (bounded).
    auto bytes = in.raw.msgpack.size() + py2p::id_size;
    if (!st.early.keep(std::move(in), bytes, st.params.max_send_queue))
      shut_down(self, "too much traffic before the handshake completed");
    return;
  }
  const auto& peer = st.session->peer_id();
  report_id_type(self, in.msg.sender, in.msg.sender_bin, true);
  pb::WriteBatch batch;
  bool initial = false;
  switch (in.what) {
    case py2p_inbound::kind::peers: {
      pb::Peers list;
      for (const auto& p : in.peers) {
        report_id_type(self, p.id, p.id_bin, false);
        auto* x = list.add_peers();
        x->set_node_id(p.id);
        x->set_host(p.host);
        x->set_port(p.port);
      }
      caf::anon_send(st.params.router, peers_atom::value, peer, std::move(list),
                     std::string{}, uint32_t{0});
      break;
    }
    case py2p_inbound::kind::request_peers:
      // js2p answers with peers and all keys, py2p with peers only; the
      // keys fill gaps on the asker and cost only bandwidth.
      send_initial_sync(self);
      break;
    case py2p_inbound::kind::write: {
      auto* rec = batch.add_records();
      if (auto err
          = to_write_record(in.store, in.msg.sender, in.msg.time, *rec);
          !err.empty()) {
        log_line(log_level::warning, st.params.self,
                 "ignoring a store from " + describe(self) + ": " + err);
        batch.Clear();
      }
      initial = in.store.initial_sync;
      if (initial)
        report_id_type(self, in.store.owner, in.store.owner_bin, false);
      break;
    }
    default:
      break;
  }
  // Broadcasts are relayed (even when we cannot use them); writes applied;
  // user messages and lookups (kind other) go to the router's mesh_socket
  // half. The router's reply (the store's, for writes) returns the credit.
  if (in.broadcast() || batch.records_size() > 0
      || in.what == py2p_inbound::kind::other) {
    auto bytes = in.raw.msgpack.size() + py2p::id_size;
    self
      ->request(st.params.router, caf::infinite, py2p_in_atom::value, peer,
                std::move(in.raw.id), std::move(in.raw.msgpack),
                std::move(in.msg.sender), in.msg.time, in.broadcast(),
                std::move(batch), initial)
      .then([=](bool) { on_applied(self, bytes); },
            [=](caf::error&) { on_applied(self, bytes); });
    link_charge_ingress(self, st, bytes, describe(self));
    if (st.ever_paused && !st.ticking) {
      st.ticking = true;
      self->delayed_send(self, st.params.heartbeat_interval,
                         py2p_tick_atom::value);
    }
  }
}

/// Drops this or other links when the node's unfinished handshakes hold
/// more than their budget.
void account_handshake(py2p_link_ptr self) {
  auto& st = self->state;
  auto why
    = link_account_handshake(st, st.session->buffered() + st.early.bytes());
  if (!why.empty())
    shut_down(self, why, false, pb::Goodbye::TOO_MANY_PEERS);
}

/// Handles the messages buffered in the session until it needs more bytes,
/// the link closes or it stops reading.
void drain(py2p_link_ptr self) {
  auto& st = self->state;
  std::vector<py2p_inbound> msgs;
  while (!st.closing && !st.ingress.paused()) {
    bool had_handshake = st.session->handshake_received();
    msgs.clear();
    auto step = st.session->next(msgs);
    if (!step.error.empty()) {
      shut_down(self, step.error, false,
                step.too_large ? pb::Goodbye::FRAME_TOO_LARGE
                               : pb::Goodbye::UNSPECIFIED);
      return;
    }
    if (step.need_more)
      break;
    if (!had_handshake && st.session->handshake_received())
      link_handshake_received(self, st, st.session->decoder());
    for (auto& in : msgs) {
      st.last_received = self->clock().now();
      count(self, true, kind_name(in.msg.sub_flag()),
            in.raw.msgpack.size() + py2p::id_size);
      handle(self, in);
      if (st.closing)
        return;
    }
  }
  account_handshake(self);
}

/// The router answered for `bytes` of the peer's messages: once the window
/// allows, handle what arrived meanwhile, then read again.
void on_applied(py2p_link_ptr self, size_t bytes) {
  link_on_applied(
    self, self->state, bytes,
    [=] {
      // Reading again: the peer's stalled-frame time starts over.
      self->state.stall.restart(now_us(self));
      drain(self);
      watch_stall(self);
    },
    [=] { return describe(self); });
}

/// Schedules a check of py2p's stalled-frame rule when the peer left part
/// of a frame after its handshake (before it, the handshake timeout rules).
void watch_stall(py2p_link_ptr self) {
  auto& st = self->state;
  if (st.closing || st.stall_armed || !st.session->handshake_received())
    return;
  auto now = now_us(self);
  auto v = st.stall.check(now, st.session->buffered(), !st.ingress.paused());
  if (v.check_at_us == 0)
    return;
  st.stall_armed = true;
  self->delayed_send(self, microseconds(v.check_at_us - now),
                     py2p_stall_atom::value);
}

void on_data(py2p_link_ptr self, const std::vector<char>& buf) {
  auto& st = self->state;
  if (st.closing)
    return;
  st.stall.restart(now_us(self));
  st.session->push(std::string_view{buf.data(), buf.size()});
  // While paused, what the multiplexer still reads waits in the session.
  if (!st.ingress.paused())
    drain(self);
  watch_stall(self);
}

} // namespace

caf::behavior py2p_link_actor(py2p_link_ptr self,
                              caf::io::connection_handle hdl,
                              link_params params) {
  auto& st = self->state;
  link_start(self, st, hdl, std::move(params));
  st.session = std::make_unique<py2p_session>(py2p_link_settings{
    st.params.self, st.params.protocol_id, st.params.listen_host,
    st.params.listen_port, st.params.max_frame_size});
  // py2p's handshake is its first message: frames before it are limited
  // like a native hello (lifted by link_handshake_received).
  st.session->decoder().set_max_frame_size(
    std::min(st.params.max_handshake_frame, st.params.max_frame_size));
  self->set_down_handler([=](const caf::down_msg& msg) {
    if (msg.source == self->state.params.router)
      shut_down(self, "node stopping", true);
  });
  // Both sides send their handshake at once, unprompted.
  write_raw(self, st.session->handshake_frame(now_s(self)), "py2p_handshake");
  self->delayed_send(self, st.params.handshake_timeout, py2p_hs_atom::value);
  return {
    [=](const caf::io::new_data_msg& msg) { on_data(self, msg.buf); },
    [=](const caf::io::data_transferred_msg& msg) {
      auto& st = self->state;
      if (link_transferred(st, msg.remaining, describe(self))) {
        // What was shed is repaired like py2p repairs a new peer: the
        // peers list and every key again (after a running sync).
        if (st.syncing)
          st.resync = true;
        else
          send_initial_sync(self);
      }
      if (!st.sync_cursor.empty() && !st.closing
          && st.budget.queued() < st.budget.limit() / 2)
        send_keys(self, std::exchange(st.sync_cursor, std::string{}));
    },
    [=](const caf::io::connection_closed_msg&) {
      shut_down(self, "connection closed by the peer", true);
    },
    [=](frame_atom, const std::string& id_and_msgpack) {
      auto& st = self->state;
      if (st.closing || id_and_msgpack.size() < py2p::id_size)
        return;
      py2p::raw_message raw;
      raw.id = id_and_msgpack.substr(0, py2p::id_size);
      raw.msgpack = id_and_msgpack.substr(py2p::id_size);
      auto frame = st.session->frame(raw);
      // Shed while the send queue is full (the peer reads slower than we
      // write); flood frames never pass the hard cap.
      if (link_admit_outgoing(st, frame.size(), true, describe(self))
          == outgoing_verdict::write)
        write_raw(self, frame, "py2p_flood");
    },
    [=](py2p_tick_atom) {
      auto& st = self->state;
      if (st.closing)
        return;
      // py2p has no pings: a silent peer is not dropped, the timeout ignored.
      link_heartbeat(self, st);
      report_traffic(self);
      self->delayed_send(self, st.params.heartbeat_interval,
                         py2p_tick_atom::value);
    },
    [=](py2p_stall_atom) {
      auto& st = self->state;
      st.stall_armed = false;
      if (st.closing)
        return;
      auto buffered = st.session->buffered();
      if (st.stall.check(now_us(self), buffered, !st.ingress.paused())
            .expired) {
        shut_down(self, "frame incomplete for "
                          + std::to_string(st.stall.limit_us() / 1'000'000)
                          + " s (py2p's limit; " + std::to_string(buffered)
                          + " bytes held)");
        return;
      }
      watch_stall(self);
    },
    [=](goodbye_atom, int32_t reason, const std::string& detail) {
      shut_down(self,
                std::string{to_string(static_cast<pb::Goodbye::Reason>(reason))}
                  + " (" + detail + ")",
                reason == pb::Goodbye::SHUTDOWN
                  || reason == pb::Goodbye::DUPLICATE_CONNECTION);
    },
    [=](py2p_hs_atom) {
      auto& st = self->state;
      if (!st.attach_requested && !st.closing)
        shut_down(self, "no handshake within "
                          + std::to_string(st.params.handshake_timeout.count())
                          + " ms");
    },
  };
}

caf::behavior py2p_dialing_link_actor(py2p_link_ptr self, link_params params,
                                      std::shared_ptr<dial_slot> slot) {
  return dialing_behavior(self, std::move(slot),
                          [=](caf::io::connection_handle hdl) {
                            self->become(py2p_link_actor(self, hdl, params));
                          });
}

} // namespace syncmesh
