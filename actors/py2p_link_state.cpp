#include "actors/py2p_link_state.hpp"

#include <algorithm>

#include "syncmesh/pb/entry.pb.h"

namespace syncmesh {

// -- waterfall
// ------------------------------------------------------------------

void py2p_waterfall::expire(uint64_t now_s) {
  while (!by_expiry_.empty() && by_expiry_.begin()->first <= now_s) {
    ids_.erase(by_expiry_.begin()->second);
    by_expiry_.erase(by_expiry_.begin());
  }
}

void py2p_waterfall::remember(const std::string& id, uint64_t msg_time_s,
                              uint64_t now_s) {
  expire(now_s);
  if (ids_.count(id) > 0)
    return;
  // A future-dated message stays fresh longer; cap how long we keep it so
  // hostile times cannot pin entries (the size bound holds regardless).
  auto anchor = std::min(std::max(now_s, msg_time_s), now_s + 3600);
  if (ids_.size() >= capacity_) {
    ids_.erase(by_expiry_.begin()->second);
    by_expiry_.erase(by_expiry_.begin());
  }
  auto i = by_expiry_.emplace(anchor + ttl_s_, id);
  ids_.emplace(id, i);
}

py2p_waterfall::verdict py2p_waterfall::admit(const std::string& id,
                                              uint64_t msg_time_s,
                                              uint64_t now_s) {
  if (msg_time_s + py2p::max_age_s < now_s)
    return verdict::too_old;
  expire(now_s);
  if (ids_.count(id) > 0)
    return verdict::duplicate;
  remember(id, msg_time_s, now_s);
  return verdict::fresh;
}

// -- id types
// -------------------------------------------------------------------

void py2p_id_types::observe(const std::string& id, bool bin, bool first_hand) {
  if (id.empty() || capacity_ == 0)
    return;
  auto i = index_.find(id);
  if (i != index_.end()) {
    uses_.splice(uses_.end(), uses_, i->second.use);
    // A node's own word beats hearsay; hearsay never changes a known type.
    if (first_hand)
      i->second.bin = bin;
    return;
  }
  if (index_.size() >= capacity_) {
    index_.erase(uses_.front());
    uses_.pop_front();
    ++evictions_;
  }
  uses_.push_back(id);
  index_.emplace(id, known{bin, std::prev(uses_.end())});
}

bool py2p_id_types::is_bin(const std::string& id) {
  auto i = index_.find(id);
  if (i == index_.end())
    return false;
  uses_.splice(uses_.end(), uses_, i->second.use);
  return i->second.bin;
}

std::optional<bool> py2p_id_types::known_type(const std::string& id) {
  if (index_.find(id) == index_.end())
    return std::nullopt;
  return is_bin(id);
}

pb::Value py2p_id_types::value(const std::string& id) {
  return py2p::id_value(id, is_bin(id));
}

// -- recent catch-up
// --------------------------------------------------------------

void py2p_recent_catch_up::expire(uint64_t now_s) {
  while (!items_.empty() && items_.front().time_s + window_s_ < now_s) {
    bytes_ -= items_.front().id_and_msgpack.size();
    items_.pop_front();
  }
}

void py2p_recent_catch_up::add(item x) {
  expire(x.time_s);
  if (x.id_and_msgpack.size() > max_bytes_) {
    ++forgotten_;
    return;
  }
  bytes_ += x.id_and_msgpack.size();
  items_.push_back(std::move(x));
  while (bytes_ > max_bytes_) {
    bytes_ -= items_.front().id_and_msgpack.size();
    items_.pop_front();
    ++forgotten_;
  }
}

const std::deque<py2p_recent_catch_up::item>&
py2p_recent_catch_up::young(uint64_t now_s) {
  expire(now_s);
  return items_;
}

// -- session
// --------------------------------------------------------------------

py2p_session::py2p_session(py2p_link_settings settings)
    : cfg_(std::move(settings)), decoder_(cfg_.max_frame_size) {}

std::string py2p_session::handshake_frame(uint64_t now_s) const {
  auto payload = py2p::handshake_payload(cfg_.self, cfg_.protocol_id, cfg_.host,
                                         cfg_.port, py2p::supported_methods());
  auto raw = py2p::make_raw(
    py2p::build(py2p::flag::whisper, cfg_.self, now_s, payload));
  // Handshakes always travel uncompressed: the peer may not know our list.
  return py2p::frame(raw, {}, cfg_.max_frame_size);
}

std::string py2p_session::whisper_frame(const std::vector<pb::Value>& payload,
                                        uint64_t now_s) const {
  return frame(py2p::make_raw(
    py2p::build(py2p::flag::whisper, cfg_.self, now_s, payload)));
}

std::string py2p_session::frame(const py2p::raw_message& msg) const {
  return py2p::frame(msg, peer_methods_, cfg_.max_frame_size);
}

std::string py2p_session::feed(std::string_view bytes,
                               std::vector<py2p_inbound>& out) {
  push(bytes);
  for (;;) {
    auto result = next(out);
    if (result.need_more || !result.error.empty())
      return result.error;
  }
}

void py2p_session::push(std::string_view bytes) {
  decoder_.feed(bytes);
}

py2p_session::step py2p_session::next(std::vector<py2p_inbound>& out) {
  std::string body;
  switch (decoder_.next(body)) {
    case frame_status::need_more:
      return {true, {}};
    case frame_status::too_large:
      return {false,
              "frame exceeds " + std::to_string(decoder_.max_frame_size())
                + " bytes"
                + (handshake_received() ? "" : " (before the handshake)"),
              true};
    case frame_status::ok:
      break;
  }
  py2p::raw_message raw;
  bool too_large = false;
  if (auto err = py2p::open_frame(body, peer_methods_, cfg_.max_frame_size, raw,
                                  &too_large);
      !err.empty())
    return {false, err, too_large};
  return {false, classify(std::move(raw), out)};
}

std::string py2p_session::classify(py2p::raw_message&& raw,
                                   std::vector<py2p_inbound>& out) {
  py2p_inbound in;
  if (auto err = py2p::parse(raw.msgpack, in.msg); !err.empty())
    return err;
  in.raw = std::move(raw);
  auto sub = in.msg.sub_flag();
  const auto& payload = in.msg.payload;
  if (in.msg.type == py2p::flag::renegotiate) {
    // Handled here, never relayed. We adopt a new compression list and never
    // answer (js2p throws on answers); a resend request is ignored because
    // we never keep old messages around (and py2p's resend is wrong).
    if (sub == py2p::flag::compression && payload.size() == 2
        && payload[1].has_list()) {
      peer_methods_.clear();
      for (const auto& m : payload[1].list().items())
        if (m.kind_case() == pb::Value::kInt64 && m.int64() >= 0
            && m.int64() < 256 && peer_methods_.size() < 16)
          peer_methods_.push_back(static_cast<uint8_t>(m.int64()));
    }
    return {};
  }
  if (sub == py2p::flag::handshake && payload.size() == 5) {
    if (auto err = py2p::read_handshake(payload, in.hello); !err.empty())
      return err;
    if (in.hello.protocol_id != cfg_.protocol_id)
      return "protocol id '" + in.hello.protocol_id + "' differs from ours ('"
             + cfg_.protocol_id + "')";
    if (in.hello.id == cfg_.self)
      return "connected to ourselves";
    // Repeated handshakes (js2p sends two) are idempotent; a peer that
    // changes its id mid-connection is not one peer.
    if (!peer_id_.empty() && peer_id_ != in.hello.id)
      return "peer changed its id during the connection";
    peer_id_ = in.hello.id;
    peer_id_bin_ = payload[1].kind_case() == pb::Value::kBytes;
    peer_methods_ = in.hello.methods;
    in.what = py2p_inbound::kind::handshake;
  } else if (sub == py2p::flag::peers) {
    if (auto err = py2p::read_peers(payload, in.peers); !err.empty())
      return err;
    in.what = py2p_inbound::kind::peers;
  } else if (sub == py2p::flag::store || sub == py2p::flag::delta) {
    if (auto err = py2p::read_store(payload, in.store); !err.empty())
      return err;
    in.what = py2p_inbound::kind::write;
  } else if (sub == py2p::flag::request && payload.size() == 2
             && py2p::as_bytes(payload[1]) == std::string{"*"}) {
    in.what = py2p_inbound::kind::request_peers;
  }
  out.push_back(std::move(in));
  return {};
}

// -- translation
// ----------------------------------------------------------------

std::string to_write_record(const py2p::store_info& store,
                            const std::string& sender, uint64_t time_s,
                            pb::WriteRecord& out) {
  const auto& owner = store.initial_sync ? store.owner : sender;
  uint64_t ts = store.initial_sync ? store.timestamp : time_s;
  // Seconds beyond what microseconds in 64 bits hold are not a time.
  if (ts > UINT64_MAX / 1'000'000 - py2p::lease_s)
    return "timestamp out of range";
  out.Clear();
  out.set_key(store.key);
  version v;
  v.claim_us = ts * 1'000'000;
  v.claimer = owner;
  v.stamp.wall_us = ts * 1'000'000;
  v.stamp.node = owner;
  v.lease_end_us = (ts + py2p::lease_s) * 1'000'000;
  to_proto(v, out.mutable_version());
  if (store.delta) {
    *out.mutable_fields() = store.value.map();
  } else if (store.value.kind_case() == pb::Value::kNil) {
    out.mutable_tombstone();
  } else {
    *out.mutable_value() = store.value;
  }
  return {};
}

std::string local_write_message(const pb::WriteRecord& rec,
                                const raw_node_id& self) {
  auto time_s = rec.version().stamp().wall_us() / 1'000'000;
  std::vector<pb::Value> payload;
  switch (rec.op_case()) {
    case pb::WriteRecord::kFields: {
      pb::Value fields;
      *fields.mutable_map() = rec.fields();
      payload = py2p::delta_payload(rec.key(), fields);
      break;
    }
    case pb::WriteRecord::kTombstone: {
      pb::Value nil;
      nil.mutable_nil();
      payload = py2p::store_payload(rec.key(), nil);
      break;
    }
    default:
      payload = py2p::store_payload(rec.key(), rec.value());
  }
  return py2p::build(py2p::flag::broadcast, self, time_s, payload);
}

} // namespace syncmesh
