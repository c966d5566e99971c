#include "node/daemon/metrics.hpp"

#include <mutex>

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include "messages/version.hpp"
#include "syncmesh/pb/requests.pb.h"

namespace syncmesh {

using prometheus::BuildCounter;
using prometheus::BuildGauge;
using prometheus::BuildHistogram;

struct node_metrics::impl {
  std::mutex mtx;
  std::shared_ptr<prometheus::Registry> registry
    = std::make_shared<prometheus::Registry>();
  // Node counters only grow; the metric advances by what grew since the
  // last scrape.
  std::map<prometheus::Counter*, double> last;

  prometheus::Family<prometheus::Counter>& writes
    = BuildCounter()
        .Name("syncmesh_writes_total")
        .Help("Writes applied to the store, by origin")
        .Register(*registry);
  prometheus::Family<prometheus::Counter>& conflicts
    = BuildCounter()
        .Name("syncmesh_lease_conflicts_total")
        .Help("Local writes refused because another node held the lease")
        .Register(*registry);
  prometheus::Family<prometheus::Counter>& leases_lost
    = BuildCounter()
        .Name("syncmesh_leases_lost_total")
        .Help("Leases of this node taken over by another node")
        .Register(*registry);
  prometheus::Family<prometheus::Counter>& lease_clamps
    = BuildCounter()
        .Name("syncmesh_lease_clamps_total")
        .Help("Records whose lease end was clamped to stamp + max lease")
        .Register(*registry);
  prometheus::Family<prometheus::Counter>& records
    = BuildCounter()
        .Name("syncmesh_write_records_total")
        .Help("Write records through the router, by direction")
        .Register(*registry);
  prometheus::Family<prometheus::Counter>& frames
    = BuildCounter()
        .Name("syncmesh_flood_frames_total")
        .Help("Frames built for flooding writes")
        .Register(*registry);
  prometheus::Family<prometheus::Counter>& bytes
    = BuildCounter()
        .Name("syncmesh_flood_bytes_total")
        .Help("Bytes of frames built for flooding writes")
        .Register(*registry);
  prometheus::Family<prometheus::Counter>& deliveries
    = BuildCounter()
        .Name("syncmesh_frame_deliveries_total")
        .Help("Frames handed to peer links (one per frame and peer)")
        .Register(*registry);
  prometheus::Family<prometheus::Counter>& duplicates
    = BuildCounter()
        .Name("syncmesh_duplicates_dropped_total")
        .Help("Remote writes that changed nothing (duplicates, older versions)")
        .Register(*registry);
  prometheus::Family<prometheus::Counter>& rejected
    = BuildCounter()
        .Name("syncmesh_rejected_envelopes_total")
        .Help("Envelopes from peers refused as malformed")
        .Register(*registry);
  prometheus::Family<prometheus::Counter>& skipped
    = BuildCounter()
        .Name("syncmesh_skipped_records_total")
        .Help("Write records from peers skipped for breaking a value limit, "
              "by path (write: live writes and py2p; anti_entropy)")
        .Register(*registry);
  prometheus::Family<prometheus::Counter>& py2p_dropped
    = BuildCounter()
        .Name("syncmesh_py2p_messages_dropped_total")
        .Help("py2p mode: user messages and id lookups from py2p peers "
              "dropped, and replies to non-neighbours given up, by reason")
        .Register(*registry);
  prometheus::Family<prometheus::Counter>& frame_errors
    = BuildCounter()
        .Name("syncmesh_link_closes_total")
        .Help("Peer links closed, by goodbye reason")
        .Register(*registry);
  prometheus::Family<prometheus::Counter>& link_bounds
    = BuildCounter()
        .Name("syncmesh_link_bounds_total")
        .Help("Peer-link bounds that dropped, paused or refused something, "
              "by kind")
        .Register(*registry);
  prometheus::Family<prometheus::Counter>& held
    = BuildCounter()
        .Name("syncmesh_held_writes_total")
        .Help("Remote writes held because their clock ran ahead")
        .Register(*registry);
  prometheus::Family<prometheus::Counter>& ae
    = BuildCounter()
        .Name("syncmesh_anti_entropy_total")
        .Help("Anti-entropy rounds started, entries sent or repaired, set "
              "sketches sent and peer sketches that did not decode")
        .Register(*registry);
  prometheus::Family<prometheus::Counter>& confirm
    = BuildCounter()
        .Name("syncmesh_confirm_total")
        .Help("Confirmed writes made here (confirmed, unconfirmed, "
              "superseded, refused, queries, answers) and queries of other "
              "nodes held here (waits_dropped, waits_expired, "
              "answers_sent)")
        .Register(*registry);
  prometheus::Family<prometheus::Counter>& link_messages
    = BuildCounter()
        .Name("syncmesh_link_messages_total")
        .Help("Messages through peer links, by direction and kind")
        .Register(*registry);
  prometheus::Family<prometheus::Counter>& link_bytes
    = BuildCounter()
        .Name("syncmesh_link_bytes_total")
        .Help("Bytes through peer links, by direction and kind")
        .Register(*registry);
  prometheus::Family<prometheus::Gauge>& gauges
    = BuildGauge()
        .Name("syncmesh_state")
        .Help("Current keys, entries, tombstones, peers and watchers")
        .Register(*registry);
  prometheus::Family<prometheus::Gauge>& clock_offset
    = BuildGauge()
        .Name("syncmesh_clock_offset_seconds")
        .Help("Each peer's clock minus ours, from the lowest-RTT recent "
              "heartbeat (peers beyond the bound stay until measured within)")
        .Register(*registry);
  prometheus::Family<prometheus::Gauge>& clock_uncertainty
    = BuildGauge()
        .Name("syncmesh_clock_offset_uncertainty_seconds")
        .Help("Half the RTT of the sample each peer's offset comes from")
        .Register(*registry);
  prometheus::Family<prometheus::Counter>& storage_events
    = BuildCounter()
        .Name("syncmesh_storage_total")
        .Help("Durable storage (--data-dir): engine batches written, fsyncs "
              "and bytes written, by kind")
        .Register(*registry);
  prometheus::Family<prometheus::Gauge>& storage_gauges
    = BuildGauge()
        .Name("syncmesh_storage")
        .Help("Durable storage: disk_bytes (the engine's estimate), "
              "file_bytes (the data dir's files), loaded_entries and load_ms "
              "of this start, the engine's memory (memtable_bytes, "
              "block_cache_bytes, table_reader_bytes, engine_memory_bytes) "
              "and write_amplification (bytes the engine wrote to disk over "
              "bytes the store handed it)")
        .Register(*registry);
  prometheus::Family<prometheus::Histogram>& flush
    = BuildHistogram()
        .Name("syncmesh_storage_flush_seconds")
        .Help("Durable storage: how long each engine write (op=write, one "
              "per group of steps) and each fsync (op=sync) took")
        .Register(*registry);
  /// One flush histogram and what it had at the last scrape.
  struct flush_series {
    prometheus::Histogram* hist = nullptr;
    std::vector<uint64_t> last_counts;
    uint64_t last_sum_us = 0;
  };
  flush_series flush_write;
  flush_series flush_sync;

  /// Advances `series` (created on first use, labelled `op`) to `h`.
  void observe(flush_series& series, const char* op,
               const pb::LatencyHistogram& h) {
    if (h.counts_size() != h.bounds_us_size() + 1)
      return; // not filled in
    if (series.hist == nullptr) {
      prometheus::Histogram::BucketBoundaries bounds;
      for (auto us : h.bounds_us())
        bounds.push_back(static_cast<double>(us) / 1e6);
      series.hist = &flush.Add({{"op", op}}, bounds);
      series.last_counts.assign(static_cast<size_t>(h.counts_size()), 0);
    }
    std::vector<double> increments;
    for (int i = 0; i < h.counts_size(); ++i) {
      auto& last = series.last_counts[static_cast<size_t>(i)];
      increments.push_back(static_cast<double>(h.counts(i) - last));
      last = h.counts(i);
    }
    series.hist->ObserveMultiple(
      increments, static_cast<double>(h.sum_us() - series.last_sum_us) / 1e6);
    series.last_sum_us = h.sum_us();
  }
  prometheus::Family<prometheus::Gauge>& clock_fenced
    = BuildGauge()
        .Name("syncmesh_clock_fenced")
        .Help("1 while this node's clock is beyond --max-clock-offset from a "
              "majority of the nodes it measures (local writes refused)")
        .Register(*registry);
  prometheus::Family<prometheus::Counter>& clock_events
    = BuildCounter()
        .Name("syncmesh_clock_total")
        .Help("Clock discipline: local writes refused by the fence, peers "
              "refused or cut for their clock, times the fence went up")
        .Register(*registry);
  /// Peers with offset gauges, to remove those no longer measured.
  std::map<std::string, std::pair<prometheus::Gauge*, prometheus::Gauge*>>
    offset_gauges;
  prometheus::Family<prometheus::Histogram>& delay
    = BuildHistogram()
        .Name("syncmesh_propagation_delay_seconds")
        .Help("From a remote write's stamp to its application here")
        .Register(*registry);
  prometheus::Histogram* delay_hist = nullptr;
  std::vector<uint64_t> last_delay_counts;
  double last_delay_sum = 0;

  void advance(prometheus::Family<prometheus::Counter>& family,
               const std::map<std::string, std::string>& labels, uint64_t now) {
    auto& c = family.Add(labels);
    auto& prev = last[&c];
    if (static_cast<double>(now) > prev) {
      c.Increment(static_cast<double>(now) - prev);
      prev = static_cast<double>(now);
    }
  }
};

node_metrics::node_metrics() : impl_(std::make_unique<impl>()) {}

node_metrics::~node_metrics() = default;

std::string node_metrics::scrape(const pb::NodeStats& s, size_t watchers) {
  std::lock_guard<std::mutex> guard{impl_->mtx};
  auto& m = *impl_;
  const auto& r = s.router();
  const auto& l = s.lease();
  const auto& st = s.store();
  m.advance(m.writes, {{"origin", "local"}}, st.local_applied());
  m.advance(m.writes, {{"origin", "remote"}}, st.remote_applied());
  m.advance(m.conflicts, {}, l.refused_writes());
  m.advance(m.leases_lost, {}, l.leases_lost());
  m.advance(m.lease_clamps, {}, l.lease_clamps());
  m.advance(m.clock_events, {{"kind", "refused_writes"}},
            l.clock_refused_writes());
  m.advance(m.clock_events, {{"kind", "refused_peers"}},
            l.clock_refused_peers());
  m.advance(m.clock_events, {{"kind", "fence_raised"}}, l.clock_fence_raised());
  m.clock_fenced.Add({}).Set(static_cast<double>(l.clock_fenced()));
  if (st.has_storage()) {
    const auto& d = st.storage();
    m.advance(m.storage_events, {{"kind", "writes"}}, d.writes());
    m.advance(m.storage_events, {{"kind", "syncs"}}, d.syncs());
    m.advance(m.storage_events, {{"kind", "bytes"}}, d.bytes_written());
    m.storage_gauges.Add({{"what", "disk_bytes"}})
      .Set(static_cast<double>(d.disk_bytes()));
    m.storage_gauges.Add({{"what", "loaded_entries"}})
      .Set(static_cast<double>(d.entries_loaded()));
    m.storage_gauges.Add({{"what", "load_ms"}})
      .Set(static_cast<double>(d.load_ms()));
    m.advance(m.storage_events, {{"kind", "wal_bytes"}}, d.engine_wal_bytes());
    m.advance(m.storage_events, {{"kind", "flush_bytes"}},
              d.engine_flush_bytes());
    m.advance(m.storage_events, {{"kind", "compaction_bytes"}},
              d.engine_compaction_bytes());
    m.advance(m.storage_events, {{"kind", "stall_us"}}, d.engine_stall_us());
    m.advance(m.storage_events, {{"kind", "compactions"}}, d.compactions());
    m.storage_gauges.Add({{"what", "file_bytes"}})
      .Set(static_cast<double>(d.file_bytes()));
    m.storage_gauges.Add({{"what", "memtable_bytes"}})
      .Set(static_cast<double>(d.memtable_bytes()));
    m.storage_gauges.Add({{"what", "block_cache_bytes"}})
      .Set(static_cast<double>(d.block_cache_bytes()));
    m.storage_gauges.Add({{"what", "table_reader_bytes"}})
      .Set(static_cast<double>(d.table_reader_bytes()));
    m.storage_gauges.Add({{"what", "engine_memory_bytes"}})
      .Set(static_cast<double>(d.memtable_bytes() + d.block_cache_bytes()
                               + d.table_reader_bytes()));
    auto engine_written = d.engine_wal_bytes() + d.engine_flush_bytes()
                          + d.engine_compaction_bytes();
    m.storage_gauges.Add({{"what", "write_amplification"}})
      .Set(d.bytes_written() == 0 ? 0.0
                                  : static_cast<double>(engine_written)
                                      / static_cast<double>(d.bytes_written()));
    m.observe(m.flush_write, "write", d.write_latency());
    m.observe(m.flush_sync, "sync", d.sync_latency());
  }
  m.advance(m.records, {{"direction", "in"}}, r.records_in());
  // py2p mode: initial-sync entries handed on to the other peers.
  m.advance(m.records, {{"direction", "py2p_catch_up"}},
            r.py2p_catch_up_relayed());
  m.advance(m.records, {{"direction", "out"}}, r.records_out());
  m.advance(m.frames, {}, r.frames_out());
  m.advance(m.bytes, {}, r.bytes_out());
  m.advance(m.deliveries, {}, r.deliveries());
  m.advance(m.duplicates, {}, st.remote_ignored());
  m.advance(m.rejected, {}, r.rejected_in());
  m.advance(m.skipped, {{"path", "write"}}, r.skipped_records());
  m.advance(m.skipped, {{"path", "anti_entropy"}}, st.ae_records_skipped());
  const auto& t = r.traffic();
  for (const auto& [kind, n] : t.messages_in())
    m.advance(m.link_messages, {{"direction", "in"}, {"kind", kind}}, n);
  for (const auto& [kind, n] : t.bytes_in())
    m.advance(m.link_bytes, {{"direction", "in"}, {"kind", kind}}, n);
  for (const auto& [kind, n] : t.messages_out())
    m.advance(m.link_messages, {{"direction", "out"}, {"kind", kind}}, n);
  for (const auto& [kind, n] : t.bytes_out())
    m.advance(m.link_bytes, {{"direction", "out"}, {"kind", kind}}, n);
  for (const auto& [reason, n] : r.frame_errors())
    m.advance(m.frame_errors, {{"reason", reason}}, n);
  m.advance(m.link_bounds, {{"kind", "handshake_evictions"}},
            r.handshake_evictions());
  m.advance(m.link_bounds, {{"kind", "ingress_pauses"}}, r.ingress_pauses());
  m.advance(m.link_bounds, {{"kind", "flood_frames_shed"}},
            r.flood_frames_shed());
  m.advance(m.link_bounds, {{"kind", "duplicate_probes"}},
            r.duplicate_probes());
  m.advance(m.link_bounds, {{"kind", "duplicates_refused"}},
            r.duplicates_refused());
  m.advance(m.link_bounds, {{"kind", "duplicates_replaced"}},
            r.duplicates_replaced());
  m.advance(m.link_bounds, {{"kind", "announced_links_evicted"}},
            r.announced_links_evicted());
  // py2p mode: ID types forgotten to keep their table's bound.
  m.advance(m.link_bounds, {{"kind", "py2p_id_types_evicted"}},
            r.py2p_id_types_evicted());
  // Peer TLS (issue 16): writes refused because a peer wrote as another.
  m.advance(m.link_bounds, {{"kind", "forged_writes_refused"}},
            r.forged_writes_refused());
  m.advance(m.link_bounds, {{"kind", "forged_self_records"}},
            st.forged_self_records());
  for (const auto& [reason, n] : r.py2p_messages_dropped())
    m.advance(m.py2p_dropped, {{"reason", reason}}, n);
  m.advance(m.link_bounds, {{"kind", "py2p_lookups_answered"}},
            r.py2p_lookups_answered());
  m.advance(m.held, {}, l.held_records());
  const auto& c = s.confirm();
  m.advance(m.confirm, {{"kind", "confirmed"}}, c.confirmed());
  m.advance(m.confirm, {{"kind", "unconfirmed"}}, c.unconfirmed());
  m.advance(m.confirm, {{"kind", "superseded"}}, c.superseded());
  m.advance(m.confirm, {{"kind", "refused"}}, c.refused());
  m.advance(m.confirm, {{"kind", "queries"}}, c.queries());
  m.advance(m.confirm, {{"kind", "answers"}}, c.answers());
  m.advance(m.confirm, {{"kind", "waits_dropped"}}, st.confirm_waits_dropped());
  m.advance(m.confirm, {{"kind", "waits_expired"}}, st.confirm_waits_expired());
  m.advance(m.confirm, {{"kind", "answers_sent"}}, st.confirm_answers());
  m.advance(m.ae, {{"kind", "rounds"}}, st.ae_rounds());
  m.advance(m.ae, {{"kind", "entries_sent"}}, st.ae_entries_sent());
  m.advance(m.ae, {{"kind", "entries_repaired"}}, st.ae_entries_repaired());
  m.advance(m.ae, {{"kind", "sketches"}}, st.ae_sketches());
  m.advance(m.ae, {{"kind", "sketch_failures"}}, st.ae_sketch_failures());
  m.advance(m.ae, {{"kind", "summaries_dropped"}}, st.ae_summaries_dropped());
  m.advance(m.ae, {{"kind", "items_dropped"}}, st.ae_items_dropped());
  m.advance(m.ae, {{"kind", "records_not_reasked"}},
            st.ae_records_not_reasked());
  m.advance(m.ae, {{"kind", "skip_memory_evictions"}},
            st.ae_skip_memory_evictions());
  m.advance(m.ae, {{"kind", "sessions_expired"}}, st.ae_sessions_expired());
  m.gauges.Add({{"what", "keys"}}).Set(static_cast<double>(st.live_keys()));
  m.gauges.Add({{"what", "entries"}}).Set(static_cast<double>(st.entries()));
  m.gauges.Add({{"what", "tombstones"}})
    .Set(static_cast<double>(l.tombstones()));
  m.gauges.Add({{"what", "ae_outbox_bytes"}})
    .Set(static_cast<double>(st.ae_outbox_bytes()));
  m.gauges.Add({{"what", "confirm_pending"}})
    .Set(static_cast<double>(s.confirm().pending()));
  m.gauges.Add({{"what", "confirm_waits"}})
    .Set(static_cast<double>(st.confirm_waits()));
  m.gauges.Add({{"what", "confirm_wait_bytes"}})
    .Set(static_cast<double>(st.confirm_wait_bytes()));
  m.gauges.Add({{"what", "ae_skip_memory_bytes"}})
    .Set(static_cast<double>(st.ae_skip_memory_bytes()));
  m.gauges.Add({{"what", "peers"}}).Set(static_cast<double>(r.peers()));
  m.gauges.Add({{"what", "watchers"}}).Set(static_cast<double>(watchers));
  if (st.delay_bounds_size() > 0) {
    if (m.delay_hist == nullptr) {
      prometheus::Histogram::BucketBoundaries bounds(st.delay_bounds().begin(),
                                                     st.delay_bounds().end());
      m.delay_hist = &m.delay.Add({}, bounds);
      m.last_delay_counts.assign(static_cast<size_t>(st.delay_counts_size()),
                                 0);
    }
    std::vector<double> increments;
    for (int i = 0; i < st.delay_counts_size(); ++i) {
      auto idx = static_cast<size_t>(i);
      increments.push_back(
        static_cast<double>(st.delay_counts(i) - m.last_delay_counts[idx]));
      m.last_delay_counts[idx] = st.delay_counts(i);
    }
    m.delay_hist->ObserveMultiple(increments,
                                  st.delay_sum() - m.last_delay_sum);
    m.last_delay_sum = st.delay_sum();
  }
  prometheus::TextSerializer serializer;
  return serializer.Serialize(m.registry->Collect());
}

std::string node_metrics::scrape(const pb::NodeStats& stats, size_t watchers,
                                 const pb::NodeInfo& info) {
  {
    std::lock_guard<std::mutex> guard{impl_->mtx};
    auto& m = *impl_;
    std::map<std::string, std::pair<prometheus::Gauge*, prometheus::Gauge*>>
      seen;
    for (const auto& c : info.clocks()) {
      auto peer = to_hex(c.node_id());
      auto& offset = m.clock_offset.Add({{"peer", peer}});
      auto& unc = m.clock_uncertainty.Add({{"peer", peer}});
      offset.Set(static_cast<double>(c.offset_us()) / 1e6);
      unc.Set(static_cast<double>(c.uncertainty_us()) / 1e6);
      seen[peer] = {&offset, &unc};
    }
    for (auto& [peer, gauges] : m.offset_gauges)
      if (seen.count(peer) == 0) {
        m.clock_offset.Remove(gauges.first);
        m.clock_uncertainty.Remove(gauges.second);
      }
    m.offset_gauges = std::move(seen);
  }
  return scrape(stats, watchers);
}

} // namespace syncmesh
