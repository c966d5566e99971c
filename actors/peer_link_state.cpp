#include "actors/peer_link_state.hpp"

#include <algorithm>
#include <chrono>

namespace syncmesh {

hello_terms hello_terms_of(const config& cfg) {
  hello_terms terms;
  terms.max_key_size = cfg.max_key_size;
  terms.max_value_size = cfg.max_value_size;
  terms.max_value_depth = static_cast<uint32_t>(cfg.max_value_depth);
  terms.max_lease_duration_us = static_cast<uint64_t>(
    std::chrono::duration_cast<std::chrono::microseconds>(
      cfg.max_lease_duration)
      .count());
  return terms;
}

uint32_t negotiate_version(uint32_t min_a, uint32_t max_a, uint32_t min_b,
                           uint32_t max_b) noexcept {
  auto low = std::max(min_a, min_b);
  auto high = std::min(max_a, max_b);
  return low <= high ? high : 0;
}

pb::Envelope make_hello(const raw_node_id& self, const std::string& protocol_id,
                        const std::string& listen_host, uint16_t listen_port,
                        const hello_terms& terms) {
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
  hello->set_min_version(terms.min_version);
  hello->set_max_version(terms.max_version);
  hello->set_max_key_size(terms.max_key_size);
  hello->set_max_value_size(terms.max_value_size);
  hello->set_max_value_depth(terms.max_value_depth);
  hello->set_max_lease_duration_us(terms.max_lease_duration_us);
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

namespace {

/// "<name> <ours> here, <theirs> there" when the two differ, else empty.
std::string limit_difference(const char* name, uint64_t ours, uint64_t theirs) {
  if (ours == theirs)
    return {};
  return std::string{name} + " " + std::to_string(ours) + " here, "
         + std::to_string(theirs) + " there";
}

} // namespace

hello_verdict check_hello(const pb::Hello& theirs,
                          const std::string& protocol_id,
                          const raw_node_id& self, const hello_terms& terms) {
  auto ours = "versions " + std::to_string(terms.min_version) + " to "
              + std::to_string(terms.max_version);
  // Checked before the protocol ID: a syncmesh/2 ID always differs, and the
  // peer deserves to learn why.
  if (theirs.max_version() == 0)
    return {pb::Goodbye::PROTOCOL_MISMATCH,
            "peer speaks protocol '" + theirs.protocol_id()
              + "' (syncmesh/2 or older, no version range); this node speaks "
              + ours + " ('" + protocol_id + "'): upgrade the peer"};
  if (theirs.min_version() > theirs.max_version())
    return {pb::Goodbye::MALFORMED, "hello carries an empty version range"};
  if (theirs.protocol_id() != protocol_id)
    return {pb::Goodbye::PROTOCOL_MISMATCH, "protocol '" + theirs.protocol_id()
                                              + "' differs from ours ('"
                                              + protocol_id + "')"};
  auto version = negotiate_version(terms.min_version, terms.max_version,
                                   theirs.min_version(), theirs.max_version());
  if (version == 0)
    return {pb::Goodbye::VERSION_MISMATCH,
            ours + " here, " + std::to_string(theirs.min_version()) + " to "
              + std::to_string(theirs.max_version()) + " there"};
  for (auto diff :
       {limit_difference("max_key_size", terms.max_key_size,
                         theirs.max_key_size()),
        limit_difference("max_value_size", terms.max_value_size,
                         theirs.max_value_size()),
        limit_difference("max_value_depth", terms.max_value_depth,
                         theirs.max_value_depth()),
        limit_difference("max_lease_duration_us", terms.max_lease_duration_us,
                         theirs.max_lease_duration_us())})
    if (!diff.empty())
      return {pb::Goodbye::LIMITS_MISMATCH, std::move(diff)};
  if (theirs.node_id().empty() || theirs.node_id().size() > max_node_id_size)
    return {pb::Goodbye::MALFORMED, "hello carries no valid node ID"};
  if (theirs.node_id() == self)
    return {pb::Goodbye::SELF_CONNECTION, "connected to ourselves"};
  if (theirs.listen_port() > 65535)
    return {pb::Goodbye::MALFORMED, "hello carries an invalid port"};
  return {pb::Goodbye::UNSPECIFIED, {}, version};
}

bool prefer_new_connection(bool existing_outbound, bool new_outbound,
                           const raw_node_id& self, const raw_node_id& peer) {
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
    case pb::Goodbye::VERSION_MISMATCH:
      return "version mismatch";
    case pb::Goodbye::LIMITS_MISMATCH:
      return "limits mismatch";
    case pb::Goodbye::DUPLICATE_ID:
      return "duplicate node ID";
    case pb::Goodbye::TLS_REQUIRED:
      return "TLS required";
    case pb::Goodbye::IDENTITY_MISMATCH:
      return "identity mismatch";
    case pb::Goodbye::CLOCK_OFFSET:
      return "clock offset";
    default:
      return "unspecified";
  }
}

} // namespace syncmesh
