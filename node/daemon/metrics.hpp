#pragma once

#include <map>
#include <memory>
#include <string>

namespace prometheus {
class Registry;
} // namespace prometheus

namespace syncmesh {

namespace pb {
class NodeInfo;
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

  /// Like scrape(stats, watchers), with the clock offset of every peer and
  /// the clock fence from `info` (gauges syncmesh_clock_offset_seconds and
  /// syncmesh_clock_offset_uncertainty_seconds by peer, syncmesh_clock_fenced).
  std::string scrape(const pb::NodeStats& stats, size_t watchers,
                     const pb::NodeInfo& info);

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace syncmesh
