#include "actors/peer_link_state.hpp"

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
    default:
      return "unspecified";
  }
}

} // namespace syncmesh
