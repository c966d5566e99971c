#include "syncmesh/config.hpp"

#include "messages/frame_codec.hpp"
#include "messages/version.hpp"

namespace syncmesh {

std::string config::validate() const {
  using std::to_string;
  if (lease_duration.count() <= 0)
    return "lease_duration must be positive";
  if (lease_margin.count() < 0)
    return "lease_margin must not be negative";
  if (leasing && lease_margin * 2 >= lease_duration)
    return "lease_margin must be less than half of lease_duration";
  if (max_key_size == 0)
    return "max_key_size must be positive";
  if (max_value_size == 0)
    return "max_value_size must be positive";
  if (max_frame_size < 1024 || max_frame_size > UINT32_MAX)
    return "max_frame_size must be between 1 KiB and 4 GiB";
  if (max_key_size + max_value_size + 1024 > max_frame_size)
    return "max_key_size + max_value_size (+1 KiB) must fit max_frame_size ("
           + to_string(max_frame_size) + " bytes)";
  if (tombstone_horizon.count() <= 0)
    return "tombstone_horizon must be positive";
  if (max_clock_skew.count() < 0)
    return "max_clock_skew must not be negative";
  if (max_hops == 0)
    return "max_hops must be positive";
  if (node_id.size() > max_node_id_size)
    return "node_id exceeds " + to_string(max_node_id_size) + " bytes";
  if (request_timeout.count() <= 0)
    return "request_timeout must be positive";
  return {};
}

std::string protocol_id(const config& cfg) {
  // Readable on purpose: peers log it when they refuse each other.
  return "syncmesh/1 subnet=" + cfg.subnet
         + " leasing=" + (cfg.leasing ? "1" : "0");
}

} // namespace syncmesh
