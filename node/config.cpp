#include "syncmesh/config.hpp"

#include <algorithm>

#include "messages/frame_codec.hpp"
#include "messages/py2p_codec.hpp"
#include "messages/value_proto.hpp"
#include "messages/version.hpp"

namespace syncmesh {

const char* to_string(durability_mode x) noexcept {
  switch (x) {
    case durability_mode::none:
      return "none";
    case durability_mode::batch:
      return "batch";
    case durability_mode::always:
      return "always";
  }
  return "?";
}

config config::for_py2p() {
  config result;
  result.wire = wire_kind::py2p;
  result.max_value_size = py2p_max_value_size;
  // A py2p store carries the value, its key, the sender's id and a few
  // small packets; the checksum and msgpack headers fit the slack.
  result.max_frame_size = result.max_value_size + result.max_key_size + 1024;
  result.max_send_queue
    = std::max(result.max_send_queue, result.max_frame_size * 4);
  result.ingress_window
    = std::max(result.ingress_window, result.max_frame_size);
  return result;
}

std::string config::validate() const {
  using std::to_string;
  if (tls.enabled()) {
    bool cert = !tls.cert_file.empty() || !tls.cert_pem.empty();
    bool key = !tls.key_file.empty() || !tls.key_pem.empty();
    bool ca = !tls.ca_file.empty() || !tls.ca_pem.empty();
    if (!cert || !key || !ca)
      return "tls needs a certificate, its key and the cluster CA (all "
             "three, or none for plain TCP)";
    if (wire == wire_kind::py2p)
      return "tls is not available in py2p wire mode (py2p and js2p speak "
             "no TLS)";
  }
  if (lease_duration.count() <= 0)
    return "lease_duration must be positive";
  if (max_clock_offset.count() <= 0
      || max_clock_offset > std::chrono::hours(24))
    return "max_clock_offset must be positive and at most 24 hours";
  if (effective_lease_margin().count() < 0)
    return "lease_margin must not be negative";
  // Lease ends are clamped to stamp + max_lease_duration; with stamps
  // below 2^62 µs, a maximum below 2^61 µs (~73,000 years) cannot overflow.
  if (max_lease_duration.count() <= 0
      || max_lease_duration > std::chrono::hours(24 * 365 * 1000))
    return "max_lease_duration must be positive and at most 1000 years";
  if (lease_duration > max_lease_duration)
    return "lease_duration must not exceed max_lease_duration";
  if (leasing && effective_lease_margin() * 2 >= lease_duration)
    return lease_margin
             ? "lease_margin must be less than half of lease_duration"
             : "max_clock_offset (the lease margin unless lease_margin is "
               "set) must be less than half of lease_duration";
  if (max_key_size == 0)
    return "max_key_size must be positive";
  if (expected_keys > (size_t{1} << 30))
    return "expected_keys must be at most 2^30";
  if (max_value_size == 0)
    return "max_value_size must be positive";
  if (max_frame_size < 1024 || max_frame_size > UINT32_MAX)
    return "max_frame_size must be between 1 KiB and 4 GiB";
  if (max_key_size + max_value_size + 1024 > max_frame_size)
    return "max_key_size + max_value_size (+1 KiB) must fit max_frame_size ("
           + to_string(max_frame_size) + " bytes)";
  if (max_value_depth == 0
      || max_value_depth > static_cast<size_t>(max_value_depth_ceiling))
    return "max_value_depth must be between 1 and "
           + to_string(max_value_depth_ceiling);
  if (tombstone_horizon.count() <= 0)
    return "tombstone_horizon must be positive";
  if (effective_max_clock_skew().count() < 0)
    return "max_clock_skew must not be negative";
  if (max_hops == 0)
    return "max_hops must be positive";
  if (node_id.size() > max_node_id_size)
    return "node_id exceeds " + to_string(max_node_id_size) + " bytes";
  if (wire == wire_kind::py2p && !node_id.empty()
      && !py2p::is_base58_id(node_id.raw()))
    return "node_id must be base58 text in py2p mode (peers send it as str)";
  if (request_timeout.count() <= 0)
    return "request_timeout must be positive";
  if (cluster_size > 100000)
    return "cluster_size must be at most 100000";
  if (confirm_timeout.count() <= 0 || max_confirm_timeout.count() <= 0
      || confirm_timeout > max_confirm_timeout)
    return "confirm_timeout must be positive and at most max_confirm_timeout";
  if (max_confirm_timeout > std::chrono::hours(24))
    return "max_confirm_timeout must be at most 24h";
  if (max_pending_confirms == 0 || max_confirm_waits == 0
      || max_confirm_wait_bytes == 0)
    return "max_pending_confirms, max_confirm_waits and "
           "max_confirm_wait_bytes must be positive";
  if (confirm_resend_interval.count() <= 0)
    return "confirm_resend_interval must be positive";
  if (durability_interval.count() <= 0)
    return "durability_interval must be positive";
  if (max_ae_outbox_bytes == 0)
    return "max_ae_outbox_bytes must be positive";
  if (max_send_queue < max_frame_size)
    return "max_send_queue must hold at least one frame (max_frame_size)";
  if (max_handshake_frame < 1024 || max_handshake_frame > max_frame_size)
    return "max_handshake_frame must be between 1 KiB and max_frame_size";
  if (max_pending_handshake_bytes < 2 * max_handshake_frame)
    return "max_pending_handshake_bytes must hold at least two handshake "
           "frames (2 * max_handshake_frame)";
  if (ingress_window < max_frame_size)
    return "ingress_window must hold at least one frame (max_frame_size)";
  // A probe slower than peer_timeout is harmless: a silent link is then
  // dropped by its heartbeat first, which lets the newcomer in at once.
  if (duplicate_probe_timeout.count() <= 0)
    return "duplicate_probe_timeout must be positive";
  if (heartbeat_interval.count() <= 0 || peer_timeout <= heartbeat_interval)
    return "peer_timeout must exceed a positive heartbeat_interval";
  if (handshake_timeout.count() <= 0 || dial_timeout.count() <= 0)
    return "handshake_timeout and dial_timeout must be positive";
  if (redial_min.count() <= 0 || redial_max < redial_min)
    return "redial_min must be positive and at most redial_max";
  if (anti_entropy_interval.count() <= 0)
    return "anti_entropy_interval must be positive";
  if (seen_set_size == 0 || seen_ttl.count() <= 0)
    return "seen_set_size and seen_ttl must be positive";
  if (!out_addr.empty()) {
    std::string host;
    uint16_t port = 0;
    if (!parse_host_port(out_addr, host, port))
      return "out_addr '" + out_addr + "' is not host:port";
  }
  if (max_received == 0 || max_messages_per_peer == 0)
    return "max_received and max_messages_per_peer must be positive";
  for (const auto& peer : peers) {
    std::string host;
    uint16_t port = 0;
    if (!parse_host_port(peer, host, port))
      return "peer '" + peer + "' is not host:port";
  }
  return {};
}

bool parse_host_port(const std::string& text, std::string& host, uint16_t& port,
                     bool allow_port_zero) {
  auto colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == text.size())
    return false;
  auto digits = text.substr(colon + 1);
  if (digits.size() > 5
      || digits.find_first_not_of("0123456789") != std::string::npos)
    return false;
  auto value = std::stoul(digits);
  if ((value == 0 && !allow_port_zero) || value > 65535)
    return false;
  host = text.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  port = static_cast<uint16_t>(value);
  return true;
}

std::string protocol_id(const config& cfg) {
  // py2p's SyncSocket: its default subnet is "sync", the leasing digit is
  // appended to the subnet and the transport is plain TCP.
  if (cfg.wire == wire_kind::py2p)
    return py2p::protocol_id(cfg.subnet.empty() ? "sync" : cfg.subnet,
                             cfg.leasing);
  // Readable on purpose: peers log it when they refuse each other. The
  // protocol version is negotiated in the hello (min/max_version), so it is
  // no longer part of the ID; a syncmesh/2 node ("syncmesh/2 subnet=...")
  // sees an ID that differs from its own and refuses us.
  return "syncmesh subnet=" + cfg.subnet
         + " leasing=" + (cfg.leasing ? "1" : "0");
}

} // namespace syncmesh
