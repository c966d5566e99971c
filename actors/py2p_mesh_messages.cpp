#include "actors/py2p_mesh_messages.hpp"

#include <algorithm>
#include <utility>

namespace syncmesh {

namespace {

py2p_mesh_inbound dropped(std::string reason, std::string detail) {
  py2p_mesh_inbound out;
  out.what = py2p_mesh_inbound::kind::dropped;
  out.drop_reason = std::move(reason);
  out.drop_detail = std::move(detail);
  return out;
}

} // namespace

py2p_mesh_inbound read_mesh_message(const py2p::message& msg,
                                    const std::string& message_id,
                                    const std::string& self,
                                    const py2p_message_limits& limits) {
  py2p_mesh_inbound out;
  // Renegotiations (and the reserved ping/pong) are link business.
  if (msg.type != py2p::flag::broadcast && msg.type != py2p::flag::whisper)
    return out;
  if (msg.sender == self)
    return out; // our own message, echoed by a peer
  auto sub = msg.sub_flag();
  const auto& payload = msg.payload;
  if (sub == py2p::flag::broadcast || sub == py2p::flag::whisper) {
    if (msg.sender.empty() || msg.sender.size() > 128)
      return dropped("invalid_sender", "message without a valid sender id");
    if (payload.size() - 1 > limits.max_packets)
      return dropped("too_many_packets",
                     "message with " + std::to_string(payload.size() - 1)
                       + " packets (at most "
                       + std::to_string(limits.max_packets) + ")");
    // Seconds beyond what microseconds in 64 bits hold are not a time.
    if (msg.time > UINT64_MAX / 1'000'000)
      return dropped("invalid_time", "message time out of range");
    for (size_t i = 1; i < payload.size(); ++i)
      if (auto err = validate(payload[i], limits.max_value_depth); !err.empty())
        return dropped("invalid_packet",
                       "message packet " + std::to_string(i - 1) + ": " + err);
    out.what = py2p_mesh_inbound::kind::user_message;
    auto& m = out.message;
    m.set_message_id(message_id);
    m.set_sender(msg.sender);
    m.set_time_us(msg.time * 1'000'000);
    for (size_t i = 1; i < payload.size(); ++i)
      *m.add_packets() = payload[i];
    // A whisper came to this node only (py2p whispers are never relayed).
    m.set_whisper(msg.type == py2p::flag::whisper);
    if (m.whisper())
      m.set_to(self);
    return out;
  }
  if (sub == py2p::flag::request && payload.size() == 3) {
    // `[0x08, '*']` (2 elements) is the peers request the link answers.
    auto request_id = py2p::as_bytes(payload[1]);
    auto target = py2p::as_bytes(payload[2]);
    if (!request_id || request_id->empty() || request_id->size() > 256
        || !target || target->empty() || target->size() > 128)
      return dropped("invalid_lookup",
                     "id lookup without a valid request id or target");
    out.what = py2p_mesh_inbound::kind::lookup;
    out.request_id = payload[1];
    out.target = payload[2];
    out.target_id = std::move(*target);
    return out;
  }
  if (sub == py2p::flag::response) {
    if (auto err = py2p::read_lookup_answer(payload, out.answer); !err.empty())
      return dropped("invalid_lookup_answer", err);
    out.what = py2p_mesh_inbound::kind::lookup_answer;
    return out;
  }
  return out;
}

// -- deferred replies ---------------------------------------------------------

bool py2p_deferred_replies::add(const std::string& request_id,
                                const std::string& target,
                                std::vector<pb::Value> packets,
                                uint64_t now_s) {
  expire(now_s);
  size_t bytes = request_id.size() + target.size();
  for (const auto& p : packets)
    bytes += p.ByteSizeLong();
  if (entries_.size() >= max_entries_ || bytes_ + bytes > max_bytes_)
    return false;
  entries_.push_back(
    entry{request_id, target, std::move(packets), bytes, now_s, false});
  bytes_ += bytes;
  return true;
}

std::optional<std::string>
py2p_deferred_replies::answered(const std::string& request_id, uint64_t now_s) {
  expire(now_s);
  for (auto& e : entries_) {
    if (e.request_id != request_id || e.answered)
      continue;
    e.answered = true;
    return e.target;
  }
  return std::nullopt;
}

std::vector<std::vector<pb::Value>>
py2p_deferred_replies::take(const std::string& target) {
  std::vector<std::vector<pb::Value>> out;
  auto keep
    = std::stable_partition(entries_.begin(), entries_.end(),
                            [&](const entry& e) { return e.target != target; });
  for (auto i = keep; i != entries_.end(); ++i) {
    bytes_ -= i->bytes;
    out.push_back(std::move(i->packets));
  }
  entries_.erase(keep, entries_.end());
  return out;
}

size_t py2p_deferred_replies::expire(uint64_t now_s) {
  size_t n = 0;
  // Entries are queued in time order (now_s never goes back much; a clock
  // step back only keeps entries a little longer).
  while (!entries_.empty() && entries_.front().created_s + ttl_s_ <= now_s) {
    bytes_ -= entries_.front().bytes;
    entries_.pop_front();
    ++n;
  }
  return n;
}

std::string py2p_request_id(const std::string& target,
                            const std::string& salt) {
  return py2p::base58_int(py2p::sha384(target + salt));
}

} // namespace syncmesh
