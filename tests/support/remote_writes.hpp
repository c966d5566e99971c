#pragma once

// Builds envelopes as the mesh delivers them, so tests can inject writes
// from other nodes through the router.

#include <string>

#include "messages/value_proto.hpp"
#include "messages/version.hpp"
#include "syncmesh/pb/wire.pb.h"

namespace syncmesh::test {

/// A version claimed by `node` at `claim_us`, stamped at `stamp_us`.
inline version remote_version(const std::string& node, uint64_t epoch,
                              uint64_t claim_us, uint64_t stamp_us,
                              uint64_t lease_end_us) {
  version v;
  v.epoch = epoch;
  v.claim_us = claim_us;
  v.claimer = node;
  v.stamp = hlc_stamp{stamp_us, 0, node};
  v.lease_end_us = lease_end_us;
  return v;
}

/// A whole-value write record.
inline pb::WriteRecord set_record(const std::string& key, const value& val,
                                  const version& v) {
  pb::WriteRecord rec;
  rec.set_key(key);
  to_proto(v, rec.mutable_version());
  to_proto(val, rec.mutable_value());
  return rec;
}

/// A delete record.
inline pb::WriteRecord delete_record(const std::string& key, const version& v) {
  pb::WriteRecord rec;
  rec.set_key(key);
  to_proto(v, rec.mutable_version());
  rec.mutable_tombstone();
  return rec;
}

/// An envelope from `origin` carrying `records` in a write body.
inline pb::Envelope
write_envelope(const std::string& origin,
               std::initializer_list<pb::WriteRecord> records) {
  pb::WriteBatch batch;
  for (const auto& rec : records)
    *batch.add_records() = rec;
  pb::Envelope env;
  env.set_message_id(origin + "-1");
  env.set_origin(origin);
  env.set_hops_left(8);
  batch.SerializeToString(env.mutable_write());
  return env;
}

} // namespace syncmesh::test
