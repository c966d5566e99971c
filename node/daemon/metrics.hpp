#pragma once

#include <map>
#include <memory>
#include <string>

namespace prometheus {
class Registry;
} // namespace prometheus

namespace syncmesh {

namespace pb {
class NodeStats;
} // namespace pb

/// The node's Prometheus metrics: fed from NodeStats at each scrape.
class node_metrics {
public:
  node_metrics();
  ~node_metrics();

  /// Updates every metric from a fresh snapshot of the node's counters and
  /// returns the Prometheus text exposition.
  std::string scrape(const pb::NodeStats& stats, size_t watchers);

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace syncmesh
