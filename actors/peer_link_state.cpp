#include "actors/peer_link_state.hpp"

#include <algorithm>

namespace syncmesh {

pb::Envelope make_hello(const node_id& self, const std::string& protocol_id,
                        const std::string& listen_host, uint16_t listen_port) {
  pb::Envelope env;
  env.set_origin(self);
  env.set_hops_left(1);
  auto* hello = env.mutable_hello();
  hello->set_protocol_id(protocol_id);
  hello->set_node_id(self);
  hello->set_listen_host(listen_host);
  hello->set_listen_port(listen_port);
  for (const auto* feature : link_features)
    hello->add_features(feature);
  return env;
}

pb::Envelope make_goodbye(pb::Goodbye::Reason reason, std::string detail) {
  pb::Envelope env;
  env.set_hops_left(1);
  auto* bye = env.mutable_goodbye();
  bye->set_reason(reason);
  bye->set_detail(std::move(detail));
  return env;
}

hello_verdict check_hello(const pb::Hello& theirs,
                          const std::string& protocol_id, const node_id& self) {
  if (theirs.protocol_id() != protocol_id)
    return {pb::Goodbye::PROTOCOL_MISMATCH, "protocol '" + theirs.protocol_id()
                                              + "' differs from ours ('"
                                              + protocol_id + "')"};
  if (theirs.node_id().empty() || theirs.node_id().size() > max_node_id_size)
    return {pb::Goodbye::MALFORMED, "hello carries no valid node ID"};
  if (theirs.node_id() == self)
    return {pb::Goodbye::SELF_CONNECTION, "connected to ourselves"};
  if (theirs.listen_port() > 65535)
    return {pb::Goodbye::MALFORMED, "hello carries an invalid port"};
  return {};
}

bool prefer_new_connection(bool existing_outbound, bool new_outbound,
                           const node_id& self, const node_id& peer) {
  if (existing_outbound == new_outbound)
    return false;
  const auto& smaller = self < peer ? self : peer;
  const auto& new_dialer = new_outbound ? self : peer;
  return new_dialer == smaller;
}

const char* to_string(pb::Goodbye::Reason reason) {
  switch (reason) {
    case pb::Goodbye::SHUTDOWN:
      return "shutdown";
    case pb::Goodbye::PROTOCOL_MISMATCH:
      return "protocol mismatch";
    case pb::Goodbye::FRAME_TOO_LARGE:
      return "frame too large";
    case pb::Goodbye::MALFORMED:
      return "malformed frame";
    case pb::Goodbye::HANDSHAKE_TIMEOUT:
      return "handshake timeout";
    case pb::Goodbye::DUPLICATE_CONNECTION:
      return "duplicate connection";
    case pb::Goodbye::SLOW_CONSUMER:
      return "slow consumer";
    case pb::Goodbye::UNEXPECTED:
      return "unexpected message";
    case pb::Goodbye::TOO_MANY_PEERS:
      return "too many peers";
    case pb::Goodbye::HEARTBEAT_TIMEOUT:
      return "heartbeat timeout";
    case pb::Goodbye::SELF_CONNECTION:
      return "self connection";
    case pb::Goodbye::DUPLICATE_ID:
      return "duplicate node ID";
    default:
      return "unspecified";
  }
}

uint64_t handshake_budget::enter(caf::actor_addr holder) {
  std::lock_guard<std::mutex> guard{mtx_};
  auto ticket = next_ticket_++;
  entries_[ticket].holder = std::move(holder);
  return ticket;
}

std::vector<handshake_budget::eviction> handshake_budget::hold(uint64_t ticket,
                                                               size_t bytes) {
  std::vector<eviction> result;
  std::lock_guard<std::mutex> guard{mtx_};
  auto self = entries_.find(ticket);
  if (self == entries_.end()) {
    // Evicted before it learned so: it must drop now.
    result.push_back(eviction{ticket, caf::actor_addr{}});
    return result;
  }
  total_ = total_ - self->second.bytes + bytes;
  self->second.bytes = bytes;
  while (total_ > cap_ && !entries_.empty()) {
    // The largest holder; among equals the newest (the larger ticket).
    auto victim = entries_.begin();
    for (auto i = entries_.begin(); i != entries_.end(); ++i)
      if (i->second.bytes >= victim->second.bytes)
        victim = i;
    total_ -= victim->second.bytes;
    ++evictions_;
    result.push_back(eviction{victim->first, victim->second.holder});
    entries_.erase(victim);
  }
  peak_ = std::max(peak_, total_);
  return result;
}

void handshake_budget::leave(uint64_t ticket) {
  std::lock_guard<std::mutex> guard{mtx_};
  auto i = entries_.find(ticket);
  if (i == entries_.end())
    return;
  total_ -= i->second.bytes;
  entries_.erase(i);
}

size_t handshake_budget::total() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return total_;
}

size_t handshake_budget::peak() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return peak_;
}

size_t handshake_budget::pending() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return entries_.size();
}

uint64_t handshake_budget::evictions() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return evictions_;
}

} // namespace syncmesh
