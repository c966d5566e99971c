#include "sim/local_write_checker.hpp"

#include <sstream>
#include <utility>

namespace syncmesh::sim {

namespace {

/// Events kept per key and node: far more than one instant produces, so the
/// event of a write is still there when its acknowledgement is checked.
constexpr size_t max_events_per_key = 256;

/// Acknowledged writes kept per key and node for issue-order.
constexpr size_t max_acks_per_key = 32;

} // namespace

std::string show_version(const version& v) {
  std::ostringstream out;
  out << "(e" << v.epoch << " claim=" << v.claim_us % 100'000'000 << "@"
      << v.claimer << " t=" << v.stamp.wall_us % 100'000'000 << "."
      << v.stamp.counter << "@" << v.stamp.node
      << " end=" << v.lease_end_us % 100'000'000 << ")";
  return out.str();
}

local_write_checker::local_write_checker(size_t nodes, settings cfg)
    : cfg_(cfg), nodes_(nodes) {}

void local_write_checker::forget(size_t node) {
  nodes_.at(node) = node_view{};
}

void local_write_checker::report(const std::string& invariant,
                                 const std::string& key, std::string detail) {
  findings_.push_back(finding{invariant, std::move(detail), key});
}

void local_write_checker::on_event(size_t node, const std::string& key,
                                   bool live, const version& v,
                                   uint64_t wall_us) {
  auto& stream = nodes_.at(node).streams[key];
  if (!stream.events.empty()) {
    const auto& last = stream.events.back();
    // An event carries the entry's newest version, which only grows (it
    // stays when an older field write changes the visible value), except
    // when a tombstone was purged after the horizon and an older copy came
    // back (the documented envelope of purging).
    bool purged
      = !last.live
        && wall_us > last.ver.stamp.wall_us + cfg_.tombstone_horizon_us;
    if (newer(last.ver, v) && !purged)
      report("event-order", key,
             "n" + std::to_string(node) + " published "
               + (live ? "an update " : "a delete ") + show_version(v)
               + " after " + (last.live ? "an update " : "a delete ")
               + show_version(last.ver) + ", which is newer");
  }
  stream.events.push_back(observed{live, v, wall_us});
  if (stream.events.size() > max_events_per_key) {
    stream.events.pop_front();
    stream.truncated = true;
  }
}

void local_write_checker::on_lease_lost(size_t node, const raw_node_id& self,
                                        const std::string& key) {
  auto& streams = nodes_.at(node).streams;
  auto it = streams.find(key);
  if (it == streams.end() || it->second.events.empty()) {
    report("lease-lost-order", key,
           "n" + std::to_string(node) + " published lease_lost before any "
             + "update of the key");
    return;
  }
  const auto& last = it->second.events.back();
  if (!last.live || last.ver.claimer != self)
    report("lease-lost-order", key,
           "n" + std::to_string(node) + " published lease_lost, but its "
             + "latest event before it was "
             + (last.live ? "an update " : "a delete ") + show_version(last.ver)
             + ", not one that made it the owner");
}

uint64_t local_write_checker::issue(size_t node, const std::string& key) {
  return nodes_.at(node).next_seq[key]++;
}

void local_write_checker::on_acked(size_t node, const raw_node_id& self,
                                   const std::string& key, uint64_t seq,
                                   const version& v,
                                   const std::optional<version>& store_at_ack) {
  auto& view = nodes_.at(node);
  auto name = "n" + std::to_string(node);
  // read-your-writes: visible when the acknowledgement arrived.
  if (!store_at_ack)
    report("read-your-writes", key,
           name + " acknowledged " + show_version(v)
             + " but its store had no entry for the key at that moment");
  else if (newer(v, *store_at_ack))
    report("read-your-writes", key,
           name + " acknowledged " + show_version(v)
             + " but its store held only the older "
             + show_version(*store_at_ack) + " at that moment");
  // no-silent-drop: the store applied exactly this write.
  auto& stream = view.streams[key];
  const observed* applied = nullptr;
  const observed* before = nullptr;
  for (size_t k = 0; k < stream.events.size(); ++k)
    if (compare(stream.events[k].ver, v) == 0) {
      applied = &stream.events[k];
      before = k > 0 ? &stream.events[k - 1] : nullptr;
      break;
    }
  if (applied == nullptr) {
    report("no-silent-drop", key,
           name + " acknowledged " + show_version(v)
             + " but its store never published a change with that version "
               "(the write was not applied)");
  } else if (before != nullptr && !newer(v, before->ver)) {
    report("no-silent-drop", key,
           name + " applied " + show_version(v) + " over the newer "
             + show_version(before->ver));
  }
  // lease-decision: taking the key from another claimer needs its lease to
  // have ended (plus the margin) when the write was decided, which is the
  // write's claim time.
  if (cfg_.leasing && applied != nullptr && before != nullptr && before->live
      && !before->ver.claimer.empty() && before->ver.claimer != self
      && v.claimer == self
      && v.claim_us < before->ver.lease_end_us + cfg_.lease_margin_us)
    report(
      "lease-decision", key,
      name + " wrote " + show_version(v) + " at claim time "
        + std::to_string(v.claim_us % 100'000'000) + " over the live lease of "
        + show_version(before->ver) + " (ends at "
        + std::to_string(before->ver.lease_end_us % 100'000'000)
        + " plus a margin of " + std::to_string(cfg_.lease_margin_us) + " µs)");
  // issue-order: versions increase with the issue number.
  auto& acks = view.acks[key];
  for (const auto& a : acks) {
    bool in_order = a.seq < seq ? newer(v, a.ver) : newer(a.ver, v);
    if (!in_order)
      report("issue-order", key,
             name + " write #" + std::to_string(seq) + " " + show_version(v)
               + (a.seq < seq ? " was issued after" : " was issued before")
               + " write #" + std::to_string(a.seq) + " " + show_version(a.ver)
               + " but is not " + (a.seq < seq ? "newer" : "older"));
  }
  acks.push_back(acked{seq, v});
  if (acks.size() > max_acks_per_key)
    acks.pop_front();
}

std::vector<finding> local_write_checker::take_findings() {
  auto result = std::move(findings_);
  findings_.clear();
  return result;
}

} // namespace syncmesh::sim
