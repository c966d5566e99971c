// Helpers shared by the unit tests: versions and write records built in one
// line, so each test shows only the data that matters to it.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <utility>

#include "messages/frame_codec.hpp"
#include "messages/value_proto.hpp"
#include "messages/version.hpp"
#include "syncmesh/errors.hpp"
#include "syncmesh/pb/entry.pb.h"
#include "syncmesh/value.hpp"
#include "tests/support/remote_writes.hpp"

// Boost.Test prints operands of failed checks through these (found by ADL).
namespace syncmesh {

inline std::ostream& boost_test_print_type(std::ostream& out, value::kind x) {
  return out << to_string(x);
}

inline std::ostream& boost_test_print_type(std::ostream& out, errc x) {
  return out << to_string(x);
}

inline std::ostream& boost_test_print_type(std::ostream& out, frame_status x) {
  switch (x) {
    case frame_status::ok:
      return out << "ok";
    case frame_status::need_more:
      return out << "need_more";
    case frame_status::too_large:
      return out << "too_large";
  }
  return out << "frame_status(" << static_cast<int>(x) << ")";
}

} // namespace syncmesh

namespace syncmesh::test {

/// A version whose stamp is `(wall_us, counter, node)`; the claim fields
/// default to "no lease" (leasing off).
inline version make_version(uint64_t wall_us, const raw_node_id& node,
                            uint64_t epoch = 0, uint64_t claim_us = 0,
                            const raw_node_id& claimer = {},
                            uint32_t counter = 0, uint64_t lease_end_us = 0) {
  version v;
  v.epoch = epoch;
  v.claim_us = claim_us;
  v.claimer = claimer;
  v.stamp.wall_us = wall_us;
  v.stamp.counter = counter;
  v.stamp.node = node;
  v.lease_end_us = lease_end_us;
  return v;
}

/// A whole-value write of `val` to `key` (version first, as the rules read).
inline pb::WriteRecord set_record(const std::string& key, const version& v,
                                  const value& val) {
  return set_record(key, val, v);
}

/// Field writes `fields` into the map at `key`.
inline pb::WriteRecord fields_record(const std::string& key, const version& v,
                                     const value_map& fields) {
  pb::WriteRecord rec;
  rec.set_key(key);
  to_proto(v, rec.mutable_version());
  to_proto(fields, rec.mutable_fields());
  return rec;
}

/// Builds a value_map from {key, value} pairs (text keys unless built with
/// map_key::from_bytes).
inline value_map
fields_of(std::initializer_list<std::pair<map_key, value>> items) {
  value_map result;
  for (const auto& [key, val] : items)
    result.push_back(map_item{key, val});
  return result;
}

} // namespace syncmesh::test
